"""With and without cooperation: baseline and scenario trajectories of every unit, by two estimates.

:class:`ScenarioForecaster` is fitted once per origin (the forecaster, the effect model, the observed tie
measures) and then answers any number of scenarios:

- ``method = "dml"`` – the double-ML effect of tie strength (:class:`CooperationEffects`) applied to the change
  of each unit's tie strength that the scenario's flows imply; its interval is on the difference itself (from
  the effect's unit-clustered standard error). Units whose tie strength does not change get no effect.
- ``method = "forecaster_whatif"`` – the forecaster's own what-if: every feature at the origin is recomputed from
  the scenario's flows (and the panel network columns they imply) and the model predicts again; no interval on
  the difference (``NaN``). Known to shrink effects toward zero and to inherit confounding.

Which one a report leads with is decided by the semi-synthetic validation (``REPORTED_METHOD``; see
:mod:`tiecast.training._validation`); the output always keeps both.

Year convention: ``origin`` is the last data year used; scenario effects start in ``start_year`` (> origin) and
grow with the years of cooperation ``k = min(year, end_year) - start_year + 1``; a target whose data end before
the origin is forecast from its own last year, and the cooperation changes only its years after the origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tiecast.common import ConfigError
from tiecast.features import (
    AppliedScenario,
    Dataset,
    PanelFeatures,
    Scenario,
    apply_scenario,
    build_features,
    observed_flow_measures,
    scenario_state,
)

from ._effects import TREATMENT, CooperationEffects, tie_strength
from ._model import MAX_HORIZON, DirectForecaster

__all__ = ["FORECAST_COLUMNS", "LEVELS_COOPERATION", "METHODS_COOPERATION", "MODEL_ERROR", "REPORTED_METHOD",
           "ScenarioForecaster"]

FORECAST_COLUMNS = [
    "scenario_id", "unit_id", "name", "target", "year", "horizon", "role", "baseline", "baseline_lower80",
    "baseline_upper80", "baseline_lower90", "baseline_upper90", "cooperation", "cooperation_lower80",
    "cooperation_upper80", "cooperation_lower90", "cooperation_upper90", "difference", "difference_lower80",
    "difference_upper80", "difference_lower90", "difference_upper90", "method", "extrapolation",
]
LEVELS_COOPERATION = (80, 90)
METHODS_COOPERATION = ("dml", "forecaster_whatif")
# Chosen by `tiecast effects validate` (semi-synthetic benchmark; pinned in tests/test_effects_validation.py).
REPORTED_METHOD = "dml"
# Model-error allowance of the DML difference interval, as a share of the effect: the estimate misses the
# feedback of growth on ties within the horizon and spillovers to neighbours, so its sampling error alone
# under-covers. Calibrated on semi-synthetic replications with seed 1000 (90% coverage of focal units) and checked
# on other seeds by `tiecast effects validate` (pinned in tests/test_effects_validation.py).
MODEL_ERROR = 0.5
Z80, Z90 = stats.norm.ppf(0.9), stats.norm.ppf(0.95)
SIZE_CLASSES = 5


@dataclass(frozen=True)
class _Baseline:
    frame: pd.DataFrame  # unit_id, target, year (target year), horizon, point, lower80..upper90, origin


class ScenarioForecaster:
    """Baseline and cooperation forecasts from one origin (see the module docstring).

    ``origin`` defaults to the last panel year; every model sees data up to ``origin`` only (features of later
    years are never used, outcomes after ``origin`` never enter a fit). ``horizons`` 1–10 years.
    """

    def __init__(self, ds: Dataset, *, origin: int | None = None, horizons: int = 5,
                 targets: Sequence[str] | None = None, params: dict[str, Any] | None = None, seed: int = 0,
                 n_jobs: int = 2, features: PanelFeatures | None = None, model_error: float = MODEL_ERROR,
                 forecaster: DirectForecaster | None = None) -> None:
        self.ds = ds
        self.origin = int(ds.panel["year"].max()) if origin is None else int(origin)
        self.horizons = horizons
        self.targets = list(targets) if targets else ds.targets
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs
        self.features = features
        self.model_error = model_error
        self.forecaster = forecaster

    # ---- fitting ----------------------------------------------------------------------------------------
    def fit(self) -> ScenarioForecaster:
        ds, o = self.ds, self.origin
        h = self.horizons
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= MAX_HORIZON:
            raise ConfigError(f"horizon must be an integer from 1 to {MAX_HORIZON}; got {self.horizons!r}",
                              parameter="horizon")
        first, last = int(ds.panel["year"].min()), int(ds.panel["year"].max())
        if not first + 3 <= o <= last:
            raise ConfigError(f"origin {o} must lie between {first + 3} and the last data year {last}",
                              parameter="origin")
        bad = [t for t in self.targets if t not in ds.targets]
        if bad:
            raise ConfigError(f"target {bad[0]!r} is not a target of dataset {ds.name!r}; allowed: "
                              f"{', '.join(ds.targets)}", parameter="target")
        pf = self.features if self.features is not None else build_features(ds)
        self.pf_ = pf
        X = pf.frame[pf.frame["year"] <= o]
        y_cols = ["unit_id", "year", *self.targets] + ([ds.break_column] if ds.break_column else [])
        y = ds.panel.loc[ds.panel["year"] <= o, y_cols]
        fitted = self.forecaster
        if fitted is not None and (set(fitted.targets_) >= set(self.targets) and fitted.horizons >= self.horizons
                                   and max(fitted.data_end_.values()) <= o):
            self.forecaster_ = fitted  # e.g. the model `train` just registered (same data, same settings)
        else:
            # exactly the forecaster `train` registers (members, feature groups, step), on data up to the origin
            self.forecaster_ = DirectForecaster(targets=self.targets, horizons=self.horizons, features=pf.names,
                                                feature_groups=pf.groups(), params=self.params,
                                                break_column=ds.break_column, step=ds.step, n_jobs=self.n_jobs,
                                                seed=self.seed).fit(X, y)
        self.treatment_ = tie_strength(ds)
        self.effects_ = CooperationEffects(horizons=min(self.horizons, 5), seed=self.seed).fit(
            ds, pf, end=o, treatment=self.treatment_)
        self.baseline_ = self._baseline()
        self.forecastable_ = frozenset(zip(self.baseline_.frame["unit_id"], self.baseline_.frame["target"],
                                           strict=True))
        self.names_ = ds.display_names().astype(str)
        self._observed_measures: dict[tuple[str, int], pd.DataFrame] = {}
        # Overlap: the range of tie strength seen for units of the same size class up to the origin.
        t = self.treatment_.reset_index()
        t = t[t["year"] <= o]
        size = ds.panel[ds.panel["year"] == o].set_index("unit_id")[ds.mass_column]
        self.size_class_ = pd.qcut(size.rank(method="first"), SIZE_CLASSES, labels=False)
        t["cls"] = t["unit_id"].map(self.size_class_)
        grouped = t.groupby("cls")[TREATMENT]
        self.t_range_ = pd.DataFrame({0.01: grouped.quantile(0.01), 0.99: grouped.quantile(0.99)})
        return self

    def _baseline(self) -> _Baseline:
        frames = []
        fc = self.forecaster_
        for target in self.targets:
            start = fc.data_end_[target]
            rows = self.pf_.frame[self.pf_.frame["year"] == start]
            out = fc.predict(rows)
            out = out[out["target"] == target]
            frames.append(pd.DataFrame({
                "unit_id": out["unit_id"].astype(str), "target": target, "year": out["target_year"].astype(int),
                "horizon": out["horizon"].astype(int), "point": out["point"], "lower80": out["lower80"],
                "upper80": out["upper80"], "lower90": out["lower90"], "upper90": out["upper90"], "origin": start}))
        frame = pd.concat(frames, ignore_index=True)
        # A unit without the target in the start year has no forecast (NaN): left out, named by unforecast().
        return _Baseline(frame[np.isfinite(frame["point"].to_numpy(float))].reset_index(drop=True))

    # ---- answers ----------------------------------------------------------------------------------------
    def baseline(self, units: Sequence[str] | None = None) -> pd.DataFrame:
        """Baseline trajectories in the forecast schema (``scenario_id = "baseline"``, difference 0)."""
        b = self._select(self.baseline_.frame, units)
        return self._frame(b, "baseline", b["point"], b[["lower80", "upper80", "lower90", "upper90"]].to_numpy(float),
                           np.zeros(len(b)), np.zeros((len(b), 4)), "baseline", "other", np.zeros(len(b), dtype=int))

    def apply(self, scenario: Scenario) -> AppliedScenario:
        return apply_scenario(self.ds, scenario, self.origin)

    def delta_treatment(self, applied: AppliedScenario, full_measures: bool = True
                        ) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
        """(change of tie strength per unit at the origin, scenario panel, scenario flows); with
        ``full_measures=False`` only the strengths the tie strength needs are recomputed (fast)."""
        key = (applied.kind, applied.flow_year)
        if key not in self._observed_measures:
            self._observed_measures[key] = observed_flow_measures(self.ds, *key)
        only = None if full_measures else ("in_strength", "out_strength")
        panel, flows = scenario_state(self.ds, applied, self.origin, self._observed_measures[key], only=only)
        near = panel[panel["year"].between(self.origin - 1, self.origin)]  # the origin's tie strength needs these
        after = tie_strength(self.ds, near, flows).xs(self.origin, level="year")
        before = self.treatment_.xs(self.origin, level="year")
        return (after - before).reindex(self.ds.units["unit_id"]).fillna(0.0), panel, flows

    def effect_table(self, applied: AppliedScenario, delta: pd.Series, units: Sequence[str] | None = None
                     ) -> pd.DataFrame:
        """DML effect per (unit, target, year) of a scenario (of every unit, or ``units``): log points and
        standard error."""
        sc = applied.scenario
        end = sc.end_year if sc.end_year is not None else 10**6
        b = self._select(self.baseline_.frame, units)
        xrow = self._modifiers()
        parts = []
        for key, grp in b.groupby(["target", "year"], sort=False):
            target, year = str(key[0]), int(str(key[1]))  # type: ignore[index]
            k = min(year, end) - sc.start_year + 1
            ids = grp["unit_id"].to_numpy()
            dt = delta.reindex(ids).to_numpy(float)
            if k < 1:
                point, se = np.zeros(len(ids)), np.zeros(len(ids))
            else:
                point, se = self.effects_.effect(str(target), int(k), xrow.reindex(ids).to_numpy(float), dt)
                zero = dt == 0
                point, se = np.where(zero, 0.0, point), np.where(zero, 0.0, se)
            parts.append(pd.DataFrame({"unit_id": ids, "target": target, "year": year, "log_effect": point,
                                       "se": se}))
        return pd.concat(parts, ignore_index=True)

    def _modifiers(self) -> pd.DataFrame:
        cached = getattr(self, "_modifiers_", None)
        if cached is None:  # fixed once fitted: the effect modifiers of every unit at the origin
            rows = self.pf_.frame[self.pf_.frame["year"] == self.origin]
            frame, _ = self.effects_._modifier_frame(self.ds, rows)
            cached = self._modifiers_ = frame.set_index(rows["unit_id"].astype(str).to_numpy())
        return cached

    def answer(self, scenario: Scenario, units: Sequence[str] | None = None,
               methods: Sequence[str] = METHODS_COOPERATION) -> pd.DataFrame:
        """Both estimates of one scenario for every unit (or ``units``), in the forecast schema.

        ``methods`` without ``forecaster_whatif`` recomputes only the tie strengths the DML estimate needs
        (the same numbers, much faster: what the scoring server does by default)."""
        unknown = sorted(set(methods) - set(METHODS_COOPERATION))
        if unknown or not methods:
            raise ConfigError(f"unknown method(s) {unknown}; use {', '.join(METHODS_COOPERATION)}",
                              parameter="methods")
        applied = self.apply(scenario)
        whatif = "forecaster_whatif" in methods
        delta, panel, flows = self.delta_treatment(applied, full_measures=whatif)
        out = []
        if "dml" in methods:
            out.append(self.dml_rows(applied, delta, units))
        if whatif:
            out.append(self._whatif_rows(applied, delta, panel, flows, units))
        return pd.concat(out, ignore_index=True)

    def _roles(self, applied: AppliedScenario, delta: pd.Series, index: pd.Index) -> tuple[pd.Series, pd.Series]:
        """(role of each unit: focal, partner or other; extrapolation flag: the tie strength after the change
        lies outside the 1–99% range seen for units of the same size class)."""
        role = pd.Series("other", index=index)
        role[[p for p in applied.partners if p in index]] = "partner"
        if applied.scenario.unit in index:
            role[applied.scenario.unit] = "focal"
        d = delta.reindex(index).fillna(0.0).to_numpy(float)
        after = self.treatment_.xs(self.origin, level="year").reindex(index).to_numpy(float) + d
        cls = self.size_class_.reindex(index)
        lo = self.t_range_[0.01].reindex(cls).to_numpy(float)
        hi = self.t_range_[0.99].reindex(cls).to_numpy(float)
        return role, pd.Series(((d != 0) & ((after > hi) | (after < lo))).astype(int), index=index)

    def dml_rows(self, applied: AppliedScenario, delta: pd.Series, units: Sequence[str] | None = None
                 ) -> pd.DataFrame:
        """The ``dml`` rows of an applied scenario (forecast schema) from the tie-strength change ``delta`` of
        :meth:`delta_treatment`: cooperation = baseline x exp(effect); the difference interval combines the
        effect's clustered standard error with the model-error allowance ``model_error`` x effect."""
        b = self._select(self.baseline_.frame, units)
        index = pd.Index(b["unit_id"].unique() if units is not None else self.ds.units["unit_id"].astype(str))
        role, extrap = self._roles(applied, delta, index)
        eff = self.effect_table(applied, delta, units).merge(b, on=["unit_id", "target", "year"], how="right")
        e, se, base = eff["log_effect"].to_numpy(float), eff["se"].to_numpy(float), eff["point"].to_numpy(float)
        se = np.sqrt(se**2 + (self.model_error * e) ** 2)
        diff = base * np.expm1(e)
        # columns: lower80, upper80, lower90, upper90
        bounds = np.column_stack([base * np.expm1(e + s * z * se) for z in (Z80, Z90) for s in (-1, 1)])
        coop_bounds = eff[["lower80", "upper80", "lower90", "upper90"]].to_numpy(float) * np.exp(e)[:, None]
        return self._frame(eff, applied.id, eff["point"] * np.exp(e), coop_bounds, diff, bounds, "dml",
                           eff["unit_id"].map(role), eff["unit_id"].map(extrap).to_numpy(int))

    def _whatif_rows(self, applied: AppliedScenario, delta: pd.Series, panel: pd.DataFrame, flows: pd.DataFrame,
                     units: Sequence[str] | None) -> pd.DataFrame:
        b = self._select(self.baseline_.frame, units)
        index = pd.Index(self.ds.units["unit_id"].astype(str))
        role, extrap = self._roles(applied, delta, index)
        pf = build_features(self.ds, flows, panel=panel, years=[self.origin])
        wi = self.forecaster_.predict(pf.frame)
        bounds = ["lower80", "upper80", "lower90", "upper90"]
        wi = wi[["unit_id", "target", "target_year", "point", *bounds]].rename(
            columns={"target_year": "year", "point": "c_point", **{c: f"c_{c}" for c in bounds}})
        m = b.merge(wi, on=["unit_id", "target", "year"], how="left")
        # targets forecast from an earlier year than the origin are not changed by the what-if
        same = (m["origin"] == self.origin).to_numpy()
        cp = np.where(same, m["c_point"], m["point"])
        cb = np.where(same[:, None], m[[f"c_{c}" for c in bounds]].to_numpy(float), m[bounds].to_numpy(float))
        return self._frame(m, applied.id, cp, cb, cp - m["point"].to_numpy(float), np.full((len(m), 4), np.nan),
                           "forecaster_whatif", m["unit_id"].map(role), m["unit_id"].map(extrap).to_numpy(int))

    def unforecast(self) -> dict[str, list[str]]:
        """Per target, the units without a forecast (no value in the year the target's forecasts start from)."""
        units = self.ds.units["unit_id"].astype(str)
        out = {t: [u for u in units if (u, t) not in self.forecastable_] for t in self.targets}
        return {t: us for t, us in out.items() if us}

    def check_forecastable(self, units: Sequence[str], targets: Sequence[str] | None = None,
                           where: str = "") -> None:
        """Raise ConfigError naming the first unit (of ``units``) without a forecast of a target (of
        ``targets``, default all): it has no value in the year the forecasts start from (the target's last
        data year), e.g. a unit whose latest figure is not published yet."""
        for unit in units:
            for target in targets if targets is not None else self.targets:
                if (str(unit), target) in self.forecastable_:
                    continue
                start = int(self.forecaster_.data_end_[target])
                seen = self.ds.panel.loc[(self.ds.panel["unit_id"].astype(str) == str(unit))
                                         & self.ds.panel[target].notna(), "year"]
                last = f"its last {target} is of {int(seen.max())}" if len(seen) else f"it has no {target} at all"
                name = self.names_.get(str(unit), str(unit))
                raise ConfigError(f"{where + ': ' if where else ''}unit {unit} ({name}) has no {target} in {start}, "
                                  f"the year every forecast of {target} starts from ({last} in panel.csv); add "
                                  f"its {start} value to panel.csv and retrain, or leave the unit out",
                                  parameter="units")

    def _select(self, frame: pd.DataFrame, units: Sequence[str] | None) -> pd.DataFrame:
        if units is None:
            return frame
        lacking = [u for u in units if not any((str(u), t) in self.forecastable_ for t in self.targets)]
        if lacking:  # every target missing: say so rather than answer with nothing
            self.check_forecastable(lacking[:1])
        return frame[frame["unit_id"].isin(set(units))].reset_index(drop=True)

    def _frame(self, b: pd.DataFrame, scenario_id: str, coop: Any, coop_bounds: np.ndarray, diff: Any,
               bounds: np.ndarray, method: str, role: Any, extrap: Any) -> pd.DataFrame:
        # bounds and coop_bounds: columns lower80, upper80, lower90, upper90
        return pd.DataFrame({
            "scenario_id": scenario_id, "unit_id": b["unit_id"].to_numpy(),
            "name": b["unit_id"].map(self.names_).to_numpy(), "target": b["target"].to_numpy(),
            "year": b["year"].to_numpy(int), "horizon": b["horizon"].to_numpy(int),
            "role": np.asarray(role), "baseline": b["point"].to_numpy(float),
            "baseline_lower80": b["lower80"].to_numpy(float), "baseline_upper80": b["upper80"].to_numpy(float),
            "baseline_lower90": b["lower90"].to_numpy(float), "baseline_upper90": b["upper90"].to_numpy(float),
            "cooperation": np.asarray(coop, float), "cooperation_lower80": coop_bounds[:, 0],
            "cooperation_upper80": coop_bounds[:, 1], "cooperation_lower90": coop_bounds[:, 2],
            "cooperation_upper90": coop_bounds[:, 3], "difference": np.asarray(diff, float),
            "difference_lower80": bounds[:, 0], "difference_upper80": bounds[:, 1],
            "difference_lower90": bounds[:, 2], "difference_upper90": bounds[:, 3], "method": method,
            "extrapolation": np.asarray(extrap, int),
        })[FORECAST_COLUMNS]
