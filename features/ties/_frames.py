"""DataFrame front-ends of the tie indices: :func:`pair_indices`, :func:`gravity_fits`, :func:`unit_tie_measures`.

Inputs follow the dataset contract:

- ``flows``: columns ``origin, destination, year, kind, value`` (unit_id strings, value >= 0 persons or
  trips per year). Diagonal rows (origin == destination) are moves inside a unit and are dropped from
  every tie index and network measure; duplicated keys are summed.
- ``units``: columns ``unit_id, lat, lon`` (degrees, WGS84).
- ``population``: persons per unit, a ``pd.Series`` indexed by unit_id (one year) or by a
  ``(unit_id, year)`` MultiIndex (several years).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tiecast.common import ConfigError

from ._centrality import AUTO_EXACT_PATH_UNITS, pagerank, path_centralities, resolve_sources
from ._checks import FloatArray, IntArray
from ._composite import SMOOTHING, tie_components
from ._dominance import dominant_flows
from ._geometry import MIN_DISTANCE_KM, distance_matrix_km, log_distance
from ._gravity import GravityFit, GravityVolume, fit_gravity_logd, weighted_partner_mean
from ._inputs import flow_groups, flow_indices, pair_table, population_for, unit_frame
from ._regions import functional_regions

# Louvain on every tie is slow beyond ~1,000 units (46 s at 3,500 units / 1.3 M ties); "auto" then keeps
# each unit's heaviest ties only (3 s), which leaves the strong ties that shape regions.
AUTO_REGION_PARTNERS = 20

__all__ = ["AUTO_REGION_PARTNERS", "PAIR_COLUMNS", "UNIT_COLUMNS", "gravity_fits", "pair_indices",
           "unit_tie_measures"]


def _fit_both(
    o: IntArray, d: IntArray, y: FloatArray, mass: FloatArray, logd: NDArray[np.float32], n: int
) -> tuple[GravityFit, GravityFit]:
    fit_none = fit_gravity_logd(o, d, y, mass, logd, n, "none", min_distance_km=MIN_DISTANCE_KM)
    start = fit_none.gamma if np.isfinite(fit_none.gamma) else 1.0
    fit_doubly = fit_gravity_logd(o, d, y, None, logd, n, "doubly", min_distance_km=MIN_DISTANCE_KM,
                                   start_gamma=start)
    return fit_none, fit_doubly


@dataclass(frozen=True)
class _FittedGroup:
    """One (kind, year) of flows with both gravity fits: unit positions ``o``, ``d``, flows ``y``, the mass
    (persons per unit) and the unconstrained and doubly constrained fits."""

    kind: object
    year: object
    o: IntArray
    d: IntArray
    y: FloatArray
    mass: FloatArray
    unconstrained: GravityFit
    doubly: GravityFit


def _fitted_groups(flows: pd.DataFrame, uids: pd.Index, population: pd.Series,
                   logd: NDArray[np.float32]) -> Iterator[_FittedGroup]:
    """Per (kind, year) with flows: positions, flows, mass and both gravity fits."""
    for kind, year, g in flow_groups(flows):
        o, d, y = flow_indices(g, uids)
        if y.size == 0:
            continue
        mass = population_for(population, year, uids)
        if mass is None:
            raise ConfigError("population (persons per unit) is needed for the gravity models")
        yield _FittedGroup(kind, year, o, d, y, mass, *_fit_both(o, d, y, mass, logd, uids.size))


def gravity_fits(flows: pd.DataFrame, units: pd.DataFrame, population: pd.Series) -> pd.DataFrame:
    """Fitted gravity parameters per (kind, year) and constraint, one row each (see :class:`GravityFit`)."""
    frame = unit_frame(units, need_coords=True)
    uids = pd.Index(frame["unit_id"])
    logd = log_distance(distance_matrix_km(frame["lat"], frame["lon"]))
    rows = [{"kind": g.kind, "year": g.year, **fit.params()}
            for g in _fitted_groups(flows, uids, population, logd) for fit in (g.unconstrained, g.doubly)]
    return pd.DataFrame(rows)


PAIR_COLUMNS = (
    "kind", "year", "origin", "destination", "flow_ij", "flow_ji", "volume", "reciprocity", "distance_km",
    "expected_gravity", "expected_doubly", "strength_log", "strength_doubly_log", "is_dominant",
    "strength_share", "volume_share", "tie_index",
)


def pair_indices(flows: pd.DataFrame, units: pd.DataFrame, population: pd.Series) -> pd.DataFrame:
    """Tie indices of every ordered pair with a non-zero flow in at least one direction, per (kind, year).

    Columns (flows in the flows' unit, persons or trips per year):

    - ``flow_ij``, ``flow_ji`` (i = origin, j = destination), ``volume`` = flow_ij + flow_ji;
    - ``reciprocity`` (:func:`reciprocity_index`), ``distance_km`` (great circle between centroids);
    - ``expected_gravity`` / ``expected_doubly``: E[F_ij] under the unconstrained / doubly constrained
      gravity model fitted to that (kind, year) over all pairs (:func:`fit_gravity`);
    - ``strength_log`` = log((flow_ij + 0.5) / (expected_gravity + 0.5)), ``strength_doubly_log`` likewise
      with the doubly constrained expectation (0.5 keeps zero flows finite; > 0 = stronger than expected);
    - ``is_dominant``: j is i's Nystuen–Dacey dominant flow (largest outflow of i);
    - ``strength_share``, ``volume_share``, ``tie_index``: the components S, U and the composite RTI of the
      unordered pair (identical for (i, j) and (j, i)); see :func:`reciprocal_tie_index`.

    ``population`` (persons) is a Series by unit_id, or by (unit_id, year) when flows span several years.
    The fitted parameters are in ``result.attrs["gravity_fits"]`` (a list of dicts, one per kind, year and
    constraint); :func:`gravity_fits` returns them as a DataFrame. Rows are sorted by kind, year, origin,
    destination.
    """
    frame = unit_frame(units, need_coords=True)
    uids = pd.Index(frame["unit_id"])
    n = uids.size
    lat = frame["lat"].to_numpy(dtype=np.float64)
    lon = frame["lon"].to_numpy(dtype=np.float64)
    dist = distance_matrix_km(lat, lon)
    logd = log_distance(dist)
    ids = uids.to_numpy(dtype=object)
    out: list[pd.DataFrame] = []
    fits: list[dict[str, object]] = []
    for g in _fitted_groups(flows, uids, population, logd):
        fits += [{"kind": g.kind, "year": g.year, **f.params()} for f in (g.unconstrained, g.doubly)]
        o, d, y = g.o, g.d, g.y
        i, j, f_ij, f_ji = pair_table(o, d, y, n)
        dkm = dist[i, j].astype(np.float64)
        logd_pair = logd[i, j].astype(np.float64)
        e_g = g.unconstrained._expected_log(i, j, np.log(g.mass), logd_pair)
        e_d_ij = g.doubly._expected_log(i, j, None, logd_pair)
        e_d_ji = g.doubly._expected_log(j, i, None, logd_pair)
        total = np.asarray(np.bincount(o, weights=y, minlength=n) + np.bincount(d, weights=y, minlength=n),
                           dtype=np.float64)
        dom = dominant_flows(o, d, y, None, n)["dominant_partner"].to_numpy()
        # the one composite kernel, without the public functions' input checks (valid by construction)
        r, s, u, rti = tie_components(f_ij, f_ji, e_d_ij + e_d_ji, total[i], total[j])
        out.append(
            pd.DataFrame(
                {
                    "kind": g.kind,
                    "year": g.year,
                    "origin": ids[i],
                    "destination": ids[j],
                    "flow_ij": f_ij,
                    "flow_ji": f_ji,
                    "volume": f_ij + f_ji,
                    "reciprocity": r,
                    "distance_km": dkm,
                    "expected_gravity": e_g,
                    "expected_doubly": e_d_ij,
                    "strength_log": np.log((f_ij + SMOOTHING) / (e_g + SMOOTHING)),
                    "strength_doubly_log": np.log((f_ij + SMOOTHING) / (e_d_ij + SMOOTHING)),
                    "is_dominant": dom[i] == j,
                    "strength_share": s,
                    "volume_share": u,
                    "tie_index": rti,
                },
                copy=False,  # no block consolidation: it would copy every column once more
            )
        )
    result = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=list(PAIR_COLUMNS))
    result.attrs["gravity_fits"] = fits
    return result


UNIT_COLUMNS = (
    "in_strength", "out_strength", "total_strength", "in_degree_centrality", "out_degree_centrality",
    "degree_centrality", "pagerank", "betweenness", "closeness", "reciprocal_strength", "reciprocated_share",
    "partner_entropy", "dominant_share", "dominant_partner", "hub", "hierarchy_level",
    "borrowed_size_observed", "borrowed_size_gravity", "functional_region",
)


def unit_tie_measures(
    flows_one_group: pd.DataFrame,
    units: pd.DataFrame,
    population: pd.Series | None = None,
    *,
    path_sources: int | Literal["auto"] | None = "auto",
    seed: int = 0,
    gravity: bool = True,
    gravity_fit: GravityFit | None = None,
    regions: bool = True,
    previous_regions: pd.Series | None = None,
    region_max_partners: int | Literal["auto"] | None = "auto",
    dominance_size: Literal["inflow", "population"] = "inflow",
) -> pd.DataFrame:
    """Per-unit tie and network measures of one (kind, year) of flows, indexed by unit_id (all units).

    Graph: directed, one node per unit of ``units`` (n nodes, isolated units included), an edge i->j with
    weight F_ij for every off-diagonal flow > 0. Units without flows get 0 (or their own id / level 0).

    Reproduces the dongwoo panel's 2025 measures (networkx on this graph; column in brackets):

    - ``in_strength``, ``out_strength`` [in/out_strength]: sums of in/out flows; ``total_strength``
      [total_strength] = in + out. Exact.
    - ``in/out_degree_centrality``, ``degree_centrality`` [in/out_deg_cent, deg_cent]: number of partners
      with non-zero in/out flow (edge counts, unweighted) / (n - 1); degree = in + out, so up to 2.
      networkx ``*_degree_centrality``. Exact (max abs error 7e-16).
    - ``pagerank`` [pagerank]: networkx ``pagerank(G, alpha=0.85, weight="weight")`` – weighted by flow,
      uniform teleport, reimplemented with scipy.sparse (max rel error 1e-13).
    - ``betweenness`` [betweenness]: networkx ``betweenness_centrality(G, weight=1/flow, normalized=True)``
      (directed, /((n-1)(n-2))): shortest paths where edge length = 1/flow (max abs error 1e-16).
    - ``closeness`` [closeness]: networkx ``closeness_centrality(G, distance=1/flow)`` – incoming distances
      (from the other units to u), Wasserman–Faust improved: (r/sum of distances)(r/(n-1)), r = units
      reaching u; values of ~200 because 1/flow lengths are small (max rel error 1e-15).

    ``path_sources`` controls betweenness/closeness: None = exact (all units as Dijkstra sources), an int
    k = k units sampled with ``seed`` (networkx's k-sample estimator), 0 = skip (NaN), "auto" = exact up to
    1,000 units, 128 sampled sources beyond (~6 s at 3,500 units / 2.6 M edges).

    Tie measures (flows in persons/trips): ``reciprocal_strength`` = sum_j min(F_ij, F_ji);
    ``reciprocated_share`` = 2 reciprocal_strength / total_strength, the share of the unit's in+out flow
    matched by a counter-flow, in [0, 1]; ``partner_entropy`` = Shannon entropy of the partner shares
    V_ij / sum_k V_ik (V_ij = F_ij + F_ji) divided by log(number of partners), in [0, 1] (0 with < 2
    partners); ``dominant_share`` = max_j V_ij / sum_k V_ik (the top partner by volume).

    Nystuen–Dacey (:func:`dominant_flows`, size = total inflow or population per ``dominance_size``):
    ``dominant_partner`` (unit_id of the largest outflow, None without outflow), ``hub`` (unit_id of the
    terminal unit), ``hierarchy_level`` (0 = hub).

    Borrowed size (Alonso 1973), in persons: ``borrowed_size_observed`` = sum_j w_ij P_j with
    w_ij = V_ij / sum_k V_ik – the population of the typical partner, weighted by observed tie volume
    (0 without flows); ``borrowed_size_gravity`` = the same with w from the unconstrained gravity model's
    expected volume E_ij + E_ji over every other unit (defined without any flow). Needs ``population``
    and, unless ``gravity_fit`` is given, lat/lon; ``gravity=False`` skips it (NaN).

    ``functional_region``: :func:`functional_regions` (labels stable w.r.t. ``previous_regions``; hub =
    largest population if given, else volume); ``regions=False`` skips it (None).
    ``region_max_partners``: None = Louvain on every tie, an int k = on each unit's k heaviest ties,
    "auto" = every tie up to 1,000 units, 20 beyond.
    """
    uframe = unit_frame(units, need_coords=gravity)
    uids = pd.Index(uframe["unit_id"])
    n = uids.size
    if n < 2:
        raise ConfigError("unit_tie_measures needs at least 2 units")
    year: object = None
    for col in ("kind", "year"):
        if col in flows_one_group.columns and flows_one_group[col].nunique() > 1:
            raise ConfigError(f"flows_one_group must hold one (kind, year); found several values of '{col}'")
    if "year" in flows_one_group.columns and len(flows_one_group):
        year = flows_one_group["year"].iloc[0]
    if dominance_size not in ("inflow", "population"):
        raise ConfigError("dominance_size must be 'inflow' or 'population'")
    pop = population_for(population, year, uids)
    if pop is None and (dominance_size == "population" or gravity):
        raise ConfigError("population is needed for dominance_size='population' and gravity measures "
                          "(pass gravity=False to skip borrowed_size_gravity)")
    o, d, y = flow_indices(flows_one_group, uids)

    in_s = np.bincount(d, weights=y, minlength=n)
    out_s = np.bincount(o, weights=y, minlength=n)
    total = in_s + out_s
    res = pd.DataFrame(index=pd.Index(uids, name="unit_id"))
    res["in_strength"] = in_s
    res["out_strength"] = out_s
    res["total_strength"] = total
    in_deg = np.bincount(d, minlength=n).astype(np.float64, copy=False)
    out_deg = np.bincount(o, minlength=n).astype(np.float64, copy=False)
    res["in_degree_centrality"] = in_deg / (n - 1)
    res["out_degree_centrality"] = out_deg / (n - 1)
    res["degree_centrality"] = (in_deg + out_deg) / (n - 1)
    res["pagerank"] = pagerank(o, d, y, n)
    sources = resolve_sources(path_sources, n, seed)
    if sources is None:
        res["betweenness"] = np.nan
        res["closeness"] = np.nan
    else:
        bc, cl = path_centralities(o, d, y, n, sources)
        res["betweenness"] = bc
        res["closeness"] = cl

    i, j, f_ij, f_ji = pair_table(o, d, y, n)  # every (i, partner) with flow either way, from i's side
    vol = f_ij + f_ji
    recip = np.bincount(i, weights=np.minimum(f_ij, f_ji), minlength=n)
    res["reciprocal_strength"] = recip
    res["reciprocated_share"] = np.divide(2.0 * recip, total, out=np.zeros(n), where=total > 0)
    p = vol / total[i]
    partners = np.bincount(i, minlength=n)
    entropy = -np.bincount(i, weights=p * np.log(p), minlength=n)
    res["partner_entropy"] = np.divide(entropy, np.log(np.maximum(partners, 1)), out=np.zeros(n),
                                       where=partners > 1)
    top = np.zeros(n)
    np.maximum.at(top, i, vol)
    res["dominant_share"] = np.divide(top, total, out=np.zeros(n), where=total > 0)

    size = pop if dominance_size == "population" else None
    nd = dominant_flows(o, d, y, size, n)
    partner = nd["dominant_partner"].to_numpy()
    ids = uids.to_numpy(dtype=object)
    res["dominant_partner"] = pd.Series(np.where(partner >= 0, ids[np.maximum(partner, 0)], None),
                                        index=res.index, dtype=object)
    res["hub"] = ids[nd["hub"].to_numpy()]
    res["hierarchy_level"] = nd["hierarchy_level"].to_numpy()

    if pop is not None:
        res["borrowed_size_observed"] = np.divide(np.bincount(i, weights=vol * pop[j], minlength=n), total,
                                                  out=np.zeros(n), where=total > 0)
    else:
        res["borrowed_size_observed"] = np.nan
    if gravity and pop is not None:
        min_d = gravity_fit.min_distance_km if gravity_fit is not None else MIN_DISTANCE_KM
        logd = log_distance(distance_matrix_km(uframe["lat"], uframe["lon"]), min_d)
        fit = gravity_fit
        if fit is None:
            fit = fit_gravity_logd(o, d, y, pop, logd, n, "none", min_distance_km=min_d)
        if fit.constraint != "none" or fit.n_units != n:
            raise ConfigError("gravity_fit must be an unconstrained fit over the same units")
        res["borrowed_size_gravity"] = weighted_partner_mean(GravityVolume.from_fit(fit, logd, pop), pop)
    else:
        res["borrowed_size_gravity"] = np.nan

    if regions:
        region_size = pd.Series(pop, index=uids) if pop is not None else None
        if region_max_partners == "auto":
            region_max_partners = None if n <= AUTO_EXACT_PATH_UNITS else AUTO_REGION_PARTNERS
        res["functional_region"] = functional_regions(
            pd.DataFrame({"origin": ids[o], "destination": ids[d], "value": y}), list(uids), region_size,
            previous=previous_regions, seed=seed, max_partners=region_max_partners,
        ).to_numpy()
    else:
        res["functional_region"] = None
    return res
