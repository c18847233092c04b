"""The leak-free yearly panel of features: one row per unit and origin year ``t``.

Every feature for origin year ``t`` uses only data known at the end of year ``t``: panel values of years
``<= t`` and flows of years ``<= t``. Flow kinds observed in some years only (the bundled Korean migration OD
is 2025 only) are used from the nearest earlier flow year; when there is none, their features are missing
(LightGBM handles missing values) and the time-invariant kinds (contiguity) and the gravity model (populations
at ``t`` and distances) still give tie features. :attr:`PanelFeatures.sources` records which flow year fed
which origin year.

Feature groups (used to sum explanations by group later):

- ``ties`` – network structure: tie measures from flows (reciprocal strength, reciprocated share, partner
  entropy, dependence on the dominant partner, borrowed size, centralities, Nystuen–Dacey hierarchy), the
  panel's own ``network`` columns, and **network lags** (tie-weighted averages of partners' growth, aging and
  fiscal capacity at ``t``);
- ``migration`` – the panel's counts and rates of moves (declared group ``migration``: gross in/out, net,
  rates): components of population change, not ties between places;
- ``demography``, ``fiscal``, ``income`` – the panel covariates at ``t`` and their changes over 3 steps
  (missing where a boundary break or a regime change such as the 2014 재정자립도 reclassification intervenes);
- ``history`` – each target's log level, log growth over 1, 3 and 5 steps (missing across breaks) and its
  drift: the mean yearly log growth over the unit's unbroken history up to ``t`` and over its last 5 steps.

Panels observed every ``k`` years (``Dataset.step``, e.g. census panels) count lags in steps: growth over
1, 3 and 5 steps is named by its length in years (``population_growth_10y`` for one 10-year step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tiecast.common import ConfigError, DatasetError, Problem, progress_bar

from ._dataset import GROWTH_STEPS, Dataset, growth_feature_names
from .ties import (
    GravityFit,
    GravityVolume,
    deterrence_kernel,
    distance_matrix_km,
    fit_gravity,
    log_distance,
    unit_positions,
    unit_tie_measures,
    weighted_partner_mean,
)

__all__ = ["FEATURE_GROUPS", "FeatureSpec", "PanelFeatures", "build_features", "flow_sources"]

FEATURE_GROUPS = ("ties", "migration", "demography", "fiscal", "income", "history")
# Declared panel column groups (dataset.toml [columns.X] group) -> feature group.
PANEL_GROUP_TO_FEATURE_GROUP = {
    "network": "ties", "ties": "ties", "migration": "migration",
    "demography": "demography", "services": "demography", "geography": "demography",
    "fiscal": "fiscal", "income": "income", "economy": "income",
}
# Declared groups of columns that do not change meaningfully over time: no change features for them.
STATIC_GROUPS = {"geography"}
CHANGE_STEPS = 3
# Steps of the recent-window drift (mean log growth of the last 5 steps).
RECENT_DRIFT_STEPS = 5
# Distance decay of the gravity weights when no flow year <= t exists to fit it (classic inverse square).
DEFAULT_DISTANCE_DECAY = 2.0
# Growth steps of each target averaged over partners (network lags) unless dataset.toml lists the lags.
NETWORK_LAG_GROWTH = (1, 3)
# Unit tie measures taken from each flow kind (see tiecast.features.ties.unit_tie_measures).
FLOW_MEASURES = {
    "reciprocal_strength_pk": ("per 1,000 residents", "sum_j min(F_ij, F_ji) per 1,000 residents"),
    "reciprocated_share": ("0-1", "share of the unit's two-way volume matched by a counter-flow"),
    "partner_entropy": ("0-1", "normalised Shannon entropy of the unit's volume over partners"),
    "dominant_share": ("0-1", "share of the unit's volume exchanged with its largest partner"),
    "borrowed_size_observed_log": ("log persons", "log(1 + sum_j w_ij P_j), w = observed volume shares, P at t"),
    "pagerank": ("0-1", "PageRank of the flow graph"),
    "hierarchy_level": ("levels", "Nystuen–Dacey level: 0 = hub, 1 = direct subordinate, ..."),
    "is_hub": ("0/1", "1 when the unit's largest outflow goes to a smaller unit (Nystuen–Dacey terminal)"),
}


@dataclass(frozen=True)
class FeatureSpec:
    """Name, group, unit and description of one feature."""

    name: str
    group: str
    unit: str
    description: str


@dataclass(frozen=True)
class PanelFeatures:
    """The feature panel: ``frame`` has ``unit_id``, ``year`` (origin year) and one column per feature."""

    frame: pd.DataFrame
    catalog: list[FeatureSpec]
    sources: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.catalog]

    def groups(self) -> dict[str, list[str]]:
        """Feature names by group."""
        out: dict[str, list[str]] = {}
        for f in self.catalog:
            out.setdefault(f.group, []).append(f.name)
        return out

    def catalog_frame(self) -> pd.DataFrame:
        return pd.DataFrame([f.__dict__ for f in self.catalog])


def flow_sources(flows: pd.DataFrame, origin_years: Iterable[int], time_invariant: Iterable[str]) -> pd.DataFrame:
    """Which flow year feeds each (origin year, kind): the latest flow year ``<= t``.

    Time-invariant kinds feed every origin year (``flow_year`` is their stored year). Kinds with no flow year
    ``<= t`` are absent for that origin year. Columns: ``year`` (origin), ``kind``, ``flow_year``, ``source``
    (``observed`` or ``time_invariant``).
    """
    invariant = set(time_invariant)
    kind_years = flows[["kind", "year"]].drop_duplicates().sort_values(["kind", "year"])
    rows: list[tuple[int, str, int, str]] = []
    for t in sorted(set(int(y) for y in origin_years)):
        for kind, years in kind_years.groupby("kind", observed=True)["year"]:
            name = str(kind)
            if name in invariant:
                rows.append((t, name, int(years.max()), "time_invariant"))
                continue
            earlier = years[years <= t]
            if len(earlier):
                rows.append((t, name, int(earlier.max()), "observed"))
    return pd.DataFrame(rows, columns=["year", "kind", "flow_year", "source"])


def _column_group(ds: Dataset, column: str) -> str:
    declared = ds.column_info(column).get("group", "")
    return PANEL_GROUP_TO_FEATURE_GROUP.get(declared, "demography" if not declared else declared)


def _lagged(panel: pd.DataFrame, column: str, k: int) -> pd.Series:
    """Value of ``column`` at year ``t - k`` (k in years) for each row (by year, so gaps stay gaps); NaN where
    that year is not in the panel (integer columns then become float, as a reindex would)."""
    pos = _lag_positions(panel, k)
    values = pd.api.extensions.take(panel[column].to_numpy(), pos, allow_fill=True)
    return pd.Series(values, index=panel.index)


def _lag_positions(panel: pd.DataFrame, k: int) -> np.ndarray:
    """Row position of (unit, year - k) for each row of ``panel``, -1 where absent: an integer lookup table
    over units x years instead of a MultiIndex reindex per column (the scenario path builds features for one
    year hundreds of times; the MultiIndexes were a third of it). (unit_id, year) pairs are unique."""
    codes = pd.factorize(panel["unit_id"])[0]
    years = panel["year"].to_numpy(np.int64)
    if len(years) == 0:
        return np.empty(0, dtype=np.intp)
    first = int(years.min())
    span = int(years.max()) - first + 1
    table = np.full((int(codes.max()) + 1) * span, -1, dtype=np.intp)
    table[codes * span + (years - first)] = np.arange(len(years))
    past = years - k - first
    inside = (past >= 0) & (past < span)
    return np.where(inside, table[codes * span + np.clip(past, 0, span - 1)], -1)


def drift_rates(log_level: np.ndarray, segment: np.ndarray, step: int,
                recent_steps: int = RECENT_DRIFT_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Mean yearly log growth up to each period over the unit's unbroken history and over its last steps.

    ``log_level`` and ``segment`` are units x periods (one column per observation step, NaN = missing;
    ``segment`` increases at every boundary break). The unbroken history ending at period ``j`` is the run of
    finite values in ``j``'s segment without a gap. Returns ``(drift, recent)`` in log points per year:
    ``(log y_j - log y_s) / (years from s to j)`` with ``s`` the run's first period, respectively the period
    ``min(recent_steps, run length)`` steps before ``j``; NaN where the run has a single value.
    """
    n, periods = log_level.shape
    finite = np.isfinite(log_level)
    rows = np.arange(n)
    start = np.full(n, -1)
    drift = np.full((n, periods), np.nan)
    recent = np.full((n, periods), np.nan)
    for j in range(periods):
        ok = finite[:, j]
        if j == 0:
            new_run = ok
        else:
            new_run = ok & (~finite[:, j - 1] | (segment[:, j] != segment[:, j - 1]))
        start = np.where(new_run, j, np.where(ok, start, -1))
        length = np.where(ok, j - start, 0)
        has = length > 0
        if not has.any():
            continue
        first = log_level[rows, np.maximum(start, 0)]
        drift[:, j] = np.where(has, (log_level[:, j] - first) / np.maximum(length * step, 1), np.nan)
        m = np.minimum(length, recent_steps)
        past = log_level[rows, np.maximum(j - m, 0)]
        recent[:, j] = np.where(has, (log_level[:, j] - past) / np.maximum(m * step, 1), np.nan)
    return drift, recent


def _history_features(ds: Dataset, panel: pd.DataFrame) -> tuple[dict[str, pd.Series], list[FeatureSpec]]:
    """Targets' log level, log growth over 1/3/5 steps (missing where a break lies in (t-k, t]) and drifts."""
    out: dict[str, pd.Series] = {}
    specs: list[FeatureSpec] = []
    step = ds.step
    breaks = panel[ds.break_column].fillna(0).astype(float) if ds.break_column else pd.Series(0.0, panel.index)
    cum_breaks = panel.assign(_b=breaks).groupby("unit_id")["_b"].cumsum()
    frame = panel.assign(_cum_breaks=cum_breaks)
    # Units x observation periods, for the drifts (periods on the step grid from the first panel year).
    first_year = int(panel["year"].min())
    period = ((panel["year"] - first_year) // step).to_numpy(int)
    unit_codes, unit_index = pd.factorize(panel["unit_id"])
    shape = (len(unit_index), int(period.max()) + 1 if len(period) else 0)
    seg_values = np.zeros(shape)
    seg_values[unit_codes, period] = breaks.to_numpy(float) > 0
    segment = np.cumsum(seg_values, axis=1).astype(int)
    for target in ds.targets:
        unit = ds.column_info(target).get("unit", "")
        level = panel[target].where(panel[target] > 0)
        log_level = np.log(level)
        out[f"{target}_log"] = log_level
        specs.append(FeatureSpec(f"{target}_log", "history", f"log {unit}".strip(), f"log of {target} at t"))
        frame = frame.assign(_log=log_level)
        for k in GROWTH_STEPS:
            years = k * step
            past = _lagged(frame, "_log", years)
            crossed = cum_breaks - _lagged(frame, "_cum_breaks", years)
            growth = (log_level - past).where(crossed.eq(0))
            out[f"{target}_growth_{years}y"] = growth
            specs.append(FeatureSpec(f"{target}_growth_{years}y", "history", "log points",
                                     f"log({target}_t / {target}_(t-{years})); missing across a boundary break"))
        frame = frame.assign(_g1=out[f"{target}_growth_{step}y"])
        out[f"{target}_growth_{step}y_lag{step}"] = _lagged(frame, "_g1", step)
        specs.append(FeatureSpec(f"{target}_growth_{step}y_lag{step}", "history", "log points",
                                 f"log growth of {target} from t-{2 * step} to t-{step}"))
        wide = np.full(shape, np.nan)
        wide[unit_codes, period] = log_level.to_numpy(float)
        drift, recent = drift_rates(wide, segment, step)
        out[f"{target}_drift"] = pd.Series(drift[unit_codes, period], index=panel.index)
        specs.append(FeatureSpec(f"{target}_drift", "history", "log points per year",
                                 f"mean yearly log growth of {target} over the unit's unbroken history up to t "
                                 "(no gap, no boundary break); missing with a single value"))
        out[f"{target}_drift_recent"] = pd.Series(recent[unit_codes, period], index=panel.index)
        specs.append(FeatureSpec(f"{target}_drift_recent", "history", "log points per year",
                                 f"mean yearly log growth of {target} over the last {RECENT_DRIFT_STEPS} steps "
                                 "of the unit's unbroken history up to t (fewer when shorter)"))
    return out, specs


def _check_unique_names(ds: Dataset, names: list[str], covariate_names: list[str], panel: pd.DataFrame) -> None:
    """A panel column named like a feature tiecast derives (``population_growth_1y``, ``x_chg3`` beside ``x``,
    a tie index) would make two features of one name: say which column, rather than fail later."""
    counts = pd.Series(names).value_counts()
    clashes = counts.index[counts > 1].tolist()
    if not clashes:
        return
    problems = []
    for name in clashes:
        column = name if name in panel.columns else next(
            (c for c in panel.columns if name.startswith(f"{c}_") and name in covariate_names), name)
        problems.append(Problem(
            "error", "panel.csv",
            f"column {column!r} gives a feature named {name!r}, which tiecast also derives (from the targets, "
            "the other columns or the flows): two features cannot share a name", column=column,
            fix=f"rename the column (e.g. {column}_given) in panel.csv and dataset.toml, or drop it if it is "
                "what tiecast computes anyway"))
    raise DatasetError(str(ds.path), problems)


def _covariate_features(ds: Dataset, panel: pd.DataFrame) -> tuple[dict[str, pd.Series], list[FeatureSpec]]:
    """Panel covariates at t (not targets, not break flags) and their changes over 3 steps within a regime."""
    out: dict[str, pd.Series] = {}
    specs: list[FeatureSpec] = []
    skip = {"unit_id", "year", *ds.targets, *([ds.break_column] if ds.break_column else [])}
    columns = [c for c in panel.columns if c not in skip and ds.column_info(c).get("group") != "meta"]
    breaks = panel[ds.break_column].fillna(0).astype(float) if ds.break_column else pd.Series(0.0, panel.index)
    frame = panel.assign(_cum_breaks=panel.assign(_b=breaks).groupby("unit_id")["_b"].cumsum())
    change_years = CHANGE_STEPS * ds.step
    crossed = frame["_cum_breaks"] - _lagged(frame, "_cum_breaks", change_years)
    # 0/1 columns of a group mark regimes (e.g. fiscal_regime_2014): no change is computed across them.
    regimes: dict[str, list[str]] = {}
    for col in columns:
        if ds.column_info(col).get("unit") == "0/1":
            regimes.setdefault(_column_group(ds, col), []).append(col)
    for col in columns:
        group = _column_group(ds, col)
        info = ds.column_info(col)
        out[col] = panel[col]
        specs.append(FeatureSpec(col, group, info.get("unit", ""), info.get("description", col) + " (at t)"))
        if info.get("unit") == "0/1" or info.get("group") in STATIC_GROUPS:
            continue
        valid = crossed.eq(0)
        for regime in regimes.get(group, []):
            valid &= panel[regime].eq(_lagged(panel, regime, change_years))
        change = (panel[col] - _lagged(panel, col, change_years)).where(valid)
        out[f"{col}_chg{change_years}"] = change
        specs.append(FeatureSpec(f"{col}_chg{change_years}", group, info.get("unit", ""),
                                 f"change of {col} over {change_years} years (missing across breaks/regimes)"))
    return out, specs


def _pair_matrix(flows: pd.DataFrame, index: pd.Index, symmetric: bool) -> sp.csr_matrix:
    """Sparse n x n matrix of flow values (F_ij + F_ji when symmetric); diagonal dropped."""
    o = unit_positions(flows["origin"], index)
    d = unit_positions(flows["destination"], index)
    keep = (o >= 0) & (d >= 0) & (o != d)
    n = len(index)
    m = sp.csr_matrix((flows["value"].to_numpy(float)[keep], (o[keep], d[keep])), shape=(n, n))
    return sp.csr_matrix(m + m.T) if symmetric else m


def _network_lag_sources(ds: Dataset, panel: pd.DataFrame, hist: dict[str, pd.Series]
                         ) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """Partner variables averaged over ties (network lags): values per (unit, year) and, per variable, its
    feature stem ``partners_<variable>`` and unit.

    Variables: ``dataset.toml [features] network_lags`` (target growths ``<target>_growth_<years>y`` over 1/3/5
    steps, or panel covariates), by default every target's log growth over 1 and 3 steps.
    """
    growth_names = set(growth_feature_names(ds.targets, ds.step))
    declared = ds.network_lags
    chosen = declared if declared is not None else [f"{t}_growth_{k * ds.step}y" for t in ds.targets
                                                    for k in NETWORK_LAG_GROWTH]
    frame = panel[["unit_id", "year"]].copy()
    sources: dict[str, tuple[str, str]] = {}
    for name in chosen:
        if name in growth_names:
            frame[name] = hist[name]
            sources[name] = (f"partners_{name}", "log points")
        elif name in panel.columns:
            frame[name] = panel[name]
            sources[name] = (f"partners_{name}", ds.column_info(name).get("unit", ""))
    return frame, sources


def _tie_features(ds: Dataset, panel: pd.DataFrame, flows: pd.DataFrame, hist: dict[str, pd.Series],
                  progress: bool, only_years: set[int] | None = None
                  ) -> tuple[pd.DataFrame, list[FeatureSpec], pd.DataFrame]:
    """Tie measures and network lags for every origin year (or ``only_years``), from the flows known at t."""
    index = pd.Index(ds.units["unit_id"])
    n = len(index)
    years = sorted(int(y) for y in panel["year"].unique() if only_years is None or int(y) in only_years)
    sources = flow_sources(flows, years, ds.time_invariant_kinds)
    # Units with a centroid; the distance features need at least 3. A unit without one gets no distance
    # features and no gravity weight as a partner; the others keep theirs (1 blank of 30 must not drop them all).
    located = (ds.units[["lat", "lon"]].notna().all(axis=1).to_numpy() if {"lat", "lon"} <= set(ds.units.columns)
               else np.zeros(n, dtype=bool))
    dist = log_dist = None
    if located.sum() >= 3:
        lat, lon = ds.units["lat"], ds.units["lon"]
        if not located.all():  # a placeholder centroid: every weight to or from the unit is zeroed below
            lat, lon = lat.fillna(lat[located].mean()), lon.fillna(lon[located].mean())
        dist = distance_matrix_km(lat, lon, dtype=np.float64)
        log_dist = log_distance(dist, dtype=np.float64)
    # d^-gamma with zero diagonal for the latest gamma only: consecutive origin years usually share a fit, and
    # keeping one n x n kernel per fitted gamma would hold gigabytes at eup-myeon-dong scale.
    kernels: dict[float, np.ndarray] = {}
    # Masses for gravity and borrowed size: population where the dataset has it, else the first target.
    pop_wide = panel.pivot(index="unit_id", columns="year", values=ds.mass_column).reindex(index)
    # Partner variables (unit x year) averaged over ties: the network lags.
    lag_frame, lag_sources = _network_lag_sources(ds, panel, hist)
    # Everything that depends on a (kind, flow year) only is computed once and reused for later origin years.
    measure_cache: dict[tuple[str, int], pd.DataFrame] = {}
    matrix_cache: dict[tuple[str, int], sp.csr_matrix] = {}
    # Row positions of each (kind, year) of flows, found in one pass instead of a scan per origin year.
    positions = flows.groupby(["kind", "year"], observed=True, sort=False).indices
    # The last origin year that needs each (kind, flow year): its cached matrices are freed after it.
    last = sources.groupby(["kind", "flow_year"], as_index=False)["year"].max()
    last_use = {(str(k), int(f)): int(y) for k, f, y in zip(last["kind"], last["flow_year"], last["year"], strict=True)}
    fit_cache: dict[tuple[str, int], GravityFit | None] = {}
    blocks: list[pd.DataFrame] = []
    specs: dict[str, FeatureSpec] = {}
    source_of: dict[str, str] = {}

    def spec(name: str, unit: str, description: str, source: str) -> None:
        specs.setdefault(name, FeatureSpec(name, "ties", unit, description))
        source_of.setdefault(name, source)

    with progress_bar(progress) as bar:
        task = bar.add_task("tie features", total=len(years))
        for t in years:
            block = pd.DataFrame({"unit_id": index, "year": t})
            pop = pop_wide[t].to_numpy(float) if t in pop_wide.columns else np.full(n, np.nan)
            lag_t = lag_frame[lag_frame["year"] == t].set_index("unit_id").reindex(index)
            weights: dict[str, sp.csr_matrix | GravityVolume] = {}
            gravity_fit: GravityFit | None = None
            gravity_year = -1
            year_sources = sources[sources["year"] == t]
            for kind, flow_year in zip(year_sources["kind"].astype(str), year_sources["flow_year"].astype(int),
                                       strict=True):
                key = (kind, flow_year)
                if key not in matrix_cache:
                    kflows = flows.iloc[positions[(kind, flow_year)]]
                    matrix_cache[key] = _pair_matrix(kflows, index, symmetric=True)
                    if kind not in ds.time_invariant_kinds:
                        # Path centralities are not features (the panel's own network columns carry them)
                        # and cost O(V E): skip them here.
                        measure_cache[key] = unit_tie_measures(
                            kflows, ds.units, None, gravity=False, regions=False, path_sources=0).reindex(index)
                        fit_cache[key] = _fit_gravity_at(kflows, index, pop_wide, flow_year, dist, located)
                volume = matrix_cache[key]
                weights[kind] = volume
                if kind in ds.time_invariant_kinds:
                    block[f"{kind}_degree"] = np.diff(volume.indptr)
                    spec(f"{kind}_degree", "partners", f"number of {kind} partners (time-invariant)", kind)
                    continue
                block[f"{kind}_flow_age"] = t - flow_year
                spec(f"{kind}_flow_age", "years", f"t minus the year of the {kind} flows used (nearest <= t)", kind)
                m = measure_cache[key]
                with np.errstate(divide="ignore", invalid="ignore"):
                    derived = {
                        "reciprocal_strength_pk": 1000.0 * m["reciprocal_strength"].to_numpy(float) / pop,
                        "borrowed_size_observed_log": np.log1p(weighted_partner_mean(weights[kind], pop)),
                        "is_hub": m["hierarchy_level"].eq(0).to_numpy(float),
                    }
                for name, (unit, desc) in FLOW_MEASURES.items():
                    values = derived[name] if name in derived else m[name].to_numpy(float)
                    block[f"{kind}_{name}"] = values
                    spec(f"{kind}_{name}", unit, f"{desc} ({kind} flows of the nearest year <= t)", kind)
                if fit_cache[key] is not None and flow_year > gravity_year:
                    gravity_fit, gravity_year = fit_cache[key], flow_year
            if log_dist is not None:
                # Without a fit (no flow year <= t): the classic P_i P_j d_ij^-2.
                alpha, beta, decay = (1.0, 1.0, DEFAULT_DISTANCE_DECAY) if gravity_fit is None else (
                    float(gravity_fit.alpha), float(gravity_fit.beta), float(gravity_fit.gamma))
                if decay not in kernels:
                    kernels.clear()
                    kernels[decay] = deterrence_kernel(log_dist, decay)
                # unknown mass = zero weight: a unit without a centroid is nobody's gravity partner
                gpop = pop if located.all() else np.where(located, pop, np.nan)
                weights["gravity"] = GravityVolume(kernels[decay], gpop, alpha, beta)
                block["gravity_decay"] = decay
                spec("gravity_decay", "exponent", "distance decay of the gravity weights: fitted on the latest "
                     f"flows <= t, else {DEFAULT_DISTANCE_DECAY}", "gravity")
                block["borrowed_size_gravity_log"] = np.log1p(weighted_partner_mean(weights["gravity"], pop))
                spec("borrowed_size_gravity_log", "log persons", "log of the gravity-weighted mean population "
                     "of all other units (borrowed size, Alonso 1973)", "gravity")
                # Potential sum_j P_j (d_ij / 10 km)^-decay = 10^decay (K P).
                block["gravity_access_log"] = np.log1p(10.0**decay * (kernels[decay] @ np.nan_to_num(gpop)))
                spec("gravity_access_log", "log persons", "log of the potential sum_j P_j (d_ij / 10 km)^-decay",
                     "gravity")
            for wname, w in weights.items():
                for src, (stem, unit) in lag_sources.items():
                    block[f"{stem}_{wname}"] = weighted_partner_mean(w, lag_t[src].to_numpy(float))
                    spec(f"{stem}_{wname}", unit, f"{wname}-weighted mean over partners of {src} at t (network lag)",
                         wname)
            if log_dist is not None and not located.all():
                gravity_columns = [c for c in block.columns if source_of.get(c) == "gravity" and c != "gravity_decay"]
                block.loc[~located, gravity_columns] = np.nan
            blocks.append(block)
            for key in [k for k in matrix_cache if last_use[k] <= t]:
                del matrix_cache[key]
                measure_cache.pop(key, None)
            bar.advance(task)
    frame = pd.concat(blocks, ignore_index=True)
    # A canonical column order (by tie source, then name) that does not depend on which years have flows.
    ordered = [specs[c] for c in sorted(specs, key=lambda c: (source_of[c], c))]
    return frame, ordered, sources


def _fit_gravity_at(kflows: pd.DataFrame, index: pd.Index, pop_wide: pd.DataFrame, flow_year: int,
                    dist: np.ndarray | None, located: np.ndarray) -> GravityFit | None:
    """Unconstrained gravity fit of one flow year (populations of that year) on the flows between ``located``
    units (those with a centroid); None when not possible."""
    if dist is None or flow_year not in pop_wide.columns:
        return None
    mass = pop_wide[flow_year].to_numpy(float)
    o = unit_positions(kflows["origin"], index)
    d = unit_positions(kflows["destination"], index)
    keep = (o >= 0) & (d >= 0) & (o != d) & (kflows["value"].to_numpy(float) > 0)
    value = kflows["value"].to_numpy(float)
    if not located.all():  # the fit on the located units alone, in their own positions
        keep &= located[np.maximum(o, 0)] & located[np.maximum(d, 0)]
        position = np.cumsum(located) - 1
        o, d = np.where(keep, position[np.maximum(o, 0)], -1), np.where(keep, position[np.maximum(d, 0)], -1)
        mass, dist = mass[located], dist[np.ix_(located, located)]
    if keep.sum() < 10 or not (np.isfinite(mass) & (mass > 0)).all():
        return None
    return fit_gravity(o[keep], d[keep], value[keep], mass, dist, len(mass))


def build_features(ds: Dataset, flows: pd.DataFrame | None = None, *, panel: pd.DataFrame | None = None,
                   years: Iterable[int] | None = None, progress: bool = False) -> PanelFeatures:
    """Build the leak-free feature panel of a dataset.

    ``flows`` replaces ``ds.flows`` and ``panel`` replaces ``ds.panel`` (same columns) to compute features from a
    hypothetical state, e.g. a cooperation scenario (:func:`scenario_state`): the computation is exactly the one
    applied to observed data. ``years`` restricts the output (and the tie computations) to those origin years,
    which is what makes scenario features fast; each row is identical to the full panel's. Returns
    :class:`PanelFeatures` with one row per (unit_id, origin year).
    """
    flows = ds.flows if flows is None else flows
    missing = {"origin", "destination", "year", "kind", "value"} - set(flows.columns)
    if missing:
        raise ConfigError(f"flows need the columns origin, destination, year, kind, value; missing {sorted(missing)}")
    # Unit ids as categoricals over the units: every later lookup is an integer take, not a string hash.
    units = pd.Index(ds.units["unit_id"].astype(str))
    o = unit_positions(flows["origin"], units)
    d = unit_positions(flows["destination"], units)
    if (o < 0).any() or (d < 0).any():
        bad = sorted(set(flows["origin"].astype(str)[o < 0]) | set(flows["destination"].astype(str)[d < 0]))
        raise ConfigError(f"flows refer to units that are not in the dataset's units: {bad[:5]}")
    flows = flows.assign(origin=pd.Categorical.from_codes(o.tolist(), categories=units),
                         destination=pd.Categorical.from_codes(d.tolist(), categories=units))
    only = None if years is None else {int(y) for y in years}
    panel = (ds.panel if panel is None else panel).sort_values(["unit_id", "year"]).reset_index(drop=True)
    hist, hist_specs = _history_features(ds, panel)
    cov, cov_specs = _covariate_features(ds, panel)
    base = pd.concat([panel[["unit_id", "year"]], pd.DataFrame(hist), pd.DataFrame(cov)], axis=1)
    if only is not None:
        base = base[base["year"].isin(only)]
    ties, tie_specs, sources = _tie_features(ds, panel, flows, hist, progress, only)
    frame = base.merge(ties, on=["unit_id", "year"], how="left", validate="1:1").reset_index(drop=True)
    catalog = hist_specs + cov_specs + tie_specs
    names = [f.name for f in catalog]
    _check_unique_names(ds, names, [f.name for f in cov_specs], panel)
    frame = frame[["unit_id", "year", *names]]
    return PanelFeatures(frame=frame, catalog=catalog, sources=sources)
