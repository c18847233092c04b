"""Rolling-origin backtests of tiecast against baselines and mlforecast on the same splits.

Year convention: an origin ``o`` is the last year of data a forecast may use; horizon ``h`` targets
``o + h`` steps (years for yearly data; a panel observed every ``k`` years counts horizons in steps of ``k``
years and says so in the plan). At every origin each method sees only data up to ``o``: tiecast's members
are trained on pairs with ``t + h <= o``, their weights are chosen on inner origins ``c`` with ``c + h <= o``
and the conformal calibration uses the combined forecasts of earlier origins whose errors are known by
``o``. The member fits of consecutive origins are shared between evaluation, selection and calibration, and
between tiecast and its ablations (``tiecast_noties``, ``tiecast_nomigration``: the same selection with every
LightGBM member leaving out the group), so a backtest fits each member once per origin.

Metrics per (method, target, horizon, origin, group): ``mape`` (%), ``rmse`` (target unit), ``mase`` (scaled by
the unit's mean absolute yearly change up to the origin), ``coverage80``/``coverage90`` (share 0–1 of actuals
inside tiecast's 80%/90% intervals; NaN for methods without intervals).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tiecast.common import ConfigError, stage
from tiecast.features import Dataset, PanelFeatures, build_features

from ._baselines import BASELINES, baseline_forecasts, contiguous_tail
from ._data import Calendar, TargetMatrix, target_matrix, unit_groups
from ._model import (
    DEFAULT_PARAMS,
    LEVELS,
    MAX_HORIZON,
    DirectForecaster,
    MemberSpec,
    RollingFit,
    Selection,
    parallel_map,
)

__all__ = ["ABLATIONS", "BACKTEST_FORECAST_COLUMNS", "METHODS", "METRIC_COLUMNS", "BacktestResult", "TargetPlan",
           "backtest", "parse_origins", "plan_target", "tune_params"]

# Ablations: tiecast without one feature group (every LightGBM member leaves it out).
ABLATIONS = {"tiecast_noties": "ties", "tiecast_nomigration": "migration"}
METHODS = ("tiecast", *ABLATIONS, *BASELINES)
METRIC_COLUMNS = ["method", "target", "horizon", "origin", "group", "mape", "rmse", "mase", "coverage80",
                  "coverage90"]
BACKTEST_FORECAST_COLUMNS = ["method", "target", "origin", "horizon", "target_year", "unit_id", "actual", "point",
                    "lower80", "upper80", "lower90", "upper90"]
DEFAULT_N_ORIGINS = 6
MIN_TRAIN_YEARS = 2
# Small grid for --tune, scored on validation origins before the first test origin (targets <= it).
TUNE_GRID: tuple[dict[str, Any], ...] = (
    {},
    {"num_leaves": 7},
    {"num_leaves": 31, "min_child_samples": 40},
    {"n_estimators": 600, "learning_rate": 0.015},
    {"colsample_bytree": 0.5},
    {"reg_lambda": 10.0, "min_child_samples": 50},
)
TUNE_ORIGINS = 4


@dataclass(frozen=True)
class TargetPlan:
    """Origins (calendar years) and horizons (steps of ``step`` years) evaluated for one target, and why
    (``note`` is printed to the user)."""

    target: str
    origins: list[int]
    horizons: int
    data_start: int | None
    data_end: int | None
    note: str
    step: int = 1


@dataclass
class BacktestResult:
    """Backtest output: ``metrics`` (METRIC_COLUMNS), ``forecasts`` (BACKTEST_FORECAST_COLUMNS: one row per method,
    target, origin, horizon and unit, in levels), ``plans`` per target, the LightGBM ``params``, the
    ``features`` used and those of each ablation (``ablations``: method -> features), tiecast's calibration
    notes and ``selection`` (target -> origin -> :class:`Selection`, inner origins in calendar years)."""

    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    plans: dict[str, TargetPlan]
    params: dict[str, Any]
    features: list[str]
    ablations: dict[str, list[str]] = field(default_factory=dict)
    tuning: pd.DataFrame | None = None
    calibration: dict[str, dict[int, dict[int, str]]] = field(default_factory=dict)
    selection: dict[str, dict[int, Selection]] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    # The fitted member forecasts per target, which ``train`` lends to the final fit (same data and settings).
    rolls: dict[str, RollingFit] = field(default_factory=dict, repr=False, compare=False)

    def summary(self, group: str = "all") -> pd.DataFrame:
        """Metrics averaged over origins: one row per (target, horizon, method)."""
        m = self.metrics[self.metrics["group"] == group]
        cols = ["mape", "rmse", "mase", "coverage80", "coverage90"]
        out = m.groupby(["target", "horizon", "method"], sort=False)[cols].mean().reset_index()
        order = {name: i for i, name in enumerate(METHODS)}
        return out.sort_values(["target", "horizon", "method"], key=lambda s: s.map(order) if s.name == "method"
                               else s, kind="stable").reset_index(drop=True)

    def mean_mape(self, target: str, method: str = "tiecast", group: str = "all") -> float:
        """MAPE (%) averaged over origins and then over horizons (the primary metric for the primary target)."""
        m = self.metrics
        sel = m[(m["target"] == target) & (m["method"] == method) & (m["group"] == group)]
        if sel.empty:
            return float("nan")
        return float(sel.groupby("horizon")["mape"].mean().mean())


def parse_origins(text: str | None) -> list[int] | None:
    """``"2015-2020"`` (or an en dash), ``"2015,2017"`` or ``"2018"`` -> sorted years; None stays None."""
    if text is None:
        return None
    value = str(text).strip().replace("–", "-")
    try:
        if "," in value:
            years = sorted({int(v) for v in value.split(",") if v.strip()})
        elif "-" in value:
            first, last = (int(v) for v in value.split("-", 1))
            if first > last:
                raise ValueError
            years = list(range(first, last + 1))
        else:
            years = [int(value)]
    except ValueError:
        raise ConfigError(f"origins must be a year range like 2015-2020, a list like 2015,2017 or one year; "
                          f"got {text!r}", parameter="origins") from None
    if not years:
        raise ConfigError(f"origins names no year: {text!r}", parameter="origins")
    return years


def _units(ds: Dataset) -> pd.Index:
    """Unit ids in sorted order, the order every model's training rows follow (see DirectForecaster)."""
    return pd.Index(sorted(ds.units["unit_id"].astype(str)))


def _train_years(tm: TargetMatrix, origin: int) -> int:
    """Distinct origin periods t with a one-step growth pair inside the data up to ``origin``."""
    return sum(1 for t in range(int(tm.years[0]), origin) if np.isfinite(tm.growth(t, 1)).any())


def plan_target(tm: TargetMatrix, requested: Sequence[int] | None, horizons: int) -> TargetPlan:
    """Origins and horizons the data allow for one target (``requested`` in calendar years; None = default).

    An origin is usable when it is an observation year, the target is observed at it, at least
    MIN_TRAIN_YEARS periods of training pairs precede it and the next step is observed. With requested
    origins, among horizons ``H' <= horizons`` the one giving the most (origin, horizon) cells with every
    ``o + H'`` observed is chosen (ties: the longer horizon). By default the origins are the last
    DEFAULT_N_ORIGINS usable ones whose horizons fit, for the ``H'`` giving the most cells.
    """
    cal = tm.calendar
    start, end = tm.first_year(), tm.last_year()
    if end is None or start is None:
        return TargetPlan(tm.target, [], 0, None, None, f"{tm.target}: no data", cal.step)
    span = f"data {cal.year(start)}–{cal.year(end)}"
    every = f"; {cal.describe()}: horizons count steps of {cal.step} years" if not cal.yearly else ""
    if requested is None:
        candidates = list(range(start, end))
    else:
        years = np.asarray(list(requested), dtype=np.int64)
        candidates = [int(p) for p in cal.periods(years[cal.on_grid(years)])]
    usable = [o for o in candidates
              if tm.has_year(o) and np.isfinite(tm.log[:, tm.col(o)]).any() and o + 1 <= end
              and _train_years(tm, o) >= MIN_TRAIN_YEARS]
    best: tuple[int, int] = (0, 0)
    chosen: list[int] = []
    for h in range(1, horizons + 1):
        fit = [o for o in usable if o + h <= end]
        if requested is None:
            fit = fit[-DEFAULT_N_ORIGINS:]
        cells = len(fit) * h
        if cells >= best[0] and cells > 0:
            best, chosen = (cells, h), fit
    h_best = best[1]
    asked = "" if requested is None else _span([int(y) for y in requested], 1)
    if not chosen:
        where = f" among {asked}" if requested is not None else ""
        grid = (f"; origins must be observation years (every {cal.step} years from {cal.year(start)})"
                if not cal.yearly else "")
        note = (f"{tm.target}: no usable origin{where} ({span}; an origin needs the target at it, "
                f"{MIN_TRAIN_YEARS}+ earlier steps of growth pairs and data after it{grid})")
        return TargetPlan(tm.target, [], 0, cal.year(start), cal.year(end), note, cal.step)
    origins = [cal.year(o) for o in chosen]
    note = f"{tm.target}: origins {_span(origins, cal.step)}, horizons 1–{h_best} ({span}){every}"
    if requested is not None and (origins != sorted(int(y) for y in requested) or h_best != horizons):
        note += f"; requested origins {asked}, horizons 1–{horizons}"
    return TargetPlan(tm.target, origins, h_best, cal.year(start), cal.year(end), note, cal.step)


def _span(years: Sequence[int], step: int = 1) -> str:
    years = list(years)
    if not years:
        return "none"
    if years == list(range(years[0], years[-1] + 1, step)):
        return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0])
    return ",".join(map(str, years))


def _mase_scale(tm: TargetMatrix, origin: int) -> np.ndarray:
    """Mean absolute change per step of the level over the unit's contiguous history up to ``origin``."""
    levels = np.exp(contiguous_tail(tm, origin))
    if levels.shape[1] < 2:
        return np.full(len(tm.units), np.nan)
    diffs = np.abs(np.diff(levels, axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # units without history: NaN scale
        scale = np.nanmean(diffs, axis=1)
    return np.where(scale > 0, scale, np.nan)


def _long(method: str, target: str, origin: int, step: int, units: pd.Index, log_pred: np.ndarray,
          actual: np.ndarray, scale: np.ndarray, bounds: dict[str, np.ndarray] | None) -> pd.DataFrame:
    """Units x horizons arrays -> one row per (unit, horizon); ``origin`` in calendar years."""
    n, H = log_pred.shape
    horizon = np.tile(np.arange(1, H + 1), n)
    frame = pd.DataFrame({
        "method": method, "target": target, "origin": origin, "horizon": horizon,
        "target_year": origin + horizon * step, "unit_id": np.repeat(np.asarray(units), H),
        "actual": actual.ravel(), "point": np.exp(log_pred).ravel(), "scale": np.repeat(scale, H),
    })
    for lv in LEVELS:
        for side in ("lower", "upper"):
            key = f"{side}{lv}"
            frame[key] = bounds[key].ravel() if bounds is not None else np.nan
    return frame


def _metrics(forecasts: pd.DataFrame, groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per (method, target, horizon, origin, group) metrics over units with an actual and every forecast."""
    f = forecasts
    err = f["point"] - f["actual"]
    f = f.assign(ape=100 * err.abs() / f["actual"], se=err**2, ase=err.abs() / f["scale"])
    for lv in LEVELS:
        covered = (f["actual"] >= f[f"lower{lv}"]) & (f["actual"] <= f[f"upper{lv}"])
        f[f"cov{lv}"] = covered.astype(float).where(f[f"lower{lv}"].notna())
    frames = []
    for group, ids in groups.items():
        sub = f[f["unit_id"].isin(ids)]
        if sub.empty:
            continue
        agg = sub.groupby(["method", "target", "horizon", "origin"], sort=False).agg(
            mape=("ape", "mean"), mse=("se", "mean"), mase=("ase", "mean"), coverage80=("cov80", "mean"),
            coverage90=("cov90", "mean")).reset_index()
        agg["rmse"] = np.sqrt(agg.pop("mse"))
        agg["group"] = group
        frames.append(agg)
    if not frames:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    return pd.concat(frames, ignore_index=True)[METRIC_COLUMNS]


def _forecast_at(roll: RollingFit, origin: int, names: Sequence[str]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[int, str], Selection]:
    """Log-level point forecasts and interval bounds of the combination ``names`` at ``origin`` (weights
    chosen and intervals calibrated on origins ``c`` with ``c + h <= o``), the calibration notes per horizon
    and the selection."""
    tm = roll.tm
    log0 = tm.log[:, tm.col(origin)]
    growth, cal, sel = roll.forecast(origin, names)
    if growth is None:
        growth = np.full((len(tm.units), roll.horizons), np.nan)
    centre = log0[:, None] + growth
    bounds: dict[str, np.ndarray] = {}
    for lv in LEVELS:
        q = np.array([cal.quantiles.get(h, {}).get(lv, np.nan) for h in range(1, roll.horizons + 1)])
        bounds[f"lower{lv}"] = np.exp(centre - q[None, :])
        bounds[f"upper{lv}"] = np.exp(centre + q[None, :])
    return centre, bounds, roll.calibration_in_years(cal).notes, roll.in_years(sel)


def _forecaster(ds: Dataset, pf: PanelFeatures, horizons: int, params: dict[str, Any], seed: int,
                members: Sequence[str] | None = None) -> DirectForecaster:
    """The forecaster a backtest evaluates: exactly the settings ``train`` registers (defaults included)."""
    return DirectForecaster(horizons=horizons, features=pf.names, feature_groups=pf.groups(), params=params,
                            members=members, break_column=ds.break_column, step=ds.step, n_jobs=1, seed=seed)


def _targets_frame(ds: Dataset, target: str) -> pd.DataFrame:
    return ds.panel[["unit_id", "year", target, *([ds.break_column] if ds.break_column else [])]]


def _validate(ds: Dataset, targets: Sequence[str] | None, horizons: int, methods: Sequence[str]) -> list[str]:
    if isinstance(horizons, bool) or not isinstance(horizons, (int, np.integer)) or not 1 <= horizons <= MAX_HORIZON:
        raise ConfigError(f"horizons must be an integer from 1 to {MAX_HORIZON}; got {horizons!r}",
                          parameter="horizons")
    chosen = list(targets) if targets else ds.targets
    bad = [t for t in chosen if t not in ds.targets]
    if bad:
        raise ConfigError(f"target {bad[0]!r} is not a target of dataset {ds.name!r}; allowed: "
                          f"{', '.join(ds.targets)}", parameter="targets")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "tiecast" not in methods:
        raise ConfigError(f"methods must include 'tiecast' and come from {', '.join(METHODS)}; got {list(methods)}",
                          parameter="methods")
    return chosen


def _tune_one(ds: Dataset, tm: TargetMatrix, pf: PanelFeatures, origins: list[int], before: int, horizons: int,
              overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """Mean MAPE (%) of the main LightGBM member for one grid point over validation cells (origin v, horizon
    h) with v + h <= before (periods)."""
    roll = _forecaster(ds, pf, min(horizons, 5), overrides, seed, members=["gbm"]).rolling_fit(
        pf.frame, _targets_frame(ds, tm.target), tm.target, units=tm.units, calendar=tm.calendar)
    apes = []
    for v in origins:
        roll.fit_at(v)
        if v not in roll.pred["gbm"]:
            continue
        for h in range(1, roll.direct + 1):
            if v + h > before:
                continue
            actual = np.exp(tm.log[:, tm.col(v)] + tm.growth(v, h))
            pred = np.exp(tm.log[:, tm.col(v)] + roll.pred["gbm"][v][:, h - 1])
            ok = np.isfinite(actual) & np.isfinite(pred)
            if ok.any():
                apes.append(float(np.mean(100 * np.abs(pred[ok] - actual[ok]) / actual[ok])))
    return {"params": repr(overrides) if overrides else "defaults", "cells": len(apes),
            "mape": float(np.mean(apes)) if apes else np.nan, "overrides": overrides}


def tune_params(ds: Dataset, pf: PanelFeatures, target: str, before: int, horizons: int = 5, seed: int = 0,
                n_jobs: int = 2, grid: Sequence[dict[str, Any]] = TUNE_GRID,
                progress: bool = False) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pick LightGBM settings from ``grid`` by rolling-origin CV strictly before the test period.

    Validation origins are the TUNE_ORIGINS observation years before ``before`` (the first test origin, a
    calendar year) and only (origin, horizon) cells whose target year is ``<= before`` count, so no test year
    is ever looked at. Returns the best overrides of DEFAULT_PARAMS and the table of scores (mean MAPE %).
    """
    tm = target_matrix(ds.panel, target, ds.break_column, _units(ds), Calendar.of_years(ds.panel["year"], ds.step))
    first = tm.calendar.period(before) if tm.calendar.on_grid(np.array([before]))[0] else \
        tm.calendar.period(before) + 1
    origins = [v for v in range(first - TUNE_ORIGINS, first) if tm.has_year(v) and _train_years(tm, v) >= 1]
    with stage(progress, f"tune {target}", len(grid)) as advance:

        def one(overrides: dict[str, Any]) -> dict[str, Any]:
            row = _tune_one(ds, tm, pf, origins, first, horizons, overrides, seed)
            advance()
            return row

        rows = parallel_map(one, list(grid), n_jobs)
    table = pd.DataFrame(rows)
    scores = table["mape"].to_numpy(float)
    best: dict[str, Any] = dict(grid[int(np.nanargmin(scores))]) if np.isfinite(scores).any() else {}
    return best, table.drop(columns="overrides")


def _method_members(methods: Sequence[str], specs: list[MemberSpec], pf: PanelFeatures
                    ) -> dict[str, list[MemberSpec]]:
    """Members of tiecast and of each requested ablation whose group has features."""
    groups = pf.groups()
    out = {"tiecast": specs}
    for method, group in ABLATIONS.items():
        if method in methods and groups.get(group):
            out[method] = list(dict.fromkeys(s.without(group) for s in specs))
    return out


def backtest(ds: Dataset, features: PanelFeatures | None = None, *, targets: Sequence[str] | None = None,
             origins: Sequence[int] | None = None, horizons: int = 5, methods: Sequence[str] = METHODS,
             params: dict[str, Any] | None = None, members: Sequence[str] | None = None, tune: bool = False,
             seed: int = 0, n_jobs: int = 2, progress: bool = False) -> BacktestResult:
    """Rolling-origin evaluation of tiecast, its ablations (no ties, no migration), naive, drift, recent
    drift, AutoETS and mlforecast.

    ``origins`` (calendar years) default to the last DEFAULT_N_ORIGINS each target's data allow (see
    :func:`plan_target`); horizons count observation steps (years for yearly data). ``members`` overrides
    tiecast's candidate members (default :data:`DEFAULT_MEMBERS`). ``tune`` picks LightGBM settings on
    origins before the first test origin (primary target) and uses them everywhere. Raises
    :class:`ConfigError` (parameter ``origins``) when no target has a usable origin.
    """
    chosen = _validate(ds, targets, horizons, methods)
    DirectForecaster(members=members).member_specs()  # unknown member names fail before any work
    pf = features if features is not None else build_features(ds, progress=progress)
    requested = list(origins) if origins is not None else None
    units = _units(ds)
    groups = unit_groups(ds)
    names = pf.names
    params = dict(params or {})
    calendar = Calendar.of_years(ds.panel["year"], ds.step)
    tms = {t: target_matrix(ds.panel, t, ds.break_column, units, calendar) for t in chosen}
    plans = {t: plan_target(tms[t], requested, horizons) for t in chosen}
    if not any(p.origins for p in plans.values()):
        # the origins option is named only when the user gave origins; otherwise it is the data's span
        raise ConfigError("no usable origin to backtest: " + "; ".join(p.note for p in plans.values()),
                          parameter="origins" if requested is not None else None)
    tuning = None
    if tune:
        lead = ds.primary_target if ds.primary_target in chosen and plans[ds.primary_target].origins else \
            next(t for t in chosen if plans[t].origins)
        tuned, tuning = tune_params(ds, pf, lead, min(plans[lead].origins), horizons, seed, n_jobs,
                                    progress=progress)
        params = {**tuned, **params}
    full_params = {**DEFAULT_PARAMS, **params}
    parts: list[pd.DataFrame] = []
    calib: dict[str, dict[int, dict[int, str]]] = {}
    selections: dict[str, dict[int, Selection]] = {}
    ablation_features: dict[str, list[str]] = {}
    tiecast_members: list[str] = []
    rolls: dict[str, RollingFit] = {}
    for target in chosen:
        plan, tm = plans[target], tms[target]
        if not plan.origins:
            continue
        assert plan.data_start is not None
        H = plan.horizons
        forecaster = _forecaster(ds, pf, H, params, seed, members)
        specs = forecaster.member_specs()
        by_method = _method_members(methods, specs, pf)
        union = list(dict.fromkeys(s for ss in by_method.values() for s in ss))
        roll = forecaster.rolling_fit(pf.frame, _targets_frame(ds, target), target, units=units, specs=union,
                                      calendar=calendar)
        rolls[target] = roll
        method_names = {m: roll.available(ss) for m, ss in by_method.items()}
        tiecast_members = method_names["tiecast"]
        for method, group in ABLATIONS.items():
            if method in method_names:
                ablation_features[method] = [n for n in names if n not in set(pf.groups()[group])]
        origin_periods = [calendar.period(o) for o in plan.origins]
        first = calendar.period(plan.data_start) + 1
        # The cutoffs the test origins need: themselves, their calibration origins and the inner origins of
        # every selection among them (long series need not be fitted from their first year).
        fit_origins = sorted({c for o in origin_periods for c in roll.required_cutoffs(o) if c >= first})
        # One progress bar per target: the members at each origin, then the scoring of each test origin.
        with stage(progress, f"backtest {target}", len(fit_origins) + len(plan.origins)) as advance:
            roll.fit_cutoffs(fit_origins, n_jobs, advance=advance)
            for o, year in zip(origin_periods, plan.origins, strict=True):
                actual = np.column_stack([tm.level(o + h) for h in range(1, H + 1)])
                comparable = np.column_stack([np.isfinite(tm.growth(o, h)) for h in range(1, H + 1)])
                actual = np.where(comparable, actual, np.nan)
                scale = _mase_scale(tm, o)
                for method, member_names in method_names.items():
                    centre, bounds, notes, sel = _forecast_at(roll, o, member_names)
                    parts.append(_long(method, target, year, calendar.step, units, centre, actual, scale, bounds))
                    if method == "tiecast":
                        calib.setdefault(target, {})[year] = notes
                        selections.setdefault(target, {})[year] = sel
                base = [m for m in methods if m in BASELINES]
                for method, log_pred in baseline_forecasts(tm, o, H, tuple(base), seed).items():
                    parts.append(_long(method, target, year, calendar.step, units, log_pred, actual, scale, None))
                advance()
    forecasts = pd.concat(parts, ignore_index=True)
    # Compare every method on the same cells: an actual and a forecast from every method.
    ok = forecasts["actual"].notna() & forecasts["point"].notna()
    key = ["target", "origin", "horizon", "unit_id"]
    n_methods = forecasts.groupby(["target"])["method"].transform("nunique")
    n_ok = ok.groupby([forecasts[k] for k in key]).transform("sum")
    forecasts = forecasts[ok & (n_ok == n_methods)].reset_index(drop=True)
    metrics = _metrics(forecasts, groups)
    return BacktestResult(metrics=metrics, forecasts=forecasts, plans=plans, params=full_params,
                          features=list(names), ablations=ablation_features, tuning=tuning, calibration=calib,
                          selection=selections, members=tiecast_members, rolls=rolls)
