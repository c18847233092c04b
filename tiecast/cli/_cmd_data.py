"""``tiecast data check`` and ``tiecast data info``."""

from __future__ import annotations

import argparse

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tiecast.common import DatasetError
from tiecast.features import Dataset, build_features, check_dataset, load_dataset


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data = sub.add_parser("data", help="check or summarise a dataset folder")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    check = data_sub.add_parser("check", help="validate a dataset folder and list every problem")
    check.add_argument("dataset", help="dataset folder, or a bundled dataset name such as 'korea'")
    check.set_defaults(func=run_check)
    info = data_sub.add_parser("info", help="summarise a dataset: units, years, coverage, flows")
    info.add_argument("dataset", nargs="?", default="korea", help="dataset folder or bundled name (default korea)")
    info.set_defaults(func=run_info)


def _console() -> Console:
    # markup=False: file names, ids and values come from user data and may contain "[...]".
    return Console(highlight=False, markup=False)


def run_check(args: argparse.Namespace) -> int:
    console = _console()
    problems = check_dataset(args.dataset)
    if not any(p.severity == "error" for p in problems):
        # What only the feature panel shows (a panel column named like a derived feature): its names are
        # those of any origin year, so the last year alone is built.
        ds = load_dataset(args.dataset)
        try:
            build_features(ds, years=[int(ds.panel["year"].max())])
        except DatasetError as exc:
            problems = problems + exc.problems
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    for p in problems:
        style = "red" if p.severity == "error" else "yellow"
        text = str(p).split(" ", 1)[1]
        console.print(Text.assemble((p.severity.upper(), style), " " + text), soft_wrap=True)
    verdict = Text("FAILED", "red") if errors else Text("OK", "green")
    summary = f" {args.dataset}: {len(errors)} error(s), {len(warnings)} warning(s)"
    console.print(Text.assemble(verdict, summary), soft_wrap=True)
    return 1 if errors else 0


def coverage_table(ds: Dataset) -> pd.DataFrame:
    """Per panel column: unit, share of unit-years filled (%), first and last year with data, group."""
    panel = ds.panel
    rows = []
    for col in panel.columns.drop(["unit_id", "year"]):
        filled = panel[col].notna()
        years = panel.loc[filled, "year"]
        info = ds.column_info(col)
        rows.append({
            "column": col,
            "unit": info.get("unit", ""),
            "group": info.get("group", ""),
            "filled_pct": 100.0 * filled.mean(),
            "first_year": int(years.min()) if len(years) else None,
            "last_year": int(years.max()) if len(years) else None,
            "target": col in ds.targets,
        })
    return pd.DataFrame(rows)


def flow_summary(ds: Dataset) -> pd.DataFrame:
    """Per flow kind: years, number of pairs, total volume."""
    flows = ds.flows
    if flows.empty:
        return pd.DataFrame(columns=["kind", "years", "pairs", "total"])
    grouped = flows.groupby("kind")
    return pd.DataFrame({
        "years": grouped["year"].agg(lambda y: ", ".join(str(v) for v in sorted(set(y)))),
        "pairs": grouped.size(),
        "total": grouped["value"].sum(),
        "time_invariant": [k in ds.time_invariant_kinds for k in grouped.groups],
    }).reset_index()


def run_info(args: argparse.Namespace) -> int:
    ds = load_dataset(args.dataset)
    console = _console()
    first, last = ds.years
    console.print(Text.assemble((ds.name, "bold"), f"  ({ds.path})  fingerprint {ds.fingerprint}"))
    if ds.meta.get("description"):
        console.print(str(ds.meta["description"]), soft_wrap=True)
    units = ds.units
    kinds = units["kind"].value_counts().to_dict() if "kind" in units.columns else {}
    kind_text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    console.print(f"units: {len(units)}" + (f" ({kind_text})" if kind_text else "")
                  + f"; small/mid-size provincial cities: {int(units['small_mid_city'].sum())}")
    console.print(f"years: {first}–{last}; panel rows: {len(ds.panel)}; targets: {', '.join(ds.targets)}")

    table = Table(title="panel coverage", show_lines=False)
    for name in ("column", "unit", "group", "filled %", "years", "target"):
        table.add_column(name, justify="right" if name == "filled %" else "left")
    for row in coverage_table(ds).to_dict("records"):
        span = f"{row['first_year']}–{row['last_year']}" if row["first_year"] is not None else "-"
        table.add_row(str(row["column"]), str(row["unit"]), str(row["group"]), f"{row['filled_pct']:.1f}", span,
                      "yes" if row["target"] else "")
    console.print(table)

    ftable = Table(title="flows")
    for name in ("kind", "years", "pairs", "total", "time-invariant"):
        ftable.add_column(name, justify="right" if name in ("pairs", "total") else "left")
    for row in flow_summary(ds).to_dict("records"):
        ftable.add_row(str(row["kind"]), str(row["years"]), f"{row['pairs']:,}", f"{row['total']:,.0f}",
                       "yes" if row["time_invariant"] else "")
    console.print(ftable)
    if not ds.cooperation.empty:
        console.print(f"cooperation arrangements: {len(ds.cooperation)} "
                      f"({ds.cooperation['program'].nunique()} programs)")
    for w in ds.warnings:
        console.print(str(w), style="yellow", soft_wrap=True)
    return 0
