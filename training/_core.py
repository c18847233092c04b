"""Forecast arithmetic shared by :class:`training.DirectForecaster` and the MLflow pyfunc model.

Kept free of tiecast imports (numpy, pandas, lightgbm only) so that a logged model loads with just those.
Year convention: origin year ``t`` is the last year of data used; horizon ``h`` targets year ``t + h``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

__all__ = ["LEVELS", "OUTPUT_COLUMNS", "forecast_frame", "predict_growth"]

LEVELS = (80, 90)
OUTPUT_COLUMNS = ["unit_id", "year", "target", "horizon", "target_year", "growth", "point", "lower80", "upper80",
                  "lower90", "upper90"]


def predict_growth(boosters: dict[int, lgb.Booster], X: np.ndarray, horizons: int,
                   direct_horizons: int) -> np.ndarray:
    """Log growth forecasts (rows x horizons, log points) from feature rows ``X``.

    ``boosters`` key 0 is a pooled booster (horizon appended as the last feature, label = annualised growth),
    otherwise key ``h`` is horizon h's booster. Horizons beyond ``direct_horizons`` are chained:
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


def forecast_frame(X: pd.DataFrame, targets: Sequence[str], horizons: int,
                   growth_fn: Callable[[str], np.ndarray],
                   quantiles: dict[str, dict[int, dict[int, float]]]) -> pd.DataFrame:
    """Long forecast table from feature rows ``X`` (unit_id, year = origin t, features).

    One row per (unit_id, year, target, horizon): ``target_year`` = t + h, ``growth`` (log points), ``point``
    and ``lower80``/``upper80``/``lower90``/``upper90`` in the target's unit. The level at t comes from the
    feature ``<target>_log``; ``quantiles[target][h][level]`` are interval half-widths in log points.
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
                                  "target_year": years + h, "growth": growth[:, h - 1], "point": np.exp(centre)})
            q = quantiles.get(target, {}).get(h, {})
            for lv in LEVELS:
                width = q.get(lv, np.nan)
                frame[f"lower{lv}"] = np.exp(centre - width)
                frame[f"upper{lv}"] = np.exp(centre + width)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[OUTPUT_COLUMNS]
