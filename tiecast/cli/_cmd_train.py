"""``tiecast backtest``, ``tiecast train``, ``tiecast promote`` and ``tiecast demo``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console

from tiecast.common import ConfigError
from tiecast.features import Dataset, PanelFeatures, build_features, builtin_scenario, load_dataset
from tiecast.training import (
    BASELINE_NOTE,
    BacktestResult,
    backtest,
    comparison_tables,
    parse_origins,
    promote,
    selection_tables,
    tracking_uri,
    train_and_register,
    write_backtest,
)

# The demo's small provincial city: 영주시 (small/mid provincial city and designated population-decline area).
DEMO_UNIT = "47210"


def _common(p: argparse.ArgumentParser, with_target: bool = True) -> None:
    p.add_argument("--data", default="korea", help="dataset folder, or a bundled dataset name (default korea)")
    if with_target:
        p.add_argument("--target", action="append", default=None,
                       help="target to forecast (repeatable; default: every target of the dataset)")
    p.add_argument("--origins", default=None,
                   help="origin years, e.g. 2015-2020 or 2016,2018 (default: for each target the last 6 its data "
                        "allow); each target keeps the origins its data allow")
    p.add_argument("--horizons", type=int, default=5,
                   help="forecast horizons 1..H in observation steps (years for yearly data, 10 years for a "
                        "decennial census panel; 1-10, default 5; beyond 5 they are chained)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same data + seed => same metrics)")
    p.add_argument("--jobs", type=int, default=2, help="LightGBM threads (default 2)")
    p.add_argument("--members", default=None,
                   help="tiecast's candidate members, comma-separated (default gbm,gbm_noties,linear,naive; also "
                        "drift, drift_recent, gbm_per_h, gbm_anchored, gbm_relative, gbm_no<group>): weights per "
                        "horizon are "
                        "chosen on inner origins before each origin")
    p.add_argument("--tune", action="store_true",
                   help="pick LightGBM settings by rolling CV on origins before the first test origin")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bt = sub.add_parser("backtest", help="rolling-origin backtest of tiecast vs baselines and mlforecast")
    _common(bt)
    bt.add_argument("--out", default=None, help="folder for metrics.csv, forecasts.csv (every method, unit, "
                                                "origin and horizon with the actual), selection.csv, "
                                                "comparison.txt and PNG plots")
    bt.set_defaults(func=run_backtest)
    tr = sub.add_parser("train", help="backtest, fit on all data, log to MLflow, register as challenger")
    _common(tr)
    tr.add_argument("--out", default=None, help="also write metrics.csv and plots to this folder")
    tr.set_defaults(func=run_train)
    pr = sub.add_parser("promote", help="make the challenger the champion if it beats it on the primary metric")
    pr.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    pr.add_argument("--force", action="store_true", help="promote even if the challenger is not better "
                                                         "(recorded as a tag on its run)")
    pr.set_defaults(func=run_promote)
    demo = sub.add_parser("demo", help="the main job on the bundled data: features, backtest vs baselines and "
                                       "mlforecast, MLflow registration, comparison table")
    demo.add_argument("--data", default="korea", help="dataset (default: the bundled korea data)")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=run_demo)


def _members(args: argparse.Namespace) -> list[str] | None:
    text = getattr(args, "members", None)
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _check(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1; got {args.jobs}")


def _print_result(console: Console, result: BacktestResult, out: str | None, ds: Dataset) -> None:
    for plan in result.plans.values():
        console.print(f"[bold]{plan.note}[/bold]", soft_wrap=True)
    for table in [*comparison_tables(result), *selection_tables(result)]:
        console.print(table)
    console.print(BASELINE_NOTE, style="dim", soft_wrap=True)
    if result.tuning is not None:
        console.print("tuning (validation MAPE before the first test origin):")
        console.print(result.tuning.to_string(index=False), soft_wrap=True)
    if out:
        paths = write_backtest(result, ds, out)
        console.print(f"wrote {', '.join(p.name for p in paths)} to {out}")


def run_backtest(args: argparse.Namespace) -> int:
    _check(args)
    console = Console(highlight=False)
    ds = load_dataset(args.data)
    result = backtest(ds, targets=args.target, origins=parse_origins(args.origins), horizons=args.horizons,
                      members=_members(args), tune=args.tune, seed=args.seed, n_jobs=args.jobs,
                      progress=not args.no_progress)
    _print_result(console, result, args.out, ds)
    return 0


def _train(console: Console, ds: Dataset, args: argparse.Namespace, targets: list[str] | None,
           origins: list[int] | None, horizons: int, tune: bool, jobs: int) -> tuple[PanelFeatures, Any]:
    """Backtest, fit and register the request model (:class:`tiecast.serving.TiecastService`); returns the
    features and the registered model's fitted ScenarioForecaster."""
    from tiecast.serving import SERVED_HORIZONS, service_package

    progress = not args.no_progress
    pf = build_features(ds, progress=progress)
    res = train_and_register(ds, features=pf, targets=targets, origins=origins, horizons=horizons, tune=tune,
                             seed=args.seed, n_jobs=jobs, progress=progress, members=_members(args),
                             package=service_package, forecast_horizons=max(horizons, SERVED_HORIZONS))
    _print_result(console, res.backtest, getattr(args, "out", None), ds)
    console.print(f"MLflow run {res.run_id} in experiment '{res.experiment}' ({res.tracking_uri}); registered "
                  f"[bold]{res.model_name}[/bold] version {res.version} as 'challenger'", soft_wrap=True)
    return pf, res.model.sf


def run_train(args: argparse.Namespace) -> int:
    _check(args)
    console = Console(highlight=False)
    ds = load_dataset(args.data)
    _train(console, ds, args, args.target, parse_origins(args.origins), args.horizons, args.tune, args.jobs)
    return 0


def run_promote(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    ds = load_dataset(args.data)
    res = promote(ds.name, force=args.force, data=args.data)
    champ = (f"version {res.champion_version}: {res.champion_metric:.4f}" if res.champion_version is not None
             else "none")
    console.print(f"{res.model_name} ({tracking_uri()}), primary metric = {ds.primary_target} MAPE % averaged over "
                  "horizons (lower is better)", soft_wrap=True)
    console.print(f"  challenger version {res.challenger_version}: {res.challenger_metric:.4f}")
    console.print(f"  champion   {champ}")
    verdict = "[green]promoted[/green]" if res.promoted else "[yellow]not promoted[/yellow]"
    console.print(f"{verdict}: {res.reason}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    start = time.perf_counter()
    ds = load_dataset(args.data)
    console.print(f"[bold]tiecast demo[/bold]: {ds.name}, {len(ds.units)} units, {ds.years[0]}–{ds.years[1]}, "
                  f"targets {', '.join(ds.targets)}", soft_wrap=True)
    _, served = _train(console, ds, args, None, None, 5, False, 2)
    if ds.name == "korea":
        from ._cmd_cooperation import FORECAST_NOTE, cooperation_tables

        unit = DEMO_UNIT
        origin = int(ds.panel["year"].max())
        sf = served  # the registered model's own fitted forecaster and effect model
        answer = sf.answer(builtin_scenario("top3", unit, origin))
        answer = answer[answer["horizon"] <= 5]
        name = ds.units.set_index("unit_id").loc[unit, "name"]
        console.print(f"[bold]with and without cooperation[/bold]: {name} ({unit}), a small provincial city, doubles "
                      f"its migration ties with its three strongest partners from {origin + 1} (scenario top3)",
                      soft_wrap=True)
        for table in cooperation_tables(answer):
            console.print(table)
        console.print(FORECAST_NOTE, style="dim", soft_wrap=True)
        from tiecast.serving import write_unit_report

        console.print(f"report for officials: {write_unit_report(sf, unit, f'out/report_{unit}.html')}")
    console.print(f"demo wall time {time.perf_counter() - start:.0f} s")
    return 0

