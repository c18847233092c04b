"""Targeting: which units gain most from cooperation, and with whom.

For every unit in focus (small/mid provincial cities, the 89 designated population-decline areas, or all),
each of its ``candidates`` strongest partners (two-way volume of the latest flows <= origin) is tried alone:
flows with that partner x2 from the year after the origin. The partners are ranked by the unit's expected gain
at the horizon (the reported DML estimate, % of the baseline level); the unit's **best scenario** strengthens
its ties with the (up to) ``combine`` partners that help it, jointly, and the units are ranked by that gain with
its 90% interval. The partners' own expected change in the best scenario is reported too (cooperation can cost a
partner). Same estimate and code path as ``tiecast forecast`` (:class:`ScenarioForecaster`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from tiecast.common import ConfigError
from tiecast.features import Scenario

from ._cooperation import ScenarioForecaster

__all__ = ["FOCUS", "TARGET_COLUMNS", "focus_units", "rank_targets"]

FOCUS = ("small-mid", "depopulation", "all")
TARGET_COLUMNS = [
    "rank", "unit_id", "name", "small_mid_city", "depopulation_area", "baseline_change_pct", "gain_pct",
    "gain_lower90_pct", "gain_upper90_pct", "gain_persons", "best_partners", "best_partner_names",
    "partner_change_pct", "candidates_tried", "extrapolation",
]
Z90 = stats.norm.ppf(0.95)


def focus_units(sf: ScenarioForecaster, focus: str) -> list[str]:
    units = sf.ds.units
    if focus == "all":
        return list(units["unit_id"].astype(str))
    column = {"small-mid": "small_mid_city", "depopulation": "depopulation_area"}.get(focus)
    if column is None:
        raise ConfigError(f"focus must be one of {', '.join(FOCUS)}; got {focus!r}", parameter="focus")
    if column not in units.columns:
        raise ConfigError(f"focus {focus!r} needs the units column '{column}', which dataset {sf.ds.name!r} lacks",
                          parameter="focus")
    return list(units.loc[units[column].fillna(0).astype(float) == 1, "unit_id"].astype(str))


def _gain(sf: ScenarioForecaster, unit: str, partners: tuple[str, ...], target: str, horizon: int
          ) -> tuple[pd.Series, pd.Series, int]:
    """(% change per unit, its standard error in %, extrapolation flag of the focal unit) of one scenario."""
    sc = Scenario(id="target", unit=unit, partners=partners, start_year=sf.origin + 1, factor=2.0)
    applied = sf.apply(sc)
    delta, _, _ = sf.delta_treatment(applied, full_measures=False)
    involved = [unit, *applied.partners]
    x = sf._modifiers().reindex(involved).to_numpy(float)
    log_effect, se = sf.effects_.effect(target, horizon, x, delta.reindex(involved).to_numpy(float))
    se = np.sqrt(se**2 + (sf.model_error * log_effect) ** 2)
    after = sf.treatment_.xs(sf.origin, level="year").get(unit, np.nan) + delta.get(unit, 0.0)
    cls = sf.size_class_.get(unit)
    known = cls is not None and cls in sf.t_range_.index
    lo = float(sf.t_range_[0.01].get(cls, -np.inf)) if known else -np.inf
    hi = float(sf.t_range_[0.99].get(cls, np.inf)) if known else np.inf
    extrap = int(delta.get(unit, 0.0) != 0 and not lo <= after <= hi)
    return (pd.Series(100 * np.expm1(log_effect), index=involved),
            pd.Series(100 * se, index=involved), extrap)


def rank_targets(sf: ScenarioForecaster, focus: str = "small-mid", candidates: int = 10, combine: int = 3,
                 horizon: int | None = None, target: str | None = None,
                 progress: Callable[[], None] | None = None) -> pd.DataFrame:
    """The targeting table (``TARGET_COLUMNS``), best expected gain first. ``sf`` is a fitted forecaster; focus
    units without a forecast of ``target`` (:meth:`ScenarioForecaster.unforecast`) are left out."""
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= 50:
        raise ConfigError(f"candidates must be an integer from 1 to 50; got {candidates!r}", parameter="candidates")
    target = target or sf.ds.primary_target
    horizon = horizon or sf.horizons
    names = sf.names_
    base = sf.baseline_.frame
    base = base[(base["target"] == target) & (base["horizon"] == horizon)].set_index("unit_id")
    last = sf.ds.panel[sf.ds.panel["year"] == sf.baseline_.frame.loc[sf.baseline_.frame["target"] == target,
                                                                     "origin"].max()]
    level0 = last.set_index("unit_id")[target]
    units = sf.ds.units.set_index("unit_id")
    rows = []
    for unit in focus_units(sf, focus):
        if (unit, target) not in sf.forecastable_:
            continue  # no value in the start year, so no baseline: listed by sf.unforecast()
        top = sf.apply(Scenario(id="candidates", unit=unit, partners=f"top{candidates}", start_year=sf.origin + 1,
                                factor=2.0))
        tried: list[tuple[str, float]] = []
        for c in top.partners:  # a handful of candidates per unit, each a full scenario
            gain, _, _ = _gain(sf, unit, (c,), target, horizon)
            tried.append((c, float(gain.get(unit, np.nan))))
        helpful = [c for c, g in sorted(tried, key=lambda cg: -np.nan_to_num(cg[1], nan=-np.inf)) if g > 0][:combine]
        best = tuple(helpful) if helpful else (max(tried, key=lambda cg: np.nan_to_num(cg[1], nan=-np.inf))[0],)
        gain, se, extrap = _gain(sf, unit, best, target, horizon)
        g, s = float(gain[unit]), float(se[unit])
        b = float(base["point"].get(unit, np.nan))
        rows.append({
            "unit_id": unit, "name": names.get(unit, unit),
            "small_mid_city": int(units.loc[unit].get("small_mid_city", 0) or 0),
            "depopulation_area": int(units.loc[unit].get("depopulation_area", 0) or 0),
            "baseline_change_pct": 100 * (b / float(level0.get(unit, np.nan)) - 1),
            "gain_pct": g, "gain_lower90_pct": 100 * np.expm1(np.log1p(g / 100) - Z90 * s / 100),
            "gain_upper90_pct": 100 * np.expm1(np.log1p(g / 100) + Z90 * s / 100), "gain_persons": b * g / 100,
            "best_partners": ",".join(best), "best_partner_names": ", ".join(str(names.get(p, p)) for p in best),
            "partner_change_pct": ", ".join(f"{names.get(p, p)} " + (f"{gain[p]:+.2f}%" if np.isfinite(gain[p])
                                                                      else "n/a") for p in best),
            "candidates_tried": len(tried), "extrapolation": extrap,
        })
        if progress is not None:
            progress()
    table = pd.DataFrame(rows, columns=[c for c in TARGET_COLUMNS if c != "rank"])
    table = table.sort_values("gain_pct", ascending=False, na_position="last").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[TARGET_COLUMNS]
