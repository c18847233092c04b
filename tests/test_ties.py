"""Tests of features._ties: tie indices, gravity fits, dominant flows, regions and unit network measures."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from tiecast.common import ConfigError
from tiecast.features.ties import (
    GravityFit,
    composite_tie_index,
    distance_matrix_km,
    dominant_flows,
    fit_gravity,
    functional_regions,
    gravity_fits,
    haversine_km,
    pair_indices,
    reciprocal_tie_index,
    reciprocity_index,
    strength_share,
    unit_tie_measures,
    volume_share,
)

# The raw research files are committed under data/raw/korea (see their PROVENANCE.md).
DONGWOO = Path(__file__).resolve().parent.parent / "data" / "raw" / "korea" / "dongwoo-migration-panel"


def _flows(rows: list[tuple[str, str, float]], year: int = 2025, kind: str = "migration") -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["origin", "destination", "value"])
    return frame.assign(year=year, kind=kind)


# --------------------------------------------------------------------------------------------- reciprocity
def test_reciprocity_hand_values_and_zero_cases() -> None:
    r = reciprocity_index([10, 5, 0, 0, 3, 1.5], [10, 0, 7, 0, 1, 4.5])
    # balanced, one-way, one-way, no flow at all (defined 0), 1 - 2/4, 1 - 3/6
    np.testing.assert_allclose(r, [1.0, 0.0, 0.0, 0.0, 0.5, 0.5])
    assert not np.isnan(r).any()
    np.testing.assert_allclose(reciprocity_index(3, 1), reciprocity_index(1, 3))
    with pytest.raises(ConfigError):
        reciprocity_index([-1], [2])


def test_haversine_and_distance_matrix() -> None:
    one_degree = 2 * math.pi * 6371.0088 / 360
    assert haversine_km(0, 0, 0, 1) == pytest.approx(one_degree, rel=1e-12)
    assert haversine_km(0, 0, 90, 0) == pytest.approx(90 * one_degree, rel=1e-12)
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(33, 39, 40), rng.uniform(125, 130, 40)
    full = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    mat = distance_matrix_km(lat, lon)
    assert mat.dtype == np.float32
    np.testing.assert_allclose(mat, full, rtol=2e-6, atol=1e-3)
    np.testing.assert_array_equal(np.diag(mat), 0.0)


# --------------------------------------------------------------------------------------------- gravity
TRUE = {"log_k": -9.0, "alpha": 0.8, "beta": 0.9, "gamma": 1.5}


def _gravity_sample(n: int = 250, seed: int = 7) -> tuple[np.ndarray, ...]:
    """Flows Poisson-sampled from an exact unconstrained gravity model (all ordered pairs)."""
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(34.5, 38.3, n), rng.uniform(126.2, 129.4, n)
    pop = np.exp(rng.normal(10.5, 1.0, n))
    dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    lm = np.log(pop)
    mu = np.exp(TRUE["log_k"] + TRUE["alpha"] * lm[:, None] + TRUE["beta"] * lm[None, :]
                - TRUE["gamma"] * np.log(np.maximum(dist, 1.0)))
    np.fill_diagonal(mu, 0.0)
    y = rng.poisson(mu)
    o, d = np.nonzero(y)
    return lat, lon, pop, dist, o, d, y[o, d].astype(float)


@pytest.fixture(scope="module")
def gravity_data() -> tuple[np.ndarray, ...]:
    return _gravity_sample()


def test_unconstrained_gravity_recovers_parameters(gravity_data: tuple[np.ndarray, ...]) -> None:
    _, _, pop, dist, o, d, y = gravity_data
    n = pop.size
    fit = fit_gravity(o, d, y, pop, dist, n, "none")
    assert fit.converged
    assert fit.alpha == pytest.approx(TRUE["alpha"], abs=0.02)
    assert fit.beta == pytest.approx(TRUE["beta"], abs=0.02)
    assert fit.gamma == pytest.approx(TRUE["gamma"], abs=0.03)
    assert fit.log_k == pytest.approx(TRUE["log_k"], abs=0.4)
    assert fit.n_pairs == n * (n - 1)
    assert 0.8 < fit.pseudo_r2 <= 1.0
    # Poisson score equations over ALL pairs (zeros included): expected total and distance moment match
    oo, dd = np.nonzero(~np.eye(n, dtype=bool))
    mu = fit.expected(oo, dd, pop, dist[oo, dd])
    assert mu.sum() == pytest.approx(y.sum(), rel=1e-6)
    logd = np.log(np.maximum(dist, 1.0))
    assert mu @ logd[oo, dd] == pytest.approx(y @ logd[o, d], rel=1e-6)
    # zero rows, diagonal rows, duplicates and row order do not change the fit
    perm = np.random.default_rng(0).permutation(y.size)
    o2 = np.r_[o[perm], 0, 3, 5]
    d2 = np.r_[d[perm], 0, 4, 6]
    y2 = np.r_[y[perm], 99.0, 0.0, 0.0]
    again = fit_gravity(o2, d2, y2, pop, dist, n, "none")
    assert again.gamma == pytest.approx(fit.gamma, abs=1e-9)


def test_doubly_constrained_gravity_matches_margins(gravity_data: tuple[np.ndarray, ...]) -> None:
    _, _, pop, dist, o, d, y = gravity_data
    n = pop.size
    fit = fit_gravity(o, d, y, None, dist, n, "doubly")
    assert fit.converged
    assert fit.gamma == pytest.approx(TRUE["gamma"], abs=0.03)
    assert math.isnan(fit.alpha) and math.isnan(fit.log_k)
    oo, dd = np.nonzero(~np.eye(n, dtype=bool))
    mu = fit.expected(oo, dd, None, dist[oo, dd])
    out_obs = np.bincount(o, weights=y, minlength=n)
    in_obs = np.bincount(d, weights=y, minlength=n)
    np.testing.assert_allclose(np.bincount(oo, weights=mu, minlength=n), out_obs, rtol=1e-8, atol=1e-6)
    np.testing.assert_allclose(np.bincount(dd, weights=mu, minlength=n), in_obs, rtol=1e-8, atol=1e-6)
    # the remaining ML equation: same mean log distance as the observed flows
    logd = np.log(np.maximum(dist, 1.0))
    assert (mu @ logd[oo, dd]) / mu.sum() == pytest.approx((y @ logd[o, d]) / y.sum(), abs=1e-6)


def test_fit_gravity_rejects_bad_input(gravity_data: tuple[np.ndarray, ...]) -> None:
    _, _, pop, dist, o, d, y = gravity_data
    n = pop.size
    with pytest.raises(ConfigError):
        fit_gravity(o, d, y, pop, dist, n, "singly")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        fit_gravity(o, d, y, np.r_[0.0, pop[1:]], dist, n, "none")
    with pytest.raises(ConfigError):
        fit_gravity(o, d, -y, pop, dist, n, "none")
    with pytest.raises(ConfigError):
        fit_gravity(o, d, y, pop, dist[:-1], n, "none")


# --------------------------------------------------------------------------------------------- Nystuen–Dacey
# Two-hub textbook case: A (0) and E (4) are terminal points. B, C -> A; D -> B -> A; F -> E; G -> F -> E.
ND_FLOWS = [
    (0, 1, 30), (0, 2, 20), (0, 4, 25),  # A's largest flow goes to B, which is smaller: A is a hub
    (1, 0, 50), (1, 3, 10),
    (2, 0, 40), (2, 1, 5),
    (3, 1, 15), (3, 0, 8),
    (4, 5, 20), (4, 0, 15),  # E's largest flow goes to F, smaller than E: E is a hub
    (5, 4, 30),
    (6, 5, 12), (6, 4, 10),
]


def test_dominant_flows_two_hub_hierarchy() -> None:
    o, d, v = (np.array(c) for c in zip(*ND_FLOWS, strict=True))
    nd = dominant_flows(o, d, v, None, 7)
    # total inflows: A 113, B 50, C 20, D 10, E 65, F 32, G 0
    np.testing.assert_array_equal(nd["size"], [113, 50, 20, 10, 65, 32, 0])
    np.testing.assert_array_equal(nd["dominant_partner"], [1, 0, 0, 1, 5, 4, 5])
    np.testing.assert_array_equal(nd["subordinate"], [False, True, True, True, False, True, True])
    np.testing.assert_array_equal(nd["hub"], [0, 0, 0, 0, 4, 4, 4])
    np.testing.assert_array_equal(nd["hierarchy_level"], [0, 1, 1, 2, 0, 1, 2])
    assert nd.loc[1, "dominant_out_share"] == pytest.approx(50 / 60)
    # a size override (e.g. population) that makes B the largest unit turns A into B's subordinate
    nd_pop = dominant_flows(o, d, v, [5, 10, 1, 1, 3, 2, 1], 7)
    assert nd_pop.loc[0, "subordinate"] and nd_pop.loc[0, "hub"] == 1
    assert nd_pop.loc[1, "hierarchy_level"] == 0 and nd_pop.loc[3, "hub"] == 1


def test_dominant_flows_ties_and_isolated_units() -> None:
    # unit 0 sends 5 to both 1 and 2: the tie goes to the larger partner (2); unit 3 sends nothing
    nd = dominant_flows([0, 0, 1, 2], [1, 2, 2, 1], [5, 5, 1, 1], [1.0, 2.0, 3.0, 9.0], 4)
    assert nd.loc[0, "dominant_partner"] == 2
    assert nd.loc[3, "dominant_partner"] == -1 and nd.loc[3, "hub"] == 3
    assert nd.loc[3, "hierarchy_level"] == 0 and not nd.loc[3, "subordinate"]


# --------------------------------------------------------------------------------------------- unit measures
THREE = _flows([("a", "b", 10), ("b", "a", 30), ("a", "c", 20), ("b", "c", 5), ("c", "b", 15), ("c", "c", 99)])
THREE_UNITS = pd.DataFrame({"unit_id": ["a", "b", "c"], "lat": [0.0, 0.0, 0.0], "lon": [0.0, 1.0, 2.0]})
THREE_POP = pd.Series([100.0, 200.0, 300.0], index=["a", "b", "c"])


def test_borrowed_size_entropy_and_reciprocity_on_three_units() -> None:
    # a gravity fit with alpha = beta = 1, gamma = 2: expected volume weights of i are P_j / d_ij^2
    fit = GravityFit("none", 0.0, 1.0, 1.0, 2.0, math.nan, math.nan, math.nan, 6, 3, 0, 0.0, 0, True)
    m = unit_tie_measures(THREE, THREE_UNITS, THREE_POP, gravity_fit=fit, regions=False)
    # volumes: V_ab = 40, V_ac = 20, V_bc = 20; totals a 60, b 60, c 40 (the c->c move is dropped)
    np.testing.assert_allclose(m["total_strength"], [60, 60, 40])
    np.testing.assert_allclose(m["borrowed_size_observed"], [(40 * 200 + 20 * 300) / 60,
                                                             (40 * 100 + 20 * 300) / 60,
                                                             (20 * 100 + 20 * 200) / 40])
    # d_ac = 2 d_ab = 2 d_bc, so for a: weights 200/1 and 300/4 of b and c
    np.testing.assert_allclose(m["borrowed_size_gravity"], [(200 * 200 + 75 * 300) / 275,
                                                            (100 * 100 + 300 * 300) / 400,
                                                            (25 * 100 + 200 * 200) / 225], rtol=1e-5)
    np.testing.assert_allclose(m["reciprocal_strength"], [10, 15, 5])
    np.testing.assert_allclose(m["reciprocated_share"], [20 / 60, 30 / 60, 10 / 40])
    h_a = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(2)
    np.testing.assert_allclose(m["partner_entropy"], [h_a, h_a, 1.0])
    np.testing.assert_allclose(m["dominant_share"], [2 / 3, 2 / 3, 0.5])
    assert list(m["dominant_partner"]) == ["c", "a", "b"]
    np.testing.assert_allclose(m["in_degree_centrality"], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(m["degree_centrality"], [1.5, 2.0, 1.5])


def test_unit_measures_isolated_unit_and_errors() -> None:
    units = pd.concat([THREE_UNITS, pd.DataFrame({"unit_id": ["z"], "lat": [1.0], "lon": [1.0]})])
    pop = pd.concat([THREE_POP, pd.Series([50.0], index=["z"])])
    m = unit_tie_measures(THREE, units, pop, gravity=False)
    z = m.loc["z"]
    assert z["total_strength"] == 0 and z["pagerank"] > 0 and z["partner_entropy"] == 0
    assert z["hub"] == "z" and z["hierarchy_level"] == 0 and z["dominant_partner"] is None
    assert z["functional_region"] == "z"
    with pytest.raises(ConfigError):
        unit_tie_measures(pd.concat([THREE, THREE.assign(year=2024)]), units, pop, gravity=False)
    with pytest.raises(ConfigError):
        unit_tie_measures(_flows([("a", "q", 1.0)]), units, pop, gravity=False)
    with pytest.raises(ConfigError):
        unit_tie_measures(THREE, units.drop(columns="lat"), pop)


def _random_digraph(n: int, p: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, n)) < p) & ~np.eye(n, dtype=bool)
    mask[n - 1, :] = False  # a dangling unit (no outflow)
    mask[:, n - 2] = False  # a unit nobody moves to
    o, d = np.nonzero(mask)
    # small integer flows make many exactly tied shortest paths (1/2 = 1/4 + 1/4)
    vals = rng.choice([1, 2, 4, 8], size=o.size).astype(float)
    return _flows([(f"u{a:02d}", f"u{b:02d}", v) for a, b, v in zip(o, d, vals, strict=True)])


def test_network_measures_match_networkx_on_tied_paths() -> None:
    n = 30
    flows = _random_digraph(n, 0.15, seed=3)
    units = pd.DataFrame({"unit_id": [f"u{i:02d}" for i in range(n)]})
    m = unit_tie_measures(flows, units, None, gravity=False, regions=False, path_sources=None)
    g = nx.DiGraph()
    g.add_nodes_from(units["unit_id"])
    g.add_weighted_edges_from(flows[["origin", "destination", "value"]].itertuples(index=False))
    nx.set_edge_attributes(g, {(a, b): 1.0 / w for a, b, w in g.edges(data="weight")}, "length")
    ref = {
        "betweenness": nx.betweenness_centrality(g, weight="length"),
        "closeness": nx.closeness_centrality(g, distance="length"),
        "pagerank": nx.pagerank(g, weight="weight"),
        "degree_centrality": nx.degree_centrality(g),
        "in_degree_centrality": nx.in_degree_centrality(g),
    }
    for col, values in ref.items():
        np.testing.assert_allclose(m[col], pd.Series(values)[m.index], rtol=1e-10, atol=1e-14, err_msg=col)
    # k-sampled path measures: seeded, and with every unit sampled they equal the exact values
    full = unit_tie_measures(flows, units, None, gravity=False, regions=False, path_sources=n)
    np.testing.assert_allclose(full["betweenness"], m["betweenness"], rtol=1e-12)
    s1 = unit_tie_measures(flows, units, None, gravity=False, regions=False, path_sources=10, seed=4)
    s2 = unit_tie_measures(flows, units, None, gravity=False, regions=False, path_sources=10, seed=4)
    pd.testing.assert_frame_equal(s1, s2)
    skip = unit_tie_measures(flows, units, None, gravity=False, regions=False, path_sources=0)
    assert skip["betweenness"].isna().all()


# --------------------------------------------------------------------------------------------- composite
def test_composite_index_bounded_monotone_and_zero_for_one_way() -> None:
    rng = np.random.default_rng(0)
    r, s, u = rng.random((3, 10_000))
    rti = composite_tie_index(r, s, u)
    assert rti.min() >= 0 and rti.max() <= 1
    assert composite_tie_index(1, 1, 1) == pytest.approx(1.0)
    for k in range(3):  # strictly increasing in each component when the others are positive
        parts = [r, s, u]
        up = list(parts)
        up[k] = np.minimum(parts[k] + 0.05, 1.0)
        grew = up[k] > parts[k]
        assert np.all(composite_tie_index(*up)[grew] > rti[grew])
    with pytest.raises(ConfigError):
        composite_tie_index(1.2, 0.5, 0.5)
    # from flows: one-way and absent ties score 0; symmetric in (i, j)
    one_way = reciprocal_tie_index(10, 0, 3, 3, 50, 40)
    assert one_way == 0
    a = reciprocal_tie_index([10, 7], [4, 2], [3, 1], [2, 5], [50, 30], [40, 60])
    b = reciprocal_tie_index([4, 2], [10, 7], [2, 5], [3, 1], [40, 60], [50, 30])
    np.testing.assert_allclose(a, b)


def test_strength_and_volume_components() -> None:
    assert strength_share(10, 10) == pytest.approx(0.5)
    assert strength_share(0, 0) == pytest.approx(0.5)  # no flow where none is expected: neutral
    s = strength_share([1, 10, 100], 10)
    assert np.all(np.diff(s) > 0) and s.max() < 1
    assert np.all(np.diff(strength_share(10, [1, 10, 100])) < 0)
    # U rises with the pair volume even though the partners' totals rise with it
    v = np.array([0.0, 1, 10, 100, 1000])
    u = volume_share(v, 50 + v, 80 + v)
    assert u[0] == 0 and np.all(np.diff(u) > 0) and u.max() < 1
    assert volume_share(5, 5, 5) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        volume_share(10, 5, 20)


# --------------------------------------------------------------------------------------------- regions
def _two_clusters(seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Two groups of 6 units, strong flows inside a group, weak flows across (rows shuffled)."""
    rng = np.random.default_rng(seed)
    ids = [f"n{i:02d}" for i in range(12)]
    rows = []
    for i in range(12):
        for j in range(12):
            if i != j:
                same = (i < 6) == (j < 6)
                rows.append((ids[i], ids[j], float(rng.integers(50, 100) if same else rng.integers(0, 3))))
    frame = _flows(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True), ids


def test_functional_region_labels_are_stable_across_years() -> None:
    flows_1, ids = _two_clusters(1)
    pop_1 = pd.Series(np.arange(12, 0, -1, dtype=float) * 1000, index=ids)  # n00 and n06 largest
    year_1 = functional_regions(flows_1, ids, pop_1)
    assert year_1.nunique() == 2
    assert set(year_1) == {"n00", "n06"} and year_1["n03"] == "n00" and year_1["n09"] == "n06"
    # next year: other flows, rows in another order, and n05 / n11 became the largest units
    flows_2, _ = _two_clusters(2)
    pop_2 = pop_1.copy()
    pop_2[["n05", "n11"]] = 1e6
    fresh = functional_regions(flows_2, ids, pop_2)
    assert set(fresh) == {"n05", "n11"}  # without history the labels follow the new hubs
    kept = functional_regions(flows_2, ids, pop_2, previous=year_1)
    pd.testing.assert_series_equal(kept, year_1)
    # arbitrary previous names are carried over by overlap too
    named = functional_regions(flows_2, list(reversed(ids)), pop_2,
                               previous=year_1.map({"n00": "west", "n06": "east"}))
    assert set(named[ids[:6]]) == {"west"} and set(named[ids[6:]]) == {"east"}


def test_functional_regions_new_region_gets_unique_label() -> None:
    flows_1, ids = _two_clusters(1)
    pop = pd.Series(np.arange(12, 0, -1, dtype=float), index=ids)
    previous = pd.Series("n00", index=ids)  # last year everything was one region named after n00
    labels = functional_regions(flows_1, ids, pop, previous=previous)
    assert labels.nunique() == 2 and "n00" in set(labels)
    assert labels["n06"] == "n06"


# --------------------------------------------------------------------------------------------- pair indices
@pytest.fixture(scope="module")
def small_panel() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    lat, lon, pop, _, o, d, y = _gravity_sample(n=60, seed=11)
    ids = np.array([f"{41000 + i}" for i in range(60)])
    flows = pd.concat([_flows(list(zip(ids[o], ids[d], y, strict=True)), year=yr) for yr in (2024, 2025)])
    units = pd.DataFrame({"unit_id": ids, "lat": lat, "lon": lon})
    population = pd.concat({yr: pd.Series(pop, index=ids) for yr in (2024, 2025)}).swaplevel()
    return flows.reset_index(drop=True), units, population


def test_pair_indices_columns_and_consistency(small_panel: tuple[pd.DataFrame, pd.DataFrame, pd.Series]) -> None:
    flows, units, population = small_panel
    p = pair_indices(flows, units, population)
    expected_cols = {"kind", "year", "origin", "destination", "flow_ij", "flow_ji", "volume", "reciprocity",
                     "distance_km", "expected_gravity", "expected_doubly", "strength_log",
                     "strength_doubly_log", "is_dominant", "tie_index"}
    assert expected_cols <= set(p.columns)
    one = p[p["year"] == 2025]
    obs = flows[flows["year"] == 2025]
    keys = set(zip(obs["origin"], obs["destination"], strict=True))
    both = keys | {(b, a) for a, b in keys}
    assert len(one) == len(both) and (one["volume"] > 0).all()
    # flow_ji is the reverse row's flow_ij, and the unordered-pair columns agree
    rev = one.set_index(["destination", "origin"])
    fwd = one.set_index(["origin", "destination"])
    np.testing.assert_allclose(fwd["flow_ji"], rev.loc[fwd.index, "flow_ij"])
    np.testing.assert_allclose(fwd["tie_index"], rev.loc[fwd.index, "tie_index"])
    assert one["tie_index"].between(0, 1).all() and one["reciprocity"].between(0, 1).all()
    # exactly one dominant partner per unit that sends flow
    assert one.loc[one["flow_ij"] > 0].groupby("origin")["is_dominant"].sum().eq(1).all()
    i_row = one.iloc[0]
    assert i_row["strength_log"] == pytest.approx(
        math.log((i_row["flow_ij"] + 0.5) / (i_row["expected_gravity"] + 0.5)))
    fits = pd.DataFrame(p.attrs["gravity_fits"])
    assert len(fits) == 4 and set(fits["constraint"]) == {"none", "doubly"}
    again = gravity_fits(flows, units, population)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), fits, check_dtype=False)


def test_outputs_are_deterministic(small_panel: tuple[pd.DataFrame, pd.DataFrame, pd.Series]) -> None:
    flows, units, population = small_panel
    shuffled = flows.sample(frac=1.0, random_state=5)
    pd.testing.assert_frame_equal(pair_indices(flows, units, population),
                                  pair_indices(shuffled, units.iloc[::-1], population))
    one = flows[flows["year"] == 2025]
    a = unit_tie_measures(one, units, population)
    b = unit_tie_measures(one.sample(frac=1.0, random_state=2), units, population)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------- real data
PANEL_MEASURES = {  # ours -> dongwoo panel column, tolerance (max abs, max rel)
    "in_strength": ("in_strength", 0.0, 0.0),
    "out_strength": ("out_strength", 0.0, 0.0),
    "total_strength": ("total_strength", 0.0, 0.0),
    "in_degree_centrality": ("in_deg_cent", 1e-12, 1e-12),
    "out_degree_centrality": ("out_deg_cent", 1e-12, 1e-12),
    "degree_centrality": ("deg_cent", 1e-12, 1e-12),
    "pagerank": ("pagerank", 1e-15, 1e-11),
    "betweenness": ("betweenness", 1e-15, 1e-10),
    "closeness": ("closeness", 1e-10, 1e-13),
}


@pytest.fixture(scope="module")
def dongwoo_2025() -> tuple[pd.DataFrame, pd.DataFrame]:
    """2025 migration OD on the 229 panel units and the panel's 2025 network measures (raw files)."""
    with gzip.open(DONGWOO / "od_flow_2025_all.json.gz", "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    od = pd.DataFrame(doc["data"]).astype({"ori": str, "des": str})
    harmonize = pd.read_csv(DONGWOO / "sgg_harmonize_map.csv", dtype=str)
    mapping = dict(zip(harmonize["raw_code"], harmonize["panel_code"], strict=True))  # 44730 -> NaN: dropped
    od["origin"] = od["ori"].map(lambda c: mapping.get(c, c))
    od["destination"] = od["des"].map(lambda c: mapping.get(c, c))
    od = od.dropna(subset=["origin", "destination"])
    flows = od.groupby(["origin", "destination"], as_index=False)["flow"].sum().rename(columns={"flow": "value"})
    panel = pd.read_csv(DONGWOO / "analysis_dataset_FINAL_v4.csv.gz", dtype={"region_code": str})
    panel = panel[panel["year"] == 2025].set_index("region_code")
    assert set(flows["origin"]) | set(flows["destination"]) == set(panel.index)
    return flows.assign(year=2025, kind="migration"), panel


def test_reproduces_dongwoo_2025_network_measures(dongwoo_2025: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    flows, panel = dongwoo_2025
    units = pd.DataFrame({"unit_id": sorted(panel.index)})
    ours = unit_tie_measures(flows, units, panel["population"], gravity=False, regions=False,
                             path_sources=None)
    ref = panel.reindex(ours.index)
    known = ref["pagerank"].notna()  # the panel lacks Changwon's (48110) 2025 network measures
    assert known.sum() == 228
    for col, (ref_col, abs_tol, rel_tol) in PANEL_MEASURES.items():
        a, b = ours.loc[known, col].to_numpy(), ref.loc[known, ref_col].to_numpy()
        np.testing.assert_allclose(a, b, rtol=rel_tol, atol=abs_tol, err_msg=col)
