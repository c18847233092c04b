"""The fitted forecaster as ONE MLflow pyfunc model.

:class:`TiecastPyfunc` holds the LightGBM boosters per target (and horizon, unless pooled) as model strings,
the feature names and the conformal quantiles. ``predict`` takes feature rows (``unit_id``, ``year`` = origin
year t, then the features of :func:`features.build_features`) and returns one row per (unit_id, year, target,
horizon) with ``target_year`` = t + h, ``growth`` (log points) and ``point``, ``lower80``, ``upper80``,
``lower90``, ``upper90`` in the target's unit (levels). The model is pickled by reference to this class, so
loading it needs the tiecast package importable (``pip install -e .``) besides the logged requirements.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from ._core import forecast_frame, predict_growth

__all__ = ["TiecastPyfunc"]


class TiecastPyfunc(PythonModel):
    """Forecasts of every target and horizon from feature rows, in levels, with conformal intervals.

    ``boosters`` maps target -> {key: LightGBM model string}, key 0 being a pooled booster (horizon as the
    last feature) and ``h`` a per-horizon booster; ``quantiles`` maps target -> horizon -> level -> width in
    log points. Horizons beyond ``direct_horizons`` are chained (g_h = g_H + g_(h-H)).
    """

    def __init__(self, boosters: dict[str, dict[int, str]], feature_names: list[str],
                 quantiles: dict[str, dict[int, dict[int, float]]], horizons: int, direct_horizons: int,
                 metadata: dict[str, Any] | None = None) -> None:
        self.boosters = boosters
        self.feature_names = feature_names
        self.quantiles = quantiles
        self.horizons = horizons
        self.direct_horizons = direct_horizons
        self.metadata = metadata or {}
        self._loaded: dict[str, dict[int, lgb.Booster]] | None = None

    def load_context(self, context: Any) -> None:
        self._loaded = None

    def _models(self) -> dict[str, dict[int, lgb.Booster]]:
        if getattr(self, "_loaded", None) is None:
            self._loaded = {t: {int(k): lgb.Booster(model_str=s) for k, s in models.items()}
                            for t, models in self.boosters.items()}
        assert self._loaded is not None
        return self._loaded

    def _growth(self, matrix: np.ndarray, target: str) -> np.ndarray:
        return predict_growth(self._models()[target], matrix, self.horizons, self.direct_horizons)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        missing = {"unit_id", "year"} - set(frame.columns)
        if missing:
            raise ValueError(f"model input needs the columns unit_id and year; missing {sorted(missing)}")
        matrix = frame.reindex(columns=self.feature_names).to_numpy(float)
        return forecast_frame(frame, list(self.boosters), self.horizons, lambda t: self._growth(matrix, t),
                              self.quantiles)
