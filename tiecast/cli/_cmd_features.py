"""``tiecast ties`` (a unit's strongest partners) and ``tiecast features`` (the feature panel)."""

from __future__ import annotations

import argparse

import pandas as pd
from rich.console import Console
from rich.table import Table

from tiecast.common import ConfigError, check_table_path, write_table
from tiecast.features import Dataset, build_features, load_dataset, pair_indices, unit_tie_measures


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ties = sub.add_parser("ties", help="a unit's strongest partners with tie indices (reciprocity, strength, ...)")
    ties.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    ties.add_argument("--unit", required=True, help="unit code (e.g. 51150) or unique name (e.g. 강릉시)")
    ties.add_argument("--year", type=int, help="flow year (default: the latest year of the kind)")
    ties.add_argument("--kind", help="flow kind (default: the observed kind with the latest year)")
    ties.add_argument("--top", type=int, default=10, help="number of partners shown (default 10)")
    ties.add_argument("--out", help="write the full pair table of that kind and year (.csv, .csv.gz, .parquet)")
    ties.set_defaults(func=run_ties)
    feats = sub.add_parser("features", help="build the leak-free feature panel (one row per unit and origin year)")
    feats.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    feats.add_argument("--out", required=True, help="output file (.parquet, .csv or .csv.gz)")
    feats.add_argument("--catalog", help="also write the feature catalog (name, group, unit, description)")
    feats.set_defaults(func=run_features)


def resolve_unit(ds: Dataset, text: str) -> str:
    """A unit id from a code or a unique Korean/English name."""
    units = ds.units
    if text in set(units["unit_id"]):
        return text
    matches = units[(units["name"] == text) | (units.get("name_en", units["name"]) == text)]
    if len(matches) == 1:
        return str(matches["unit_id"].iloc[0])
    if len(matches) > 1:
        options = ", ".join(f"{r.unit_id} {r.name} ({getattr(r, 'group', '')})" for r in matches.itertuples())
        raise ConfigError(f"--unit {text!r} is ambiguous: {options}; give the code")
    raise ConfigError(f"--unit {text!r} is neither a unit_id nor a unit name of dataset {ds.name}")


def _choose_kind_year(ds: Dataset, kind: str | None, year: int | None) -> tuple[str, int]:
    flows = ds.flows
    if flows.empty:
        raise ConfigError(f"dataset {ds.name} has no flows")
    kinds = sorted(flows["kind"].unique())
    if kind is None:
        observed = flows[~flows["kind"].isin(ds.time_invariant_kinds)]
        pool = observed if not observed.empty else flows
        latest = pool.groupby("kind")["year"].max()
        kind = str(latest.sort_values(kind="stable").index[-1])
    if kind not in kinds:
        raise ConfigError(f"--kind {kind!r} is not a flow kind of {ds.name}; choose one of {', '.join(kinds)}")
    years = sorted(int(y) for y in flows.loc[flows["kind"] == kind, "year"].unique())
    if year is None:
        year = years[-1]
    if year not in years:
        raise ConfigError(f"--year {year}: {kind} flows exist for {', '.join(map(str, years))}")
    return kind, year


def population_at(ds: Dataset, year: int) -> pd.Series:
    """Population (or the first target) per unit in ``year``, else the latest earlier year available."""
    column = ds.mass_column
    known = ds.panel[(ds.panel["year"] <= year) & ds.panel[column].notna()]
    if known.empty:
        known = ds.panel[ds.panel[column].notna()]
    return known.sort_values("year").groupby("unit_id")[column].last()


def run_ties(args: argparse.Namespace) -> int:
    if args.out:
        check_table_path(args.out)
    ds = load_dataset(args.data)
    unit = resolve_unit(ds, args.unit)
    kind, year = _choose_kind_year(ds, args.kind, args.year)
    flows = ds.flows[(ds.flows["kind"] == kind) & (ds.flows["year"] == year)]
    population = population_at(ds, year)
    pairs = pair_indices(flows, ds.units, population)
    if args.out:
        write_table(pairs, args.out)
    names = ds.display_names()
    mine = pairs[pairs["origin"] == unit].sort_values(["tie_index", "volume"], ascending=False)
    console = Console(highlight=False)
    console.width = max(console.width, 120)  # keep the table readable when output is piped
    console.print(f"[bold]{names[unit]} ({unit})[/bold] — {kind} ties, {year}: {len(mine)} partners")
    table = Table()
    for col in ("partner", "code", "out", "in", "reciprocity", "expected", "strength", "tie index", "dominant"):
        table.add_column(col, justify="left" if col in ("partner", "code") else "right")
    for r in mine.head(args.top).itertuples(index=False):
        table.add_row(str(names.get(r.destination, r.destination)), str(r.destination), f"{r.flow_ij:,.0f}",
                      f"{r.flow_ji:,.0f}", f"{r.reciprocity:.2f}", f"{r.expected_gravity:,.0f}",
                      f"{r.strength_log:+.2f}", f"{r.tie_index:.3f}", "◀" if r.is_dominant else "")
    console.print(table)
    console.print("out/in: flows from/to the unit; expected: gravity model (population, distance); strength: "
                  "log(observed/expected); dominant: the unit's largest outflow (Nystuen–Dacey).", soft_wrap=True)
    _print_position(console, ds, flows, population, unit, names)
    if args.out:
        console.print(f"wrote {len(pairs):,} pairs to {args.out}")
    return 0


def _print_position(console: Console, ds: Dataset, flows: pd.DataFrame, population: pd.Series, unit: str,
                    names: pd.Series) -> None:
    """The unit's place in the flow system: Nystuen–Dacey hub and level, functional region and its members."""
    m = unit_tie_measures(flows, ds.units, population, gravity=False, path_sources=0, dominance_size="population")
    row = m.loc[unit]
    level = int(row["hierarchy_level"])
    hub = str(row["hub"])
    where = "a hub itself" if level == 0 else f"level {level} under the hub {names.get(hub, hub)} ({hub})"
    console.print(f"dominant-flow hierarchy (size = population): {where}")
    members = m.index[m["functional_region"] == row["functional_region"]]
    by_size = population.reindex(members).sort_values(ascending=False)
    shown = ", ".join(str(names.get(u, u)) for u in by_size.index[:12])
    more = f" and {len(members) - 12} more" if len(members) > 12 else ""
    console.print(f"functional region (Louvain on two-way volume): {len(members)} units – {shown}{more}",
                  soft_wrap=True)


def run_features(args: argparse.Namespace) -> int:
    for path in (args.out, args.catalog):
        if path:
            check_table_path(path)
    ds = load_dataset(args.data)
    result = build_features(ds, progress=True)
    write_table(result.frame, args.out)
    if args.catalog:
        write_table(result.catalog_frame(), args.catalog)
    console = Console(highlight=False)
    groups = ", ".join(f"{g} {len(n)}" for g, n in result.groups().items())
    console.print(f"wrote {args.out}: {len(result.frame):,} rows (unit x origin year), "
                  f"{len(result.names)} features ({groups})")
    if not result.sources.empty:
        used = result.sources.groupby(["kind", "flow_year", "source"])["year"].agg(["min", "max"]).reset_index()
        for r in used.itertuples(index=False):
            console.print(f"  {r.kind} flows of {r.flow_year} ({r.source}) feed origin years {r.min}–{r.max}")
    return 0
