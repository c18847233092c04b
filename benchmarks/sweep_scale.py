"""Benchmark of the batch sweep on Spark against the single-process predictor: same questions, same model.

Every unit of the bundled Korean data x (each built-in scenario that applies to it + one single-partner scenario
for each of its top ``--candidates`` partners) x every target, at the model's last horizon, answered by the
registered champion (``models:/tiecast-korea@champion``, the served :class:`~tiecast.serving.TiecastService`) two
ways in the same run:

- ``local``: :func:`tiecast.serving.run_sweep` ``engine="local"``: ``load_service`` + pyfunc ``predict`` in this
  process (in pieces of MAX_QUESTIONS);
- ``spark``: ``engine="spark"``: ``mlflow.pyfunc.spark_udf(env_manager="local")`` on a Spark DataFrame of the
  questions in a ``local[2]`` session on loopback; the time includes the session start (reported apart too),
  the model download, every Python worker loading the model, and collecting the answers to pandas.

The answers are compared row by row (numbers to rtol 1e-12, text exactly). When the estimated local time of the
full sweep exceeds ``--budget`` seconds (estimated from a sample of ``--sample`` units first), a stated subset of
the units (the first N in dataset order) is benchmarked instead; the JSON says so.

The champion is reused from the default tracking store; without one, ``--train`` trains and promotes it first
(``tiecast train --data korea`` + ``tiecast promote --data korea``, several minutes).

Usage: ``python benchmarks/sweep_scale.py [--units N] [--candidates 5] [--budget 1500] [--train]``; writes
``benchmarks/results/sweep_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before LightGBM is imported
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOTE = ("One machine with 2 cores, shared with other work while it ran (see load_average): Spark's local[2] runs two "
        "Python workers, each loading the model once per task, beside the JVM; the local engine answers the "
        "questions one (unit, scenario) after the other in one process. The answers are the same model's pyfunc "
        "predict on the same rows, so they are equal; on a cluster the Spark time divides by the executors' cores.")


def _champion(uri: str, train: bool) -> dict[str, Any]:
    import mlflow
    from mlflow.exceptions import MlflowException

    from tiecast.training import tracking_uri

    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    name, alias = uri[len("models:/"):].split("@", 1)
    client = mlflow.MlflowClient()
    trained = False
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        if not train:
            raise SystemExit(f"no {uri} in {tracking_uri()}: run `tiecast train --data korea && tiecast promote "
                             "--data korea` (several minutes) or pass --train") from None
        from tiecast.cli import main

        start = time.perf_counter()
        assert main(["train", "--data", "korea", "--no-progress"]) == 0
        assert main(["promote", "--data", "korea"]) == 0
        trained = True
        print(f"trained and promoted {uri} in {time.perf_counter() - start:.0f} s")
        version = client.get_model_version_by_alias(name, alias)
    # both engines score this version, even if another run moves the alias meanwhile
    return {"uri": uri, "pinned_uri": f"models:/{name}/{version.version}", "version": int(version.version),
            "run_id": version.run_id, "trained_by_benchmark": trained, "tracking_uri": tracking_uri()}


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    same_shape = a.shape == b.shape and list(a.columns) == list(b.columns)
    numeric = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
    text = [c for c in a.columns if c not in numeric]
    max_rel = 0.0
    ok = same_shape
    if same_shape:
        for c in numeric:
            x, y = a[c].to_numpy(float), b[c].to_numpy(float)
            ok &= bool(np.allclose(x, y, rtol=1e-12, atol=0, equal_nan=True))
            finite = np.isfinite(x) & (x != 0)
            if finite.any():
                max_rel = max(max_rel, float(np.max(np.abs(x[finite] - y[finite]) / np.abs(x[finite]))))
        for c in text:
            ok &= bool((a[c].astype(str).to_numpy() == b[c].astype(str).to_numpy()).all())
    return {"equal_rtol_1e-12": bool(ok), "same_rows_and_columns": bool(same_shape),
            "numeric_columns": len(numeric), "max_relative_difference": max_rel,
            "identical": bool(same_shape and a.equals(b))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/tiecast-korea@champion")
    parser.add_argument("--units", type=int, default=None, help="first N units only (default: all, within budget)")
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=None, help="Spark partitions (default: parallelism)")
    parser.add_argument("--sample", type=int, default=6, help="units of the local timing sample")
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds the local engine may take")
    parser.add_argument("--train", action="store_true", help="train and promote the champion when none exists")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep_scale.json"))
    args = parser.parse_args(argv)

    from tiecast.serving import load_service, run_sweep, spark_session, sweep_questions

    load_before = os.getloadavg()
    model_info = _champion(args.model, args.train)
    uri = model_info["pinned_uri"]
    start = time.perf_counter()
    model = load_service(uri)
    load_s = time.perf_counter() - start
    sf = model.unwrap_python_model().sf
    all_units = [str(u) for u in sf.ds.units["unit_id"]]
    start = time.perf_counter()
    full = sweep_questions(model, candidates=args.candidates)
    questions_s = time.perf_counter() - start
    print(f"{full.attrs['note']} (built in {questions_s:.1f} s)")

    # Estimate the local engine's time on a sample of units (first units after a warm-up of one question).
    sample_units = all_units[: args.sample]
    sample = full[full["unit_id"].isin(sample_units)]
    start = time.perf_counter()
    run_sweep(uri, sample, engine="local")
    sample_s = time.perf_counter() - start
    per_question = max(sample_s - load_s, 0.0) / len(sample)
    estimate_full = load_s + per_question * len(full)
    print(f"sample: {len(sample)} questions of {len(sample_units)} units in {sample_s:.1f} s "
          f"({per_question:.3f} s/question; full sweep estimated {estimate_full:.0f} s)")
    if args.units is not None:
        units = all_units[: args.units]
        why = f"--units {args.units}"
    elif estimate_full <= args.budget:
        units, why = all_units, "full sweep"
    else:
        per_unit = per_question * len(full) / len(all_units)
        n = max(args.sample, int((args.budget - load_s) / per_unit))
        units, why = all_units[:n], (f"subset: the first {n} of {len(all_units)} units (the full sweep was "
                                      f"estimated at {estimate_full:.0f} s on the local engine, over the "
                                      f"{args.budget:.0f} s budget)")
    questions = full[full["unit_id"].isin(units)].reset_index(drop=True)
    print(f"benchmark: {why}: {len(questions):,} questions")

    start = time.perf_counter()
    local = run_sweep(uri, questions, engine="local")
    local_s = time.perf_counter() - start
    print(f"local: {len(local):,} rows in {local_s:.1f} s")
    start = time.perf_counter()
    spark = spark_session("local[2]")
    session_s = time.perf_counter() - start
    try:
        begin = time.perf_counter()
        on_spark = run_sweep(uri, questions, engine="spark", spark=spark, partitions=args.partitions)
        sweep_s = time.perf_counter() - begin
        parallelism = int(spark.sparkContext.defaultParallelism)
        # run_sweep's default: up to 4 partitions per core, at least ~500 questions each
        partitions = args.partitions or max(1, min(4 * parallelism, max(parallelism, -(-len(questions) // 500))))
    finally:
        spark.stop()
    spark_s = session_s + sweep_s
    print(f"spark local[2]: {len(on_spark):,} rows in {spark_s:.1f} s (session start {session_s:.1f} s)")
    check = _compare(local, on_spark)
    print(f"equal: {check['equal_rtol_1e-12']} (max relative difference {check['max_relative_difference']:.2e})")

    import mlflow
    import pyspark

    from tiecast.features import BUILTIN_SCENARIOS

    skipped = pd.Series([s[1] for s in full.attrs["skipped"] if s[0] in set(units)], dtype=object)
    result = {
        "dataset": sf.ds.name,
        "model": model_info,
        "origin": sf.origin,
        "horizon": int(questions["horizon"].iloc[0]),
        "targets": list(sf.targets),
        "builtins": list(BUILTIN_SCENARIOS),
        "candidates_per_unit": args.candidates,
        "units_total": len(all_units),
        "units_benchmarked": len(units),
        "scope": why,
        "questions_full_sweep": len(full),
        "questions": len(questions),
        "questions_by_kind": {str(k): int(v) for k, v in questions["kind"].value_counts().items()},
        "builtins_left_out": {str(k): int(v) for k, v in skipped.value_counts().items()},
        "rows": {"local": len(local), "spark": len(on_spark)},
        "seconds": {"local": round(local_s, 2), "spark": round(spark_s, 2), "spark_session_start": round(session_s, 2),
                    "spark_sweep_without_session_start": round(sweep_s, 2), "model_load": round(load_s, 2),
                    "questions_build": round(questions_s, 2)},
        "ratio_spark_to_local": round(spark_s / local_s, 3),
        "speedup_spark_over_local": round(local_s / spark_s, 3),
        "seconds_per_question": {"local": round(local_s / len(questions), 4),
                                 "spark": round(spark_s / len(questions), 4)},
        "estimate": {"sample_units": len(sample_units), "sample_questions": len(sample),
                     "sample_seconds": round(sample_s, 2), "seconds_per_question": round(per_question, 4),
                     "full_sweep_local_seconds": round(estimate_full, 1), "budget_seconds": args.budget},
        "equality": check,
        "spark": {"master": "local[2]", "partitions": partitions, "parallelism": parallelism, "env_manager": "local",
                  "arrow_max_records_per_batch": 5000},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "versions": {"mlflow": mlflow.__version__, "pyspark": pyspark.__version__, "pandas": pd.__version__},
        "note": NOTE,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: local {local_s:.1f} s, spark {spark_s:.1f} s (ratio spark/local {spark_s / local_s:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
