"""``tiecast report``: explanation reports for officials (one unit, the national summary, or all of them)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tiecast.common import ConfigError, stage
from tiecast.features import Dataset, load_dataset
from tiecast.serving import (
    LANGS,
    check_scenario,
    log_reports_to_mlflow,
    print_pdf,
    report_context,
    resolve_unit,
    write_all_reports,
    write_summary,
    write_unit_report,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rp = sub.add_parser("report", help="self-contained HTML reports: one unit, the national summary, or all units",
                        description="Explanation reports for officials: forecasts with and without cooperation, "
                                    "SHAP drivers, the cooperation effect, ties and caveats, in Korean or English. "
                                    "One HTML file each (charts, styles and the Korean font embedded).")
    what = rp.add_mutually_exclusive_group(required=True)
    what.add_argument("--unit", help="unit code or name (e.g. 47210 or 영주시)")
    what.add_argument("--summary", action="store_true", help="the national summary")
    what.add_argument("--all", action="store_true", help="every unit's report and the summary into --out DIR")
    rp.add_argument("--data", default="korea", help="dataset folder or bundled name (default korea)")
    rp.add_argument("--scenario", default=None, metavar="NAME|FILE",
                    help="cooperation scenario of a unit report: built-in (hub, region, contiguous, topN; default "
                         "top3) or a .json/.toml file with one scenario for the unit")
    rp.add_argument("--lang", default="ko", choices=LANGS, help="language (default ko)")
    rp.add_argument("--out", required=True, help="output .html file (--unit, --summary) or folder (--all)")
    rp.add_argument("--pdf", action="store_true", help="also print the report to PDF (same name, .pdf) with "
                                                      "headless Chromium")
    rp.add_argument("--horizon", type=int, default=10, help="years of the population outlook (default 10)")
    rp.add_argument("--jobs", type=int, default=2, help="processes rendering reports with --all (default 2)")
    rp.add_argument("--run-id", default=None, help="MLflow run to log the summary (and --all reports) to")
    rp.add_argument("--model", default="auto", metavar="auto|fit|URI",
                    help="the fitted models: 'auto' (default) uses the registered champion "
                         "models:/tiecast-<dataset>@champion when it was trained on exactly these data (same "
                         "fingerprint) and horizon, else fits; 'fit' always fits; or a model URI")
    rp.add_argument("--seed", type=int, default=0, help="random seed")
    rp.add_argument("--no-progress", action="store_true", help="no progress bars")
    rp.set_defaults(func=run_report)


def _served_forecaster(ds: Dataset, model: str, horizon: int) -> tuple[Any, str]:
    """(the registered model's fitted ScenarioForecaster or None, a sentence saying which models the reports use)."""
    if model == "fit":
        return None, "fitting the models (--model fit)"
    import os

    from tiecast.serving import load_service
    from tiecast.training import model_name, tracking_uri

    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    uri = f"models:/{model_name(ds.name)}@champion" if model == "auto" else model
    try:
        sf = load_service(uri).unwrap_python_model().sf
    except (ConfigError, AttributeError) as exc:
        if model != "auto":
            raise ConfigError(f"--model {uri}: not a served tiecast model ({exc})", parameter="model") from None
        return None, f"no usable champion ({uri}): fitting the models"
    if sf.ds.fingerprint != ds.fingerprint:
        if model != "auto":
            raise ConfigError(f"model {uri} was trained on other data (fingerprint {sf.ds.fingerprint[:12]} vs "
                              f"{ds.fingerprint[:12]} of {ds.name}); use --model fit or retrain", parameter="model")
        return None, f"the champion {uri} was trained on other data: fitting the models"
    if sf.horizons != horizon:
        if model != "auto":
            raise ConfigError(f"model {uri} forecasts {sf.horizons} years, not --horizon {horizon}",
                              parameter="horizon")
        return None, f"the champion forecasts {sf.horizons} years, not {horizon}: fitting the models"
    sf.ds = ds  # the same data (same fingerprint), with this folder's boundaries for the maps
    return sf, f"models of {uri} (trained on these data, fingerprint {ds.fingerprint[:12]})"


def run_report(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    start = time.perf_counter()
    out = Path(args.out)
    if not args.all and out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {out}: a report is an .html file", parameter="out")
    if args.all and out.suffix.lower() in (".html", ".htm"):
        raise ConfigError(f"--out {out}: --all writes a folder of reports; give a folder", parameter="out")
    if args.scenario and not args.unit:
        raise ConfigError("--scenario applies to a unit report (--unit); --summary and --all use top3",
                          parameter="scenario")
    if args.jobs < 1:
        raise ConfigError("jobs must be at least 1", parameter="jobs")
    ds = load_dataset(args.data)
    unit = resolve_unit(ds, args.unit) if args.unit else None
    check_scenario(args.scenario)
    served, how = _served_forecaster(ds, args.model, args.horizon)
    console.print(how, style="dim", soft_wrap=True)
    with stage(not args.no_progress, "models", 1) as advance:
        ctx = report_context(served if served is not None else ds, horizons=args.horizon, seed=args.seed)
        advance()
    fitted = time.perf_counter() - start
    if args.all:
        paths = write_all_reports(ctx, out, lang=args.lang, jobs=args.jobs, progress=not args.no_progress)
        console.print(f"wrote {len(paths) - 1} unit reports and summary.html to {out} in "
                      f"{time.perf_counter() - start:.0f} s (models {fitted:.0f} s)")
        logged = paths
    elif args.summary:
        paths = [write_summary(ctx, out, lang=args.lang, progress=not args.no_progress)]
        console.print(f"wrote the national summary to {out} in {time.perf_counter() - start:.0f} s; its unit links "
                      "point to report_<code>.html beside it (tiecast report --all writes them)", soft_wrap=True)
        logged = paths
    else:
        assert unit is not None
        paths = [write_unit_report(ctx, unit, out, scenario=args.scenario, lang=args.lang)]
        console.print(f"wrote the report of {ctx.names.get(unit, unit)} ({unit}) to {out} in "
                      f"{time.perf_counter() - start:.0f} s")
        logged = []
    if args.pdf:
        targets = [p for p in paths if p.suffix == ".html"]
        with stage(not args.no_progress and len(targets) > 1, "PDF", len(targets)) as advance:
            for p in targets:
                print_pdf(p, p.with_suffix(".pdf"))
                advance()
        console.print(f"printed {len(targets)} PDF file(s) beside the HTML")
    if args.run_id:
        log_reports_to_mlflow(logged or paths, args.run_id)
        console.print(f"logged {len(logged or paths)} file(s) to MLflow run {args.run_id} (artifacts/reports)")
    return 0
