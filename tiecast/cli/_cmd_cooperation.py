"""``tiecast forecast`` (baseline and cooperation trajectories), ``tiecast effects validate`` (semi-synthetic
benchmark and real-data placebos) and ``tiecast target`` (who gains most from cooperation, with whom)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from tiecast.common import ConfigError, atomic_write, check_table_path, stage, write_table
from tiecast.features import (
    BUILTIN_SCENARIOS,
    Dataset,
    Scenario,
    build_features,
    builtin_scenario,
    load_dataset,
    read_scenarios,
)
from tiecast.training import (
    FOCUS,
    MODEL_ERROR,
    REPORTED_METHOD,
    ScenarioForecaster,
    SemiSyntheticConfig,
    focus_units,
    placebo_checks,
    rank_targets,
    validate_effects,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fc = sub.add_parser("forecast", help="baseline and with/without-cooperation trajectories of every unit")
    fc.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    fc.add_argument("--scenario", action="append", default=None, metavar="NAME|FILE|FOLDER",
                    help=f"a built-in scenario ({', '.join(BUILTIN_SCENARIOS)}, topN; for the units in --units), a "
                         ".json/.toml scenario file or a folder of them (repeatable)")
    fc.add_argument("--units", default=None, help="unit codes or names, comma-separated: the focal units of "
                                                  "built-in scenarios and the units written (partners are always kept)")
    fc.add_argument("--origin", type=int, default=None, help="forecast as of this year using only data up to it "
                                                            "(default: the last data year)")
    fc.add_argument("--horizon", type=int, default=5, help="years ahead, 1-10 (default 5)")
    fc.add_argument("--target", action="append", default=None, help="target (repeatable; default: all)")
    fc.add_argument("--seed", type=int, default=0, help="random seed")
    fc.add_argument("--out", required=True, help="output table (.csv, .csv.gz or .parquet)")
    fc.add_argument("--no-progress", action="store_true", help="no progress bars")
    fc.set_defaults(func=run_forecast)

    ef = sub.add_parser("effects", help="how far the cooperation effect can be trusted")
    ef_sub = ef.add_subparsers(dest="action", metavar="ACTION")
    ef_sub.required = True
    va = ef_sub.add_parser("validate", help="semi-synthetic benchmark with known effects, and real-data placebos")
    va.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    va.add_argument("--scenarios", type=int, default=15, help="cooperation scenarios per replication (default 15)")
    va.add_argument("--replications", type=int, default=4, help="simulated worlds (default 4)")
    va.add_argument("--placebo-draws", type=int, default=10, help="draws per placebo (default 10; 0 = skip)")
    va.add_argument("--seed", type=int, default=0, help="seed of the simulated worlds (the interval allowance was "
                                                       "calibrated with seed 1000)")
    va.add_argument("--out", default=None, help="folder for table.csv, units.csv and placebo.csv")
    va.add_argument("--no-progress", action="store_true", help="no progress bars")
    va.set_defaults(func=run_validate)

    tg = sub.add_parser("target", help="rank units by the expected gain from their best cooperation scenario")
    tg.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    tg.add_argument("--focus", default="small-mid", choices=FOCUS, help="units ranked (default small-mid)")
    tg.add_argument("--candidates", type=int, default=10, help="candidate partners per unit (default 10)")
    tg.add_argument("--horizon", type=int, default=5, help="years ahead (default 5)")
    tg.add_argument("--origin", type=int, default=None, help="origin year (default: the last data year)")
    tg.add_argument("--seed", type=int, default=0, help="random seed")
    tg.add_argument("--out", required=True, help="output table (.csv, .csv.gz or .parquet)")
    tg.add_argument("--no-progress", action="store_true", help="no progress bars")
    tg.set_defaults(func=run_target)


def resolve_units(ds: Dataset, text: str | None) -> list[str] | None:
    """Unit ids from comma-separated codes or unique names (Korean or romanized)."""
    if text is None:
        return None
    units = ds.units.assign(unit_id=ds.units["unit_id"].astype(str))
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item in set(units["unit_id"]):
            out.append(item)
            continue
        hits = units[(units["name"] == item) | (units.get("name_en", pd.Series(dtype=str)) == item)]
        if len(hits) != 1:
            how = "matches several units: give the code" if len(hits) else "is neither a unit code nor a unit name"
            raise ConfigError(f"unit {item!r} {how} of dataset {ds.name!r}", parameter="units")
        out.append(str(hits["unit_id"].iloc[0]))
    if not out:
        raise ConfigError("units names no unit", parameter="units")
    return out


def _scenarios(ds: Dataset, specs: list[str], units: list[str] | None, origin: int) -> list[Scenario]:
    out: list[Scenario] = []
    for spec in specs:
        if spec in BUILTIN_SCENARIOS or (spec.startswith("top") and spec[3:].isdigit() and not Path(spec).exists()):
            if not units:
                raise ConfigError(f"built-in scenario {spec!r} needs the focal unit(s) in --units",
                                  parameter="units")
            out += [builtin_scenario(spec, u, origin) for u in units]
            if len(units) > 1:
                out[-len(units):] = [Scenario(**{**s.__dict__, "id": f"{s.id}_{s.unit}"}) for s in out[-len(units):]]
        else:
            out += read_scenarios(spec)
    ids = [s.id for s in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"scenario ids must be unique; repeated: {', '.join(dup)} (set 'id' in the files)",
                          parameter="scenario")
    return out


def _fmt(value: float, digits: int = 0) -> str:
    return "-" if not np.isfinite(value) else f"{value:,.{digits}f}"


def cooperation_tables(frame: pd.DataFrame) -> list[Table]:
    """Per target: focal and partner rows of the reported method at the last horizon (rich tables)."""
    tables = []
    for target, part in frame.groupby("target", sort=False):
        last = part[part["horizon"] == part["horizon"].max()]
        rows = last[(last["method"] == REPORTED_METHOD) & last["role"].isin(["focal", "partner"])]
        if rows.empty:
            continue
        whatif = last[last["method"] == "forecaster_whatif"].set_index(["scenario_id", "unit_id"])["difference"]
        year = int(rows["year"].iloc[0])
        table = Table(title=f"{target} in {year}: without and with cooperation", title_justify="left")
        for col in ("scenario", "unit", "role", "without", "with", "difference [90%]", "what-if"):
            table.add_column(col, justify="left" if col in ("scenario", "unit", "role") else "right", no_wrap=True)
        digits = 0 if rows["baseline"].abs().median() > 1000 else 2
        for r in rows.sort_values(["scenario_id", "role", "unit_id"]).itertuples(index=False):
            w = whatif.get((r.scenario_id, r.unit_id), np.nan)
            diff = (f"{r.difference:+,.{digits}f} [{_fmt(r.difference_lower90, digits)}, "
                    f"{_fmt(r.difference_upper90, digits)}]") if np.isfinite(r.difference) else "-"
            table.add_row(str(r.scenario_id)[:16], str(r.name), r.role + (" *" if r.extrapolation else ""),
                          _fmt(r.baseline, digits), _fmt(r.cooperation, digits), diff,
                          f"{w:+,.{digits}f}" if np.isfinite(w) else "-")
        tables.append(table)
    return tables


FORECAST_NOTE = (f"difference = with - without, by the {REPORTED_METHOD} estimate (double ML of the effect of balanced "
                 "two-way tie volume on growth; interval on the difference itself, including a model-error "
                 f"allowance of {MODEL_ERROR:.0%} of the effect); what-if = the forecaster's own what-if (features "
                 "recomputed from the scenario's flows). * = the scenario pushes the unit's ties outside the range "
                 "seen for units of its size (extrapolation).")


def _say_unforecast(console: Console, sf: ScenarioForecaster, units: Sequence[str] | None) -> None:
    """One line per target naming the units (of ``units``, default all) left out for want of a start-year value."""
    wanted = None if units is None else set(units)
    for target, lacking in sf.unforecast().items():
        lacking = [u for u in lacking if wanted is None or u in wanted]
        if lacking:
            shown = ", ".join(f"{u} {sf.names_.get(u, '')}".strip() for u in lacking[:5])
            console.print(f"not forecast: {len(lacking)} unit(s) without {target} in "
                          f"{sf.forecaster_.data_end_[target]}, the year its forecasts start from "
                          f"({shown}{', ...' if len(lacking) > 5 else ''})", style="yellow", soft_wrap=True)


def run_forecast(args: argparse.Namespace) -> int:
    check_table_path(args.out)
    console = Console(highlight=False)
    start = time.perf_counter()
    ds = load_dataset(args.data)
    units = resolve_units(ds, args.units)
    origin = args.origin if args.origin is not None else int(ds.panel["year"].max())
    scenarios = _scenarios(ds, args.scenario or [], units, origin)
    with stage(not args.no_progress, "models", 1) as advance:
        sf = ScenarioForecaster(ds, origin=origin, horizons=args.horizon, targets=args.target, seed=args.seed,
                                features=build_features(ds)).fit()
        advance()
    if units is not None:
        sf.check_forecastable(units, where="--units")
    parts = [] if scenarios else [sf.baseline(units)]
    with stage(not args.no_progress and bool(scenarios), "scenarios", len(scenarios)) as advance:
        for sc in scenarios:
            answer = sf.answer(sc)
            if units is not None:
                answer = answer[answer["unit_id"].isin(units) | answer["role"].isin(["focal", "partner"])]
            parts.append(answer)
            advance()
    out = pd.concat(parts, ignore_index=True)
    write_table(out, args.out)
    ends = ", ".join(f"{t} from {y}" for t, y in sf.forecaster_.data_end_.items())
    console.print(f"origin {origin} ({ends}), horizon {args.horizon}: {len(scenarios)} scenario(s), "
                  f"{out['unit_id'].nunique()} units", soft_wrap=True)
    _say_unforecast(console, sf, units)
    if scenarios:
        for table in cooperation_tables(out):
            console.print(table)
        console.print(FORECAST_NOTE, style="dim", soft_wrap=True)
    console.print(f"wrote {len(out):,} rows to {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    for name in ("scenarios", "replications"):
        if getattr(args, name) < 1:
            raise ConfigError(f"{name} must be at least 1", parameter=name)
    console = Console(highlight=False)
    ds = load_dataset(args.data)
    cfg = SemiSyntheticConfig(seed=args.seed, scenarios=args.scenarios)
    with stage(not args.no_progress, "semi-synthetic scenarios", args.scenarios * args.replications) as advance:
        res = validate_effects(ds, cfg, replications=args.replications, progress=advance)
    table = Table(title=f"semi-synthetic benchmark ({args.replications} world(s) x {args.scenarios} scenarios, "
                        f"h = {cfg.horizon}, effects in % of the baseline level)", title_justify="left")
    for col in ("estimator", "role", "n", "mean true effect", "bias", "sqrt-PEHE", "vs zero", "90% coverage"):
        table.add_column(col, justify="left" if col in ("estimator", "role") else "right")
    for r in res.table.to_dict("records"):
        cov = float(r["coverage90"])
        table.add_row(str(r["estimator"]), str(r["role"]), str(r["n"]), f"{r['mean_truth']:+.2f}", f"{r['bias']:+.2f}",
                      f"{r['sqrt_pehe']:.2f}", f"{r['pehe_vs_zero']:.0%}",
                      "-" if not np.isfinite(cov) else f"{cov:.0%}")
    console.print(table)
    for goal, ok in res.passes().items():
        console.print(f"  {'[green]pass[/green]' if ok else '[red]FAIL[/red]'}  {goal}")
    placebo = None
    if args.placebo_draws > 0:
        with stage(not args.no_progress, "placebos", 2 * args.placebo_draws) as advance:
            placebo = placebo_checks(ds, draws=args.placebo_draws, seed=args.seed, progress=advance)
        console.print("placebos on the real data (h = 5, DML estimate of a null treatment): pass when at most 20% "
                      "of the draws reject zero at the 10% level and the pooled mean's 90% interval covers 0",
                      soft_wrap=True)
        pt = Table(title_justify="left")
        for col in ("placebo", "draws", "mean estimate", "mean se", "rejected at 10%", "verdict"):
            pt.add_column(col, justify="left" if col in ("placebo", "verdict") else "right")
        for p in placebo.summary.to_dict("records"):
            pt.add_row(str(p["placebo"]), str(p["draws"]), f"{p['mean_estimate']:+.4f}", f"{p['mean_se']:.4f}",
                       f"{p['rejection_rate_10pct']:.0%}", "[green]pass[/green]" if p["passes"] else "[red]FAIL[/red]")
        console.print(pt)
    if args.out:
        folder = Path(args.out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"output folder {folder}: cannot create it ({exc})", parameter="out") from exc
        write_table(res.table, folder / "table.csv")
        write_table(res.units, folder / "units.csv")
        if placebo is not None:
            write_table(placebo.summary, folder / "placebo.csv")
            write_table(placebo.draws, folder / "placebo_draws.csv")
        atomic_write(folder / "passes.txt", lambda tmp: tmp.write_text(
            "\n".join(f"{'pass' if ok else 'FAIL'}\t{g}" for g, ok in res.passes().items()) + "\n", encoding="utf-8"))
        console.print(f"wrote table.csv, units.csv{', placebo.csv' if placebo is not None else ''} to {folder}")
    return 0


def run_target(args: argparse.Namespace) -> int:
    check_table_path(args.out)
    console = Console(highlight=False)
    start = time.perf_counter()
    ds = load_dataset(args.data)
    with stage(not args.no_progress, "models", 1) as advance:
        sf = ScenarioForecaster(ds, origin=args.origin, horizons=args.horizon, seed=args.seed,
                                targets=[ds.primary_target]).fit()
        advance()
    focus = focus_units(sf, args.focus)
    _say_unforecast(console, sf, focus)
    with stage(not args.no_progress, "targets", len(focus)) as advance:
        table = rank_targets(sf, focus=args.focus, candidates=args.candidates, horizon=args.horizon,
                             progress=advance)
    write_table(table, args.out)
    view = Table(title=f"expected gain from the best cooperation scenario ({args.focus}, {ds.primary_target}, "
                       f"{sf.origin + args.horizon}; DML estimate, % of the baseline)", title_justify="left")
    for col in ("rank", "unit", "baseline", "gain [90%]", "with"):
        view.add_column(col, justify="left" if col in ("unit", "with") else "right", no_wrap=col != "with")
    for r in table.head(20).to_dict("records"):
        g = float(r["gain_pct"])
        gain = f"{g:+.1f}% [{r['gain_lower90_pct']:+.1f}, {r['gain_upper90_pct']:+.1f}]" if np.isfinite(g) else "n/a"
        view.add_row(str(r["rank"]), f"{r['name']}" + (" *" if r["extrapolation"] else ""),
                     f"{r['baseline_change_pct']:+.1f}%", gain, str(r["best_partner_names"]))
    console.print(view)
    console.print("baseline = forecast change of the population to the horizon; gain = the DML estimate of the best "
                  "scenario (flows x2 with the partners listed), % of the baseline level; the partners' own change is "
                  "in the output table; * = extrapolation; n/a = the unit's yearly tie strength is missing",
                  style="dim", soft_wrap=True)
    console.print(f"wrote {len(table)} units to {args.out} in {time.perf_counter() - start:.0f} s")
    return 0
