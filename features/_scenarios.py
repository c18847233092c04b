"""Cooperation scenarios: stronger ties between a unit and chosen partners, applied to flows (never to features).

A scenario file (JSON or TOML) holds one scenario (or a JSON list / TOML ``[[scenario]]`` array of them):

- ``unit``: unit id of the focal unit;
- ``partners``: a list of unit ids, or a rule: ``"topN"`` (``"top3"``, ...: the N partners with the largest two-way
  volume in the latest flows), ``"contiguous"`` (units sharing a border), ``"hub"`` (its Nystuen–Dacey hub),
  ``"region"`` (the other members of its functional region);
- ``factor`` (> 0: the flows between ``unit`` and each partner, both directions, are multiplied by it) or
  ``to_quantile`` (0–1: each pair's tie strength log((V + 0.5)/(E + 0.5)) against the doubly constrained
  gravity model is raised to that quantile of comparable pairs: same distance quintile and same size-product
  tercile; pairs already above it are left unchanged);
- ``start_year`` (after the forecast origin), optional ``end_year``, ``flow_kind`` (default: the dataset's
  main kind), ``id`` (default: the file name's stem) and ``description``.

Meaning: from ``start_year`` to ``end_year`` those pair flows are ``factor`` times what they would otherwise be;
nothing else is changed by hand. The flows "otherwise" are the latest observed ones (year <= origin), carried
forward, so a scenario is applied to them and every derived measure is recomputed from the result with the
same code as for observed flows: the unit tie measures (:func:`scenario_state`), the panel's network columns
declared in ``panel_measures`` (changed by the difference between scenario and observed measures) and the
feature panel. Partners and third units whose shares change are affected too.

The built-in names ``hub``, ``region``, ``contiguous`` and ``top3`` mean that rule with factor 2 from the year
after the origin (:func:`builtin_scenario`).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiecast.common import ConfigError

from ._dataset import Dataset
from .ties import fit_gravity, functional_regions, haversine_km, unit_positions, unit_tie_measures

__all__ = ["BUILTIN_SCENARIOS", "SCENARIO_KEYS", "AppliedScenario", "Scenario", "apply_scenario",
           "builtin_scenario", "observed_flow_measures", "parse_scenario", "read_scenarios", "scenario_state"]

SCENARIO_KEYS = ("id", "description", "unit", "partners", "factor", "to_quantile", "start_year", "end_year",
                 "flow_kind")
BUILTIN_SCENARIOS = ("hub", "region", "contiguous", "top3")
BUILTIN_FACTOR = 2.0
_TOP = re.compile(r"^top([1-9][0-9]*)$")
_RULES = ("contiguous", "hub", "region")


@dataclass(frozen=True)
class Scenario:
    """One cooperation scenario (see the module docstring). ``partners`` is a tuple of unit ids or a rule."""

    id: str
    unit: str
    partners: tuple[str, ...] | str
    start_year: int
    factor: float | None = None
    to_quantile: float | None = None
    end_year: int | None = None
    flow_kind: str | None = None
    description: str = ""

    @property
    def rule(self) -> str | None:
        return self.partners if isinstance(self.partners, str) else None


def _int(spec: Mapping[str, Any], key: str, where: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: '{key}' must be an integer year; got {value!r}", parameter="scenario")
    return int(value)


def parse_scenario(spec: Mapping[str, Any], *, where: str, default_id: str) -> Scenario:
    """A :class:`Scenario` from a mapping (a parsed file), checked key by key; ``where`` names the source."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: a scenario must be an object/table with keys {', '.join(SCENARIO_KEYS)}",
                          parameter="scenario")
    unknown = sorted(set(spec) - set(SCENARIO_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                          f"{', '.join(SCENARIO_KEYS)}", parameter="scenario")
    for key in ("unit", "partners", "start_year"):
        if key not in spec:
            raise ConfigError(f"{where}: required key '{key}' is missing", parameter="scenario")
    unit = spec["unit"]
    if not isinstance(unit, str | int) or isinstance(unit, bool) or not str(unit).strip():
        raise ConfigError(f"{where}: 'unit' must be a unit id (text); got {unit!r}", parameter="scenario")
    partners = spec["partners"]
    if isinstance(partners, str):
        if not (_TOP.match(partners) or partners in _RULES):
            raise ConfigError(f"{where}: 'partners' rule {partners!r} is unknown; use a list of unit ids, 'topN' "
                              "(e.g. 'top3'), 'contiguous', 'hub' or 'region'", parameter="scenario")
        partner_value: tuple[str, ...] | str = partners
    elif isinstance(partners, list) and partners and all(isinstance(p, str | int) and not isinstance(p, bool)
                                                          for p in partners):
        partner_value = tuple(dict.fromkeys(str(p) for p in partners))
    else:
        raise ConfigError(f"{where}: 'partners' must be a non-empty list of unit ids or a rule; got {partners!r}",
                          parameter="scenario")
    factor, quantile = spec.get("factor"), spec.get("to_quantile")
    if (factor is None) == (quantile is None):
        raise ConfigError(f"{where}: give exactly one of 'factor' (> 0) or 'to_quantile' (0–1)", parameter="scenario")
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, int | float)
                               or not math.isfinite(factor) or factor <= 0):
        raise ConfigError(f"{where}: 'factor' must be a number > 0 (2 = flows doubled); got {factor!r}",
                          parameter="scenario")
    if quantile is not None and (isinstance(quantile, bool) or not isinstance(quantile, int | float)
                                 or not 0 < quantile < 1):
        raise ConfigError(f"{where}: 'to_quantile' must be a number between 0 and 1; got {quantile!r}",
                          parameter="scenario")
    start, end = _int(spec, "start_year", where), _int(spec, "end_year", where)
    assert start is not None
    if end is not None and end < start:
        raise ConfigError(f"{where}: 'end_year' {end} is before 'start_year' {start}", parameter="scenario")
    for key in ("id", "description", "flow_kind"):
        if key in spec and not isinstance(spec[key], str):
            raise ConfigError(f"{where}: '{key}' must be text; got {spec[key]!r}", parameter="scenario")
    return Scenario(id=str(spec.get("id") or default_id), unit=str(unit).strip(), partners=partner_value,
                    start_year=start, factor=None if factor is None else float(factor),
                    to_quantile=None if quantile is None else float(quantile), end_year=end,
                    flow_kind=spec.get("flow_kind"), description=str(spec.get("description", "")))


def _read_file(path: Path) -> list[Scenario]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"scenario file {path}: cannot read it as UTF-8 text ({exc})", parameter="scenario") from exc
    if path.suffix.lower() == ".json":
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"scenario file {path}: malformed JSON at line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg}", parameter="scenario") from None
    elif path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"scenario file {path}: malformed TOML: {exc}", parameter="scenario") from None
        if set(data) == {"scenario"} and isinstance(data["scenario"], list):
            data = data["scenario"]
    else:
        raise ConfigError(f"scenario file {path}: use a .json or .toml file", parameter="scenario")
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ConfigError(f"scenario file {path}: holds no scenario", parameter="scenario")
    return [parse_scenario(item, where=f"scenario file {path}" + (f" (item {k + 1})" if len(items) > 1 else ""),
                           default_id=path.stem if len(items) == 1 else f"{path.stem}_{k + 1}")
            for k, item in enumerate(items)]


def read_scenarios(path: str | Path) -> list[Scenario]:
    """Scenarios from a .json/.toml file or from every such file of a folder (sorted by name)."""
    folder = Path(path)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".json", ".toml"))
        if not files:
            raise ConfigError(f"scenario folder {folder} holds no .json or .toml file", parameter="scenario")
        return [s for f in files for s in _read_file(f)]
    if not folder.exists():
        raise ConfigError(f"scenario {path!s}: no such file, folder or built-in name (built-in: "
                          f"{', '.join(BUILTIN_SCENARIOS)}, topN)", parameter="scenario")
    return _read_file(folder)


def builtin_scenario(name: str, unit: str, origin: int) -> Scenario:
    """The built-in scenario ``name`` (hub, region, contiguous, topN) for ``unit``: factor 2 from ``origin + 1``."""
    if not (name in _RULES or _TOP.match(name)):
        raise ConfigError(f"unknown built-in scenario {name!r}; use {', '.join(BUILTIN_SCENARIOS)} or topN",
                          parameter="scenario")
    return Scenario(id=f"{name}", unit=str(unit), partners=name, start_year=origin + 1, factor=BUILTIN_FACTOR,
                    description=f"flows with the {name} partners x{BUILTIN_FACTOR:g} from {origin + 1}")


@dataclass(frozen=True)
class AppliedScenario:
    """A scenario resolved against a dataset at an origin year.

    ``partners``: partner unit ids; ``pair_factor``: the factor applied to each partner's two flows (1 where
    ``to_quantile`` leaves a pair unchanged); ``flow_year``: the observed flow year carried forward (latest
    <= origin); ``flows``: the dataset's flows with that (kind, year) replaced by the scenario's flows.
    """

    scenario: Scenario
    origin: int
    kind: str
    flow_year: int
    partners: tuple[str, ...]
    pair_factor: dict[str, float]
    flows: pd.DataFrame

    @property
    def id(self) -> str:
        return self.scenario.id


def _kind_and_year(ds: Dataset, sc: Scenario, origin: int) -> tuple[str, int]:
    kind = sc.flow_kind or ds.main_flow_kind
    kinds = set(ds.flows["kind"].astype(str))
    if kind is None or kind not in kinds:
        raise ConfigError(f"scenario {sc.id!r}: flow kind {kind!r} is not in the dataset's flows (kinds: "
                          f"{', '.join(sorted(kinds))})", parameter="scenario")
    if kind in ds.time_invariant_kinds:
        raise ConfigError(f"scenario {sc.id!r}: flow kind {kind!r} is time-invariant (e.g. contiguity) and cannot "
                          "be strengthened; use an observed kind such as migration", parameter="scenario")
    years = ds.flows.loc[ds.flows["kind"] == kind, "year"]
    earlier = years[years <= origin]
    if earlier.empty:
        raise ConfigError(f"scenario {sc.id!r}: no {kind} flows in or before the origin year {origin} (first: "
                          f"{int(years.min())}); scenarios need observed flows to strengthen", parameter="origin")
    return str(kind), int(earlier.max())


def _resolve_partners(ds: Dataset, sc: Scenario, kflows: pd.DataFrame, population: pd.Series) -> tuple[str, ...]:
    ids = set(ds.units["unit_id"])
    rule = sc.rule
    if rule is None:
        partners = tuple(p for p in sc.partners if p != sc.unit)
        unknown = [p for p in partners if p not in ids]
        if unknown:
            raise ConfigError(f"scenario {sc.id!r}: partner(s) {', '.join(unknown)} are not units of dataset "
                              f"{ds.name!r}", parameter="scenario")
    elif (top := _TOP.match(rule)) is not None:
        f = kflows[(kflows["origin"] == sc.unit) | (kflows["destination"] == sc.unit)]
        other = np.where(f["origin"] == sc.unit, f["destination"], f["origin"])
        volume = pd.Series(f["value"].to_numpy(float), index=other).groupby(level=0).sum()
        volume = volume.drop(sc.unit, errors="ignore")
        ranked = sorted(volume.items(), key=lambda kv: (-kv[1], str(kv[0])))  # ties -> lower id, reproducible
        partners = tuple(str(k) for k, _ in ranked[: int(top.group(1))])
    elif rule == "contiguous":
        contiguity = [k for k in ds.time_invariant_kinds if k in set(ds.flows["kind"])]
        if not contiguity:
            raise ConfigError(f"scenario {sc.id!r}: 'contiguous' needs a time-invariant contiguity flow kind",
                              parameter="scenario")
        c = ds.flows[ds.flows["kind"] == contiguity[0]]
        partners = tuple(sorted(set(c.loc[c["origin"] == sc.unit, "destination"])
                                | set(c.loc[c["destination"] == sc.unit, "origin"]) - {sc.unit}))
    elif rule == "hub":
        m = unit_tie_measures(kflows, ds.units, population, gravity=False, regions=False, path_sources=0,
                              dominance_size="population")
        hub = str(m.loc[sc.unit, "hub"])
        if hub == sc.unit:
            raise ConfigError(f"scenario {sc.id!r}: unit {sc.unit} is itself a Nystuen–Dacey hub (its largest "
                              "outflow goes to a smaller unit); use 'region' or 'topN' partners", parameter="scenario")
        partners = (hub,)
    else:  # region
        regions = functional_regions(kflows, list(ds.units["unit_id"]), population)
        label = regions.loc[sc.unit]
        partners = tuple(sorted(str(u) for u in regions.index[regions == label] if u != sc.unit))
    if not partners:
        raise ConfigError(f"scenario {sc.id!r}: the partner rule {rule or list(sc.partners)!r} gives no partner for "
                          f"unit {sc.unit}", parameter="scenario")
    return partners


def _quantile_factors(ds: Dataset, sc: Scenario, kflows: pd.DataFrame, partners: Sequence[str],
                      population: pd.Series) -> dict[str, float]:
    """Per partner, the factor raising the pair's strength vs the doubly constrained gravity model to the
    ``to_quantile`` of comparable pairs (same distance quintile and size-product tercile); >= 1."""
    units = ds.units.set_index("unit_id")
    index = pd.Index(ds.units["unit_id"])
    o = index.get_indexer(kflows["origin"].astype(str))
    d = index.get_indexer(kflows["destination"].astype(str))
    lat, lon = units["lat"].to_numpy(float), units["lon"].to_numpy(float)
    n = len(index)
    dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    fit = fit_gravity(o, d, kflows["value"].to_numpy(float), None, dist, n, "doubly")
    volume = np.zeros((n, n))
    np.add.at(volume, (o, d), kflows["value"].to_numpy(float))
    np.fill_diagonal(volume, 0.0)
    assert fit.origin_factor is not None and fit.dest_factor is not None
    expected = np.outer(fit.origin_factor, fit.dest_factor) * np.maximum(dist, fit.min_distance_km) ** -fit.gamma
    np.fill_diagonal(expected, 0.0)
    v2, e2 = volume + volume.T, expected + expected.T
    iu = np.triu_indices(n, 1)
    strength = np.log((v2[iu] + 0.5) / (e2[iu] + 0.5))
    pop = population.reindex(index).to_numpy(float)
    size = np.log(pop[iu[0]] * pop[iu[1]])
    dband = pd.qcut(dist[iu], 5, labels=False, duplicates="drop")
    sband = pd.qcut(size, 3, labels=False, duplicates="drop")
    table = pd.DataFrame({"i": iu[0], "j": iu[1], "s": strength, "db": dband, "sb": sband})
    target = table.groupby(["db", "sb"])["s"].quantile(float(sc.to_quantile or 0.5))
    i = index.get_loc(sc.unit)
    out: dict[str, float] = {}
    for p in partners:  # a handful of partners, not a loop over pairs
        j = index.get_loc(p)
        row = table[(table["i"] == min(i, j)) & (table["j"] == max(i, j))].iloc[0]
        want = float(target.loc[(row["db"], row["sb"])])
        v, e = v2[i, j], e2[i, j]
        goal = (e + 0.5) * math.exp(want) - 0.5
        out[p] = max(1.0, goal / v) if v > 0 else 1.0
    return out


def apply_scenario(ds: Dataset, sc: Scenario, origin: int) -> AppliedScenario:
    """Resolve ``sc`` at ``origin`` and return the dataset's flows with that scenario applied.

    Checks: the unit and partners exist, ``start_year`` is after the origin, the kind has observed flows in or
    before the origin. Pair flows missing in the data stay 0 (a factor multiplies what is there).
    """
    ids = set(ds.units["unit_id"])
    if sc.unit not in ids:
        raise ConfigError(f"scenario {sc.id!r}: unit {sc.unit!r} is not a unit of dataset {ds.name!r}",
                          parameter="scenario")
    if sc.start_year <= origin:
        raise ConfigError(f"scenario {sc.id!r}: start_year {sc.start_year} is not after the forecast origin "
                          f"{origin}; a scenario changes the future, so start it in {origin + 1} or later",
                          parameter="scenario")
    kind, flow_year = _kind_and_year(ds, sc, origin)
    is_group = (ds.flows["kind"] == kind) & (ds.flows["year"] == flow_year)
    kflows = ds.flows[is_group]
    pop_year = min(flow_year, int(ds.panel["year"].max()))
    population = ds.panel[ds.panel["year"] == pop_year].set_index("unit_id")[ds.mass_column]
    partners = _resolve_partners(ds, sc, kflows, population)
    if sc.factor is not None:
        factors = {p: float(sc.factor) for p in partners}
    else:
        factors = _quantile_factors(ds, sc, kflows, partners, population)
    origin_ids, dest_ids = kflows["origin"].astype(str).to_numpy(), kflows["destination"].astype(str).to_numpy()
    partner_of = np.where(origin_ids == sc.unit, dest_ids, np.where(dest_ids == sc.unit, origin_ids, ""))
    mult = pd.Series(partner_of).map(factors).fillna(1.0).to_numpy(float)
    changed = kflows.assign(value=kflows["value"].to_numpy(float) * mult)
    flows = pd.concat([ds.flows[~is_group], changed], ignore_index=True)
    return AppliedScenario(sc, origin, kind, flow_year, partners, factors, flows)


def scenario_state(ds: Dataset, applied: Iterable[AppliedScenario] | AppliedScenario, origin: int,
                   observed_measures: pd.DataFrame | None = None, only: Sequence[str] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The panel and flows a scenario implies at ``origin``: (panel, flows).

    The panel's network columns of the scenario's kind (``panel_measures``) change at the origin year by the
    difference between the unit tie measures of the scenario flows and of the observed flows of the carried
    flow year (exactly the recomputation, when the panel's values are those measures). ``observed_measures``
    may pass the measures of the observed flows (they do not depend on the scenario); ``only`` restricts the
    recomputation to those measures (e.g. the strengths, which skips the costly path centralities).
    """
    a = applied if isinstance(applied, AppliedScenario) else next(iter(applied))
    mapping = ds.panel_flow_measures(a.kind)
    if only is not None:
        mapping = {col: m for col, m in mapping.items() if m in set(only)}
    panel = ds.panel
    if mapping:
        measure_cols = sorted(set(mapping.values()))
        paths = bool({"betweenness", "closeness"} & set(measure_cols))
        before = observed_measures if observed_measures is not None else observed_flow_measures(ds, a.kind,
                                                                                              a.flow_year)
        new = a.flows[(a.flows["kind"] == a.kind) & (a.flows["year"] == a.flow_year)]
        if set(measure_cols) <= set(_STRENGTHS):
            after = _strengths(new, ds.units)  # the same sums unit_tie_measures takes, without the graph work
        else:
            after = unit_tie_measures(new, ds.units, None, gravity=False, regions=False,
                                      path_sources=None if paths else 0)
        delta = (after[measure_cols] - before[measure_cols]).astype(float)
        at = panel["year"] == origin
        panel = panel.copy()
        ids = panel.loc[at, "unit_id"]
        for col, measure in mapping.items():
            panel.loc[at, col] = panel.loc[at, col].to_numpy(float) + delta[measure].reindex(ids).to_numpy(float)
    return panel, a.flows


_STRENGTHS = ("in_strength", "out_strength", "total_strength")


def _strengths(flows: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """In/out/total strength per unit_id of one (kind, year): sums of off-diagonal flows (persons)."""
    index = pd.Index(units["unit_id"].astype(str))
    o, d = unit_positions(flows["origin"], index), unit_positions(flows["destination"], index)
    v = flows["value"].to_numpy(float)
    keep = (o >= 0) & (d >= 0) & (o != d)
    n = len(index)
    out_s = np.bincount(o[keep], weights=v[keep], minlength=n)
    in_s = np.bincount(d[keep], weights=v[keep], minlength=n)
    return pd.DataFrame({"in_strength": in_s, "out_strength": out_s, "total_strength": in_s + out_s},
                        index=pd.Index(index, name="unit_id"))


def observed_flow_measures(ds: Dataset, kind: str, year: int) -> pd.DataFrame:
    """Unit tie measures of the observed flows of one (kind, year), indexed by unit_id (exact path measures)."""
    f = ds.flows[(ds.flows["kind"] == kind) & (ds.flows["year"] == year)]
    return unit_tie_measures(f, ds.units, None, gravity=False, regions=False, path_sources=None)
