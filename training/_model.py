"""Direct multi-horizon LightGBM forecaster with rolling-origin conformal intervals.

Year convention: the origin year ``t`` is the last year of data used (features of year ``t`` only use data
known at the end of ``t``); horizon ``h`` forecasts year ``t + h``. Each target is modelled as its *log
growth* ``log(y_{t+h} / y_t)`` (log points); forecasts are returned in the target's own unit (levels).

The default model pools the horizons: one global booster per target, trained on every (unit, t, h) pair with
``h`` as a feature and the annualised log growth ``log(y_{t+h} / y_t) / h`` as the label, with an L1
objective (the median, which suits MAPE). It still forecasts every horizon directly from the origin (no
recursion). ``pooled=False`` trains one booster per target and horizon instead. Horizons beyond
``direct_horizons`` are chained: ``g(t, t+h) = g(t, t+H) + g(t, t+h-H)`` from the same origin features.

Intervals: split-conformal on rolling windows. For a model whose data end in year ``T`` and a horizon ``h``,
the calibration origins are the latest ``calibration_origins`` years ``c`` with ``c + h <= T``; at each a
model trained only on pairs with ``t + h <= c`` forecasts ``c + h`` and its absolute log-growth errors are
the nonconformity scores. With fewer than two calibration origins for ``h``, the quantile of the largest
shorter horizon with two is scaled by ``h / h'`` (noted in ``calibration_``); chained horizons add the
quantiles of their parts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import lightgbm as lgb
import numpy as np
import pandas as pd

from tiecast.common import ConfigError

from ._core import LEVELS, forecast_frame, predict_growth
from ._data import TargetMatrix, target_matrix

__all__ = ["DEFAULT_PARAMS", "LEVELS", "Calibration", "DirectForecaster", "PairTable", "RollingFit",
           "conformal_quantiles", "fit_boosters", "predict_growth"]

# Chosen on validation origins 2011–2014 of the bundled Korean data (population MAPE % at h = 5, all units):
# pooled horizons + L1 4.36; one booster per horizon with L1 4.96, with L2 5.30; pooled + L2 4.60; labels
# relative to a damped trend (phi 0.6–1.0) 4.37–4.59; recency weights, 3-seed bagging, 7–31 leaves or 600
# rounds 4.33–4.38 (within noise, so the simpler setting stays). No forecast from a test origin (2015+) was
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
MAX_HORIZON = 10
MIN_TRAIN_ROWS = 10
HORIZON_FEATURE = "horizon"
T = TypeVar("T")
R = TypeVar("R")


def _lgb_params(params: dict[str, Any], n_jobs: int, seed: int) -> tuple[dict[str, Any], int]:
    p = {**DEFAULT_PARAMS, **params}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ConfigError(f"unknown model parameter(s) {sorted(unknown)}; allowed: {', '.join(DEFAULT_PARAMS)}")
    native = {
        "objective": p["objective"], "learning_rate": float(p["learning_rate"]),
        "num_leaves": int(p["num_leaves"]), "min_data_in_leaf": int(p["min_child_samples"]),
        "bagging_fraction": float(p["subsample"]), "bagging_freq": 1 if p["subsample"] < 1 else 0,
        "feature_fraction": float(p["colsample_bytree"]), "lambda_l2": float(p["reg_lambda"]),
        "max_bin": int(p["max_bin"]), "num_threads": int(n_jobs), "deterministic": True,
        "force_row_wise": True, "seed": int(seed), "verbosity": -1,
    }
    return native, int(p["n_estimators"])


@dataclass
class PairTable:
    """Every (unit, origin t, horizon h) training pair of one target with its feature row.

    ``X`` is pairs x features (float), ``growth`` the log growth over ``h`` (log points), ``year`` the origin
    year t and ``h`` the horizon. Built once, then sliced by cutoff (``t + h <= cutoff``).
    """

    X: np.ndarray
    growth: np.ndarray
    year: np.ndarray
    h: np.ndarray

    @classmethod
    def build(cls, tm: TargetMatrix, features: pd.DataFrame, names: Sequence[str], horizons: int) -> PairTable:
        indexed = features.set_index(["unit_id", "year"])[list(names)]
        parts = [tm.pairs(h, int(tm.years[-1])).assign(h=h) for h in range(1, horizons + 1)]
        pairs = pd.concat(parts, ignore_index=True)
        keys = pd.MultiIndex.from_arrays([pairs["unit_id"], pairs["year"]])
        X = indexed.reindex(keys).to_numpy(float)
        has_row = keys.isin(indexed.index)
        return cls(X[has_row], pairs["growth"].to_numpy(float)[has_row], pairs["year"].to_numpy(int)[has_row],
                   pairs["h"].to_numpy(int)[has_row])

    def select(self, cutoff: int) -> np.ndarray:
        return self.year + self.h <= cutoff


def parallel_map(fn: Callable[[T], R], items: Sequence[T], n_jobs: int) -> list[R]:
    """``[fn(x) for x in items]`` on ``n_jobs`` threads (LightGBM releases the GIL while training).

    Each fit runs single-threaded: on these small panels that is faster than multi-threaded fits when
    OpenMP waits passively (``OMP_WAIT_POLICY=PASSIVE``), and results do not depend on ``n_jobs``.
    """
    if n_jobs <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(fn, items))


def fit_boosters(table: PairTable, cutoff: int, horizons: int, pooled: bool, params: dict[str, Any],
                 n_jobs: int, seed: int) -> dict[int, lgb.Booster]:
    """Boosters trained on the pairs with ``t + h <= cutoff``: key 0 for the pooled booster, else ``h``.

    Horizons with fewer than MIN_TRAIN_ROWS pairs get no booster.
    """
    native, rounds = _lgb_params(params, n_jobs, seed)
    keep = table.select(cutoff) & (table.h <= horizons)
    out: dict[int, lgb.Booster] = {}
    if pooled:
        if keep.sum() >= MIN_TRAIN_ROWS:
            X = np.column_stack([table.X[keep], table.h[keep]])
            y = table.growth[keep] / table.h[keep]
            out[0] = lgb.train(native, lgb.Dataset(X, y, params={"max_bin": native["max_bin"]}),
                               num_boost_round=rounds)
        return out
    for h in range(1, horizons + 1):
        sel = keep & (table.h == h)
        if sel.sum() >= MIN_TRAIN_ROWS:
            out[h] = lgb.train(native, lgb.Dataset(table.X[sel], table.growth[sel],
                                                   params={"max_bin": native["max_bin"]}), num_boost_round=rounds)
    return out


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


def conformal_quantiles(residuals: dict[int, np.ndarray], end: int, horizons: int, direct_horizons: int,
                        n_origins: int, levels: Iterable[int] = LEVELS) -> Calibration:
    """Quantiles from rolling-origin residuals known by year ``end``.

    ``residuals[c]`` is units x horizons of (actual - forecast) log growth of the model fitted with data up to
    origin ``c``; for horizon ``h`` only origins with ``c + h <= end`` are used (the latest ``n_origins``).
    """
    cal = Calibration()
    direct = min(horizons, direct_horizons)
    for h in range(1, direct + 1):
        usable = [c for c in sorted(residuals) if c + h <= end and np.isfinite(residuals[c][:, h - 1]).any()]
        chosen = usable[-n_origins:]
        if len(chosen) >= 2:
            scores = np.abs(np.concatenate([residuals[c][:, h - 1] for c in chosen]))
            scores = scores[np.isfinite(scores)]
            cal.quantiles[h] = {lv: _conformal_q(scores, lv) for lv in levels}
            cal.origins[h] = chosen
            cal.notes[h] = f"origins {', '.join(map(str, chosen))}"
            continue
        shorter = [k for k in range(h - 1, 0, -1) if cal.origins.get(k)]
        if shorter:
            k = shorter[0]
            cal.quantiles[h] = {lv: q * h / k for lv, q in cal.quantiles[k].items()}
            cal.origins[h] = []
            cal.notes[h] = f"scaled from h={k} (fewer than 2 calibration origins for h={h})"
        else:
            cal.notes[h] = "no interval: fewer than 2 calibration origins"
    for h in range(direct + 1, horizons + 1):
        a, b = cal.quantiles.get(direct), cal.quantiles.get(h - direct)
        if a is not None and b is not None:
            cal.quantiles[h] = {lv: a[lv] + b[lv] for lv in a}
            cal.notes[h] = f"chained: h={direct} + h={h - direct}"
    return cal


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high}; got {value!r}")
    return int(value)


class DirectForecaster:
    """Global direct multi-horizon LightGBM forecaster of log growth, with conformal intervals.

    Follows scikit-learn's estimator contract: ``__init__`` only stores parameters, :meth:`fit` returns
    ``self`` and fitted attributes end in ``_``.

    Parameters
    ----------
    targets: target columns of ``y`` (default: every column of ``y`` except ``unit_id``, ``year`` and the
        break column).
    horizons: forecast horizons 1..``horizons`` in years (1–10).
    direct_horizons: horizons modelled directly (default 5); longer ones are chained.
    pooled: one booster per target with the horizon as a feature (default) or one per target and horizon.
    features: feature columns of ``X`` to use (default: all but ``unit_id`` and ``year``).
    params: LightGBM settings overriding :data:`DEFAULT_PARAMS`.
    calibration_origins: rolling calibration origins per horizon (>= 2).
    break_column: 0/1 column of ``y`` flagging boundary breaks (pairs across a break are not growth).
    n_jobs, seed: LightGBM fits run in parallel (each single-threaded) and the seed; results are deterministic
        for a given seed and data and do not depend on ``n_jobs``.

    Fitted attributes: ``boosters_`` (target -> key -> Booster, key 0 = pooled), ``calibration_`` (target ->
    :class:`Calibration`), ``feature_names_``, ``targets_``, ``data_end_`` (target -> last year with data).
    """

    def __init__(self, targets: Sequence[str] | None = None, horizons: int = 5, direct_horizons: int = 5,
                 pooled: bool = True, features: Sequence[str] | None = None,
                 params: dict[str, Any] | None = None, calibration_origins: int = 3,
                 break_column: str | None = None, n_jobs: int = 2, seed: int = 0) -> None:
        self.targets = targets
        self.horizons = horizons
        self.direct_horizons = direct_horizons
        self.pooled = pooled
        self.features = features
        self.params = params
        self.calibration_origins = calibration_origins
        self.break_column = break_column
        self.n_jobs = n_jobs
        self.seed = seed

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("targets", "horizons", "direct_horizons", "pooled", "features",
                                             "params", "calibration_origins", "break_column", "n_jobs", "seed")}

    def set_params(self, **params: Any) -> DirectForecaster:
        for k, v in params.items():
            if k not in self.get_params():
                raise ConfigError(f"unknown parameter {k!r}; allowed: {', '.join(self.get_params())}")
            setattr(self, k, v)
        return self

    def _validate(self, X: pd.DataFrame, y: pd.DataFrame) -> tuple[list[str], list[str]]:
        _check_int("horizons", self.horizons, 1, MAX_HORIZON)
        _check_int("direct_horizons", self.direct_horizons, 1, MAX_HORIZON)
        _check_int("calibration_origins", self.calibration_origins, 2, 20)
        _check_int("n_jobs", self.n_jobs, 1, 256)
        for name, frame in (("X", X), ("y", y)):
            missing = {"unit_id", "year"} - set(frame.columns)
            if missing:
                raise ConfigError(f"{name} needs the columns unit_id and year; missing {sorted(missing)}")
        skip = {"unit_id", "year", self.break_column}
        targets = list(self.targets) if self.targets is not None else [c for c in y.columns if c not in skip]
        absent = [t for t in targets if t not in y.columns]
        if absent or not targets:
            raise ConfigError(f"targets {absent or targets} are not columns of y; columns: {', '.join(y.columns)}")
        names = list(self.features) if self.features is not None else [c for c in X.columns
                                                                        if c not in ("unit_id", "year")]
        unknown = [f for f in names if f not in X.columns]
        if unknown:
            raise ConfigError(f"features {unknown[:5]} are not columns of X")
        if self.break_column is not None and self.break_column not in y.columns:
            raise ConfigError(f"break_column {self.break_column!r} is not a column of y")
        _lgb_params(self.params or {}, self.n_jobs, self.seed)
        return targets, names

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> DirectForecaster:
        """Fit on feature rows ``X`` (unit_id, year = origin t, features) and target levels ``y``
        (unit_id, year, targets[, break column]). Every pair with both years in ``y`` is used.

        Per target, one :class:`RollingFit` fits the final model (cutoff = the target's last data year) and the
        rolling calibration models in parallel: the same object, and so the same code, the backtest uses.
        """
        targets, names = self._validate(X, y)
        self.boosters_: dict[str, dict[int, lgb.Booster]] = {}
        self.calibration_: dict[str, Calibration] = {}
        self.data_end_: dict[str, int] = {}
        for target in targets:
            roll = self.rolling_fit(X, y, target, names)
            end = roll.tm.last_year()
            if end is None:
                raise ConfigError(f"target {target!r} has no positive values in y", parameter="targets")
            cutoffs = [end, *roll.calibration_cutoffs(end)]
            parallel_map(partial(_fit_cutoff, roll, end), cutoffs, self.n_jobs)
            if end not in roll.models:
                raise ConfigError(f"target {target!r}: fewer than {MIN_TRAIN_ROWS} (origin, target year) pairs "
                                  "to train on; give more years of data")
            self.boosters_[target] = roll.models[end]
            self.calibration_[target] = roll.calibration(end)
            self.data_end_[target] = end
        self.targets_ = targets
        self.feature_names_ = names
        return self

    def rolling_fit(self, X: pd.DataFrame, y: pd.DataFrame, target: str, names: Sequence[str] | None = None,
                    units: pd.Index | None = None) -> RollingFit:
        """A :class:`RollingFit` of one target with this forecaster's settings.

        ``units`` orders the target matrix (default: the sorted unit ids of ``y``); units without data add no
        training rows, so the models do not depend on it.
        """
        if names is None:
            names = self._validate(X, y)[1]
        if units is None:
            units = pd.Index(sorted(set(y["unit_id"].astype(str))))
        y = y.assign(unit_id=y["unit_id"].astype(str))
        X = X.assign(unit_id=X["unit_id"].astype(str))
        tm = target_matrix(y, target, self.break_column, units)
        return RollingFit(tm, X, list(names), horizons=self.horizons, direct_horizons=self.direct_horizons,
                          pooled=self.pooled, params=dict(self.params or {}), seed=self.seed,
                          calibration_origins=self.calibration_origins)

    def predict_growth(self, X: pd.DataFrame, target: str) -> np.ndarray:
        """Log growth forecasts for each row of ``X`` (rows x horizons, log points)."""
        matrix = X.reindex(columns=self.feature_names_).to_numpy(float)
        return predict_growth(self.boosters_[target], matrix, self.horizons, self.direct_horizons)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Forecasts from each feature row of ``X`` (origin year t = ``year``), in levels.

        Returns one row per (unit_id, year, target, horizon) with ``target_year`` = year + horizon,
        ``growth`` (log points), ``point`` and ``lower80``/``upper80``/``lower90``/``upper90`` in the target's
        unit. The level at ``t`` is read from the feature ``<target>_log`` (log of the target at t).
        """
        if not hasattr(self, "boosters_"):
            raise ConfigError("DirectForecaster is not fitted: call fit(X, y) first")
        return forecast_frame(X, self.targets_, self.horizons, lambda t: self.predict_growth(X, t),
                              {t: c.quantiles for t, c in self.calibration_.items()})


def origin_rows(tm: TargetMatrix, X: pd.DataFrame, names: Sequence[str], origin: int) -> np.ndarray:
    """Feature rows of origin year ``origin`` aligned to the target matrix's units (units x features)."""
    return X[X["year"] == origin].set_index("unit_id").reindex(tm.units)[list(names)].to_numpy(float)


def actual_growth(tm: TargetMatrix, origin: int, horizons: int) -> np.ndarray:
    """Observed log growth from ``origin`` to ``origin + h``, units x horizons (NaN where unknown)."""
    return np.column_stack([tm.growth(origin, h) for h in range(1, horizons + 1)])


def _fit_cutoff(roll: RollingFit, keep_cutoff: int, cutoff: int) -> bool:
    return roll.fit_at(cutoff, keep=cutoff == keep_cutoff)


class RollingFit:
    r"""One target's models fitted at several cutoffs: the one training loop of tiecast.

    A model at cutoff ``c`` is trained on the pairs with ``t + h <= c`` and forecasts from origin ``c``; its
    forecast errors (actual minus forecast log growth, known once ``c + h`` is observed) are the conformal
    scores of later models. The backtest evaluates the model at each test origin ``o`` with the calibration of
    :meth:`calibration`\ (o); :meth:`DirectForecaster.fit` keeps the model at the last data year with
    :meth:`calibration`\ (end). Both therefore run exactly the same code with the same settings.

    ``pred[c]`` / ``residuals[c]``: units x horizons log growth forecasts from origin ``c`` and their errors;
    ``models[c]``: the boosters of cutoffs fitted with ``keep=True``.
    """

    def __init__(self, tm: TargetMatrix, X: pd.DataFrame, names: list[str], *, horizons: int,
                 direct_horizons: int, pooled: bool, params: dict[str, Any], seed: int,
                 calibration_origins: int) -> None:
        self.tm, self.X, self.names = tm, X, names
        self.horizons = horizons
        self.direct = min(horizons, direct_horizons)
        self.direct_horizons = direct_horizons
        self.pooled, self.params, self.seed = pooled, params, seed
        self.calibration_origins = calibration_origins
        self.table = PairTable.build(tm, X, names, self.direct)
        self.pred: dict[int, np.ndarray] = {}
        self.residuals: dict[int, np.ndarray] = {}
        self.models: dict[int, dict[int, lgb.Booster]] = {}

    def calibration_cutoffs(self, origin: int) -> list[int]:
        """Earlier cutoffs whose errors calibrate the model of ``origin``: enough for every direct horizon."""
        return list(range(origin - 1, origin - self.direct - self.calibration_origins, -1))

    def fit_at(self, cutoff: int, keep: bool = False) -> bool:
        """Fit the model of ``cutoff`` (single-threaded), forecast from origin ``cutoff``; False without data."""
        boosters = fit_boosters(self.table, cutoff, self.direct, self.pooled, self.params, 1, self.seed)
        if not boosters:
            return False
        rows = origin_rows(self.tm, self.X, self.names, cutoff)
        pred = predict_growth(boosters, rows, self.horizons, self.direct)
        self.pred[cutoff] = pred
        self.residuals[cutoff] = actual_growth(self.tm, cutoff, self.horizons) - pred
        if keep:
            self.models[cutoff] = boosters
        return True

    def calibration(self, origin: int) -> Calibration:
        """Conformal quantiles for the model of ``origin`` from the errors of cutoffs ``c < origin`` known by
        ``origin`` (``c + h <= origin``)."""
        earlier = {c: r for c, r in self.residuals.items() if c < origin}
        return conformal_quantiles(earlier, origin, self.horizons, self.direct_horizons, self.calibration_origins)
