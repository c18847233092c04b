"""Rolling-origin backtests of tiecast against baselines and mlforecast on the same splits.

Year convention: an origin ``o`` is the last year of data a forecast may use; horizon ``h`` targets
``o + h``. At every origin each method sees only data up to ``o``: tiecast's model is trained on pairs with
``t + h <= o`` and its conformal calibration uses models of earlier origins ``c`` whose errors are known by
``o`` (``c + h <= o``). The models of consecutive origins are shared between evaluation and calibration, so a
backtest fits one model per origin and variant.

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
from ._data import TargetMatrix, target_matrix, unit_groups
from ._model import DEFAULT_PARAMS, LEVELS, MAX_HORIZON, DirectForecaster, RollingFit, parallel_map

__all__ = ["METHODS", "METRIC_COLUMNS", "BacktestResult", "TargetPlan", "backtest", "default_origins",
           "parse_origins", "plan_target", "tune_params"]

METHODS = ("tiecast", "tiecast_noties", *BASELINES)
METRIC_COLUMNS = ["method", "target", "horizon", "origin", "group", "mape", "rmse", "mase", "coverage80",
                  "coverage90"]
ABLATION_GROUP = "ties"
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
    """Origins and horizons evaluated for one target, and why (``note`` is printed to the user)."""

    target: str
    origins: list[int]
    horizons: int
    data_start: int | None
    data_end: int | None
    note: str


@dataclass
class BacktestResult:
    """Backtest output: ``metrics`` (METRIC_COLUMNS), ``forecasts`` (one row per method, target, origin,
    horizon and unit, in levels), ``plans`` per target, the LightGBM ``params`` and the ``features`` used."""

    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    plans: dict[str, TargetPlan]
    params: dict[str, Any]
    features: list[str]
    ablation_features: list[str]
    tuning: pd.DataFrame | None = None
    calibration: dict[str, dict[int, dict[int, str]]] = field(default_factory=dict)

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


def default_origins(ds: Dataset, horizons: int) -> list[int]:
    """The last DEFAULT_N_ORIGINS origins whose horizons 1..H all fall inside the primary target's data."""
    tm = target_matrix(ds.panel, ds.primary_target, ds.break_column)
    end = tm.last_year()
    if end is None:
        return []
    last = end - horizons
    return list(range(last - DEFAULT_N_ORIGINS + 1, last + 1))


def _train_years(tm: TargetMatrix, origin: int) -> int:
    """Distinct origin years t with a 1-year growth pair inside the data up to ``origin``."""
    return sum(1 for t in range(int(tm.years[0]), origin) if np.isfinite(tm.growth(t, 1)).any())


def plan_target(tm: TargetMatrix, requested: Sequence[int], horizons: int) -> TargetPlan:
    """Origins and horizons the data allow for one target.

    An origin is usable when the target is observed at it, at least MIN_TRAIN_YEARS origin years of
    training pairs precede it and ``o + 1`` is observed. Among horizons ``H' <= horizons`` the one giving the
    most (origin, horizon) cells with every ``o + H'`` observed is chosen (ties: the longer horizon).
    """
    start, end = tm.first_year(), tm.last_year()
    if end is None or start is None:
        return TargetPlan(tm.target, [], 0, None, None, f"{tm.target}: no data")
    usable = [o for o in requested
              if tm.has_year(o) and np.isfinite(tm.log[:, tm.col(o)]).any() and o + 1 <= end
              and _train_years(tm, o) >= MIN_TRAIN_YEARS]
    best: tuple[int, int] = (0, 0)
    for h in range(1, horizons + 1):
        cells = sum(1 for o in usable if o + h <= end) * h
        if cells >= best[0] and cells > 0:
            best = (cells, h)
    h_best = best[1]
    origins = [o for o in usable if o + h_best <= end] if h_best else []
    span = f"data {start}–{end}"
    if not origins:
        note = (f"{tm.target}: no usable origin among {_span(requested)} ({span}; an origin needs the target at "
                f"it, {MIN_TRAIN_YEARS}+ earlier years of growth pairs and data after it)")
        return TargetPlan(tm.target, [], 0, start, end, note)
    note = f"{tm.target}: origins {_span(origins)}, horizons 1–{h_best} ({span})"
    if origins != list(requested) or h_best != horizons:
        note += f"; requested origins {_span(requested)}, horizons 1–{horizons}"
    return TargetPlan(tm.target, origins, h_best, start, end, note)


def _span(years: Sequence[int]) -> str:
    years = list(years)
    if not years:
        return "none"
    if years == list(range(years[0], years[-1] + 1)):
        return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0])
    return ",".join(map(str, years))


def _mase_scale(tm: TargetMatrix, origin: int) -> np.ndarray:
    """Mean absolute yearly change of the level over the unit's contiguous history up to ``origin``."""
    levels = np.exp(contiguous_tail(tm, origin))
    if levels.shape[1] < 2:
        return np.full(len(tm.units), np.nan)
    diffs = np.abs(np.diff(levels, axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # units without history: NaN scale
        scale = np.nanmean(diffs, axis=1)
    return np.where(scale > 0, scale, np.nan)


def _long(method: str, target: str, origin: int, units: pd.Index, log_pred: np.ndarray,
          actual: np.ndarray, scale: np.ndarray, bounds: dict[str, np.ndarray] | None) -> pd.DataFrame:
    """Units x horizons arrays -> one row per (unit, horizon)."""
    n, H = log_pred.shape
    frame = pd.DataFrame({
        "method": method, "target": target, "origin": origin,
        "horizon": np.tile(np.arange(1, H + 1), n), "unit_id": np.repeat(np.asarray(units), H),
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


def _forecast_at(roll: RollingFit, origin: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[int, str]]:
    """Log-level point forecasts and interval bounds of the model of ``origin`` (calibrated on origins
    ``c`` with ``c + h <= o``), and the calibration notes per horizon."""
    tm = roll.tm
    log0 = tm.log[:, tm.col(origin)]
    growth = roll.pred.get(origin, np.full((len(tm.units), roll.horizons), np.nan))
    cal = roll.calibration(origin)
    centre = log0[:, None] + growth
    bounds: dict[str, np.ndarray] = {}
    for lv in LEVELS:
        q = np.array([cal.quantiles.get(h, {}).get(lv, np.nan) for h in range(1, roll.horizons + 1)])
        bounds[f"lower{lv}"] = np.exp(centre - q[None, :])
        bounds[f"upper{lv}"] = np.exp(centre + q[None, :])
    return centre, bounds, cal.notes


def _forecaster(ds: Dataset, names: list[str], horizons: int, params: dict[str, Any], seed: int
                ) -> DirectForecaster:
    """The forecaster a backtest evaluates: exactly the settings ``train`` registers (defaults included)."""
    return DirectForecaster(horizons=horizons, features=names, params=params, break_column=ds.break_column,
                            n_jobs=1, seed=seed)


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
        raise ConfigError(f"methods must include 'tiecast' and come from {', '.join(METHODS)}; got {list(methods)}")
    return chosen


def _tune_one(ds: Dataset, tm: TargetMatrix, pf: PanelFeatures, origins: list[int], before: int, horizons: int,
              overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    """Mean MAPE (%) of one grid point over validation cells (origin v, horizon h) with v + h <= before."""
    roll = _forecaster(ds, pf.names, min(horizons, 5), overrides, seed).rolling_fit(
        pf.frame, _targets_frame(ds, tm.target), tm.target, units=tm.units)
    apes = []
    for v in origins:
        roll.fit_at(v)
        if v not in roll.pred:
            continue
        for h in range(1, roll.horizons + 1):
            if v + h > before:
                continue
            actual = np.exp(tm.log[:, tm.col(v)] + tm.growth(v, h))
            pred = np.exp(tm.log[:, tm.col(v)] + roll.pred[v][:, h - 1])
            ok = np.isfinite(actual) & np.isfinite(pred)
            if ok.any():
                apes.append(float(np.mean(100 * np.abs(pred[ok] - actual[ok]) / actual[ok])))
    return {"params": repr(overrides) if overrides else "defaults", "cells": len(apes),
            "mape": float(np.mean(apes)) if apes else np.nan, "overrides": overrides}


def tune_params(ds: Dataset, pf: PanelFeatures, target: str, before: int, horizons: int = 5, seed: int = 0,
                n_jobs: int = 2, grid: Sequence[dict[str, Any]] = TUNE_GRID,
                progress: bool = False) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pick LightGBM settings from ``grid`` by rolling-origin CV strictly before the test period.

    Validation origins are the TUNE_ORIGINS years before ``before`` (the first test origin) and only
    (origin, horizon) cells whose target year is ``<= before`` count, so no test year is ever looked at.
    Returns the best overrides of DEFAULT_PARAMS and the table of scores (mean MAPE %).
    """
    tm = target_matrix(ds.panel, target, ds.break_column, _units(ds))
    origins = [v for v in range(before - TUNE_ORIGINS, before) if tm.has_year(v) and _train_years(tm, v) >= 1]
    with stage(progress, f"tune {target}", len(grid)) as advance:

        def one(overrides: dict[str, Any]) -> dict[str, Any]:
            row = _tune_one(ds, tm, pf, origins, before, horizons, overrides, seed)
            advance()
            return row

        rows = parallel_map(one, list(grid), n_jobs)
    table = pd.DataFrame(rows)
    scores = table["mape"].to_numpy(float)
    best: dict[str, Any] = dict(grid[int(np.nanargmin(scores))]) if np.isfinite(scores).any() else {}
    return best, table.drop(columns="overrides")


def backtest(ds: Dataset, features: PanelFeatures | None = None, *, targets: Sequence[str] | None = None,
             origins: Sequence[int] | None = None, horizons: int = 5, methods: Sequence[str] = METHODS,
             params: dict[str, Any] | None = None, tune: bool = False, seed: int = 0, n_jobs: int = 2,
             progress: bool = False) -> BacktestResult:
    """Rolling-origin evaluation of tiecast, its no-ties ablation, naive, drift, AutoETS and mlforecast.

    ``origins`` default to the last DEFAULT_N_ORIGINS whose horizons fit inside the primary target's data;
    each target then keeps the origins and horizons its data allow (see :func:`plan_target`). ``tune`` picks
    LightGBM settings on origins before the first test origin (primary target) and uses them everywhere.
    """
    chosen = _validate(ds, targets, horizons, methods)
    pf = features if features is not None else build_features(ds, progress=progress)
    requested = list(origins) if origins is not None else default_origins(ds, horizons)
    units = _units(ds)
    groups = unit_groups(ds)
    names = pf.names
    tie_names = set(pf.groups().get(ABLATION_GROUP, []))
    ablation = [n for n in names if n not in tie_names]
    params = dict(params or {})
    tuning = None
    if tune and requested:
        tuned, tuning = tune_params(ds, pf, ds.primary_target if ds.primary_target in chosen else chosen[0],
                                    min(requested), horizons, seed, n_jobs, progress=progress)
        params = {**tuned, **params}
    full_params = {**DEFAULT_PARAMS, **params}
    plans: dict[str, TargetPlan] = {}
    parts: list[pd.DataFrame] = []
    calib: dict[str, dict[int, dict[int, str]]] = {}
    tms = {t: target_matrix(ds.panel, t, ds.break_column, units) for t in chosen}
    for target in chosen:
        plans[target] = plan_target(tms[target], requested, horizons)
    for target in chosen:
        plan, tm = plans[target], tms[target]
        if not plan.origins:
            continue
        assert plan.data_start is not None
        H = plan.horizons
        variants = {"tiecast": names}
        if "tiecast_noties" in methods and tie_names and ablation:
            variants["tiecast_noties"] = ablation
        fit_origins = range(plan.data_start + 1, max(plan.origins) + 1)
        # One progress bar per target: a model per origin and variant, then the scoring of each test origin.
        with stage(progress, f"backtest {target}", len(fit_origins) + len(plan.origins)) as advance:
            rolls = {m: _forecaster(ds, cols, H, params, seed).rolling_fit(pf.frame, _targets_frame(ds, target),
                                                                           target, units=units)
                     for m, cols in variants.items()}
            tasks = [(roll, c) for c in fit_origins for roll in rolls.values()]

            def fit(task: tuple[RollingFit, int], share: float = 1 / len(rolls)) -> None:
                task[0].fit_at(task[1])
                advance(share)

            parallel_map(fit, tasks, n_jobs)
            for o in plan.origins:
                actual = np.column_stack([tm.level(o + h) for h in range(1, H + 1)])
                comparable = np.column_stack([np.isfinite(tm.growth(o, h)) for h in range(1, H + 1)])
                actual = np.where(comparable, actual, np.nan)
                scale = _mase_scale(tm, o)
                for method, roll in rolls.items():
                    centre, bounds, notes = _forecast_at(roll, o)
                    parts.append(_long(method, target, o, units, centre, actual, scale, bounds))
                    if method == "tiecast":
                        calib.setdefault(target, {})[o] = notes
                base = [m for m in methods if m in BASELINES]
                for method, log_pred in baseline_forecasts(tm, o, H, tuple(base), seed).items():
                    parts.append(_long(method, target, o, units, log_pred, actual, scale, None))
                advance()
    if parts:
        forecasts = pd.concat(parts, ignore_index=True)
        # Compare every method on the same cells: an actual and a forecast from every method.
        ok = forecasts["actual"].notna() & forecasts["point"].notna()
        key = ["target", "origin", "horizon", "unit_id"]
        n_methods = forecasts.groupby(["target"])["method"].transform("nunique")
        n_ok = ok.groupby([forecasts[k] for k in key]).transform("sum")
        forecasts = forecasts[ok & (n_ok == n_methods)].reset_index(drop=True)
        metrics = _metrics(forecasts, groups)
    else:
        forecasts = pd.DataFrame()
        metrics = pd.DataFrame(columns=METRIC_COLUMNS)
    return BacktestResult(metrics=metrics, forecasts=forecasts, plans=plans, params=full_params,
                          features=list(names), ablation_features=ablation, tuning=tuning, calibration=calib)
