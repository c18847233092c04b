"""Forecast arithmetic shared by :class:`training.DirectForecaster` and the MLflow pyfunc model.

Kept free of tiecast imports (numpy, pandas, lightgbm only) so that a logged model loads with just those.
Year convention: origin year ``t`` is the last year of data used; horizon ``h`` targets ``t + h`` steps of
``step`` years (1 for yearly data).

A forecast is a combination of :class:`Member` forecasts of log growth, weighted per horizon: LightGBM members
(boosters on some columns of the feature rows, optionally anchored on a drift rate or on a common growth), a
linear member (a robust regression of the yearly growth on the unit's drifts) and baselines computed from the
feature rows alone (a drift rate times the horizon; naive = no growth).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

__all__ = ["LEVELS", "OUTPUT_COLUMNS", "Member", "combined_growth", "forecast_frame", "linear_design",
           "member_growth", "predict_growth"]

LEVELS = (80, 90)
OUTPUT_COLUMNS = ["unit_id", "year", "target", "horizon", "target_year", "growth", "point", "lower80", "upper80",
                  "lower90", "upper90"]


def predict_growth(boosters: dict[int, lgb.Booster], X: np.ndarray, horizons: int,
                   direct_horizons: int) -> np.ndarray:
    """Log growth forecasts (rows x horizons, log points) from feature rows ``X``.

    ``boosters`` key 0 is a pooled booster (horizon as the last feature, label = growth per step), otherwise
    key ``h`` is horizon h's booster. Horizons beyond ``direct_horizons`` are chained:
    ``g(t, t+h) = g(t, t+H) + g(t, t+h-H)``. NaN where no booster exists.
    """
    out = np.full((X.shape[0], horizons), np.nan)
    direct = min(horizons, direct_horizons)
    for h in range(1, direct + 1):
        if 0 in boosters:
            out[:, h - 1] = boosters[0].predict(np.column_stack([X, np.full(X.shape[0], h)])) * h
        elif h in boosters:
            out[:, h - 1] = boosters[h].predict(X)
    for h in range(direct + 1, horizons + 1):
        out[:, h - 1] = out[:, direct - 1] + out[:, h - direct - 1]
    return out


@dataclass
class Member:
    """One member of a forecast combination.

    ``boosters`` (LightGBM, keys as in :func:`predict_growth`) see the columns ``columns`` of the feature rows
    (all when None); without boosters the member's growth is 0 (naive). ``rate`` is the column of a drift rate
    (log points per year) added ``h * step`` times: alone it is a drift baseline, with boosters it is the
    anchor the boosters' labels were measured from. A missing rate counts as 0. ``coef`` makes a linear member:
    yearly growth = :func:`linear_design` of the columns ``columns`` (drift, recent drift, growth over one step)
    times ``coef``, grown over ``h * step`` years. ``common`` (log points per year) is a growth rate shared by
    every unit, added ``h * step`` times: the common growth of a member whose boosters learnt each unit's growth
    relative to the cross-section (``gbm_relative``).
    """

    name: str
    boosters: dict[int, lgb.Booster] = field(default_factory=dict)
    columns: list[int] | None = None
    rate: int | None = None
    coef: list[float] | None = None
    common: float | None = None


def linear_design(Z: np.ndarray, step: int) -> np.ndarray:
    """Design matrix of the linear member from columns (drift, recent drift, growth over one step): intercept,
    the drift, the recent drift (the drift where missing), the last step's growth per year (the recent drift
    where missing), all 0 where the unit has no history, and a 0/1 column for that case."""
    drift = Z[:, 0]
    recent = np.where(np.isnan(Z[:, 1]), drift, Z[:, 1])
    last = np.where(np.isnan(Z[:, 2]), recent * step, Z[:, 2]) / step
    missing = np.isnan(drift)
    cols = [np.ones(len(Z)), np.nan_to_num(drift), np.nan_to_num(recent), np.nan_to_num(last),
            missing.astype(float)]
    return np.column_stack(cols)


def member_growth(member: Member, X: np.ndarray, horizons: int, step: int) -> np.ndarray:
    """Log growth over 1..``horizons`` steps (rows x horizons) of one member from feature rows ``X``."""
    out = np.zeros((X.shape[0], horizons))
    if member.coef is not None:
        assert member.columns is not None
        yearly = linear_design(X[:, member.columns], step) @ np.asarray(member.coef, dtype=float)
        return yearly[:, None] * step * np.arange(1, horizons + 1)[None, :]
    if member.boosters:
        cols = X if member.columns is None else X[:, member.columns]
        out = predict_growth(member.boosters, cols, horizons, horizons)
    if member.rate is not None:
        rate = np.nan_to_num(X[:, member.rate], nan=0.0)
        out = out + rate[:, None] * step * np.arange(1, horizons + 1)[None, :]
    if member.common is not None:
        out = out + member.common * step * np.arange(1, horizons + 1)[None, :]
    return out


def combined_growth(members: Sequence[Member], weights: Mapping[int, Sequence[float]], X: np.ndarray,
                    horizons: int, direct_horizons: int, step: int) -> np.ndarray:
    """Weighted member growth (rows x horizons): ``weights[h][m]`` weighs member ``m`` at direct horizon ``h``;
    horizons beyond ``direct_horizons`` are chained like :func:`predict_growth`. NaN where no weights."""
    direct = min(horizons, direct_horizons)
    out = np.full((X.shape[0], horizons), np.nan)
    w = np.array([list(weights[h]) if h in weights else [np.nan] * len(members) for h in range(1, direct + 1)],
                 dtype=float).reshape(direct, len(members))
    total = np.zeros((X.shape[0], direct))
    for m, member in enumerate(members):
        wm = np.nan_to_num(w[:, m])
        if not wm.any():
            continue
        total += member_growth(member, X, direct, step) * wm[None, :]
    known = np.isfinite(w).all(axis=1)
    out[:, :direct] = np.where(known[None, :], total, np.nan)
    for h in range(direct + 1, horizons + 1):
        out[:, h - 1] = out[:, direct - 1] + out[:, h - direct - 1]
    return out


def forecast_frame(X: pd.DataFrame, targets: Sequence[str], horizons: int,
                   growth_fn: Callable[[str], np.ndarray],
                   quantiles: dict[str, dict[int, dict[int, float]]], step: int = 1) -> pd.DataFrame:
    """Long forecast table from feature rows ``X`` (unit_id, year = origin t, features).

    One row per (unit_id, year, target, horizon): ``target_year`` = t + h * step, ``growth`` (log points),
    ``point`` and ``lower80``/``upper80``/``lower90``/``upper90`` in the target's unit. The level at t comes from
    the feature ``<target>_log``; ``quantiles[target][h][level]`` are interval half-widths in log points.
    """
    frames = []
    n = len(X)
    unit_ids = X["unit_id"].astype(str).to_numpy()
    years = X["year"].to_numpy(int)
    for target in targets:
        growth = growth_fn(target)
        log_col = f"{target}_log"
        log_level = X[log_col].to_numpy(float) if log_col in X.columns else np.full(n, np.nan)
        for h in range(1, horizons + 1):
            centre = log_level + growth[:, h - 1]
            frame = pd.DataFrame({"unit_id": unit_ids, "year": years, "target": target, "horizon": h,
                                  "target_year": years + h * step, "growth": growth[:, h - 1],
                                  "point": np.exp(centre)})
            q = quantiles.get(target, {}).get(h, {})
            for lv in LEVELS:
                width = q.get(lv, np.nan)
                frame[f"lower{lv}"] = np.exp(centre - width)
                frame[f"upper{lv}"] = np.exp(centre + width)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[OUTPUT_COLUMNS]
