"""``tiecast serve`` (MLflow's scoring server on the champion) and ``tiecast predict`` (a request file, offline)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time

from rich.console import Console

from tiecast.common import ConfigError, TrackingError, check_table_path
from tiecast.features import load_dataset
from tiecast.serving import predict_file, serve_command, serve_environment
from tiecast.training import model_name, tracking_uri


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sv = sub.add_parser("serve", help="MLflow's scoring server on the champion model (REST: forecasts, scenarios, "
                                      "explanations)",
                        description="Starts `mlflow models serve` on the registered model (default "
                                    "models:/tiecast-<dataset>@champion) in this environment. POST questions to "
                                    "/invocations; GET /ping answers when the model is loaded.")
    sv.add_argument("--model", default=None, help="model URI (default models:/tiecast-<data>@champion)")
    sv.add_argument("--data", default="korea", help="dataset name of the default model (default korea)")
    sv.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    sv.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    sv.set_defaults(func=run_serve)

    pr = sub.add_parser("predict", help="answer a request file offline with the served model (same code path)",
                        description="Answers a request file (the server's JSON body, or a .csv/.parquet table "
                                    "with unit_id, target, horizon, scenario) with the model's pyfunc predict.")
    pr.add_argument("--model", default=None, help="model URI (default models:/tiecast-<data>@champion)")
    pr.add_argument("--data", default="korea", help="dataset name of the default model (default korea)")
    pr.add_argument("--input", required=True, help="request file (.json, .csv or .parquet)")
    pr.add_argument("--out", required=True, help="answer (.csv, .csv.gz, .parquet or .json)")
    pr.set_defaults(func=run_predict)


def _model_uri(args: argparse.Namespace) -> str:
    """--model, else the champion of the dataset --data names (its dataset.toml name, not the folder's)."""
    if args.model:
        return str(args.model)
    return f"models:/{model_name(load_dataset(args.data).name)}@champion"


def _check_registered(uri: str) -> None:
    """A clear error before the server starts when a models:/NAME@ALIAS URI resolves to nothing."""
    if not uri.startswith("models:/") or "@" not in uri:
        return
    import mlflow
    from mlflow.exceptions import MlflowException

    name, alias = uri[len("models:/"):].split("@", 1)
    try:
        mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        raise TrackingError(f"no model {name!r} with alias {alias!r} in {tracking_uri()}: run `tiecast train` and "
                            "`tiecast promote` first, or give --model") from None


def run_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ConfigError(f"port must be 1-65535; got {args.port}", parameter="port")
    if args.workers < 1:
        raise ConfigError("workers must be at least 1", parameter="workers")
    uri = _model_uri(args)
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    _check_registered(uri)
    console = Console(highlight=False)
    url = f"http://{args.host}:{args.port}"
    body = json.dumps({"dataframe_split": {"columns": ["unit_id", "target", "horizon", "scenario"],
                                           "data": [["47900", "population", 10, "hub"]]},
                       "params": {"explain": True}})
    console.print(f"serving {uri} at {url}/invocations (GET {url}/ping when ready; Ctrl-C stops)", soft_wrap=True)
    console.print(f"  curl -s {url}/invocations -H 'Content-Type: application/json' -d '{body}'", soft_wrap=True,
                  markup=False)
    # The server (mlflow models serve and its uvicorn workers) runs in its own process group, so that stopping
    # this command (Ctrl-C, SIGTERM from a supervisor or a test) stops all of it and leaves nothing behind.
    proc = subprocess.Popen(serve_command(uri, args.host, args.port, args.workers), env=serve_environment(),
                            start_new_session=True)

    def stop(signum: int, frame: object) -> None:
        _stop_group(proc)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop_group(proc)
        return 0


def _stop_group(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run_predict(args: argparse.Namespace) -> int:
    if not str(args.out).lower().endswith(".json"):
        check_table_path(args.out)
    start = time.perf_counter()
    uri = _model_uri(args)
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    _check_registered(uri)
    answer = predict_file(uri, args.input, args.out)
    Console(highlight=False).print(f"answered {answer['question'].nunique()} question(s) with {uri}: "
                                   f"{len(answer):,} rows to {args.out} in {time.perf_counter() - start:.1f} s",
                                   soft_wrap=True)
    return 0
