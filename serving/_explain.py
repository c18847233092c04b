"""Why the forecast is what it is: SHAP contributions of the fitted forecaster, by feature and feature group.

**Source.** LightGBM's native ``pred_contrib`` (TreeSHAP, Lundberg et al. 2020) on the boosters of the fitted
:class:`tiecast.training.DirectForecaster`; :func:`booster_contributions` appends the horizon column that the
pooled booster (``boosters[0]``) expects as its last feature. They equal ``shap.TreeExplainer(booster)``'s values
(tested).

**Scale.** The pooled booster's label is the *annualised* log growth (growth per step); a forecast for horizon
``h`` is ``h`` times its prediction, so its contributions are multiplied by ``h`` here: every number of an
:class:`Explanation` is in log points of growth over the whole horizon (x 100 ~ percentage points of growth).

**The combination.** The forecast weighs LightGBM members and simple members (the linear trend regression, no
change) per horizon. ``contributions`` are the LightGBM members' SHAP values times their weights; ``base`` is
the LightGBM model's average growth over its training rows at this horizon (the start of a waterfall: "a typical
unit"; for a member that learnt growth relative to the cross-section, plus its common growth);
``horizon_term`` the pooled booster's contribution of the horizon feature; ``other`` the rest of the
combined forecast (the simple members' share, net of the weight they take from LightGBM), so that
``base + horizon_term + contributions.sum(1) + other`` equals the forecaster's combined log growth exactly.

SHAP explains what the *model* responds to, not what causes growth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tiecast.common import ConfigError

from ._text import feature_label, format_value, group_label, peer_comparison

__all__ = ["Driver", "Explanation", "booster_contributions", "explain_forecast", "top_drivers"]


def booster_contributions(booster: Any, X: np.ndarray, horizon: int | None = None) -> np.ndarray:
    """SHAP values of one LightGBM booster from its native ``pred_contrib``, in the booster's label space.

    ``horizon`` given (the pooled booster): a column with the horizon is appended to ``X`` as its last
    feature, as in training. Returns rows x (features [+ horizon] + 1): the last column is the expected value
    (bias); each row sums to the booster's raw prediction.
    """
    X = np.asarray(X, dtype=float)
    if horizon is not None:
        X = np.column_stack([X, np.full(X.shape[0], float(horizon))])
    if X.shape[1] != booster.num_feature():
        raise ConfigError(f"the booster expects {booster.num_feature()} features, got {X.shape[1]}")
    return np.asarray(booster.predict(X, pred_contrib=True), dtype=float)


def _chain(h: int, direct: int) -> list[int]:
    """Direct horizons whose growths add up to horizon ``h`` (as the forecaster chains them)."""
    return [h] if h <= direct else [direct, *_chain(h - direct, direct)]


@dataclass(frozen=True)
class Explanation:
    """SHAP decomposition of one target's combined forecast at one horizon for several units (see the module
    docstring). Arrays are per unit (rows of ``unit_ids``); all in log points of growth over the horizon."""

    target: str
    horizon: int
    unit_ids: np.ndarray
    features: list[str]
    values: np.ndarray          # units x features: the feature values at the origin
    contributions: np.ndarray   # units x features
    base: np.ndarray
    horizon_term: np.ndarray
    other: np.ndarray
    growth: np.ndarray
    weights: dict[str, float] = field(default_factory=dict)  # member -> weight (at the last direct horizon)

    def index(self, unit: str) -> int:
        hits = np.flatnonzero(self.unit_ids == str(unit))
        if not len(hits):
            raise ConfigError(f"unit {unit!r} has no feature row at the origin", parameter="unit")
        return int(hits[0])

    def by_group(self, groups: Mapping[str, str]) -> pd.DataFrame:
        """Contributions summed by feature group (units x groups, in catalog order); features without a group
        count as ``other``."""
        labels = [groups.get(f, "other") for f in self.features]
        frame = pd.DataFrame(self.contributions, columns=self.features, index=self.unit_ids)
        return frame.T.groupby(pd.Index(labels), sort=False).sum().T

    def frame(self) -> pd.DataFrame:
        """Long table: unit_id, feature, value, contribution."""
        n, k = self.contributions.shape
        return pd.DataFrame({"unit_id": np.repeat(self.unit_ids, k), "feature": np.tile(self.features, n),
                             "value": self.values.ravel(), "contribution": self.contributions.ravel()})


def explain_forecast(forecaster: Any, rows: pd.DataFrame, target: str, horizon: int) -> Explanation:
    """SHAP decomposition of a fitted :class:`~tiecast.training.DirectForecaster`'s forecast of ``target`` at
    ``horizon`` (steps) from the feature rows ``rows`` (unit_id, year, features; e.g. the origin year's rows)."""
    if target not in getattr(forecaster, "members_", {}):
        raise ConfigError(f"the forecaster has no fitted target {target!r}", parameter="target")
    if not 1 <= horizon <= forecaster.horizons:
        raise ConfigError(f"horizon must be between 1 and {forecaster.horizons}; got {horizon}", parameter="horizon")
    names = list(forecaster.feature_names_)
    X = rows.reindex(columns=names).to_numpy(float)
    n, k = X.shape
    members = forecaster.members_[target]
    weights = forecaster.selection_[target].weights
    contributions = np.zeros((n, k))
    base, horizon_term = np.zeros(n), np.zeros(n)
    direct = min(forecaster.horizons, forecaster.direct_horizons)
    step = forecaster.calendar_.step
    for hp in _chain(horizon, direct):
        w = list(weights.get(hp, [0.0] * len(members)))
        booster_weight = sum(wm for m, wm in zip(members, w, strict=True) if m.boosters and wm > 0)
        for member, wm in zip(members, w, strict=True):
            if not member.boosters or wm <= 0:
                continue
            idx = np.arange(k) if member.columns is None else np.asarray(member.columns, dtype=int)
            if 0 in member.boosters:  # pooled: horizon as the last feature, label = growth per step
                c = booster_contributions(member.boosters[0], X[:, idx], hp) * hp
                horizon_term += wm * c[:, -2]
            elif hp in member.boosters:
                c = booster_contributions(member.boosters[hp], X[:, idx])
            else:
                continue
            contributions[:, idx] += wm * c[:, : len(idx)]
            # A member relative to the cross-section adds its common growth: part of what a typical unit gets.
            common = (member.common or 0.0) * step * hp
            base += (wm / booster_weight) * (c[:, -1] + common)
    growth = np.asarray(forecaster.predict_growth(rows, target), dtype=float)[:, horizon - 1]
    other = growth - base - horizon_term - contributions.sum(axis=1)
    last = dict(zip(forecaster.selection_[target].members, weights.get(min(horizon, direct), []), strict=False))
    return Explanation(target=target, horizon=horizon, unit_ids=rows["unit_id"].astype(str).to_numpy(),
                       features=names, values=X, contributions=contributions, base=base, horizon_term=horizon_term,
                       other=other, growth=growth, weights={m: float(v) for m, v in last.items()})


@dataclass(frozen=True)
class Driver:
    """One feature's contribution to a unit's forecast, with its value, the peers' median and a sentence."""

    feature: str
    label: str
    group: str
    value: float
    peer_median: float
    contribution: float  # log points of growth over the horizon
    text: str


def top_drivers(expl: Explanation, unit: str, *, catalog: Mapping[str, Any], peers: Sequence[str],
                lang: str = "ko", n: int = 6, target_label: str | None = None, step: int = 1) -> list[Driver]:
    """The ``n`` features with the largest absolute contributions for ``unit``, each with a plain sentence:
    value and unit, the comparison with ``peers`` (their median), and the effect on the horizon's growth, e.g.
    "65세 이상 비율 31.2%, 비슷한 도시보다 8.1%p 높음: 5년 인구 성장률을 1.1%p 낮춤".

    ``catalog``: feature -> FeatureSpec (name, group, unit, description).
    """
    i = expl.index(unit)
    peer_rows = np.flatnonzero(np.isin(expl.unit_ids, [str(p) for p in peers]))
    contrib = expl.contributions[i]
    order = np.argsort(-np.abs(contrib), kind="stable")[:n]
    years = expl.horizon * step
    what = target_label or feature_label(expl.target, lang)
    out = []
    for j in order:
        if contrib[j] == 0:
            continue
        name = expl.features[j]
        spec = catalog.get(name)
        unit_s = str(getattr(spec, "unit", "") or "")
        group = str(getattr(spec, "group", "other") or "other")
        label = feature_label(name, lang, getattr(spec, "description", None))
        value = float(expl.values[i, j])
        column = expl.values[peer_rows, j]
        column = column[np.isfinite(column)]
        peer = float(np.median(column)) if len(column) else float("nan")
        shown = format_value(value, unit_s, lang)
        compare = peer_comparison(value, peer, unit_s, lang) if np.isfinite(value) else ""
        pp = abs(100 * contrib[j])
        if lang == "ko":
            effect = f"{years}년 {what} 성장률을 {pp:.2f}%p {'높임' if contrib[j] > 0 else '낮춤'}"
            text = f"{label} {shown}" + (f", {compare}" if compare else "") + f": {effect}"
        else:
            effect = f"{'raises' if contrib[j] > 0 else 'lowers'} the {years}-year {what} growth by {pp:.2f} pp"
            text = f"{label} {shown}" + (f", {compare}" if compare else "") + f": {effect}"
        out.append(Driver(feature=name, label=label, group=group_label(group, lang), value=value, peer_median=peer,
                          contribution=float(contrib[j]), text=text))
    return out
