"""The dataset contract: loading and validating a dataset folder.

A dataset is a folder with ``dataset.toml`` (required keys ``name`` and ``targets``), ``units``, ``panel``,
``flows`` and optionally ``cooperation`` tables, each as ``.csv``, ``.csv.gz`` or ``.parquet``. CSV files
may be UTF-8 (with or without BOM) or CP949/EUC-KR, as KOSIS exports often are. See README.md for the
columns. :func:`load_dataset` validates everything on load and raises :class:`DatasetError` listing every
problem; :func:`check_dataset` returns the problems without raising.

Year convention: ``year`` is a calendar year; stocks (population) are at year end and flows are totals over
the year.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiecast.common import DatasetError, Problem

__all__ = ["GROWTH_STEPS", "Dataset", "apply_small_mid_rule", "bundled_datasets", "check_dataset",
           "growth_feature_names", "infer_step", "load_dataset"]

# Bundled datasets ship as package data of tiecast.datasets (data/korea in a source checkout), so they are
# found from an installed wheel too.
BUNDLED_ROOT = Path(str(resources.files("tiecast.datasets")))
TABLES = ("units", "panel", "flows", "cooperation")
REQUIRED_COLUMNS = {
    "units": ("unit_id", "name"),
    "panel": ("unit_id", "year"),
    "flows": ("origin", "destination", "year", "kind", "value"),
    "cooperation": ("unit_id", "program", "start_year"),
}
OPTIONAL_COLUMNS = {
    "units": ("name_en", "group", "group_en", "kind", "lat", "lon", "capital_region", "metro", "small_mid_city",
              "depopulation_area"),
    "panel": (),
    "flows": (),
    "cooperation": ("partner_id", "end_year", "note"),
}
ID_COLUMNS = {"units": ("unit_id",), "panel": ("unit_id",), "flows": ("origin", "destination"),
              "cooperation": ("unit_id", "partner_id")}
TEXT_COLUMNS = {"units": ("name", "name_en", "group", "group_en", "kind"), "flows": ("kind",),
                "cooperation": ("program", "note"), "panel": ()}
INT_COLUMNS = {"panel": ("year",), "flows": ("year",), "cooperation": ("start_year", "end_year"), "units": ()}
# Measures of tiecast.features.ties.unit_tie_measures that a panel column may reproduce (flows.kinds.K.panel_measures).
_UNIT_MEASURES = ("in_strength", "out_strength", "total_strength", "in_degree_centrality", "out_degree_centrality",
                  "degree_centrality", "pagerank", "betweenness", "closeness", "reciprocal_strength",
                  "reciprocated_share", "partner_entropy", "dominant_share")
# A year-on-year change of a target larger than this (in log points, about +-22%) that is not flagged as a
# boundary break looks like a merger or recode rather than growth.
BREAK_LOG_JUMP = 0.2
# Target growth features cover 1, 3 and 5 observation steps (years in a yearly panel).
GROWTH_STEPS = (1, 3, 5)
# At most this many rows are listed per kind of problem; the rest are counted.
MAX_ROWS_LISTED = 20


@dataclass(frozen=True)
class Dataset:
    """A loaded, validated dataset.

    ``units`` has one row per unit (``unit_id`` is a string), ``panel`` one row per unit-year,
    ``flows`` one row per (origin, destination, year, kind), ``cooperation`` one row per arrangement (empty
    with the contract's columns when the file is absent). ``meta`` is the parsed ``dataset.toml``;
    ``warnings`` the non-fatal problems found on load.
    """

    name: str
    path: Path
    meta: dict[str, Any]
    units: pd.DataFrame
    panel: pd.DataFrame
    flows: pd.DataFrame
    cooperation: pd.DataFrame
    fingerprint: str
    warnings: list[Problem] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        return list(self.meta["targets"])

    @property
    def primary_target(self) -> str:
        return str(self.meta.get("primary_target", self.targets[0]))

    @property
    def years(self) -> tuple[int, int]:
        """Declared ``[first, last]`` years, or the panel's span when undeclared."""
        if "years" in self.meta:
            first, last = self.meta["years"]
            return int(first), int(last)
        return int(self.panel["year"].min()), int(self.panel["year"].max())

    @property
    def mass_column(self) -> str:
        """Panel column used as a unit's size (persons) for gravity and borrowed size: ``population`` when
        the panel has it, else the first target."""
        return "population" if "population" in self.panel.columns else self.targets[0]

    @property
    def break_column(self) -> str | None:
        """Panel column flagging merger/recode breaks (1 = first year on a new boundary), if declared."""
        col = self.meta.get("breaks", {}).get("column")
        return str(col) if col and col in self.panel.columns else None

    @property
    def time_invariant_kinds(self) -> list[str]:
        """Flow kinds whose values hold for every year (e.g. contiguity)."""
        return list(self.meta.get("flows", {}).get("time_invariant", []))

    @property
    def main_flow_kind(self) -> str | None:
        """The flow kind cooperation scenarios act on: ``[flows] main_kind``, else the observed (not
        time-invariant) kind with the most rows; None without such flows."""
        declared = self.meta.get("flows", {}).get("main_kind")
        if declared:
            return str(declared)
        observed = self.flows[~self.flows["kind"].isin(self.time_invariant_kinds)]
        return str(observed["kind"].value_counts().idxmax()) if len(observed) else None

    def panel_flow_measures(self, kind: str) -> dict[str, str]:
        """Panel columns that are network measures of ``kind``'s flows: panel column -> measure of
        :func:`tiecast.features.ties.unit_tie_measures` (``[flows.kinds.KIND] panel_measures``)."""
        spec = self.meta.get("flows", {}).get("kinds", {}).get(kind, {})
        return {str(k): str(v) for k, v in (spec.get("panel_measures") or {}).items()}

    @property
    def step(self) -> int:
        """Years between observations, inferred from the panel's years (census panels: 5 or 10)."""
        return infer_step(self.panel["year"])

    @property
    def network_lags(self) -> list[str] | None:
        """Variables averaged over partners as network-lag features (``[features] network_lags``): target
        growths such as ``population_growth_1y`` or panel columns; None = each target's 1- and 3-year growth."""
        lags = self.meta.get("features", {}).get("network_lags")
        return None if lags is None else [str(x) for x in lags]

    def column_info(self, column: str) -> dict[str, str]:
        """``unit``, ``description``, ``group``, ``source`` of a panel column as declared (may be empty)."""
        return {str(k): str(v) for k, v in self.meta.get("columns", {}).get(column, {}).items()}

    def display_names(self) -> pd.Series:
        """Unit names for display by unit_id; names shared by several units (중구, 북구, ...) get their group."""
        names = self.units["name"].astype(str)
        if "group" in self.units.columns:
            shared = names.duplicated(keep=False)
            names = names.where(~shared, names + " (" + self.units["group"].astype(str) + ")")
        return pd.Series(names.to_numpy(), index=self.units["unit_id"])

    def unit_names(self) -> pd.Series:
        return self.units.set_index("unit_id")["name"]


def infer_step(years: Iterable[int]) -> int:
    """Observation step in years: the greatest common divisor of the gaps between the distinct years (1 with
    fewer than two years). A yearly panel with missing years is still yearly (step 1)."""
    distinct = np.unique(np.asarray(list(years), dtype=np.int64))
    if len(distinct) < 2:
        return 1
    return max(1, int(np.gcd.reduce(np.diff(distinct))))


def growth_feature_names(targets: Iterable[str], step: int) -> list[str]:
    """Names of the targets' growth features over 1, 3 and 5 steps: ``<target>_growth_<years>y``."""
    return [f"{t}_growth_{k * step}y" for t in targets for k in GROWTH_STEPS]


def bundled_datasets() -> list[str]:
    """Names of the bundled datasets (package data of ``tiecast.datasets``)."""
    return sorted(p.parent.name for p in BUNDLED_ROOT.glob("*/dataset.toml"))


def resolve_dataset_path(name_or_path: str | Path) -> Path:
    """A folder path as given, or the bundled dataset of that name (e.g. ``"korea"``)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    bundled = BUNDLED_ROOT / str(name_or_path)
    if isinstance(name_or_path, str) and "/" not in name_or_path and (bundled / "dataset.toml").exists():
        return bundled.resolve()  # data/korea in a source checkout (tiecast/datasets/korea links to it)
    raise DatasetError(str(name_or_path), [Problem(
        "error", str(name_or_path), "no such dataset folder",
        fix=f"give a folder that contains dataset.toml, or a bundled dataset name: {', '.join(bundled_datasets())}",
    )])


class _Collector:
    """Collects problems, listing at most MAX_ROWS_LISTED rows per (file, column, message)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, severity: str, file: str, message: str, row: str | None = None, column: str | None = None,
            fix: str | None = None) -> None:
        self.problems.append(Problem(severity, file, message, row, column, fix))  # type: ignore[arg-type]

    def rows(self, severity: str, file: str, mask: pd.Series | np.ndarray, df: pd.DataFrame, column: str | None,
             message: str, fix: str, key: tuple[str, ...] = ()) -> None:
        """One problem per offending row (capped), naming the file line and the row's key."""
        idx = np.flatnonzero(np.asarray(mask))
        for i in idx[:MAX_ROWS_LISTED]:
            label = f"line {int(df.index[i]) + 2}"  # +1 for the header, +1 for 1-based lines
            if key:
                label += " (" + ", ".join(f"{k}={df.iloc[i][k]}" for k in key if k in df.columns) + ")"
            value = df.iloc[i][column] if column in df.columns else None
            text = message.format(value=value)
            self.add(severity, file, text, label, column, fix)
        if len(idx) > MAX_ROWS_LISTED:
            self.add(severity, file, f"... and {len(idx) - MAX_ROWS_LISTED} more rows with the same problem",
                     None, column, fix)

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def _find_table(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".csv.gz", ".parquet"):
        path = folder / f"{stem}{suffix}"
        if path.exists():
            return path
    return None


def _read_csv_text(path: Path) -> pd.DataFrame:
    """Read every cell as text, trying UTF-8 (with or without BOM) first, then CP949 (a superset of EUC-KR).

    The header is read as a data row and set verbatim, so that duplicated column names stay visible (pandas
    would rename the second ``value`` to ``value.1``) and a row with more fields than the header is an error
    (pandas would silently turn the first column into the index). Missing trailing cells read as empty.
    """
    last: UnicodeDecodeError | None = None
    for encoding in ("utf-8-sig", "cp949"):
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, header=None)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        df = raw.iloc[1:].reset_index(drop=True).fillna("")
        df.columns = pd.Index([str(c) for c in raw.iloc[0].fillna("")])
        return df
    assert last is not None
    raise last


def _read_table(path: Path, out: _Collector) -> pd.DataFrame | None:
    name = path.name
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
            # Normalise to text so that validation works the same way for both formats.
            df = df.astype(object).where(df.notna(), "").astype(str)
        else:
            df = _read_csv_text(path)
    except UnicodeDecodeError:
        out.add("error", name, "file is neither UTF-8 nor CP949/EUC-KR text", fix="save it as UTF-8 CSV")
        return None
    except Exception as exc:  # pandas/pyarrow parse errors have many types; report them all the same way
        out.add("error", name, f"cannot be read as a table: {str(exc).strip()}",
                fix="check the delimiter (comma) and quoting")
        return None
    df.columns = [str(c).strip() for c in df.columns]
    dupes = df.columns[df.columns.duplicated()].unique().tolist()
    for col in dupes:
        out.add("error", name, "column appears more than once", column=col, fix="keep one column of that name")
    if dupes:
        df = df.loc[:, ~df.columns.duplicated()]
    return df.apply(lambda s: s.str.strip())


def _is_blank(text: pd.Series) -> pd.Series:
    return text.eq("") | text.str.lower().isin(["nan", "na", "none", "null"])


def _to_number(df: pd.DataFrame, column: str, file: str, out: _Collector, integer: bool,
               key: tuple[str, ...]) -> pd.Series:
    text = df[column]
    blank = _is_blank(text)
    values = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = values.isna() & ~blank
    kind = "an integer" if integer else "a number"
    out.rows("error", file, bad, df, column, f"'{{value}}' is not {kind}", f"write {kind} (or leave the cell empty)",
             key)
    if integer:
        frac = values.notna() & (values % 1 != 0)
        out.rows("error", file, frac, df, column, "'{value}' is not a whole year", "write the year as e.g. 2020", key)
        values = values.where(~frac)  # reported above; keeps the Int64 cast from failing
    return values


def _parse_meta(folder: Path, out: _Collector) -> dict[str, Any] | None:
    path = folder / "dataset.toml"
    if not path.exists():
        out.add("error", "dataset.toml", "file is missing",
                fix='create it with at least: name = "..." and targets = ["population"]')
        return None
    try:
        meta = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        out.add("error", "dataset.toml", f"not valid TOML: {exc}", fix="fix the syntax (https://toml.io)")
        return None
    if not isinstance(meta.get("name"), str) or not meta.get("name"):
        out.add("error", "dataset.toml", "required key 'name' is missing or not a string", column="name",
                fix='add name = "my_regions"')
    targets = meta.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        out.add("error", "dataset.toml", "required key 'targets' must be a non-empty list of panel column names",
                column="targets", fix='add targets = ["population"]')
    elif "primary_target" in meta and meta["primary_target"] not in targets:
        out.add("error", "dataset.toml", f"primary_target {meta['primary_target']!r} is not one of the targets "
                f"{targets}", column="primary_target",
                fix=f'write primary_target = "{targets[0]}" (one of the targets) or remove the key')
        del meta["primary_target"]
    years = meta.get("years")
    if years is not None and not (
        isinstance(years, list) and len(years) == 2 and all(isinstance(y, int) for y in years) and years[0] <= years[1]
    ):
        out.add("error", "dataset.toml", f"'years' must be [first, last] integers, got {years!r}", column="years",
                fix="write years = [2008, 2025] or remove the key")
        del meta["years"]
    for table in ("breaks", "columns", "features", "flows", "small_mid_city"):
        if table in meta and not isinstance(meta[table], dict):
            out.add("error", "dataset.toml", f"'{table}' must be a table ([{table}])", column=table,
                    fix=f"write it as a [{table}] section or remove it")
            del meta[table]
    reviewed = meta.get("breaks", {}).get("reviewed", [])
    if not isinstance(reviewed, list) or not all(isinstance(r, str) for r in reviewed):
        out.add("error", "dataset.toml", "'breaks.reviewed' must be a list of \"unit_id@year\" strings",
                column="breaks.reviewed", fix='write reviewed = ["36110@2014"]')
        del meta["breaks"]["reviewed"]
    invariant = meta.get("flows", {}).get("time_invariant", [])
    if not isinstance(invariant, list) or not all(isinstance(k, str) for k in invariant):
        out.add("error", "dataset.toml", "'flows.time_invariant' must be a list of flow kinds",
                column="flows.time_invariant", fix='write time_invariant = ["contiguity"]')
        del meta["flows"]["time_invariant"]
    lags = meta.get("features", {}).get("network_lags")
    if lags is not None and (not isinstance(lags, list) or not all(isinstance(x, str) for x in lags)):
        out.add("error", "dataset.toml", "'features.network_lags' must be a list of panel columns or target growths",
                column="features.network_lags", fix='write network_lags = ["population_growth_1y", "aging_ratio"]')
        del meta["features"]["network_lags"]
    for name, spec in list(meta.get("columns", {}).items()):
        if not isinstance(spec, dict):
            out.add("error", "dataset.toml", f"'columns.{name}' must be a table with unit/description/group/source",
                    column=f"columns.{name}", fix=f'write [columns.{name}] with e.g. unit = "persons"')
            del meta["columns"][name]
    return meta


def _validate_columns(table: str, df: pd.DataFrame, file: str, out: _Collector) -> bool:
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in df.columns]
    header = "".join(map(str, df.columns))
    # One header cell holding the names and a separator: the file is not comma-separated.
    sep = next((c for c in (";", "\t", "|") if missing and len(df.columns) == 1 and c in header), None)
    if sep is not None:
        shown = "tab" if sep == "\t" else repr(sep)
        out.add("error", file, f"the header is one column {header[:80]!r}: the file is separated by {shown}, not "
                "commas", fix=f"save {file} as comma-separated CSV (decimal points, not commas), or as .parquet")
        return False
    for col in missing:
        out.add("error", file, "required column is missing", column=col,
                fix=f"{file} needs the columns {', '.join(REQUIRED_COLUMNS[table])}")
    if table != "panel":
        known = set(REQUIRED_COLUMNS[table]) | set(OPTIONAL_COLUMNS[table])
        for col in df.columns:
            if col not in known:
                out.add("warning", file, "unknown column is ignored", column=col,
                        fix=f"known columns: {', '.join(sorted(known))}")
    return not missing


def _convert(table: str, df: pd.DataFrame, file: str, out: _Collector) -> pd.DataFrame:
    """Typed copy: ids and text stay strings, everything else numeric (reporting cells that are not)."""
    key = {"panel": ("unit_id", "year"), "flows": ("origin", "destination", "year", "kind"),
           "units": ("unit_id",), "cooperation": ("unit_id", "program")}[table]
    typed = pd.DataFrame(index=df.index)
    known = set(REQUIRED_COLUMNS[table]) | set(OPTIONAL_COLUMNS[table])
    for col in df.columns:
        # Unknown columns of units/flows/cooperation are warned about and ignored: kept as text, not checked.
        if col in ID_COLUMNS[table] or col in TEXT_COLUMNS[table] or (table != "panel" and col not in known):
            typed[col] = df[col].astype(str)
        else:
            values = _to_number(df, col, file, out, integer=col in INT_COLUMNS[table], key=key)
            typed[col] = values.astype("Int64") if col in INT_COLUMNS[table] else values.astype(float)
    for col in ID_COLUMNS[table]:
        if col in typed.columns and not (table == "cooperation" and col == "partner_id"):
            out.rows("error", file, typed[col].eq(""), df, col, "empty id", "every row needs an id", key)
    for col in INT_COLUMNS[table]:
        if col in REQUIRED_COLUMNS[table] and col in df.columns:
            out.rows("error", file, _is_blank(df[col]), df, col, f"empty {col}", f"every row needs a {col}",
                     key)
    return typed


def _check_units(units: pd.DataFrame, file: str, out: _Collector) -> None:
    dup = units["unit_id"].duplicated(keep=False)
    out.rows("error", file, dup, units, "unit_id", "unit_id '{value}' appears more than once",
             "keep one row per unit", ("unit_id",))
    if "lat" in units.columns:
        out.rows("error", file, units["lat"].notna() & ~units["lat"].between(-90, 90), units, "lat",
                 "latitude {value} outside -90..90", "give decimal degrees (WGS84)", ("unit_id",))
    if "lon" in units.columns:
        out.rows("error", file, units["lon"].notna() & ~units["lon"].between(-180, 180), units, "lon",
                 "longitude {value} outside -180..180", "give decimal degrees (WGS84)", ("unit_id",))
    if "lat" not in units.columns or "lon" not in units.columns:
        out.add("warning", file, "no lat/lon columns: distances, gravity and borrowed-size features are skipped",
                column="lat", fix="add unit centroids in decimal degrees")
    else:
        # A unit without a centroid is left out of the distance-based features (features/_panel.py).
        blank = units["lat"].isna() | units["lon"].isna()
        out.rows("warning", file, blank, units, "lat",
                 "no lat/lon: the unit gets no gravity features (distance-based borrowed size, access, "
                 "gravity network lags) and no gravity weight as a partner of others",
                 "add the unit's centroid in decimal degrees (WGS84)", ("unit_id",))


def _check_unknown_ids(df: pd.DataFrame, file: str, columns: tuple[str, ...], known: set[str] | None,
                       key: tuple[str, ...], out: _Collector, allow_blank: bool = False) -> None:
    if known is None:
        return
    for col in columns:
        if col not in df.columns:
            continue
        unknown = ~df[col].isin(known)
        if allow_blank:
            unknown &= df[col].ne("")
        out.rows("error", file, unknown, df, col, "unit id '{value}' is not in units",
                 "add the unit to units.csv or fix the code (codes are text: keep leading zeros)", key)


def _check_years(df: pd.DataFrame, file: str, column: str, years: tuple[int, int] | None, key: tuple[str, ...],
                 out: _Collector) -> None:
    if years is None or column not in df.columns:
        return
    y = df[column]
    outside = y.notna() & ((y < years[0]) | (y > years[1]))
    out.rows("error", file, outside.fillna(False), df, column,
             f"year {{value}} is outside the declared years {years[0]}–{years[1]}",
             "fix the year or widen 'years' in dataset.toml", key)


def _check_panel(panel: pd.DataFrame, file: str, meta: dict[str, Any], out: _Collector) -> None:
    key = ("unit_id", "year")
    dup = panel.duplicated(["unit_id", "year"], keep=False)
    out.rows("error", file, dup, panel, "year", "duplicate (unit_id, year) row", "keep one row per unit and year",
             key)
    seen = (sorted(set(pd.to_numeric(panel["year"], errors="coerce").dropna().astype(int)))
            if "year" in panel.columns else [])
    step = infer_step(seen)
    gaps = sorted(set(range(seen[0], seen[-1] + 1, step)) - set(seen)) if len(seen) > 1 else []
    if gaps:
        shown = ", ".join(map(str, gaps[:8])) + (", ..." if len(gaps) > 8 else "")
        out.add("warning", file, f"no unit has a row for {shown} (one observation every {step} year(s) inferred "
                f"from {seen[0]}–{seen[-1]}): growth is not computed across the gap, so origins just after it "
                "have a short history and the baselines fall back to the last value there", column="year",
                fix="add the missing year(s) where the source has them; otherwise the gap is kept as is")
    declared = meta.get("targets")
    targets = [t for t in declared if isinstance(t, str)] if isinstance(declared, list) else []
    for target in targets:
        if target not in panel.columns:
            out.add("error", file, "target column declared in dataset.toml is missing", column=target,
                    fix="add the column or remove it from 'targets'")
            continue
        values = panel[target]
        out.rows("error", file, values.notna() & ~(values > 0), panel, target,
                 "target value {value} is not positive", "targets are levels (persons, KRW): use values > 0", key)
        out.rows("error", file, values.notna() & ~np.isfinite(values.fillna(0)), panel, target,
                 "target value {value} is not finite", "use a finite value or leave the cell empty", key)
    break_col = meta.get("breaks", {}).get("column")
    if break_col and break_col not in panel.columns:
        out.add("error", "dataset.toml", f"breaks.column '{break_col}' is not a panel column", column="breaks.column",
                fix="name an existing 0/1 panel column or remove [breaks]")
        break_col = None
    if not dup.any():
        reviewed = [str(r) for r in meta.get("breaks", {}).get("reviewed", [])]
        _check_target_breaks(panel, file, targets, break_col, reviewed, out)
    kinds = meta.get("flows", {}).get("kinds", {})
    for kind, spec in (kinds.items() if isinstance(kinds, dict) else []):
        measures = spec.get("panel_measures", {}) if isinstance(spec, dict) else {}
        if not isinstance(measures, dict):
            out.add("error", "dataset.toml", f"flows.kinds.{kind}.panel_measures must be a table",
                    column=f"flows.kinds.{kind}.panel_measures",
                    fix='write panel_measures = { in_strength = "in_strength" }')
            continue
        for col, measure in measures.items():
            if col not in panel.columns:
                out.add("error", "dataset.toml", f"panel_measures names '{col}', which is not a panel column",
                        column=f"flows.kinds.{kind}.panel_measures", fix="name existing panel columns")
            if measure not in _UNIT_MEASURES:
                out.add("error", "dataset.toml", f"panel_measures maps '{col}' to unknown measure '{measure}'",
                        column=f"flows.kinds.{kind}.panel_measures", fix=f"use one of {', '.join(_UNIT_MEASURES)}")
    years: pd.Series | list[int] = (pd.to_numeric(panel["year"], errors="coerce").dropna().astype(int)
                                    if "year" in panel.columns else [])
    growths = set(growth_feature_names(targets, infer_step(years)))
    for name in meta.get("features", {}).get("network_lags", None) or []:
        if name not in panel.columns and name not in growths:
            out.add("error", "dataset.toml", f"network lag '{name}' is neither a panel column nor a target growth",
                    column="features.network_lags",
                    fix=f"use panel columns or target growths such as {', '.join(sorted(growths)[:3])}")
    for col in meta.get("columns", {}):
        if col not in panel.columns:
            out.add("warning", "dataset.toml", "[columns] describes a column that is not in the panel",
                    column=str(col), fix="remove the table or add the column")


def _check_target_breaks(panel: pd.DataFrame, file: str, targets: list[str], break_col: str | None,
                         reviewed: list[str], out: _Collector) -> None:
    """Warn about year-on-year jumps of a target that are not flagged as boundary breaks.

    ``reviewed`` lists ``"unit_id@year"`` jumps the data owner checked and kept as real growth
    (``[breaks] reviewed`` in dataset.toml), e.g. a new town.
    """
    ordered = panel.sort_values(["unit_id", "year"])
    ordered = ordered.assign(_reviewed=(ordered["unit_id"] + "@" + ordered["year"].astype(str)).isin(reviewed))
    consecutive = ordered["unit_id"].eq(ordered["unit_id"].shift()) & ordered["year"].eq(ordered["year"].shift() + 1)
    flagged = ordered[break_col].fillna(0).astype(float).gt(0) if break_col else pd.Series(False, ordered.index)
    for target in targets:
        if target not in ordered.columns:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            jump = np.log(ordered[target].where(ordered[target] > 0)).diff().abs()
        suspicious = consecutive & jump.gt(BREAK_LOG_JUMP) & ~flagged & ~ordered["_reviewed"]
        out.rows("warning", file, suspicious, ordered, target,
                 f"{target} jumps by more than {math.expm1(BREAK_LOG_JUMP):.0%} from the year before ({{value}})",
                 "if this is a merger or recode, set the break column to 1 in this year "
                 "([breaks] column in dataset.toml) so training does not learn it as growth",
                 ("unit_id", "year"))


def _check_flows(flows: pd.DataFrame, file: str, out: _Collector) -> None:
    key = ("origin", "destination", "year", "kind")
    value = flows["value"]
    out.rows("error", file, value.notna() & (value < 0), flows, "value", "negative flow {value}",
             "flows are counts or volumes >= 0", key)
    out.rows("error", file, value.isna() | ~np.isfinite(value.fillna(0)), flows, "value",
             "flow value is missing or not finite", "give a finite number >= 0 (0 for no flow)", key)
    dup = flows.duplicated(["origin", "destination", "year", "kind"], keep=False)
    out.rows("error", file, dup, flows, "value", "duplicate (origin, destination, year, kind) row",
             "sum duplicate flows into one row", key)
    out.rows("error", file, flows["kind"].eq(""), flows, "kind", "empty flow kind",
             "name the kind (migration, commuting, trips, contiguity, ...)", key)


def _check_cooperation(coop: pd.DataFrame, file: str, out: _Collector) -> None:
    key = ("unit_id", "program")
    if "end_year" in coop.columns:
        bad = coop["end_year"].notna() & coop["start_year"].notna() & (coop["end_year"] < coop["start_year"])
        out.rows("error", file, bad.fillna(False), coop, "end_year", "end_year {value} is before start_year",
                 "swap or fix the years", key)
    if "partner_id" in coop.columns:
        out.rows("error", file, coop["partner_id"].eq(coop["unit_id"]), coop, "partner_id",
                 "a unit cannot cooperate with itself", "name another unit or leave partner_id empty", key)


def apply_small_mid_rule(units: pd.DataFrame, panel: pd.DataFrame, meta: dict[str, Any]) -> pd.Series:
    """0/1 flag per unit from ``[small_mid_city] rule`` (a pandas query on units + latest population).

    The default rule, used when the key is absent but the columns exist: a ``si`` outside the capital region,
    not part of a metropolitan city, under 500,000 people in the latest panel year.
    """
    rule = meta.get("small_mid_city", {}).get("rule")
    frame = units.copy()
    if "population" in panel.columns and not panel.empty:
        latest = panel.dropna(subset=["population"]).sort_values("year").groupby("unit_id")["population"].last()
        frame["population"] = frame["unit_id"].map(latest)
    if rule is None:
        needed = {"kind", "capital_region", "metro", "population"}
        if not needed <= set(frame.columns):
            return pd.Series(0, index=units.index, dtype=int)
        rule = "kind == 'si' and capital_region == 0 and metro == 0 and population < 500000"
    selected = frame.query(str(rule), engine="python")
    return units["unit_id"].isin(selected["unit_id"]).astype(int)


def _fingerprint(folder: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _load(folder: Path) -> tuple[Dataset | None, list[Problem]]:
    out = _Collector()
    meta = _parse_meta(folder, out)
    raw: dict[str, pd.DataFrame] = {}
    typed: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    paths: list[Path] = [folder / "dataset.toml"] if (folder / "dataset.toml").exists() else []
    for table in TABLES:
        path = _find_table(folder, table)
        if path is None:
            if table != "cooperation":
                out.add("error", f"{table}.csv", "file is missing",
                        fix=f"add {table}.csv (or .parquet) with columns {', '.join(REQUIRED_COLUMNS[table])}")
            continue
        paths.append(path)
        files[table] = path.name
        df = _read_table(path, out)
        if df is None or not _validate_columns(table, df, path.name, out):
            continue
        if df.empty and table in ("units", "panel"):
            out.add("error", path.name, "file has a header but no data rows", fix=f"add the {table} rows")
            continue
        raw[table] = df
        typed[table] = _convert(table, df, path.name, out)
    meta = meta or {}
    years = None
    if isinstance(meta.get("years"), list) and len(meta["years"]) == 2:
        years = (int(meta["years"][0]), int(meta["years"][1]))
    # None when units could not be read (already reported): every id would look unknown.
    known: set[str] | None = set(typed["units"]["unit_id"]) if "units" in typed else None
    if "units" in typed:
        _check_units(typed["units"], files["units"], out)
    if "panel" in typed:
        panel = typed["panel"]
        _check_unknown_ids(panel, files["panel"], ("unit_id",), known, ("unit_id", "year"), out)
        _check_years(panel, files["panel"], "year", years, ("unit_id", "year"), out)
        _check_panel(panel, files["panel"], meta, out)
        without = sorted(known - set(panel["unit_id"])) if known is not None else []
        if without:
            out.add("warning", files["panel"], f"{len(without)} unit(s) have no panel rows: {', '.join(without[:10])}",
                    column="unit_id", fix="add their rows or remove them from units")
    if "flows" in typed:
        flows = typed["flows"]
        key = ("origin", "destination", "year", "kind")
        _check_unknown_ids(flows, files["flows"], ("origin", "destination"), known, key, out)
        _check_years(flows, files["flows"], "year", years, key, out)
        _check_flows(flows, files["flows"], out)
    if "cooperation" in typed:
        coop = typed["cooperation"]
        _check_unknown_ids(coop, files["cooperation"], ("unit_id",), known, ("unit_id", "program"), out)
        _check_unknown_ids(coop, files["cooperation"], ("partner_id",), known, ("unit_id", "program"), out,
                           allow_blank=True)
        _check_years(coop, files["cooperation"], "start_year", years, ("unit_id", "program"), out)
        _check_cooperation(coop, files["cooperation"], out)
    if out.has_errors or meta is None:
        return None, out.problems
    units = typed["units"].reset_index(drop=True)
    panel = typed["panel"].astype({"year": int}).sort_values(["unit_id", "year"]).reset_index(drop=True)
    flows = typed["flows"].astype({"year": int}).reset_index(drop=True)
    coop = typed.get("cooperation", pd.DataFrame({c: pd.Series(dtype=str) for c in REQUIRED_COLUMNS["cooperation"]}))
    try:
        flag = apply_small_mid_rule(units, panel, meta)
    except Exception as exc:  # a user-written query can fail in many ways
        out.add("error", "dataset.toml", f"small_mid_city rule cannot be evaluated: {exc}",
                column="small_mid_city.rule", fix="write a pandas query over units.csv columns and population")
        return None, out.problems
    if "small_mid_city" in units.columns:
        differ = units["small_mid_city"].fillna(-1).astype(int).ne(flag)
        out.rows("warning", files["units"], differ, units, "small_mid_city",
                 "flag {value} disagrees with the rule in dataset.toml (the rule is used)",
                 "rebuild the column or change the rule", ("unit_id",))
    units["small_mid_city"] = flag
    ds = Dataset(
        name=str(meta["name"]), path=folder, meta=meta, units=units, panel=panel, flows=flows,
        cooperation=coop.reset_index(drop=True), fingerprint=_fingerprint(folder, paths),
        warnings=[p for p in out.problems if p.severity == "warning"],
    )
    return ds, out.problems


def check_dataset(name_or_path: str | Path) -> list[Problem]:
    """Every problem (errors and warnings) found in a dataset folder; an empty list means clean."""
    folder = resolve_dataset_path(name_or_path)
    return _load(folder)[1]


def load_dataset(name_or_path: str | Path = "korea") -> Dataset:
    """Load and validate a dataset folder, or a bundled dataset by name (default ``"korea"``).

    Raises :class:`DatasetError` listing every problem when the folder breaks the contract.
    """
    folder = resolve_dataset_path(name_or_path)
    ds, problems = _load(folder)
    if ds is None:
        raise DatasetError(str(folder), problems)
    return ds
