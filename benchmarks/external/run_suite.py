"""Backtest tiecast on the external suite (benchmarks/external/data/*) through the CLI only.

For each dataset folder this runs, as a subprocess,

    tiecast backtest --data DIR --horizons H --no-progress --out OUT [--origins O]

reads OUT/metrics.csv (method, target, horizon, origin, group, mape, ...) and writes

    benchmarks/results/external_suite.csv   one row per dataset, target and horizon (or one failure row)
    benchmarks/results/external_suite.md    the same as tables, failures with their messages, timings, and
                                            tiecast against each other method alone
    benchmarks/results/external_suite_methods.csv   every method's mean MAPE per dataset, target and horizon

Per dataset, target and horizon: the mean MAPE over origins (group ``all``) of ``tiecast``, of
``tiecast_noties`` and of the best other method (any method whose name does not start with ``tiecast``),
that method's name and the ratio tiecast / best other (< 1: tiecast is better). The summary counts the
(dataset, target) pairs on which tiecast is <= the best other method at every horizon.

    .venv/bin/python benchmarks/external/run_suite.py                  # every dataset
    .venv/bin/python benchmarks/external/run_suite.py --only us_state_income us_state_output
    .venv/bin/python benchmarks/external/run_suite.py --tiecast "/path/to/tiecast"
    .venv/bin/python benchmarks/external/run_suite.py --members gbm_relative,gbm_absolute_noties,linear,naive \
        --csv benchmarks/results/external_suite_relative.csv --md benchmarks/results/external_suite_relative.md
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = HERE / "data"
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_TIECAST = str(REPO / ".venv" / "bin" / "tiecast")


@dataclass(frozen=True)
class Run:
    horizons: int
    origins: str | None = None  # None: the CLI's default (the last 6 origins the data allow)
    step: str = "yearly"
    note: str = ""


# Horizons per dataset: 5 for yearly panels, except nc_county_crime whose 7 years leave no origin with 2+
# earlier growth years for h = 5. The census-interval panels are observed every 10 years: the CLI infers the
# step and counts horizons in steps, so 3 horizons are 10, 20 and 30 years (origins: the CLI's default).
RUNS: dict[str, Run] = {
    "us_state_income": Run(5),
    "us_state_output": Run(5),
    "us_state_cigar": Run(5),
    "us_county_pop_income": Run(5),
    "nc_county_crime": Run(3, note="7 years of data: h = 3 is the longest horizon with a usable origin"),
    "se_municipal_finance": Run(5, note="9 years of data"),
    "us_state_census_pop": Run(3, step="10-yearly (census)", note="horizons in steps of 10 years"),
    "mexico_state_gdp": Run(3, step="10-yearly", note="horizons in steps of 10 years"),
}

HEADER_LINE = re.compile(r"^(?P<target>\S+): origins (?P<origins>[^,]+), horizons (?P<horizons>[^ ]+) "
                         r"\(data (?P<data>[^)]+)\)(?P<rest>;.*)?$")
NO_ORIGIN_LINE = re.compile(r"^\S+: no usable origin .*$")


def run_one(name: str, run: Run, tiecast: list[str], work: Path, jobs: int, timeout: int,
            members: str | None = None) -> dict:
    folder = DATA / name
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    metrics = out / "metrics.csv"
    if metrics.exists():
        metrics.unlink()
    cmd = [*tiecast, "backtest", "--data", str(folder), "--horizons", str(run.horizons), "--no-progress",
           "--jobs", str(jobs), "--out", str(out)]
    if run.origins:
        cmd += ["--origins", run.origins]
    if members:
        cmd += ["--members", members]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = -9
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = f"timed out after {timeout} s"
    seconds = time.perf_counter() - start
    (out / "stdout.txt").write_text(stdout)
    (out / "stderr.txt").write_text(stderr)
    result = {"name": name, "run": run, "cmd": shlex.join(cmd), "code": code, "seconds": seconds,
              "splits": _split_lines(stdout), "stdout": stdout, "stderr": stderr, "metrics": None,
              "no_origin": _no_origin_lines(stdout)}
    if code == 0 and metrics.exists():
        frame = pd.read_csv(metrics)
        if not frame.empty:
            result["metrics"] = frame
    return result


def _split_lines(stdout: str) -> list[dict]:
    """The CLI's first lines, one per target: 'T: origins A–B, horizons 1–H (data X–Y)[; requested ...]'."""
    seen, out = set(), []
    for line in stdout.splitlines():
        m = HEADER_LINE.match(line.strip())
        if m and m["target"] not in seen and "all units" not in line:
            seen.add(m["target"])
            out.append(m.groupdict())
    return out


def _no_origin_lines(stdout: str) -> list[str]:
    return list(dict.fromkeys(line.strip() for line in stdout.splitlines() if NO_ORIGIN_LINE.match(line.strip())))


def failure_message(result: dict) -> str:
    """The CLI's own words: its 'no usable origin' lines, else the last non-empty stderr (or stdout) line."""
    if result["code"] == 0 and result.get("no_origin"):
        return " | ".join(result["no_origin"])
    for text in (result["stderr"], result["stdout"]):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"exit code {result['code']}, no output"


def summarise(result: dict) -> pd.DataFrame:
    m = result["metrics"]
    m = m[m["group"] == "all"]
    mean = m.groupby(["target", "horizon", "method"])["mape"].mean().unstack("method")
    n_origins = m[m["method"] == "tiecast"].groupby(["target", "horizon"])["origin"].nunique()
    first = m[m["method"] == "tiecast"].groupby(["target", "horizon"])["origin"].min()
    last = m[m["method"] == "tiecast"].groupby(["target", "horizon"])["origin"].max()
    others = [c for c in mean.columns if not c.startswith("tiecast")]
    rows = []
    for (target, horizon), row in mean.iterrows():
        best = row[others].astype(float).idxmin()
        rows.append({
            "dataset": result["name"], "target": target, "horizon": int(horizon),
            "origins": f"{int(first[(target, horizon)])}-{int(last[(target, horizon)])}",
            "n_origins": int(n_origins[(target, horizon)]),
            "tiecast": row["tiecast"], "tiecast_noties": row.get("tiecast_noties", float("nan")),
            "best_other": best, "best_other_mape": row[best], "ratio": row["tiecast"] / row[best],
            "status": "ok", "message": "", "seconds": round(result["seconds"], 1),
        })
    return pd.DataFrame(rows)


def method_means(results: list[dict]) -> pd.DataFrame:
    """Every method's mean MAPE over origins (group ``all``) per dataset, target and horizon (long format)."""
    frames = []
    for r in results:
        if r["metrics"] is None:
            continue
        m = r["metrics"]
        m = m[m["group"] == "all"].groupby(["target", "horizon", "method"], as_index=False)["mape"].mean()
        frames.append(m.assign(dataset=r["name"])[["dataset", "target", "horizon", "method", "mape"]])
    if not frames:
        return pd.DataFrame(columns=["dataset", "target", "horizon", "method", "mape"])
    return pd.concat(frames, ignore_index=True)


def head_to_head(means: pd.DataFrame) -> pd.DataFrame:
    """tiecast against each other method alone: cells (dataset, target, horizon) and pairs (dataset, target;
    every horizon) where tiecast's MAPE is <= the method's, the mean and the worst ratio tiecast / method.
    Why beside the best-other table: the best of five methods chosen per cell after the fact is a benchmark
    no single method a user could pick beforehand attains; each method alone is."""
    wide = means.pivot_table(index=["dataset", "target", "horizon"], columns="method", values="mape")
    rows = []
    for method in [c for c in wide.columns if c != "tiecast"]:
        both = wide[["tiecast", method]].dropna()
        ratio = both["tiecast"] / both[method]
        pairs = (ratio <= 1).groupby(level=["dataset", "target"]).all()
        rows.append({"method": method, "cells_won": int((ratio <= 1).sum()), "cells": len(ratio),
                     "pairs_won": int(pairs.sum()), "pairs": len(pairs), "mean_ratio": float(ratio.mean()),
                     "worst_ratio": float(ratio.max())})
    return pd.DataFrame(rows)


def code_version() -> str:
    """The commit the CLI's code comes from, and whether the work tree had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=REPO, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=REPO, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head}" + (" with uncommitted changes in the work tree" if dirty else "")


def write_outputs(results: list[dict], csv_path: Path, md_path: Path, tiecast: list[str],
                  members: str | None = None, methods_path: Path | None = None,
                  version: str | None = None) -> pd.DataFrame:
    frames = []
    for r in results:
        if r["metrics"] is not None:
            frames.append(summarise(r))
        else:
            frames.append(pd.DataFrame([{"dataset": r["name"], "target": "", "horizon": pd.NA, "origins": "",
                                         "n_origins": 0, "tiecast": float("nan"),
                                         "tiecast_noties": float("nan"), "best_other": "",
                                         "best_other_mape": float("nan"), "ratio": float("nan"),
                                         "status": "failed", "message": failure_message(r),
                                         "seconds": round(r["seconds"], 1)}]))
    table = pd.concat(frames, ignore_index=True)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False, float_format="%.4f", lineterminator="\n")
    means = method_means(results)
    if methods_path is not None:
        means.to_csv(methods_path, index=False, float_format="%.4f", lineterminator="\n")
    versus = head_to_head(means)

    ok = table[table["status"] == "ok"]
    wins = pd.Series({key: bool((g["ratio"] <= 1).all()) for key, g in ok.groupby(["dataset", "target"])},
                     dtype=bool)
    lines = ["# External suite: tiecast backtests on real public regional panels", "",
             "Generated by `benchmarks/external/run_suite.py` (datasets: `benchmarks/external/README.md`). "
             "MAPE % (group `all`), mean over the rolling origins the CLI chose; *best other* is the best "
             "method whose name does not start with `tiecast` (naive, drift, AutoETS, mlforecast); "
             "ratio = tiecast / best other (< 1: tiecast better).", "",
             f"CLI: `{shlex.join(tiecast)} backtest --data DIR --horizons H --no-progress --out OUT"
             f"{' --members ' + members if members else ''}`; "
             f"repository at {version or code_version()}; {time.strftime('%Y-%m-%d')}.", "",
             f"**Summary: tiecast <= best other at every horizon on {int(wins.sum())} of {len(wins)} "
             f"(dataset, target) pairs"
             + (f" ({', '.join(f'{d}/{t}' for (d, t), v in wins.items() if v)})" if wins.any() else "")
             + f"; {int((table['status'] == 'failed').sum())} dataset(s) failed.**", ""]
    if len(versus):
        lines += ["tiecast against each other method alone (cells: dataset, target and horizon; pairs: dataset "
                  "and target, every horizon; ratio = tiecast / method"
                  + (f"; every method's MAPE per cell in `{methods_path.name}`" if methods_path else "") + "):", "",
                  "| method | cells tiecast <= it | pairs tiecast <= it at every h | mean ratio | worst ratio |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {v.method} | {v.cells_won} of {v.cells} | {v.pairs_won} of {v.pairs} | "
                  f"{v.mean_ratio:.3f} | {v.worst_ratio:.2f} |" for v in versus.itertuples()]
        lines.append("")
    for r in results:
        run: Run = r["run"]
        lines.append(f"## {r['name']}")
        lines.append("")
        splits = "; ".join(f"{s['target']}: origins {s['origins']}, horizons {s['horizons']} (data {s['data']})"
                           + (s["rest"] or "") for s in r["splits"])
        lines.append(f"{run.step}, `--horizons {run.horizons}`"
                     + (f" `--origins {run.origins}`" if run.origins else "")
                     + f", {r['seconds']:.0f} s" + (f"; {run.note}" if run.note else "")
                     + (f". {splits}" if splits else ""))
        lines.append("")
        if r["metrics"] is None:
            what = "No result" if r["code"] == 0 else "Failed"
            lines.append(f"**{what}** (exit code {r['code']}, no metrics): `{failure_message(r)}`")
            lines.append("")
            continue
        part = ok[ok["dataset"] == r["name"]]
        lines.append("| target | h | tiecast | tiecast_noties | best other | its MAPE | ratio |")
        lines.append("|---|---:|---:|---:|---|---:|---:|")
        for row in part.itertuples():
            mark = "**" if row.ratio <= 1 else ""
            lines.append(f"| {row.target} | {row.horizon} | {mark}{row.tiecast:.3f}{mark} | "
                         f"{row.tiecast_noties:.3f} | {row.best_other} | {row.best_other_mape:.3f} | "
                         f"{row.ratio:.3f} |")
        lines.append("")
    lines.append("## Timing")
    lines.append("")
    lines.append("| dataset | seconds | status |")
    lines.append("|---|---:|---|")
    for r in results:
        lines.append(f"| {r['name']} | {r['seconds']:.1f} | {'ok' if r['metrics'] is not None else 'failed'} |")
    lines.append(f"| **total** | {sum(r['seconds'] for r in results):.1f} | |")
    lines.append("")
    md_path.write_text("\n".join(lines))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), help="run only these datasets")
    parser.add_argument("--tiecast", default=DEFAULT_TIECAST,
                        help="tiecast command (default %(default)s); split like a shell command line")
    parser.add_argument("--jobs", type=int, default=2, help="LightGBM threads passed to the CLI")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per dataset")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tiecast-external-suite",
                        help="folder for each run's --out (metrics.csv, plots, logs); default %(default)s")
    parser.add_argument("--members", help="tiecast's candidate members (the CLI's --members; default: its default)")
    parser.add_argument("--csv", type=Path, default=RESULTS / "external_suite.csv")
    parser.add_argument("--md", type=Path, default=RESULTS / "external_suite.md")
    parser.add_argument("--methods-csv", type=Path, default=None,
                        help="every method's MAPE per cell (default: beside --csv, *_methods.csv)")
    args = parser.parse_args(argv)
    tiecast = shlex.split(args.tiecast)
    names = args.only or list(RUNS)
    missing = [n for n in names if not (DATA / n / "dataset.toml").exists()]
    if missing:
        print(f"missing dataset folders {missing}: run benchmarks/external/build_suite.py first", file=sys.stderr)
        return 2
    version = code_version()  # before the results (tracked files) are rewritten
    results = []
    for name in names:
        print(f"{name}: running ...", flush=True)
        r = run_one(name, RUNS[name], tiecast, args.work, args.jobs, args.timeout, args.members)
        status = "ok" if r["metrics"] is not None else f"FAILED ({failure_message(r)})"
        print(f"{name}: {status} in {r['seconds']:.1f} s", flush=True)
        results.append(r)
    methods_path = args.methods_csv or args.csv.with_name(args.csv.stem + "_methods.csv")
    table = write_outputs(results, args.csv, args.md, tiecast, args.members, methods_path, version)
    print(f"wrote {args.csv} and {args.md} ({len(table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
