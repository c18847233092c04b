"""The leak-free feature panel on the bundled Korean data and on small synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiecast.cli import main
from tiecast.features import FEATURE_GROUPS, build_features, flow_sources, load_dataset, unit_tie_measures


@pytest.fixture(scope="module")
def korea():
    return load_dataset("korea")


@pytest.fixture(scope="module")
def korea_features(korea):
    return build_features(korea)


def _features_until(result, year: int) -> pd.DataFrame:
    frame = result.frame
    return frame[frame["year"] <= year].reset_index(drop=True)


def _perturb_after(ds, year: int, seed: int):
    """A copy of the dataset whose panel values and flows after ``year`` are all changed."""
    rng = np.random.default_rng(seed)
    panel = ds.panel.copy()
    later = panel["year"] > year
    numeric = [c for c in panel.columns if c not in ("unit_id", "year")]
    factors = rng.uniform(0.5, 1.5, size=(int(later.sum()), len(numeric)))
    panel.loc[later, numeric] = panel.loc[later, numeric].to_numpy(float) * factors
    flows = ds.flows.copy()
    late_flows = flows["year"] > year
    flows.loc[late_flows, "value"] = flows.loc[late_flows, "value"] * rng.uniform(0.1, 3.0, int(late_flows.sum()))
    # A flow year that did not exist, right after the cut: must not leak either.
    extra = flows[flows["kind"] == "migration"].head(500).assign(year=year + 1, value=12345.0)
    flows = pd.concat([flows, extra], ignore_index=True)
    return ds.__class__(**{**ds.__dict__, "panel": panel, "flows": flows})


@pytest.mark.parametrize("cut", [2016, 2023])
def test_changing_the_future_leaves_past_features_bit_identical(korea, korea_features, cut):
    perturbed = _perturb_after(korea, cut, seed=cut)
    changed = build_features(perturbed)
    pd.testing.assert_frame_equal(_features_until(korea_features, cut), _features_until(changed, cut),
                                  check_exact=True)
    # ...while the features after the cut do change (the perturbation is real).
    after = korea_features.frame[korea_features.frame["year"] > cut].reset_index(drop=True)
    after_changed = changed.frame[changed.frame["year"] > cut].reset_index(drop=True)
    assert not after.equals(after_changed)


def test_flow_sources_use_nearest_earlier_year_only(korea):
    sources = flow_sources(korea.flows, range(2008, 2026), korea.time_invariant_kinds)
    by_year = sources.groupby("year")["kind"].apply(set)
    assert by_year[2022] == {"contiguity"}
    assert by_year[2023] == {"contiguity", "trips"}
    assert by_year[2025] == {"contiguity", "trips", "migration"}
    trips_2024 = sources[(sources["year"] == 2024) & (sources["kind"] == "trips")]
    assert trips_2024["flow_year"].tolist() == [2023]
    assert (sources["flow_year"] <= sources["year"]).where(sources["source"] == "observed", True).all()


def test_flow_features_missing_before_any_flow_year(korea_features):
    frame = korea_features.frame.set_index(["unit_id", "year"])
    assert frame.loc[(slice(None), 2022), "trips_reciprocated_share"].isna().all()
    assert frame.loc[(slice(None), 2023), "trips_reciprocated_share"].notna().mean() > 0.95
    assert frame.loc[(slice(None), 2024), "migration_pagerank"].isna().all()
    assert frame.loc[(slice(None), 2025), "migration_pagerank"].notna().all()
    # Time-invariant contiguity and gravity work for every year.
    assert frame["contiguity_degree"].notna().all()
    assert frame["borrowed_size_gravity_log"].notna().all()
    assert (frame.loc[(slice(None), 2025), "trips_flow_age"] == 2).all()


def test_growth_is_never_computed_across_a_merger(korea_features):
    frame = korea_features.frame.set_index(["unit_id", "year"])
    cheongju = frame.loc["43110"]
    assert np.isnan(cheongju.loc[2014, "population_growth_1y"])
    assert np.isnan(cheongju.loc[2016, "population_growth_3y"])
    assert np.isfinite(cheongju.loc[2015, "population_growth_1y"])
    assert np.isfinite(cheongju.loc[2017, "population_growth_3y"])
    changwon = frame.loc["48120"]
    assert np.isnan(changwon.loc[2010, "population_growth_1y"])
    assert np.isnan(changwon.loc[2014, "population_growth_5y"])
    assert np.isfinite(changwon.loc[2015, "population_growth_5y"])


def test_fiscal_change_is_not_computed_across_the_2014_reclassification(korea_features):
    fiscal = korea_features.frame.set_index(["unit_id", "year"])["fiscal_indep_chg3"].unstack()
    assert fiscal[[2014, 2015, 2016]].isna().all().all()
    assert fiscal[2017].notna().mean() > 0.95
    assert fiscal[2013].notna().mean() > 0.9


def test_growth_features_match_the_panel(korea, korea_features):
    panel = korea.panel.set_index(["unit_id", "year"])["population"]
    frame = korea_features.frame.set_index(["unit_id", "year"])
    expected = np.log(panel.loc[("51150", 2020)] / panel.loc[("51150", 2017)])
    assert frame.loc[("51150", 2020), "population_growth_3y"] == pytest.approx(expected, rel=1e-12)


def test_catalog_documents_every_feature(korea_features):
    catalog = korea_features.catalog_frame()
    assert list(catalog["name"]) == list(korea_features.frame.columns[2:])
    assert catalog["name"].is_unique
    assert set(catalog["group"]) == set(FEATURE_GROUPS)
    assert catalog["description"].str.len().gt(5).all()
    assert catalog["unit"].str.len().gt(0).all()


def test_features_are_deterministic_and_scenario_path_is_identical(korea, korea_features):
    again = build_features(korea, flows=korea.flows.copy())
    pd.testing.assert_frame_equal(korea_features.frame, again.frame, check_exact=True)


def test_hypothetical_flows_change_only_through_the_same_computation(korea, korea_features):
    """A cooperation-style scenario: doubling migration between two units changes their tie features."""
    flows = korea.flows.copy()
    pair = (flows["kind"] == "migration") & flows["origin"].isin(["51150", "51130"]) & \
        flows["destination"].isin(["51150", "51130"])
    assert pair.sum() == 2
    flows.loc[pair, "value"] *= 2
    scenario = build_features(korea, flows=flows).frame.set_index(["unit_id", "year"])
    base = korea_features.frame.set_index(["unit_id", "year"])
    for unit in ("51150", "51130"):
        assert scenario.loc[(unit, 2025), "migration_reciprocal_strength_pk"] > \
            base.loc[(unit, 2025), "migration_reciprocal_strength_pk"]
    # Years before the flows exist are untouched.
    pd.testing.assert_frame_equal(base.loc[(slice(None), slice(2008, 2024)), :],
                                  scenario.loc[(slice(None), slice(2008, 2024)), :], check_exact=True)


def test_recomputed_network_measures_reproduce_the_panel(korea):
    """The panel's 2025 network columns were computed from the same migration OD as flows.csv."""
    flows = korea.flows[(korea.flows["kind"] == "migration") & (korea.flows["year"] == 2025)]
    measures = unit_tie_measures(flows, korea.units, None, gravity=False, regions=False, path_sources=None)
    panel = korea.panel[korea.panel["year"] == 2025].set_index("unit_id")
    pairs = {"in_strength": "in_strength", "out_strength": "out_strength", "in_degree_centrality": "in_deg_cent",
             "out_degree_centrality": "out_deg_cent", "degree_centrality": "deg_cent", "pagerank": "pagerank",
             "betweenness": "betweenness", "closeness": "closeness"}
    known = panel["in_strength"].notna()
    assert known.sum() >= 228  # the research panel lacks one unit's 2025 network row
    for ours, theirs in pairs.items():
        got = measures[ours].reindex(panel.index[known]).to_numpy(float)
        want = panel.loc[known, theirs].to_numpy(float)
        # panel.csv stores 8 significant digits
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=ours)


def test_dominant_flow_hubs_on_the_bundled_data(korea):
    flows = korea.flows[(korea.flows["kind"] == "migration") & (korea.flows["year"] == 2025)]
    pop = korea.panel[korea.panel["year"] == 2025].set_index("unit_id")["population"]
    measures = unit_tie_measures(flows, korea.units, pop, gravity=False, regions=False, path_sources=0,
                                 dominance_size="population")
    names = korea.unit_names()
    # Wanju-gun's strongest tie is its provincial hub Jeonju; Jeonju itself is subordinate to no
    # larger neighbour in its region except via the national hierarchy.
    assert measures.loc["52710", "dominant_partner"] == "52110"
    assert names[measures.loc["52710", "dominant_partner"]] == "전주시"
    # Counties around Chuncheon and Gangneung depend on them.
    assert measures.loc["51720", "dominant_partner"] == "51110"  # 홍천군 -> 춘천시
    # Every hub is a terminal: its own hub, level 0.
    hubs = measures[measures["hierarchy_level"] == 0]
    assert (hubs["hub"] == hubs.index).all()
    assert set(measures["hub"]) <= set(hubs.index)


def test_minimal_dataset_without_coordinates_builds_features(tmp_path: Path):
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "dataset.toml").write_text('name = "mini"\ntargets = ["population"]\n', encoding="utf-8")
    units = pd.DataFrame({"unit_id": ["A", "B", "C", "D"], "name": ["a", "b", "c", "d"]})
    units.to_csv(folder / "units.csv", index=False)
    years = range(2001, 2011)
    panel = pd.DataFrame([(u, y, 1000.0 * (i + 1) * (1.01 + 0.01 * i) ** (y - 2001))
                          for i, u in enumerate(units["unit_id"]) for y in years],
                         columns=["unit_id", "year", "population"])
    panel = panel[~((panel["unit_id"] == "B") & (panel["year"] == 2005))]  # a gap
    panel.to_csv(folder / "panel.csv", index=False)
    flows = pd.DataFrame({"origin": ["A", "B", "A", "C"], "destination": ["B", "A", "C", "D"],
                          "year": [2005, 2005, 2005, 2005], "kind": "commuting", "value": [10, 5, 3, 1]})
    flows.to_csv(folder / "flows.csv", index=False)
    ds = load_dataset(folder)
    result = build_features(ds)
    frame = result.frame.set_index(["unit_id", "year"])
    assert len(frame) == len(panel)
    # The gap at B/2005 makes B's 1-year growth at 2006 missing rather than a 2-year growth.
    assert np.isnan(frame.loc[("B", 2006), "population_growth_1y"])
    assert frame.loc[("A", 2006), "population_growth_1y"] == pytest.approx(np.log(1.01))
    assert frame.loc[(slice(None), 2004), "commuting_reciprocated_share"].isna().all()
    assert frame.loc[("A", 2005), "commuting_reciprocated_share"] == pytest.approx(2 * 5 / 18)
    assert "borrowed_size_gravity_log" not in frame.columns  # no coordinates, no gravity


@pytest.mark.slow
def test_cli_features_and_ties(tmp_path: Path, capsys):
    out = tmp_path / "features.parquet"
    assert main(["features", "--data", "korea", "--out", str(out), "--catalog", str(tmp_path / "cat.csv")]) == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns[:2]) == ["unit_id", "year"]
    assert len(frame) == 229 * 18
    assert main(["ties", "--unit", "52710", "--kind", "trips", "--top", "3", "--out",
                 str(tmp_path / "pairs.csv")]) == 0
    text = capsys.readouterr().out
    assert "완주군" in text and "전주시" in text
    assert "level 1 under the hub 전주시 (52110)" in text
    assert "functional region" in text and "북구 (광주광역시)" in text  # shared names carry their province
    pairs = pd.read_csv(tmp_path / "pairs.csv", dtype={"origin": str, "destination": str})
    assert {"reciprocity", "tie_index", "strength_log", "expected_gravity"} <= set(pairs.columns)
    assert main(["ties", "--unit", "중구"]) == 1
    err = capsys.readouterr().err
    assert "ambiguous" in err and "Traceback" not in err
    assert main(["ties", "--unit", "51150", "--kind", "bus"]) == 1
    assert "trips" in capsys.readouterr().err
    # Unwritable or unsupported outputs are reported before any work, without a traceback.
    assert main(["features", "--out", str(tmp_path / "features.xlsx")]) == 1
    assert "suffixes" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["ties", "--unit", "51150", "--out", str(blocker / "pairs.csv")]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


def test_metropolitan_cities_are_their_own_dominant_flow_hubs(korea):
    """At the city level (a metro's gu/gun merged), trips make Seoul and the big metros terminal hubs."""
    units = korea.units
    city = pd.Series(units["unit_id"].where(units["metro"] == 0, units["group"]).to_numpy(), index=units["unit_id"])
    flows = korea.flows[(korea.flows["kind"] == "trips") & (korea.flows["year"] == 2023)].copy()
    flows["origin"] = flows["origin"].map(city)
    flows["destination"] = flows["destination"].map(city)
    flows = flows.groupby(["origin", "destination", "year", "kind"], as_index=False)["value"].sum()
    pop = korea.panel[korea.panel["year"] == 2023].assign(city=lambda d: d["unit_id"].map(city))
    pop = pop.groupby("city")["population"].sum()
    cities = pd.DataFrame({"unit_id": sorted(city.unique())})
    m = unit_tie_measures(flows, cities, pop, gravity=False, regions=False, path_sources=0,
                          dominance_size="population")
    for metro in ("서울특별시", "부산광역시", "대구광역시", "광주광역시", "대전광역시"):
        assert m.loc[metro, "hub"] == metro and m.loc[metro, "hierarchy_level"] == 0
    # Satellites of the metros: Incheon leans on Seoul, Ulsan on Busan, Sejong on Daejeon.
    assert m.loc["인천광역시", "dominant_partner"] == "서울특별시"
    assert m.loc["울산광역시", "dominant_partner"] == "부산광역시"
    assert m.loc["세종특별자치시", "dominant_partner"] == "대전광역시"
    # A county around a provincial hub depends on that hub.
    assert m.loc["52710", "hub"] == "52110"  # 완주군 -> 전주시
