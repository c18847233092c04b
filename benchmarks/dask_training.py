"""Benchmark of LightGBM on a Dask cluster against the single-process fit: same rows, same parameters.

Trains the forecaster's LightGBM member (default ``gbm``: one pooled booster) of one target at one origin of the
bundled Korean data with :func:`tiecast.training.fit_gbm`, three ways, each ``--repeats`` times (median wall time):

- ``serial``: ``client=None``, the code path of ``DirectForecaster`` (one process, one LightGBM thread);
- ``serial_threads``: the same rows and parameters through ``lgb.train`` with one thread per worker in one
  process (what the same cores give without a cluster);
- ``dask``: ``client=`` a ``distributed.LocalCluster`` of ``--workers`` processes with one thread each on
  loopback; the time includes scattering the rows to the workers and LightGBM's network set-up (cluster start-up
  is reported apart).

Accuracy: out-of-sample MAPE (%) per horizon of the forecasts from the origin (target years origin+1..origin+5)
and the agreement of the growth forecasts (log points) of the Dask model with the serial one.

Usage: ``python benchmarks/dask_training.py [--target population] [--origin 2019] [--workers 2] [--repeats 5]``;
prints a summary and writes ``benchmarks/results/dask_training.json``. Ratios are against ``serial`` measured in
the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before LightGBM is imported

import lightgbm as lgb
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOTE = ("One machine: the workers share its cores with the client and the scheduler, and every split of every tree "
        "is a network round trip between the workers, so on a 2-core machine the cluster is slower than one process; "
        "it pays when the rows do not fit one process's memory or the workers are separate machines.")


def _agreement(serial: Any, dist: Any) -> dict[str, Any]:
    ms, md = serial.mape(), dist.mape()
    g1, g2 = serial.growth, dist.growth
    ok = np.isfinite(g1) & np.isfinite(g2)
    cors = [float(np.corrcoef(g1[ok[:, h], h], g2[ok[:, h], h])[0, 1]) for h in range(g1.shape[1])]
    return {
        "mape_serial": {h: round(v, 4) for h, v in ms.items()},
        "mape_dask": {h: round(v, 4) for h, v in md.items()},
        "mape_diff_points": {h: round(md[h] - ms[h], 4) for h in ms},
        "max_abs_mape_diff_points": round(max(abs(md[h] - ms[h]) for h in ms if np.isfinite(ms[h])), 4),
        "max_relative_mape_diff": round(max(abs(md[h] - ms[h]) / ms[h] for h in ms if np.isfinite(ms[h])), 4),
        "mean_abs_growth_diff_log_points": round(float(np.mean(np.abs(g1[ok] - g2[ok]))), 5),
        "max_abs_growth_diff_log_points": round(float(np.max(np.abs(g1[ok] - g2[ok]))), 5),
        "min_growth_correlation_per_horizon": round(min(cors), 5),
        "identical": bool(np.array_equal(g1, g2, equal_nan=True)),
    }


def _serial_threads(sets: dict[int, tuple[np.ndarray, np.ndarray]], params: dict[str, Any], seed: int,
                    threads: int) -> float:
    """Wall time (s) of lgb.train on the same rows and parameters with ``threads`` LightGBM threads in one process."""
    from tiecast.training._model import _lgb_params

    native, rounds = _lgb_params(params, threads, seed)
    started = time.perf_counter()
    for X, y in sets.values():
        lgb.train(native, lgb.Dataset(X, y, params={"max_bin": native["max_bin"]}), num_boost_round=rounds)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="population")
    parser.add_argument("--origin", type=int, default=2019)
    parser.add_argument("--member", default="gbm")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dask_training.json")
    args = parser.parse_args(argv)

    import dask
    import distributed
    from distributed import Client, LocalCluster

    from tiecast.features import build_features, load_dataset
    from tiecast.training import DEFAULT_PARAMS, fit_gbm
    from tiecast.training._backtest import _forecaster, _targets_frame
    from tiecast.training._model import MemberSpec, training_sets

    ds = load_dataset("korea")
    pf = build_features(ds)

    def fit(**kw: Any) -> Any:
        return fit_gbm(ds, args.target, args.origin, features=pf, member=args.member, **kw)

    # The same rows for the in-process threaded reference.
    first = fit()
    roll = _forecaster(ds, pf, first.horizons, {}, 0, members=[args.member]).rolling_fit(
        pf.frame, _targets_frame(ds, args.target), args.target)
    sets = training_sets(roll.table, roll.tm.calendar.period(args.origin), roll.direct,
                         MemberSpec.parse(args.member).pooled, first.columns, first.rate, roll.step)
    assert sum(len(y) for _, y in sets.values()) == first.rows

    load_before = os.getloadavg()
    started = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(args.workers, timeout=120)
        cluster_seconds = time.perf_counter() - started
        fit(client=client)  # warm-up: imports on the workers
        serial_fits, dask_fits, threads = [], [], []
        for _ in range(args.repeats):  # interleaved, so that load from elsewhere hits all three alike
            serial_fits.append(fit())
            threads.append(_serial_threads(sets, first.params, 0, args.workers))
            dask_fits.append(fit(client=client))
    load_after = os.getloadavg()
    serial = serial_fits[0]
    assert all(np.array_equal(f.growth, first.growth, equal_nan=True) for f in serial_fits)
    dist = dask_fits[0]
    serial_s = statistics.median(f.seconds for f in serial_fits)
    dask_s = statistics.median(f.seconds for f in dask_fits)
    threads_s = statistics.median(threads)
    n_features = next(iter(sets.values()))[0].shape[1]
    agreements = [_agreement(serial, f) for f in dask_fits]
    report: dict[str, Any] = {
        "dataset": ds.name, "target": args.target, "member": serial.member_name, "origin": args.origin,
        "horizons": serial.horizons, "target_years": [args.origin + h * serial.step for h in (1, serial.horizons)],
        "rows": serial.rows, "features": n_features, "boosters": len(serial.boosters),
        "rounds": serial.boosters[min(serial.boosters)].num_trees(), "params": {**DEFAULT_PARAMS, **serial.params},
        "workers": args.workers, "threads_per_worker": 1, "partitions": dist.partitions,
        "rows_per_partition": [len(range(k, serial.rows, dist.partitions)) for k in range(dist.partitions)],
        "repeats": args.repeats,
        "seconds": {"serial": round(serial_s, 3), "serial_threads": round(threads_s, 3), "dask": round(dask_s, 3),
                    "cluster_start": round(cluster_seconds, 3)},
        "ratio_dask_to_serial": round(dask_s / serial_s, 3),
        "ratio_serial_threads_to_serial": round(threads_s / serial_s, 3),
        # LightGBM ranks the workers in the order Dask lists the partitions, which varies from fit to fit: each
        # rank finds the bins of its share of the features, so the Dask fit is one of a few models.
        "dask_distinct_models": len({f.growth.tobytes() for f in dask_fits}),
        "accuracy": _agreement(serial, dist),
        "worst_over_repeats": {
            "max_abs_mape_diff_points": max(a["max_abs_mape_diff_points"] for a in agreements),
            "max_relative_mape_diff": max(a["max_relative_mape_diff"] for a in agreements),
            "mean_abs_growth_diff_log_points": max(a["mean_abs_growth_diff_log_points"] for a in agreements),
            "min_growth_correlation_per_horizon": min(a["min_growth_correlation_per_horizon"] for a in agreements),
        },
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "note": NOTE,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "lightgbm": lgb.__version__, "dask": dask.__version__, "distributed": distributed.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    acc = report["accuracy"]
    print(f"{report['rows']} rows x {n_features} features, {report['rounds']} rounds, {dist.partitions} partitions "
          f"on {args.workers} workers")
    print(f"serial {serial_s:.2f} s | {args.workers} threads in one process {threads_s:.2f} s | dask {dask_s:.2f} s "
          f"(x{report['ratio_dask_to_serial']:.2f} serial; cluster start {cluster_seconds:.1f} s)")
    print("MAPE % serial " + " ".join(f"{v:.3f}" for v in acc["mape_serial"].values())
          + " | dask " + " ".join(f"{v:.3f}" for v in acc["mape_dask"].values()))
    print(f"max |dMAPE| {acc['max_abs_mape_diff_points']:.3f} points ({100 * acc['max_relative_mape_diff']:.1f}%), "
          f"mean |d growth| {acc['mean_abs_growth_diff_log_points']:.4f} log points, "
          f"min correlation {acc['min_growth_correlation_per_horizon']:.4f}")
    worst = report["worst_over_repeats"]
    print(f"{report['dask_distinct_models']} distinct Dask models over {args.repeats} fits; worst: |dMAPE| "
          f"{worst['max_abs_mape_diff_points']:.3f} points ({100 * worst['max_relative_mape_diff']:.1f}%), min "
          f"correlation {worst['min_growth_correlation_per_horizon']:.4f}")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
