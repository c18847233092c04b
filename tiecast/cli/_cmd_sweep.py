"""``tiecast sweep``: every unit x scenario x candidate partner answered by the served model, locally or on Spark."""

from __future__ import annotations

import argparse
import os
import time

from rich.console import Console

from tiecast.common import ConfigError, check_table_path, write_table
from tiecast.features import BUILTIN_SCENARIOS
from tiecast.serving import ENGINES, load_service, run_sweep, sweep_questions
from tiecast.training import tracking_uri

from ._cmd_serve import _check_registered, _model_uri


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sw = sub.add_parser("sweep", help="batch answers for every unit x scenario x candidate partner (local or Spark)",
                        description="Builds the questions from the served model (every unit; each built-in "
                                    f"scenario that applies to it ({', '.join(BUILTIN_SCENARIOS)}) and one "
                                    "single-partner scenario, flows x2, for each of its top --candidates partners "
                                    "by two-way flow volume; every target; the model's last horizon) and answers "
                                    "them with the model's pyfunc predict: in this process (--engine local) or "
                                    "with mlflow.pyfunc.spark_udf on Spark (--engine spark; --master local[2] by "
                                    "default, or spark://HOST:7077). One row per question.")
    sw.add_argument("--model", default=None, help="model URI (default models:/tiecast-<data>@champion)")
    sw.add_argument("--data", default="korea", help="dataset name of the default model (default korea)")
    sw.add_argument("--engine", required=True, choices=ENGINES, help="local (this process) or spark (spark_udf)")
    sw.add_argument("--master", default="local[2]", help="Spark master of --engine spark (default local[2])")
    sw.add_argument("--partitions", type=int, default=None,
                    help="Spark partitions of the questions (default: up to 4 per core, >= ~500 "
                         "questions each)")
    sw.add_argument("--units", default=None, help="unit codes, comma-separated (default: every unit)")
    sw.add_argument("--candidates", type=int, default=5, help="candidate partners per unit (default 5)")
    sw.add_argument("--builtins", default=",".join(BUILTIN_SCENARIOS),
                    help=f"built-in scenarios, comma-separated (default {','.join(BUILTIN_SCENARIOS)}; '' for none)")
    sw.add_argument("--horizon", type=int, default=None, help="years ahead (default: the model's horizons)")
    sw.add_argument("--target", action="append", default=None, help="target (repeatable; default: all)")
    sw.add_argument("--out", required=True, help="answers (.csv, .csv.gz or .parquet)")
    sw.set_defaults(func=run_sweep_command)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def run_sweep_command(args: argparse.Namespace) -> int:
    check_table_path(args.out)
    if args.partitions is not None and args.partitions < 1:
        raise ConfigError("partitions must be at least 1", parameter="partitions")
    start = time.perf_counter()
    uri = _model_uri(args)
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _check_registered(uri)
    console = Console(highlight=False)
    units = _split(args.units)
    if args.units is not None and not units:
        raise ConfigError("units names no unit", parameter="units")
    questions = sweep_questions(load_service(uri), units=units, candidates=args.candidates,
                                builtins=_split(args.builtins) or [], horizon=args.horizon, targets=args.target)
    console.print(f"{questions.attrs['note']}", soft_wrap=True)
    scored = time.perf_counter()
    answer = run_sweep(uri, questions, engine=args.engine, partitions=args.partitions, master=args.master)
    done = time.perf_counter()
    write_table(answer, args.out)
    console.print(f"answered {len(questions):,} question(s) with {uri} on the {args.engine} engine"
                  + (f" ({args.master})" if args.engine == "spark" else "")
                  + f": {len(answer):,} rows to {args.out}; scoring {done - scored:.1f} s, "
                    f"wall {time.perf_counter() - start:.1f} s", soft_wrap=True)
    return 0
