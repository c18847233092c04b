"""Bounded load on MLflow's scoring server with the served tiecast model, on loopback.

Starts ``tiecast serve`` on a model (default ``models:/tiecast-korea@champion`` of the default store), waits for
``/ping`` (cold start), then sends, from ``--clients`` concurrent clients, ``--requests`` requests of each kind:

- ``scenario_single``: one unit, population, 10 years, a built-in scenario (the same question repeatedly: the
  model's answer cache serves repeats, as it would for a dashboard);
- ``scenario_distinct``: one unit, 10 years, a JSON scenario with a different factor in every request (never
  cached: the full DML computation each time; a tenth as many requests);
- ``baseline_batch``: every unit x population, 10 years, baseline;
- ``explained``: one unit, both targets, 5 years, baseline and a scenario, ``explain: true``.

Reports p50/p99 latency (ms), requests per second, errors, and the server's resident memory (MB) before and
after each kind, into ``benchmarks/results/serving_load.json``. Peer in the same run: MLflow's own ``/ping``
(no model work), so the numbers separate the server's HTTP overhead from tiecast's.

    python benchmarks/serving_load.py [--requests 2000] [--clients 8] [--model URI]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "serving_load.json"
CLI = "import sys; from tiecast.cli import main; raise SystemExit(main(sys.argv[1:]))"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    """Resident memory of the server process and its children (uvicorn runs the app in a child)."""
    import psutil

    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


def _body(rows: list[list[Any]], params: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"dataframe_split": {"columns": ["unit_id", "target", "horizon", "scenario"], "data": rows}}
    if params:
        body["params"] = params
    return json.dumps(body).encode()


def _call(url: str, body: bytes | None) -> tuple[float, int]:
    start = time.perf_counter()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = 0
    return (time.perf_counter() - start) * 1000, status


def _load(url: str, bodies: list[bytes | None], clients: int) -> dict[str, Any]:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda b: _call(url, b), bodies))
    wall = time.perf_counter() - start
    ms = np.array([r[0] for r in results])
    errors = sum(1 for r in results if r[1] != 200)
    return {"requests": len(bodies), "clients": clients, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
            "requests_per_s": round(len(bodies) / wall, 1), "errors": errors, "wall_s": round(wall, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models:/tiecast-korea@champion")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--unit", default="47900")
    ap.add_argument("--workers", type=int, default=1, help="scoring-server worker processes")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from tiecast.training import tracking_uri

    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    env = dict(os.environ)
    port = _port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--model", args.model, "--port", str(port),
                             "--workers", str(args.workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while _call(f"{base}/ping", None)[1] != 200:
            if proc.poll() is not None or time.perf_counter() - start > 300:
                raise SystemExit("the scoring server did not start")
            time.sleep(0.2)
        cold = time.perf_counter() - start
        import mlflow

        model = mlflow.pyfunc.load_model(args.model)
        meta = model.metadata.metadata["tiecast"]
        units = [str(u) for u in model.unwrap_python_model().sf.ds.units["unit_id"]]
        origin, h = int(meta["origin"]), int(meta["horizons"])
        n = args.requests
        kinds: dict[str, list[bytes | None]] = {
            "ping_peer": [None] * n,
            "scenario_single": [_body([[args.unit, "population", h, "top3"]])] * n,
            "scenario_distinct": [_body([[args.unit, "population", h, json.dumps(
                {"partners": "top3", "factor": round(1.5 + i / n, 6), "start_year": origin + 1, "id": f"f{i}"})]])
                for i in range(max(n // 10, 20))],
            "baseline_batch": [_body([[u, "population", h, ""] for u in units])] * max(n // 10, 20),
            "explained": [_body([[args.unit, t, 5, s] for t in meta["targets"] for s in ("", "top3")],
                                {"explain": True})] * max(n // 10, 20),
        }
        # warm-up: first calls load boosters and fill caches that any long-running server has filled
        for bodies in kinds.values():
            _call(f"{base}/ping" if bodies[0] is None else f"{base}/invocations", bodies[0])
        out: dict[str, Any] = {"model": args.model, "units": len(units), "horizon": h, "cold_start_s": round(cold, 2),
                               "workers": args.workers,
                               "machine": f"{os.cpu_count()} cores", "kinds": {}}
        for name, bodies in kinds.items():
            before = _rss_mb(proc.pid)
            url = f"{base}/ping" if bodies[0] is None else f"{base}/invocations"
            res = _load(url, bodies, args.clients)
            res.update(rss_before_mb=round(before, 1), rss_after_mb=round(_rss_mb(proc.pid), 1))
            out["kinds"][name] = res
            print(name, res, flush=True)
        out["goal"] = {"scenario_single_p99_under_50ms": out["kinds"]["scenario_single"]["p99_ms"] < 50,
                       "no_errors": all(k["errors"] == 0 for k in out["kinds"].values())}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
        tmp.replace(args.out)
        print(f"wrote {args.out}")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
