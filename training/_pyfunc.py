"""The fitted forecaster as ONE MLflow pyfunc model.

:class:`TiecastPyfunc` holds, per target, the members of the combination (LightGBM boosters as model strings
with the feature columns they read, drift rates), their weights per horizon, the feature names and the
conformal quantiles. ``predict`` takes feature rows (``unit_id``, ``year`` = origin year t, then the features of
:func:`features.build_features`) and returns one row per (unit_id, year, target, horizon) with ``target_year``
= t + h * step, ``growth`` (log points) and ``point``, ``lower80``, ``upper80``, ``lower90``, ``upper90`` in the
target's unit (levels). The arithmetic is :mod:`training._core`'s, the same the estimator uses. The model is
pickled by reference to this class, so loading it needs the tiecast package importable (``pip install -e .``)
besides the logged requirements.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from ._core import Member, combined_growth, forecast_frame

__all__ = ["TiecastPyfunc", "member_payload"]


def member_payload(member: Member) -> dict[str, Any]:
    """A member as plain data: name, booster model strings by key, columns and rate column."""
    return {"name": member.name, "boosters": {int(k): b.model_to_string() for k, b in member.boosters.items()},
            "columns": None if member.columns is None else [int(c) for c in member.columns],
            "rate": None if member.rate is None else int(member.rate),
            "coef": None if member.coef is None else [float(c) for c in member.coef],
            "common": None if member.common is None else float(member.common)}


class TiecastPyfunc(PythonModel):
    """Forecasts of every target and horizon from feature rows, in levels, with conformal intervals.

    ``members`` maps target -> list of :func:`member_payload` dicts; ``weights`` maps target -> horizon -> one
    weight per member; ``quantiles`` maps target -> horizon -> level -> width in log points. Horizons beyond
    ``direct_horizons`` are chained (g_h = g_H + g_(h-H)); horizons count steps of ``step`` years.
    """

    def __init__(self, members: dict[str, list[dict[str, Any]]], weights: dict[str, dict[int, list[float]]],
                 feature_names: list[str], quantiles: dict[str, dict[int, dict[int, float]]], horizons: int,
                 direct_horizons: int, step: int = 1, metadata: dict[str, Any] | None = None) -> None:
        self.members = members
        self.weights = weights
        self.feature_names = feature_names
        self.quantiles = quantiles
        self.horizons = horizons
        self.direct_horizons = direct_horizons
        self.step = step
        self.metadata = metadata or {}
        self._loaded: dict[str, list[Member]] | None = None

    def load_context(self, context: Any) -> None:
        self._loaded = None

    def _models(self) -> dict[str, list[Member]]:
        if getattr(self, "_loaded", None) is None:
            self._loaded = {
                t: [Member(m["name"], {int(k): lgb.Booster(model_str=s) for k, s in m["boosters"].items()},
                           m["columns"], m["rate"], m.get("coef"), m.get("common")) for m in members]
                for t, members in self.members.items()}
        assert self._loaded is not None
        return self._loaded

    def _growth(self, matrix: np.ndarray, target: str) -> np.ndarray:
        weights = {int(h): w for h, w in self.weights[target].items()}
        return combined_growth(self._models()[target], weights, matrix, self.horizons, self.direct_horizons,
                               self.step)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        missing = {"unit_id", "year"} - set(frame.columns)
        if missing:
            raise ValueError(f"model input needs the columns unit_id and year; missing {sorted(missing)}")
        matrix = frame.reindex(columns=self.feature_names).to_numpy(float)
        return forecast_frame(frame, list(self.members), self.horizons, lambda t: self._growth(matrix, t),
                              self.quantiles, self.step)
