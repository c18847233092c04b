"""Build the bundled dataset ``data/korea/`` from the raw public files in ``data/raw/korea/``.

Run ``python data/build_korea.py`` (or ``make data``). The output follows the tiecast dataset contract
(see README.md): ``dataset.toml``, ``units.csv``, ``panel.csv``, ``flows.csv``. Every step is
deterministic, so rebuilding gives byte-identical files (a test checks this).

Sources (each folder under data/raw/korea/ has its PROVENANCE.md and licence):
- dongwoo-migration-panel: 229-unit panel 2008–2025, 2025 migration OD, queen contiguity, code maps (MIT).
- jongin-income: NTS earned income (근로소득 연말정산) by si-gun-gu of residence 2016–2023 (NTS via KOSIS).
- tidycensuskr: MOIS↔KOSTAT code history and romanized names (MIT).
- admdongkor: UTM-K centroids of every si-gun-gu 2001–2023 (CC BY 4.0 / KOGL-1).
- flowbcaR-ktdb-od: KTDB passenger-trip OD between 159 Si-Gun units (GPL-3; KTDB terms).

Year convention: a panel row for year t holds year-end stocks (population, households at 31 Dec of t) and
flows during calendar year t (migration, income of tax year t).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
RAW = ROOT / "raw" / "korea"
OUT = ROOT / "korea"

FIRST_YEAR, LAST_YEAR = 2008, 2025
CAPITAL_PROVINCES = ("11", "28", "41")  # Seoul, Incheon, Gyeonggi
METRO_PROVINCES = ("11", "26", "27", "28", "29", "30", "31", "36")  # 특별시/광역시/세종
OLD_TO_CURRENT_CODE = {"48110": "48120"}  # the raw panel keeps Changwon's pre-2010 code

# Merger/recode breaks: (unit_id, first year on the new boundary, reason). The raw panel does not back-cast
# these units, so the series jumps; training must never read the jump as growth.
BOUNDARY_BREAKS = [
    ("48120", 2010, "Changwon merged with Masan and Jinhae (2010-07-01); 2008–2009 = old Changwon only"),
    ("36110", 2012, "Sejong created from Yeongi-gun plus parts of Gongju and Cheongwon (2012-07-01)"),
    ("44150", 2012, "Gongju ceded territory to Sejong (2012-07-01)"),
    ("43110", 2014, "Cheongju merged with Cheongwon-gun (2014-07-01); Cheongwon is absent before 2014"),
]

# KOSIS/NTS province codes (A01…A17) -> MOIS 2-digit province prefix of 2024.
NTS_PROVINCE = {
    "A01": "11", "A02": "28", "A03": "41", "A04": "51", "A05": "30", "A06": "43", "A07": "44", "A08": "36",
    "A09": "29", "A10": "52", "A11": "46", "A12": "27", "A13": "47", "A14": "26", "A15": "31", "A16": "48",
    "A17": "50",
}

# Panel columns kept from the raw research panel: name -> (unit, group, description).
PANEL_COLUMNS: dict[str, tuple[str, str, str]] = {
    "population": ("persons", "demography", "resident-registration population at year end (주민등록인구)"),
    "households": ("households", "demography", "registered households at year end (세대수)"),
    "household_size": ("persons/household", "demography", "population / households"),
    "aging_ratio": ("%", "demography", "share of population aged 65+ (고령화율)"),
    "youth_ratio": ("%", "demography", "share of population aged 20–39 (청년비율)"),
    "fertility": ("births/woman", "demography", "total fertility rate (합계출산율)"),
    "nat_increase": ("‰", "demography", "(births - deaths) / population x 1000 (자연증가율)"),
    "crude_marriage": ("‰", "demography", "marriages / population x 1000 (조혼인율)"),
    "gross_in": ("persons", "migration", "in-migrants during the year (전입자수)"),
    "gross_out": ("persons", "migration", "out-migrants during the year (전출자수)"),
    "net_migration": ("persons", "migration", "gross_in - gross_out (순이동자수)"),
    "in_rate": ("‰", "migration", "gross_in / population x 1000"),
    "out_rate": ("‰", "migration", "gross_out / population x 1000"),
    "net_rate": ("‰", "migration", "net_migration / population x 1000"),
    "in_strength": ("persons", "network", "in-flow from other units in the year's si-gun-gu migration OD"),
    "out_strength": ("persons", "network", "out-flow to other units in the year's si-gun-gu migration OD"),
    "in_deg_cent": ("0-1", "network", "in-degree centrality of the migration OD graph"),
    "out_deg_cent": ("0-1", "network", "out-degree centrality of the migration OD graph"),
    "deg_cent": ("0-2", "network", "degree centrality (in + out) of the migration OD graph"),
    "pagerank": ("0-1", "network", "PageRank of the migration OD graph"),
    "betweenness": ("0-1", "network", "betweenness centrality of the migration OD graph"),
    "closeness": ("index", "network", "closeness of the migration OD graph (not normalised)"),
    "fiscal_indep": ("%", "fiscal", "fiscal independence ratio 재정자립도 = own revenue / general budget x 100"),
    "grdp_pc": ("million KRW/person", "income", "GRDP per capita (2015–2022, partial coverage)"),
    "employ_rate": ("%", "income", "employment rate, regional employment survey (partial)"),
    "doctor_per1000": ("per 1,000 persons", "services", "physicians per 1,000 residents"),
    "car_per_capita": ("per 1,000 persons", "services", "registered cars per 1,000 residents"),
    "area_km2": ("km²", "geography", "land area"),
    "seoul_dist_km": ("km", "geography", "straight-line distance from the unit's centre to Seoul City Hall"),
}
RAW_RENAME = {"hh_count": "households", "hh_size": "household_size", "net": "net_migration"}


def _read_raw_panel() -> pd.DataFrame:
    raw = pd.read_csv(RAW / "dongwoo-migration-panel" / "analysis_dataset_FINAL_v4.csv.gz", encoding="utf-8-sig")
    raw["unit_id"] = raw["region_code"].astype(str).replace(OLD_TO_CURRENT_CODE)
    return raw.rename(columns=RAW_RENAME)


def _province_names() -> dict[str, str]:
    lookup = _lookup()
    prov = lookup[lookup["level"] == "Province"]
    return dict(zip(prov["adm_2024"], prov["name"], strict=True)) | dict(
        zip(prov["adm_2024"] + "_en", prov["name_eng"], strict=True)
    )


def _lookup() -> pd.DataFrame:
    lookup = pd.read_csv(RAW / "tidycensuskr" / "adm_sgis_lookup_2024.csv.gz", dtype=str, encoding="utf-8-sig")
    return lookup[lookup["level"].isin(["Province", "District", "District_Nonauto"])].copy()


def _centroids(unit_ids: list[str]) -> pd.DataFrame:
    """Centroid lat/lon (degrees, WGS84) per unit from the UTM-K centroids of MDIS boundaries.

    Units that appear only through their 일반구 (Suwon, Cheongju, ...) get the mean of their districts'
    centroids; 전북 codes 52xxx are looked up under their pre-2024 codes 45xxx.
    """
    from pyproj import Transformer

    cent = pd.read_csv(RAW / "admdongkor" / "mdis_centroids_utmk_2001_2023.tsv.gz", sep="\t", dtype={"ADMCD": str})
    cent = cent[cent["ADMCD"].str.endswith("00000") & ~cent["ADMCD"].str.endswith("00000000")]
    # The file lists every unit that existed 2001–2023; keep the last row per code (the latest boundary).
    cent = cent.assign(code=cent["ADMCD"].str[:5]).drop_duplicates("code", keep="last").set_index("code")
    rows = []
    for unit in unit_ids:
        code = "45" + unit[2:] if unit.startswith("52") else unit
        if code in cent.index:
            x, y = cent.loc[code, ["X", "Y"]]
        else:
            parts = cent[(cent.index.str[:4] == code[:4]) & (cent.index != code)]
            if parts.empty:
                raise SystemExit(f"build_korea: no centroid for unit {unit}")
            x, y = parts["X"].mean(), parts["Y"].mean()
        rows.append((unit, x, y))
    xy = pd.DataFrame(rows, columns=["unit_id", "x", "y"])
    to_wgs84 = Transformer.from_crs("EPSG:5179", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(xy["x"].to_numpy(), xy["y"].to_numpy())
    return pd.DataFrame({"unit_id": xy["unit_id"], "lat": np.round(lat, 5), "lon": np.round(lon, 5)})


def _kind(name: str) -> str:
    return {"시": "si", "군": "gun", "구": "gu"}[name[-1]]


def build_units(raw: pd.DataFrame) -> pd.DataFrame:
    names = pd.read_csv(RAW / "dongwoo-migration-panel" / "sgg_code_mapping_229.csv", dtype=str, encoding="utf-8-sig")
    names["unit_id"] = names["panel_code"].replace(OLD_TO_CURRENT_CODE)
    lookup = _lookup()
    district = lookup[lookup["level"] == "District"].drop_duplicates("adm_2024", keep="last")
    name_en = dict(zip(district["adm_2024"], district["name_eng"], strict=True))
    provinces = _province_names()
    units = pd.DataFrame({"unit_id": sorted(raw["unit_id"].unique())})
    units = units.merge(names[["unit_id", "sigungu_name"]], on="unit_id", how="left", validate="1:1")
    units = units.rename(columns={"sigungu_name": "name"})
    units["name_en"] = units["unit_id"].map(name_en)
    prov = units["unit_id"].str[:2]
    units["group"] = prov.map(provinces)
    units["group_en"] = (prov + "_en").map(provinces)
    units["kind"] = units["name"].map(_kind)
    units["capital_region"] = prov.isin(CAPITAL_PROVINCES).astype(int)
    units["metro"] = prov.isin(METRO_PROVINCES).astype(int)
    units = units.merge(_centroids(units["unit_id"].tolist()), on="unit_id", validate="1:1")
    missing = units[units[["name", "name_en", "group", "lat", "lon"]].isna().any(axis=1)]
    if not missing.empty:
        raise SystemExit(f"build_korea: incomplete unit attributes:\n{missing}")
    return units


def _nts_crosswalk(income: pd.DataFrame, units: pd.DataFrame) -> dict[str, str]:
    """KOSIS/NTS area code (A + province + serial) -> MOIS unit_id, by province prefix and Korean name."""
    areas = income[income["C1"].str.len() == 5][["C1", "C1_NM"]].drop_duplicates()
    areas = areas.assign(
        prefix=areas["C1"].str[:3].map(NTS_PROVINCE),
        name=areas["C1_NM"].str.replace("(남구)", "", regex=False).str.strip(),
    )
    key = units.assign(prefix=units["unit_id"].str[:2])[["unit_id", "prefix", "name"]]
    merged = areas.merge(key, on=["prefix", "name"], how="left")
    # 군위군 moved from 경북 (A13) to 대구 (MOIS 27720) in 2023; NTS lists it under 경북 until 2022.
    merged.loc[merged["C1_NM"].eq("군위군"), "unit_id"] = "27720"
    if merged["unit_id"].isna().any():
        raise SystemExit(f"build_korea: NTS areas without a MOIS code:\n{merged[merged['unit_id'].isna()]}")
    crosswalk = dict(zip(merged["C1"], merged["unit_id"], strict=True))
    crosswalk["A08"] = "36110"  # 세종 has only its province row, which is the single local government
    return crosswalk


def repair_jeju_swap(wide: pd.DataFrame) -> pd.DataFrame:
    """Swap 제주시 (50110) and 서귀포시 (50130) values in years where the NTS source has them swapped.

    In every year the source is consistent, 제주시 has about 3x the filers and pay of 서귀포시 (its population
    is about 2.7x); a year where 서귀포시 is larger is a swap in the source (2023, all items). Detected from
    the data rather than hard-coded, so a corrected upstream file passes through unchanged.
    """
    out = wide.copy()
    jeju, seogwipo = "50110", "50130"
    for year in sorted(out.index.get_level_values("year").unique()):
        a, b = (jeju, year), (seogwipo, year)
        if a in out.index and b in out.index and out.loc[a, "earners"] < out.loc[b, "earners"]:
            out.loc[a], out.loc[b] = wide.loc[b].to_numpy(), wide.loc[a].to_numpy()
    return out


def build_income(units: pd.DataFrame) -> pd.DataFrame:
    """Taxable earned income (NTS item B02 총급여) by unit and tax year: amount (million KRW) and filers."""
    income = pd.read_csv(RAW / "jongin-income" / "kosis_income_sigungu_yearly.csv.gz", dtype={"C1": str})
    b02 = income[income["C2"] == "B02"]
    crosswalk = _nts_crosswalk(income, units)
    b02 = b02[b02["C1"].isin(crosswalk)].assign(unit_id=lambda d: d["C1"].map(crosswalk), year=lambda d: d["PRD_DE"])
    wide = b02.pivot_table(index=["unit_id", "year"], columns="ITM_ID", values="DT", aggfunc="sum")
    wide = wide.rename(columns={"T001": "earners", "T002": "earned_income_total"})
    return repair_jeju_swap(wide).reset_index()


def build_panel(raw: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    panel = raw[["unit_id", "year", *[c for c in PANEL_COLUMNS if c in raw.columns]]].copy()
    panel = panel.merge(build_income(units), on=["unit_id", "year"], how="left", validate="1:1")
    # income = taxable earned income of residents per resident (million KRW/person); the tiecast target.
    panel["income"] = panel["earned_income_total"] / panel["population"]
    panel["pay_per_earner"] = panel["earned_income_total"] / panel["earners"]
    panel["earner_share"] = 100.0 * panel["earners"] / panel["population"]
    # 2014 reclassification of revenue items lowers 재정자립도 (national 51.1 -> 44.8): regime indicator.
    panel["fiscal_regime_2014"] = (panel["year"] >= 2014).astype(int)
    brk = pd.DataFrame(BOUNDARY_BREAKS, columns=["unit_id", "year", "reason"]).assign(boundary_break=1)
    panel = panel.merge(brk[["unit_id", "year", "boundary_break"]], on=["unit_id", "year"], how="left")
    panel["boundary_break"] = panel["boundary_break"].fillna(0).astype(int)
    panel = panel.drop(columns=["earned_income_total"])
    return panel.sort_values(["unit_id", "year"]).reset_index(drop=True)


def _harmonize_map() -> dict[str, str]:
    hm = pd.read_csv(RAW / "dongwoo-migration-panel" / "sgg_harmonize_map.csv", dtype=str)
    mapping = dict(zip(hm["raw_code"], hm["panel_code"], strict=True))
    return {k: OLD_TO_CURRENT_CODE.get(v, v) for k, v in mapping.items() if isinstance(v, str)}


def build_migration_flows(unit_ids: set[str]) -> pd.DataFrame:
    """2025 si-gun-gu migration OD (persons) aggregated from 252 codes (incl. 일반구) to the 229 units."""
    with gzip.open(RAW / "dongwoo-migration-panel" / "od_flow_2025_all.json.gz", "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    od = pd.DataFrame(doc["data"]).astype({"ori": str, "des": str})
    mapping = _harmonize_map()
    od["origin"] = od["ori"].map(lambda c: mapping.get(c, OLD_TO_CURRENT_CODE.get(c, c)))
    od["destination"] = od["des"].map(lambda c: mapping.get(c, OLD_TO_CURRENT_CODE.get(c, c)))
    unknown = set(od["origin"]).union(od["destination"]) - unit_ids
    if unknown:
        raise SystemExit(f"build_korea: migration OD codes not mapped to units: {sorted(unknown)}")
    flows = od.groupby(["origin", "destination"], as_index=False)["flow"].sum().rename(columns={"flow": "value"})
    # Moves inside one unit (including between 일반구 of one city) are not ties between units.
    flows = flows[flows["origin"] != flows["destination"]]
    return flows.assign(year=2025, kind="migration")


def build_trip_flows(units: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """KTDB passenger-trip OD (trips/day, all purposes) mapped from 159 Si-Gun units to the 229 units.

    KTDB treats each metropolitan city (and Seoul, Sejong) as one unit. A metro's flows are split over its
    autonomous gu/gun in proportion to their 2023 population (origin side and destination side alike), so
    totals are preserved; trips between two gu of the same metro are not in the source (its diagonal is
    removed) and therefore absent here. Boundaries are 2023 (Gunwi under Daegu); the base year is not stated
    in the source, so the flows are dated 2023, the boundary year. The island units 울릉군 (47940), 제주시
    (50110) and 서귀포시 (50130) are not in the KTDB road/rail O/D and have no trips flows.
    """
    od = pd.read_csv(RAW / "flowbcaR-ktdb-od" / "OD_SiGun_from_rda.csv.gz", dtype={"sourceunit": str})
    long = od.drop(columns="sourceunit_nm").melt(id_vars="sourceunit", var_name="dest", value_name="value")
    long = long[(long["value"] > 0) & (long["sourceunit"] != long["dest"])]
    lookup = _lookup()
    district = lookup[(lookup["level"] == "District") & lookup["sgis_2023"].notna()]
    kostat_to_mois = dict(zip(district["sgis_2023"].str[:5], district["adm_2024"], strict=False))
    kostat_metro = {"11": "11", "21": "26", "22": "27", "23": "28", "24": "29", "25": "30", "26": "31", "29": "36"}
    pop = panel[panel["year"] == 2023].set_index("unit_id")["population"]
    rows = []
    for code in sorted(set(long["sourceunit"])):
        if len(code) == 2:
            members = [u for u in units["unit_id"] if u[:2] == kostat_metro[code] and u != "27720"]
            weights = pop.loc[members] / pop.loc[members].sum()
            rows += [(code, m, w) for m, w in weights.items()]
        else:
            rows.append((code, kostat_to_mois[code], 1.0))
    split = pd.DataFrame(rows, columns=["ktdb", "unit_id", "share"])
    if not set(split["unit_id"]) <= set(units["unit_id"]):
        raise SystemExit("build_korea: KTDB units mapped outside the 229 units")
    flows = long.merge(split.rename(columns={"ktdb": "sourceunit", "unit_id": "origin", "share": "s_o"}))
    flows = flows.merge(split.rename(columns={"ktdb": "dest", "unit_id": "destination", "share": "s_d"}))
    flows["value"] = (flows["value"] * flows["s_o"] * flows["s_d"]).round(3)
    flows = flows.groupby(["origin", "destination"], as_index=False)["value"].sum()
    return flows[flows["value"] > 0].assign(year=2023, kind="trips")


def build_contiguity_flows(unit_ids: set[str]) -> pd.DataFrame:
    """Queen contiguity (value 1 for each ordered pair of neighbours); time-invariant on 2024 boundaries."""
    nb = pd.read_csv(RAW / "dongwoo-migration-panel" / "queen_w_229_neighbors.csv", dtype=str)
    nb["neighbors"] = nb["neighbor_codes"].str.strip("[]").str.split(",")
    long = nb.explode("neighbors")
    long = pd.DataFrame({
        "origin": long["panel_code"].replace(OLD_TO_CURRENT_CODE),
        "destination": long["neighbors"].str.strip().replace(OLD_TO_CURRENT_CODE),
    })
    long = long[long["destination"] != ""]
    if not set(long["origin"]).union(long["destination"]) <= unit_ids:
        raise SystemExit("build_korea: contiguity codes outside the 229 units")
    return long.assign(year=FIRST_YEAR, kind="contiguity", value=1.0)


def build_flows(units: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    ids = set(units["unit_id"])
    flows = pd.concat([
        build_migration_flows(ids), build_trip_flows(units, panel), build_contiguity_flows(ids)
    ], ignore_index=True)
    return flows[["origin", "destination", "year", "kind", "value"]].sort_values(
        ["kind", "year", "origin", "destination"]
    ).reset_index(drop=True)


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def dataset_toml(panel: pd.DataFrame) -> str:
    lines = [
        'name = "korea"',
        'description = "229 Korean local governments (si-gun-gu, 2024 boundaries, MOIS codes), 2008–2025: '
        'demography, migration, fiscal capacity, earned income, and migration / trip / contiguity ties."',
        'targets = ["population", "income"]',
        f"years = [{FIRST_YEAR}, {LAST_YEAR}]",
        'primary_target = "population"',
        "",
        "# Rule for the small/mid-size provincial city flag: a pandas query over units.csv columns plus",
        "# `population` of the latest panel year.",
        "[small_mid_city]",
        "rule = \"kind == 'si' and capital_region == 0 and metro == 0 and population < 500000\"",
        "",
        "[features]",
        "# Partner variables averaged over ties (network lags): target growths and panel covariates.",
        'network_lags = ["population_growth_1y", "population_growth_3y", "income_growth_1y", "aging_ratio", '
        '"fiscal_indep"]',
        "",
        "[flows]",
        "# Kinds whose values do not change over time: usable for any origin year.",
        'time_invariant = ["contiguity"]',
        "# The kind cooperation scenarios act on by default.",
        'main_kind = "migration"',
        "",
        "[flows.kinds.migration]",
        'unit = "persons/year"',
        'description = "si-gun-gu migration moves (all ages), 2025, 일반구 aggregated to their city; '
        'moves within a unit removed"',
        'source = "KOSIS internal migration statistics via dongwoo2022008/korea-migration-network"',
        "# Panel columns that are network measures of this kind's flows (panel column = unit_tie_measures column):",
        "# recomputed from the flows of a scenario in the years it has flows.",
        'panel_measures = { in_strength = "in_strength", out_strength = "out_strength", '
        'in_deg_cent = "in_degree_centrality", out_deg_cent = "out_degree_centrality", '
        'deg_cent = "degree_centrality", pagerank = "pagerank", betweenness = "betweenness", '
        'closeness = "closeness" }',
        "[flows.kinds.trips]",
        'unit = "trips/day"',
        'description = "KTDB passenger O/D, all purposes; metros split to their gu/gun by 2023 population; '
        'dated 2023 (boundary year, base year not stated)"',
        'source = "KTDB via urbanjj/flowbcaR (GPL-3)"',
        "[flows.kinds.contiguity]",
        'unit = "1 = shares a border"',
        'description = "queen contiguity of the 229 units, 2024 boundaries"',
        'source = "dongwoo2022008/stable-architecture-rotating-hubs (MIT)"',
        "",
    ]
    extra = {
        "income": ("million KRW/person", "income",
                   "taxable earned income (NTS 총급여, item B02) of residents / population; tax years 2016–2023",
                   "NTS 근로소득 연말정산 via KOSIS (jongin7942/land-invest-analyzer)"),
        "earners": ("persons", "income", "year-end-settlement filers with taxable earned income (B02)",
                    "NTS via KOSIS"),
        "pay_per_earner": ("million KRW/person", "income", "taxable earned income per filer", "NTS via KOSIS"),
        "earner_share": ("%", "income", "filers / population x 100", "NTS via KOSIS; MOIS"),
        "fiscal_regime_2014": ("0/1", "fiscal",
                               "1 from 2014: revenue items reclassified, 재정자립도 not comparable across 2014",
                               "MOIS 지방재정365"),
        "boundary_break": ("0/1", "meta",
                           "1 in the first year on a new boundary (merger/recode): the level is not comparable "
                           "with the year before", "tiecast build script (see BOUNDARY_BREAKS)"),
    }
    for col in panel.columns:
        if col in ("unit_id", "year"):
            continue
        if col in PANEL_COLUMNS:
            unit, group, desc = PANEL_COLUMNS[col]
            source = "KOSIS/MOIS via dongwoo2022008 research panel (MIT)"
        else:
            unit, group, desc, source = extra[col]
        lines += [
            f"[columns.{col}]",
            f"unit = {_toml_str(unit)}",
            f"group = {_toml_str(group)}",
            f"description = {_toml_str(desc)}",
            f"source = {_toml_str(source)}",
        ]
    lines += [
        "",
        "[breaks]",
        "# Panel column flagging merger/recode breaks (1 = first year on the new boundary).",
        'column = "boundary_break"',
        "# Large year-on-year jumps checked and kept as real growth (unit_id@year): Sejong's build-up as the",
        "# administrative capital (2014, 2015) and Hanam's Misa new town (2016).",
        'reviewed = ["36110@2014", "36110@2015", "41450@2016"]',
        "",
    ]
    sources = [
        ("dongwoo2022008 migration panel, OD 2025, contiguity", "MIT (panel, weights); OD from KOSIS",
         "data/raw/korea/dongwoo-migration-panel/PROVENANCE.md"),
        ("NTS earned income by si-gun-gu 2016–2023", "NTS/KOSIS official statistics; repo has no licence",
         "data/raw/korea/jongin-income/PROVENANCE.md; 제주시/서귀포시 swap repaired"),
        ("tidycensuskr code history and romanized names", "MIT", "data/raw/korea/tidycensuskr/PROVENANCE.md"),
        ("admdongkor centroids", "CC BY 4.0 + KOGL Type 1 (SGIS)", "data/raw/korea/admdongkor/PROVENANCE.md"),
        ("KTDB passenger O/D via flowbcaR", "GPL-3 (data/raw/korea/flowbcaR-ktdb-od/LICENSE_GPL-3.txt); KTDB terms",
         "data/raw/korea/flowbcaR-ktdb-od/PROVENANCE.md"),
    ]
    for name, lic, note in sources:
        lines += ["[[sources]]", f"name = {_toml_str(name)}", f"license = {_toml_str(lic)}",
                  f"note = {_toml_str(note)}"]
    return "\n".join(lines) + "\n"


# 인구감소지역 (MOIS 고시 제2021-66호, 군위 per 제2024-15호). The raw list, built from the notice by (province,
# name), has 인제군 (51810) in 강원 where the notice lists 횡성군 (51730); 인제군 is one of the 18 인구감소관심지역
# (interest areas), not a designated area. Corrected here, so a fixed upstream file passes through unchanged.
DEPOPULATION_CORRECTIONS = {"51810": "51730"}  # listed in error -> designated per 고시 제2021-66호
DEPOPULATION_COUNT = 89


def depopulation_flag(units: pd.DataFrame) -> pd.Series:
    """0/1 per unit: 1 for the 89 인구감소지역, mapped to the 229 MOIS codes by (province, name) and by code.

    Fails loudly unless every row of the raw list maps to exactly one unit, by name and code alike, and
    exactly 89 units are flagged after the correction in DEPOPULATION_CORRECTIONS.
    """
    raw = pd.read_csv(RAW / "mois-depopulation-areas" / "depopulation_areas_2021.csv", dtype=str,
                      encoding="utf-8-sig")
    by_name = {(g, n): u for u, g, n in zip(units["unit_id"], units["group"], units["name"], strict=True)}
    problems = []
    if len(raw) != DEPOPULATION_COUNT or not raw["unit_id"].is_unique:
        problems.append(f"{len(raw)} rows ({raw['unit_id'].nunique()} distinct codes), expected {DEPOPULATION_COUNT}")
    for row in raw.itertuples():
        mapped = by_name.get((row.province, row.name))
        if mapped is None or mapped != row.unit_id:
            problems.append(f"{row.province} {row.name} ({row.unit_id}) maps to {mapped}")
    ids = set(raw["unit_id"].replace(DEPOPULATION_CORRECTIONS))
    flag = units["unit_id"].isin(ids).astype(int)
    if flag.sum() != DEPOPULATION_COUNT or not ids <= set(units["unit_id"]):
        problems.append(f"{flag.sum()} units flagged, expected {DEPOPULATION_COUNT}; "
                        f"unknown codes: {sorted(ids - set(units['unit_id']))}")
    if problems:
        raise SystemExit("build_korea: depopulation areas do not map to the 229 units:\n" + "\n".join(problems))
    return flag


def units_toml() -> str:
    """dataset.toml lines for the units column ``depopulation_area`` and for the boundaries file, with sources.

    ``[columns]`` tables describe panel columns only (the loader warns about any other), so the units column
    is described in a comment and its source in ``[[sources]]``; likewise ``boundaries.geojson``, which sits
    beside the contract tables and is not read by the loader.
    """
    lines = [
        "# units.csv depopulation_area (0/1): 1 for the 89 인구감소지역 designated by the Ministry of the Interior",
        "# and Safety (고시 제2021-66호, 2021-10-19; 군위군 as 27720 per 고시 제2024-15호), 0 otherwise.",
        "# The raw list's 인제군 is corrected to 횡성군 as in the notice.",
        "# The 18 인구감소관심지역 (interest areas) are 0.",
        "[[sources]]",
        'name = "MOIS population-decline areas (인구감소지역), 고시 제2021-66호 / 제2024-15호"',
        'license = "government notice: not a protected work (Copyright Act art. 7)"',
        'note = "data/raw/korea/mois-depopulation-areas/PROVENANCE.md; units.csv depopulation_area"',
        "# boundaries.geojson (for maps, not read by the loader): one simplified WGS84 lon/lat (multi)polygon per",
        "# unit, properties unit_id and name; 전북 45xxx recoded to 52xxx; islands of a few km² are not in the source.",
        "[[sources]]",
        'name = "zigbee0 si-gun-gu TopoJSON (229 local governments, MOIS SIG_CD)"',
        'license = "MIT (data/raw/korea/zigbee0-sigungu-topo/LICENSE.txt); boundaries likely MOIS/NSDI (KOGL Type 1)"',
        'note = "data/raw/korea/zigbee0-sigungu-topo/PROVENANCE.md; boundaries.geojson"',
    ]
    return "\n".join(lines) + "\n"


# Simplified si-gun-gu boundaries for maps (data/korea/boundaries.geojson; not part of the dataset contract).
BOUNDARY_TOPO = RAW / "zigbee0-sigungu-topo" / "merged_map_sigungu229_topo.json.gz"
BOUNDARY_TOLERANCE_M = 100.0  # Douglas-Peucker tolerance per shared arc (metres): borders stay shared
BOUNDARY_MIN_HOLE_KM2 = 1.0  # smaller holes are dropped (every hole in the source is a gap, none an enclave)
BOUNDARY_DECIMALS = 4
BOUNDARY_RECODE = {"45": "52"}  # the TopoJSON still has 전북's pre-2024 codes 45xxx (전주 already 52110)
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(36.0)))  # local scale at Korea's mid-latitude


def _decode_arcs(topo: dict) -> list[np.ndarray]:
    """TopoJSON arcs as absolute lon/lat (degrees): undo the delta encoding, then the quantization transform."""
    scale = np.asarray(topo["transform"]["scale"], dtype=float)
    translate = np.asarray(topo["transform"]["translate"], dtype=float)
    return [np.cumsum(np.asarray(arc, dtype=np.int64), axis=0) * scale + translate for arc in topo["arcs"]]


def _douglas_peucker(lonlat: np.ndarray, tolerance_m: float, forced_levels: int = 0) -> np.ndarray:
    """Positions of a polyline kept by Douglas-Peucker (endpoints always kept), in local metres.

    The first ``forced_levels`` splits are made whatever the tolerance, so a closed arc (a whole island ring,
    start == end) keeps at least three interior points and an arc that is half of a ring keeps one.
    """
    xy = np.column_stack([lonlat[:, 0] * _M_PER_DEG_LON, lonlat[:, 1] * _M_PER_DEG_LAT])
    keep = np.zeros(len(xy), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(xy) - 1, 0)]
    while stack:
        i, j, level = stack.pop()
        if j <= i + 1:
            continue
        chord, rel = xy[j] - xy[i], xy[i + 1:j] - xy[i]
        length = float(np.hypot(chord[0], chord[1]))
        if length == 0.0:  # closed arc: distance from the start point
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(chord[0] * rel[:, 1] - chord[1] * rel[:, 0]) / length
        k = int(np.argmax(dist))
        if dist[k] > tolerance_m or level < forced_levels:
            m = i + 1 + k
            keep[m] = True
            stack += [(i, m, level + 1), (m, j, level + 1)]
    return lonlat[keep]


def _ring_area(ring: np.ndarray) -> float:
    """Signed shoelace area (km², > 0: counter-clockwise) of a closed ring on the 10^-BOUNDARY_DECIMALS grid."""
    step = 10.0**-BOUNDARY_DECIMALS / 1e3
    x, y = ring[:, 0] * step * _M_PER_DEG_LON, ring[:, 1] * step * _M_PER_DEG_LAT
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def boundary_features(units: pd.DataFrame) -> tuple[list[dict], dict[str, list[str]]]:
    """One GeoJSON Feature per unit (``unit_id``, ``name``), simplified, and a log of what was changed.

    Each TopoJSON arc is simplified once (Douglas-Peucker in local metres), so a border the source shares
    between two units stays identical on both sides (the source stores many borders twice with slightly
    different vertices, leaving overlaps and gaps of metres; that is kept as is), then rounded to
    10^-BOUNDARY_DECIMALS degrees (1e-4: about 10 m). Rings follow RFC 7946 (exterior counter-clockwise, holes
    clockwise); holes under BOUNDARY_MIN_HOLE_KM2 and rings that collapse under rounding are dropped.
    The source has no polygon for islands of a few km² (연평도, 독도, 추자도, 마라도, 홍도, ...).
    """
    with gzip.open(BOUNDARY_TOPO, "rt", encoding="utf-8") as fh:
        topo = json.load(fh)
    (layer,) = topo["objects"].values()
    arcs = _decode_arcs(topo)
    # Splits forced so that no ring collapses to a line: 2 for an arc that is a whole ring (closed), 1 for an
    # arc that is half of a two-arc ring, none otherwise (a ring of three or more arcs keeps their endpoints).
    forced = [2 if bool((arc[0] == arc[-1]).all()) else 0 for arc in arcs]
    for geom in layer["geometries"]:
        for polygon in [geom["arcs"]] if geom["type"] == "Polygon" else geom["arcs"]:
            for ring in (r for r in polygon if len(r) == 2):
                for a in ring:
                    forced[a if a >= 0 else ~a] = max(forced[a if a >= 0 else ~a], 1)
    simplified = []
    for arc, levels in zip(arcs, forced, strict=True):
        kept = _douglas_peucker(arc, BOUNDARY_TOLERANCE_M, levels)
        grid = np.round(kept * 10**BOUNDARY_DECIMALS).astype(np.int64)
        simplified.append(grid[np.r_[True, (np.diff(grid, axis=0) != 0).any(axis=1)]])

    def ring_positions(arc_ids: list[int]) -> np.ndarray:
        parts = [simplified[a] if a >= 0 else simplified[~a][::-1] for a in arc_ids]
        ring = np.concatenate([parts[0], *[p[1:] for p in parts[1:]]])
        return ring[np.r_[True, (np.diff(ring, axis=0) != 0).any(axis=1)]]

    names = dict(zip(units["unit_id"], units["name"], strict=True))
    log: dict[str, list[str]] = {"recoded": [], "dropped": []}
    features: dict[str, dict] = {}
    for geom in layer["geometries"]:
        props = geom["properties"]
        code = BOUNDARY_RECODE.get(props["SIG_CD"][:2], props["SIG_CD"][:2]) + props["SIG_CD"][2:]
        if code != props["SIG_CD"]:
            log["recoded"].append(f"{props['SIG_CD']}->{code} {props['SIG_KOR_NM']}")
        if names.get(code) != props["SIG_KOR_NM"] or code in features:
            raise SystemExit(f"build_korea: boundary {props['SIG_CD']} {props['SIG_KOR_NM']} does not match "
                             f"one unit (unit {code}: {names.get(code)})")
        polygons = []
        for polygon in [geom["arcs"]] if geom["type"] == "Polygon" else geom["arcs"]:
            rings = []
            for k, arc_ids in enumerate(polygon):
                ring = ring_positions(arc_ids)
                area = _ring_area(ring) if len(ring) >= 4 else 0.0
                if len(ring) < 4 or area == 0.0 or (k > 0 and abs(area) < BOUNDARY_MIN_HOLE_KM2):
                    if k == 0:
                        break  # the exterior collapsed: drop the whole polygon (with its holes)
                    log["dropped"].append(f"{code} {props['SIG_KOR_NM']}: hole of {abs(area):.3f} km²")
                    continue
                if (area > 0) != (k == 0):  # exterior counter-clockwise, holes clockwise
                    ring = ring[::-1]
                rings.append([[int(x) / 10**BOUNDARY_DECIMALS, int(y) / 10**BOUNDARY_DECIMALS] for x, y in ring])
            if not rings:
                log["dropped"].append(f"{code} {props['SIG_KOR_NM']}: polygon collapsed")
                continue
            polygons.append(rings)
        if not polygons:
            raise SystemExit(f"build_korea: boundary of {code} {props['SIG_KOR_NM']} collapsed entirely")
        geometry = ({"type": "Polygon", "coordinates": polygons[0]} if len(polygons) == 1
                    else {"type": "MultiPolygon", "coordinates": polygons})
        features[code] = {"type": "Feature", "properties": {"unit_id": code, "name": names[code]},
                          "geometry": geometry}
    missing = sorted(set(names) - set(features))
    if missing:
        raise SystemExit(f"build_korea: units without a boundary: {missing}")
    return [features[u] for u in sorted(features)], log


def build_boundaries(units: pd.DataFrame, out: Path = OUT) -> Path:
    """Write ``boundaries.geojson``: one simplified WGS84 lon/lat (multi)polygon per unit, one Feature a line."""
    features, log = boundary_features(units)
    body = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features)
    path = out / "boundaries.geojson"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text('{"type":"FeatureCollection","features":[\n' + body + "\n]}\n", encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path}: {len(features)} units, {path.stat().st_size / 1e6:.2f} MB; "
          f"recoded {len(log['recoded'])} (전북 45xxx -> 52xxx), dropped {len(log['dropped'])} small holes/rings")
    return path


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    df = df.copy()
    for col in df.select_dtypes("float").columns:
        values = df[col].dropna()
        if (values % 1 == 0).all():  # counts stored as floats upstream: write them as integers
            df[col] = df[col].astype("Int64")
    df.to_csv(tmp, index=False, lineterminator="\n", float_format="%.8g")
    tmp.replace(path)


def build(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    raw = _read_raw_panel()
    units = build_units(raw)
    panel = build_panel(raw, units)
    flows = build_flows(units, panel)
    toml_text = dataset_toml(panel) + units_toml()
    # The flag is computed with the same rule the loader applies, so the bundled column and rule agree.
    sys.path.insert(0, str(ROOT.parent))
    import tomllib

    from tiecast.features import apply_small_mid_rule

    units["small_mid_city"] = apply_small_mid_rule(units, panel, tomllib.loads(toml_text))
    units["depopulation_area"] = depopulation_flag(units)
    _write_csv(units, out / "units.csv")
    _write_csv(panel, out / "panel.csv")
    _write_csv(flows, out / "flows.csv")
    tmp = out / "dataset.toml.tmp"
    tmp.write_text(toml_text, encoding="utf-8")
    tmp.replace(out / "dataset.toml")
    print(f"wrote {out}: {len(units)} units, {len(panel)} panel rows, {len(flows)} flows")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    build(target)
    build_boundaries(pd.read_csv(target / "units.csv", dtype={"unit_id": str}), target)
