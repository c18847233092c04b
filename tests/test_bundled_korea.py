"""The bundled dataset ``korea``: units, national totals, breaks, flows, income, flags, reproducibility.

Reference figures are official statistics or come from the raw source files in data/raw/korea/, never
from the built output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tiecast.features import check_dataset

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "data" / "korea"
RAW = REPO / "data" / "raw" / "korea"

# Official resident-registration population (주민등록인구, MOIS), 31 December.
OFFICIAL_POPULATION = {2014: 51_327_916, 2020: 51_829_023, 2023: 51_325_329}



@pytest.fixture(scope="module")
def nts_b02() -> pd.DataFrame:
    """Raw NTS rows of item B02 (taxable total pay): area code, name, year, measure, value."""
    raw = pd.read_csv(RAW / "jongin-income" / "kosis_income_sigungu_yearly.csv.gz", dtype={"C1": str})
    return raw[raw["C2"] == "B02"]


def _by_id(korea) -> pd.DataFrame:
    return korea.units.set_index("unit_id")


def _population(korea) -> pd.DataFrame:
    return korea.panel.pivot(index="unit_id", columns="year", values="population")


# --------------------------------------------------------------------------------------------- units


def test_units(korea):
    units = korea.units
    assert len(units) == 229
    assert units["unit_id"].is_unique
    assert units["unit_id"].str.fullmatch(r"\d{5}").all()
    assert set(units["kind"]) == {"si", "gun", "gu"}
    # Kind follows the Korean name's last syllable (시/군/구).
    assert (units["name"].str[-1].map({"시": "si", "군": "gun", "구": "gu"}) == units["kind"]).all()


def test_changwon_has_its_current_code(korea):
    by_id = _by_id(korea)
    assert by_id.loc["48120", "name"] == "창원시"
    assert "48110" not in by_id.index
    assert "48110" not in set(korea.panel["unit_id"])
    assert "48110" not in set(korea.flows["origin"]) | set(korea.flows["destination"])


@pytest.mark.parametrize(("unit_id", "name", "province"), [
    ("11110", "종로구", "서울특별시"),
    ("51150", "강릉시", "강원특별자치도"),
    ("36110", "세종특별자치시", "세종특별자치시"),
    ("50110", "제주시", "제주특별자치도"),
    ("27720", "군위군", "대구광역시"),  # moved from 경북 to 대구 in 2023
    ("52110", "전주시", "전북특별자치도"),
])
def test_korean_names(korea, unit_id, name, province):
    row = _by_id(korea).loc[unit_id]
    assert (row["name"], row["group"]) == (name, province)


def test_coordinates_inside_korea(korea):
    units = korea.units
    # Mainland, Jeju (33.2°N), Ulleung/Dokdo (130.9°E) and the Yellow Sea islands (124.6°E).
    assert units["lat"].between(33.0, 38.7).all() and units["lon"].between(124.5, 131.0).all()
    by_id = _by_id(korea)
    assert by_id.loc["50130", "lat"] < by_id.loc["50110", "lat"] < 34  # 서귀포 south of 제주시, both on Jeju
    assert by_id.loc["51150", "lon"] > by_id.loc["11110", "lon"]  # 강릉 east of Seoul
    assert by_id.loc["11110", ["lat", "lon"]].between([37.5, 126.9], [37.7, 127.1]).all()


# --------------------------------------------------------------------------------------------- population


@pytest.mark.parametrize(("year", "official"), sorted(OFFICIAL_POPULATION.items()))
def test_national_population_matches_official_total(korea, year, official):
    total = korea.panel.loc[korea.panel["year"] == year, "population"].sum()
    assert abs(total / official - 1) < 0.001, f"{year}: {total:,.0f} vs official {official:,}"


def test_national_population_is_smooth_2014_2024(korea):
    """No year 2014–2024 leaves the neighbourhood of the official figures: year-on-year change < 1%."""
    totals = korea.panel.groupby("year")["population"].sum()
    assert korea.panel.loc[korea.panel["year"].between(2013, 2024), "population"].notna().all()
    change = totals.pct_change().loc[2014:2024]
    assert len(change) == 11
    assert (change.abs() < 0.01).all(), change[change.abs() >= 0.01]


def test_population_complete_and_positive(korea):
    pop = _population(korea)
    assert pop.shape == (229, 18) and list(pop.columns) == list(range(2008, 2026))
    assert pop.notna().all().all() and (pop > 0).all().all()


@pytest.mark.parametrize(("unit_id", "year"), [("43110", 2014), ("48120", 2010), ("36110", 2012)])
def test_merger_breaks_are_flagged(korea, unit_id, year):
    panel = korea.panel.set_index(["unit_id", "year"])
    assert korea.break_column == "boundary_break"
    assert panel.loc[(unit_id, year), "boundary_break"] == 1
    # The flag explains a real jump of the unbackcast series (> 22%, the loader's threshold).
    before, after = panel.loc[(unit_id, year - 1), "population"], panel.loc[(unit_id, year), "population"]
    assert abs(math.log(after / before)) > 0.2


def test_break_flags_are_rare_and_binary(korea):
    flags = korea.panel["boundary_break"]
    assert set(flags.unique()) <= {0, 1}
    flagged = korea.panel.loc[flags == 1, ["unit_id", "year"]]
    assert len(flagged) <= 10 and (flagged["year"] > 2008).all()  # first year has nothing to break from


def test_no_unflagged_jumps_and_no_errors():
    problems = check_dataset("korea")
    assert [p for p in problems if p.severity == "error"] == []
    assert not [p for p in problems if "jumps" in p.message], [str(p) for p in problems]


def test_breaks_cover_every_large_jump(korea):
    """Independent of the loader: every > 22% year-on-year population jump is flagged or reviewed."""
    panel = korea.panel.sort_values(["unit_id", "year"])
    jump = np.log(panel["population"]).groupby(panel["unit_id"]).diff().abs()
    reviewed = set(korea.meta["breaks"]["reviewed"])
    large = panel[jump > 0.2]
    assert len(large) >= 3  # the known mergers
    for row in large.itertuples():
        assert row.boundary_break == 1 or f"{row.unit_id}@{row.year}" in reviewed, (row.unit_id, row.year)


# --------------------------------------------------------------------------------------------- flows


def test_flow_kinds_and_endpoints(korea):
    flows, ids = korea.flows, set(korea.units["unit_id"])
    assert set(flows["kind"]) == {"migration", "trips", "contiguity"}
    assert set(flows["origin"]) <= ids and set(flows["destination"]) <= ids
    assert (flows["value"] > 0).all()
    assert not flows.duplicated(["origin", "destination", "year", "kind"]).any()
    assert korea.time_invariant_kinds == ["contiguity"]


def test_contiguity_is_symmetric(korea):
    cont = korea.flows[korea.flows["kind"] == "contiguity"]
    pairs = set(zip(cont["origin"], cont["destination"], strict=True))
    assert pairs == {(d, o) for o, d in pairs}
    assert all(o != d for o, d in pairs)
    assert (cont["value"] == 1).all()
    neighbours = cont.groupby("origin")["destination"].agg(set)
    assert neighbours["50110"] == {"50130"}  # Jeju island: its two cities touch only each other
    assert {"11140", "11290", "11410"} <= neighbours["11110"]  # 종로구 borders 중구, 성북구, 서대문구
    assert "11680" not in neighbours["11110"]  # ... but not 강남구 across the Han river
    # The source's "fixed" weights link islands such as 울릉군 to the mainland: nobody is isolated.
    assert len(neighbours) == 229


def test_no_diagonal_flows(korea):
    flows = korea.flows
    assert not (flows["origin"] == flows["destination"]).any()


def test_migration_total_matches_raw_od(korea, build_korea):
    """Aggregating 일반구 to cities keeps every move between two different units."""
    import gzip
    import json

    with gzip.open(RAW / "dongwoo-migration-panel" / "od_flow_2025_all.json.gz", "rt", encoding="utf-8") as fh:
        raw = pd.DataFrame(json.load(fh)["data"])
    migration = korea.flows[korea.flows["kind"] == "migration"]
    assert set(migration["year"]) == {2025}
    # Off-diagonal raw moves minus moves between 일반구 of one city (those become within-unit moves).
    off_diagonal = raw.loc[raw["ori"] != raw["des"], "flow"].sum()
    assert migration["value"].sum() <= off_diagonal
    assert migration["value"].sum() > 0.9 * off_diagonal


# --------------------------------------------------------------------------------------------- income


def test_income_covers_all_units_2016_2023(korea):
    panel = korea.panel
    inside = panel["year"].between(2016, 2023)
    for col in ("income", "earners", "pay_per_earner"):
        assert panel.loc[inside, col].notna().all(), col
        assert panel.loc[~inside, col].isna().all(), col
    assert panel.loc[inside].groupby("year")["unit_id"].nunique().eq(229).all()


def test_income_crosswalk_adds_up_to_the_nation(korea, nts_b02):
    """Sum of the 229 units' filers = national total minus filers without a province (A18), per year.

    The source's only inconsistency: in 2017 Incheon's gu add up to 234 more filers than the province.
    """
    persons = nts_b02[nts_b02["ITM_ID"] == "T001"].pivot(index="PRD_DE", columns="C1", values="DT")
    expected = persons["A00"] - persons["A18"]
    units_sum = korea.panel.groupby("year")["earners"].sum().loc[2016:2023]
    diff = (units_sum - expected).to_dict()
    assert diff.pop(2017) == 234
    assert diff == {year: 0 for year in range(2016, 2024) if year != 2017}


def test_sejong_income_comes_from_its_province_row(korea, nts_b02):
    persons = nts_b02[(nts_b02["C1"] == "A08") & (nts_b02["ITM_ID"] == "T001")].set_index("PRD_DE")["DT"]
    assert len(persons) == 8
    sejong = korea.panel[korea.panel["unit_id"] == "36110"].set_index("year")["earners"].loc[2016:2023]
    assert sejong.astype(int).to_dict() == persons.to_dict()


def test_income_values_are_plausible(korea):
    panel = korea.panel[korea.panel["year"].between(2016, 2023)]
    # Per resident (all ages): the poorest aging rural gun reach 4.6 (고흥군 2016, 17% of residents file).
    assert panel["income"].between(4.0, 60.0).all(), panel["income"].describe()
    assert panel["pay_per_earner"].between(20.0, 120.0).all(), panel["pay_per_earner"].describe()
    assert panel["earner_share"].between(10.0, 70.0).all()
    assert (panel["earners"] < panel["population"]).all()
    # Derived columns agree with each other.
    np.testing.assert_allclose(panel["income"] / panel["pay_per_earner"], panel["earner_share"] / 100, rtol=1e-6)
    # 서초구/강남구 pay more per filer than any 군 in 2023.
    y2023 = panel[panel["year"] == 2023].merge(korea.units[["unit_id", "kind"]])
    top = y2023.set_index("unit_id")["pay_per_earner"]
    assert min(top["11650"], top["11680"]) > y2023.loc[y2023["kind"] == "gun", "pay_per_earner"].max()


def test_jeju_city_has_more_earners_than_seogwipo_every_year(korea):
    panel = korea.panel[korea.panel["year"].between(2016, 2023)]
    earners = panel.pivot(index="year", columns="unit_id", values="earners")
    assert (earners["50110"] > earners["50130"]).all(), earners[["50110", "50130"]]
    assert earners.loc[2023, "50110"] > 2 * earners.loc[2023, "50130"]


def test_jeju_2023_is_swapped_in_the_raw_source(nts_b02):
    """Guards the premise of the repair: the raw file itself has 서귀포시 > 제주시 in 2023 only."""
    persons = nts_b02[(nts_b02["ITM_ID"] == "T001") & nts_b02["C1_NM"].isin(["제주시", "서귀포시"])]
    wide = persons.pivot(index="PRD_DE", columns="C1_NM", values="DT")
    swapped = wide.index[wide["서귀포시"] > wide["제주시"]].tolist()
    assert swapped == [2023]


def test_repair_jeju_swap(build_korea):
    index = pd.MultiIndex.from_tuples(
        [("50110", 2022), ("50130", 2022), ("50110", 2023), ("50130", 2023), ("11110", 2023)],
        names=["unit_id", "year"],
    )
    wide = pd.DataFrame({"earners": [300.0, 100.0, 110.0, 310.0, 50.0],
                         "earned_income_total": [9000.0, 2800.0, 3100.0, 9500.0, 4000.0]}, index=index)
    before = wide.copy()
    fixed = build_korea.repair_jeju_swap(wide)
    pd.testing.assert_frame_equal(wide, before)  # input untouched
    assert fixed.loc[("50110", 2023)].tolist() == [310.0, 9500.0]
    assert fixed.loc[("50130", 2023)].tolist() == [110.0, 3100.0]
    pd.testing.assert_frame_equal(fixed.loc[[("50110", 2022), ("50130", 2022), ("11110", 2023)]],
                                  before.loc[[("50110", 2022), ("50130", 2022), ("11110", 2023)]])
    # Idempotent: a repaired (consistent) frame passes through unchanged.
    pd.testing.assert_frame_equal(build_korea.repair_jeju_swap(fixed), fixed)


def test_repair_jeju_swap_with_one_city_missing(build_korea):
    index = pd.MultiIndex.from_tuples([("50130", 2023), ("50110", 2022), ("50130", 2022)], names=["unit_id", "year"])
    wide = pd.DataFrame({"earners": [500.0, 10.0, 20.0]}, index=index)
    fixed = build_korea.repair_jeju_swap(wide)
    assert fixed.loc[("50130", 2023), "earners"] == 500.0  # nothing to swap with
    assert fixed.loc[("50110", 2022), "earners"] == 20.0  # the complete year is repaired


# --------------------------------------------------------------------------------------------- flags


def test_region_flags_follow_province_codes(korea):
    prefix = korea.units["unit_id"].str[:2]
    assert (korea.units["capital_region"] == prefix.isin(["11", "28", "41"]).astype(int)).all()
    metros = ["11", "26", "27", "28", "29", "30", "31", "36"]  # 특별시, 6 광역시, 세종
    assert (korea.units["metro"] == prefix.isin(metros).astype(int)).all()


def test_small_mid_city_flag_follows_the_rule(korea):
    units = korea.units
    latest_year = korea.panel["year"].max()
    latest = korea.panel[korea.panel["year"] == latest_year].set_index("unit_id")["population"]
    expected = (
        (units["kind"] == "si") & (units["capital_region"] == 0) & (units["metro"] == 0)
        & (units["unit_id"].map(latest) < 500_000)
    ).astype(int)
    assert expected.sum() > 0
    assert units["small_mid_city"].tolist() == expected.tolist()
    # The committed column agrees (the loader would otherwise warn and override it).
    committed = pd.read_csv(BUNDLED / "units.csv", dtype={"unit_id": str}).set_index("unit_id")["small_mid_city"]
    assert committed.to_dict() == dict(zip(units["unit_id"], expected, strict=True))


@pytest.mark.parametrize(("unit_id", "flag"), [
    ("51150", 1),  # 강릉시
    ("41110", 0),  # 수원시: capital region
    ("48120", 0),  # 창원시: over 500,000
    ("36110", 0),  # 세종: metro
    ("43720", 0),  # 보은군: a gun, not a si
])
def test_small_mid_city_examples(korea, unit_id, flag):
    assert _by_id(korea).loc[unit_id, "small_mid_city"] == flag


# --------------------------------------------------------------------------------------------- reproducibility


def test_build_reproduces_committed_files(build_korea, tmp_path):
    build_korea.build(tmp_path)
    for name in ("dataset.toml", "units.csv", "panel.csv", "flows.csv"):
        built, committed = (tmp_path / name).read_bytes(), (BUNDLED / name).read_bytes()
        assert built == committed, f"{name} differs from data/korea/{name}: run `make data`"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.toml", "flows.csv", "panel.csv", "units.csv"]
