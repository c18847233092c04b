"""Baselines and the peer library, on the same origins and horizons as tiecast.

Every method forecasts the *log level* of a target from the unit's history up to the origin year ``t``
(inclusive), restricted to the unit's current boundary segment (years before a merger/recode break are not
comparable). Years are observation periods (calendar years for yearly data; see ``training._data.Calendar``).
Returned arrays are units x horizons of predicted log levels for periods ``t + 1 .. t + H``; a unit whose
history is too short for a method falls back to the naive forecast (the last value).

- ``naive``: the last value, ``y_{t+h} = y_t``.
- ``drift``: random walk with drift on log levels: ``log y_t + h * (log y_t - log y_s) / (t - s)`` with ``s``
  the first period of the segment's contiguous tail (the whole unbroken history).
- ``drift_recent``: the same over the last ``RECENT_STEPS`` = 5 steps of that history (fewer when shorter):
  the recent-window drift demographers use for short-term projection.
- ``autoets``: statsforecast ``AutoETS`` (season length 1, model chosen by AICc) per unit on log levels.
- ``mlforecast``: mlforecast with a global LightGBM on the target's own lags 1–3 of the differenced log
  level (fewer lags while the history is too short for 3 and every horizon), direct multi-horizon
  (``max_horizon``), no other features.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._data import TargetMatrix

__all__ = ["BASELINES", "baseline_forecasts", "contiguous_tail"]

BASELINES = ("naive", "drift", "drift_recent", "autoets", "mlforecast")
RECENT_STEPS = 5
MLF_LAGS = (1, 2, 3)
MIN_ETS_POINTS = 4
# What a reader of the backtest tables needs to know about the baselines' fallbacks and the coverage columns.
BASELINE_NOTE = (f"autoets falls back to naive for units with fewer than {MIN_ETS_POINTS} unbroken years up to "
                 f"the origin; mlforecast uses lags 1–{max(MLF_LAGS)} of the differenced log level (fewer while the "
                 "history is too short for every horizon) and falls back to naive when not even one lag fits; "
                 "coverage = share of actuals inside tiecast's conformal 80%/90% intervals")


def contiguous_tail(tm: TargetMatrix, origin: int) -> np.ndarray:
    """Log levels up to ``origin`` keeping only the unbroken run of finite values that ends at ``origin``.

    Shape units x (years <= origin); NaN outside the run (and for units without a value at ``origin``).
    """
    hist = tm.history(origin)
    if hist.shape[1] == 0:
        return hist
    finite = np.isfinite(hist)
    # Position of the last missing value before the end of each row; values after it form the tail.
    idx = np.arange(hist.shape[1])
    last_gap = np.where(~finite, idx, -1).max(axis=1)
    keep = idx[None, :] > last_gap[:, None]
    return np.where(keep, hist, np.nan)


def _naive(tail: np.ndarray, horizons: int) -> np.ndarray:
    last = tail[:, -1] if tail.shape[1] else np.full(tail.shape[0], np.nan)
    return np.repeat(last[:, None], horizons, axis=1)


def _drift(tail: np.ndarray, horizons: int, window: int | None = None) -> np.ndarray:
    """Drift over the whole contiguous tail, or over its last ``window`` steps (fewer when shorter)."""
    n = tail.shape[1]
    if n == 0:
        return np.full((tail.shape[0], horizons), np.nan)
    finite = np.isfinite(tail)
    first_idx = np.where(finite.any(axis=1), finite.argmax(axis=1), n - 1)
    if window is not None:
        first_idx = np.maximum(first_idx, n - 1 - window)
    first = tail[np.arange(tail.shape[0]), first_idx]
    span = (n - 1) - first_idx
    slope = np.where(span > 0, (tail[:, -1] - first) / np.maximum(span, 1), 0.0)
    steps = np.arange(1, horizons + 1)
    return tail[:, -1][:, None] + slope[:, None] * steps[None, :]


def _long_frame(tm: TargetMatrix, tail: np.ndarray, min_points: int) -> pd.DataFrame:
    years = tm.years[: tail.shape[1]]
    counts = np.isfinite(tail).sum(axis=1)
    rows = np.flatnonzero(counts >= min_points)
    sub = tail[rows]
    r, c = np.nonzero(np.isfinite(sub))
    return pd.DataFrame({"unique_id": np.asarray(tm.units)[rows][r], "ds": years[c].astype(int),
                         "y": sub[r, c]})


def _autoets(tm: TargetMatrix, tail: np.ndarray, origin: int, horizons: int) -> np.ndarray:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, Naive

    out = _naive(tail, horizons)
    df = _long_frame(tm, tail, MIN_ETS_POINTS)
    if df.empty:
        return out
    # Series too short for ETS (statsforecast's 'tiny datasets') get the naive forecast.
    sf = StatsForecast(models=[AutoETS(season_length=1)], freq=1, n_jobs=1, fallback_model=Naive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = sf.forecast(df=df, h=horizons)
    return _place(tm, fc, "AutoETS", origin, out)


def _place(tm: TargetMatrix, fc: pd.DataFrame, column: str, origin: int, out: np.ndarray) -> np.ndarray:
    """Write a long forecast frame (unique_id, ds, column) into a units x horizons array (keeps fallback)."""
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    fc = fc[np.isfinite(fc[column].to_numpy(float))]
    step = fc["ds"].to_numpy(int) - origin - 1
    rows = tm.units.get_indexer(pd.Index(fc["unique_id"]))
    ok = (rows >= 0) & (step >= 0) & (step < out.shape[1])
    out = out.copy()
    out[rows[ok], step[ok]] = fc[column].to_numpy(float)[ok]
    return out


def _mlforecast(tm: TargetMatrix, tail: np.ndarray, origin: int, horizons: int, seed: int) -> np.ndarray:
    from lightgbm import LGBMRegressor
    from mlforecast import MLForecast
    from mlforecast.target_transforms import Differences

    out = _naive(tail, horizons)
    # Direct horizon h needs a row with k lags of the differenced series and y_{t+h}: a series of length L
    # allows k = L - h - 1 lags. Use up to MLF_LAGS, fewer while the history is short (early origins).
    longest = int(np.isfinite(tail).sum(axis=1).max()) if tail.size else 0
    n_lags = min(max(MLF_LAGS), longest - horizons - 1)
    if n_lags < 1:
        return out
    df = _long_frame(tm, tail, n_lags + 2)
    if df.empty or df["unique_id"].nunique() < 2:
        return out
    model = LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
                          subsample=1.0, colsample_bytree=1.0, random_state=seed, n_jobs=1,
                          deterministic=True, force_row_wise=True, verbose=-1)
    mlf = MLForecast(models={"mlforecast": model}, freq=1, lags=list(range(1, n_lags + 1)),
                     target_transforms=[Differences([1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mlf.fit(df, max_horizon=horizons, static_features=[])
        except ValueError:
            # Too few rows for some horizon's model (very short series): keep the naive fallback.
            return out
        fc = mlf.predict(h=horizons)
    return _place(tm, fc, "mlforecast", origin, out)


def baseline_forecasts(tm: TargetMatrix, origin: int, horizons: int, methods: tuple[str, ...] = BASELINES,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Forecast log levels for ``origin + 1 .. origin + horizons`` with each method (units x horizons).

    mlforecast's LightGBM runs single-threaded (faster on these small panels under OMP_WAIT_POLICY=PASSIVE;
    the results do not depend on the thread count)."""
    tail = contiguous_tail(tm, origin)
    out: dict[str, np.ndarray] = {}
    for method in methods:
        if method == "naive":
            out[method] = _naive(tail, horizons)
        elif method == "drift":
            out[method] = _drift(tail, horizons)
        elif method == "drift_recent":
            out[method] = _drift(tail, horizons, RECENT_STEPS)
        elif method == "autoets":
            out[method] = _autoets(tm, tail, origin, horizons)
        elif method == "mlforecast":
            out[method] = _mlforecast(tm, tail, origin, horizons, seed)
        else:  # pragma: no cover - callers validate method names
            raise ValueError(method)
    return out
