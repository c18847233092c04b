"""Scale benchmark of the feature builder at eup-myeon-dong scale, against a plain DuckDB group-by floor.

Generates a synthetic region set (default 3,500 units, ~2 million non-zero ordered pairs a year, 18 years,
gravity-like flows), then times, each in its own process so that peak memory (max RSS) is per task:

- ``floor``: DuckDB reading the same flows and grouping them by (year, origin) and (year, destination)
  (sums and counts) – the least any builder must do to touch every flow;
- ``pandas_floor``: the same group-by in pandas;
- ``tiecast``: ``features.build_features`` on the dataset (all feature groups, ties included).

Usage: ``python benchmarks/features_scale.py [--units 3500] [--pairs 2000000] [--years 18]``; prints a table
and writes ``benchmarks/results/features_scale.json``. Ratios are against the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate(folder: Path, n_units: int, n_pairs: int, n_years: int, seed: int = 0) -> None:
    """Write units.parquet, panel.parquet, flows.parquet and dataset.toml of a synthetic region set."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"U{i:05d}" for i in range(n_units)])
    lat = rng.uniform(34.5, 38.0, n_units)
    lon = rng.uniform(126.3, 129.4, n_units)
    pop0 = np.exp(rng.normal(9.5, 1.0, n_units))
    years = np.arange(2008, 2008 + n_years)
    growth = rng.normal(-0.005, 0.01, n_units)
    units = pd.DataFrame({"unit_id": ids, "name": ids, "lat": lat, "lon": lon})
    pop = pop0[None, :] * np.exp(growth[None, :] * (years - years[0])[:, None])
    panel = pd.DataFrame({
        "unit_id": np.tile(ids, n_years), "year": np.repeat(years, n_units), "population": pop.ravel().round(),
        "aging_ratio": rng.uniform(10, 40, n_units * n_years), "fiscal_indep": rng.uniform(5, 60, n_units * n_years),
    })
    # Gravity-like pair sampling (Gumbel top-k on log weights), same pairs every year with noisy volumes.
    dlat = np.radians(lat[:, None] - lat[None, :])
    dlon = np.radians(lon[:, None] - lon[None, :]) * np.cos(np.radians(lat.mean()))
    dist = np.sqrt(dlat**2 + dlon**2) * 6371.0 + 1.0
    logw = np.log(pop0)[:, None] + np.log(pop0)[None, :] - 1.5 * np.log(dist)
    np.fill_diagonal(logw, -np.inf)
    keys = (logw + rng.gumbel(size=logw.shape)).ravel()
    del dist, dlat, dlon
    chosen = np.argpartition(keys, -n_pairs)[-n_pairs:]
    del keys
    o, d = np.divmod(chosen, n_units)
    base = np.exp(logw.ravel()[chosen] - logw.ravel()[chosen].max()) * 1e6 + 1.0
    del logw
    frames = []
    for y in years:
        value = np.round(base * rng.lognormal(0.0, 0.2, n_pairs), 1)
        frames.append(pd.DataFrame({"origin": pd.Categorical.from_codes(o, ids), "destination":
                                    pd.Categorical.from_codes(d, ids), "year": y, "kind": "migration",
                                    "value": value}))
    flows = pd.concat(frames, ignore_index=True)
    flows["kind"] = flows["kind"].astype("category")
    units.to_parquet(folder / "units.parquet", index=False)
    panel.to_parquet(folder / "panel.parquet", index=False)
    flows.to_parquet(folder / "flows.parquet", index=False)
    (folder / "dataset.toml").write_text(
        'name = "synthetic"\ntargets = ["population"]\n', encoding="utf-8")


def _task_floor(folder: Path) -> dict[str, float]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("PRAGMA threads=2")
    path = str(folder / "flows.parquet")
    out = con.execute(
        f"""SELECT year, origin AS unit, sum(value) AS out_sum, count(*) AS out_n FROM '{path}' GROUP BY ALL"""
    ).df()
    inn = con.execute(
        f"""SELECT year, destination AS unit, sum(value) AS in_sum, count(*) AS in_n FROM '{path}' GROUP BY ALL"""
    ).df()
    return {"seconds": time.perf_counter() - t0, "rows": float(len(out) + len(inn))}


def _task_pandas_floor(folder: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    flows = pd.read_parquet(folder / "flows.parquet")
    out = flows.groupby(["year", "origin"], observed=True)["value"].agg(["sum", "count"])
    inn = flows.groupby(["year", "destination"], observed=True)["value"].agg(["sum", "count"])
    return {"seconds": time.perf_counter() - t0, "rows": float(len(out) + len(inn))}


def _load_dataset_fast(folder: Path):
    """The dataset as build_features sees it (loading/validation is timed separately)."""
    from tiecast.features import Dataset

    flows = pd.read_parquet(folder / "flows.parquet")
    return Dataset(name="synthetic", path=folder, meta={"name": "synthetic", "targets": ["population"]},
                   units=pd.read_parquet(folder / "units.parquet"), panel=pd.read_parquet(folder / "panel.parquet"),
                   flows=flows, cooperation=pd.DataFrame(), fingerprint="synthetic")


def _task_tiecast(folder: Path) -> dict[str, float]:
    from tiecast.features import build_features

    t0 = time.perf_counter()
    ds = _load_dataset_fast(folder)
    t1 = time.perf_counter()
    result = build_features(ds)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "read_seconds": t1 - t0, "build_seconds": t2 - t1,
            "rows": float(len(result.frame)), "features": float(len(result.names))}


TASKS = {"floor": _task_floor, "pandas_floor": _task_pandas_floor, "tiecast": _task_tiecast}


def run_task(name: str, folder: Path) -> dict[str, float]:
    """Run one task in a fresh process; returns its figures plus peak RSS in MB."""
    code = (f"import json, resource, sys; sys.path.insert(0, {str(ROOT)!r}); "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import features_scale as b; "
            f"r = b.TASKS[{name!r}](b.Path({str(folder)!r})); "
            "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; print(json.dumps(r))")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"task {name} failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=3500)
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--years", type=int, default=18)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "features_scale.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        generate(folder, args.units, args.pairs, args.years)
        gen_s = time.perf_counter() - t0
        results = {name: run_task(name, folder) for name in TASKS}
    floor = results["floor"]["seconds"]
    report = {
        "units": args.units, "pairs_per_year": args.pairs, "years": args.years,
        "flows_rows": args.pairs * args.years, "generate_seconds": gen_s,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "results": results,
        "ratio_tiecast_to_floor": results["tiecast"]["seconds"] / floor,
        "ratio_tiecast_build_to_floor": results["tiecast"]["build_seconds"] / floor,
        "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"{args.units} units, {args.pairs:,} pairs/year, {args.years} years ({args.pairs * args.years:,} flows)")
    print(f"{'task':<14}{'seconds':>10}{'peak MB':>10}{'x floor':>9}")
    for name, r in results.items():
        print(f"{name:<14}{r['seconds']:>10.2f}{r['peak_rss_mb']:>10.0f}{r['seconds'] / floor:>9.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
