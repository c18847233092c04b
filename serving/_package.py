"""Packaging, loading and serving the request model (:class:`~tiecast.serving.TiecastService`).

:func:`service_package` fits the with/without-cooperation model on top of the final forecaster of
:func:`tiecast.training.train_and_register` and returns what it logs: the model, its signature with ``params``,
an input example, pinned requirements and a staged copy of the tiecast code (``code_paths``: the model loads
without this repository). :func:`serve_command` is MLflow's own scoring server on a model URI;
:func:`predict_file` answers a request file offline through the same pyfunc ``predict``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from tiecast.common import ConfigError, atomic_write
from tiecast.features import Dataset, PanelFeatures
from tiecast.training import DirectForecaster, ModelPackage, ScenarioForecaster

from ._service import MAX_QUESTIONS, REQUEST_COLUMNS, TiecastService, request_signature

__all__ = ["SERVED_HORIZONS", "load_service", "package_service", "predict_file", "read_request", "request_frame",
           "serve_command", "serve_environment", "service_package", "service_requirements"]

SERVED_HORIZONS = 10  # years ahead the served model answers (beyond the backtested 5 they are chained)
# What the tiecast code imports when the model loads (the reports' matplotlib/Chromium are not needed).
_REQUIREMENTS = ("mlflow", "lightgbm", "numpy", "pandas", "scipy", "scikit-learn", "networkx", "pyarrow", "rich")


def service_requirements() -> list[str]:
    """Pinned requirements of the served model: the installed versions of what its code imports."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in _REQUIREMENTS]


def _stage_code() -> tuple[Path, Path]:
    """A copy of the tiecast package (links resolved, without caches and bundled data) -> (folder, package)."""
    import tiecast

    src = Path(tiecast.__file__).resolve().parent
    tmp = Path(tempfile.mkdtemp(prefix="tiecast-code-"))

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
        if Path(folder).name == "datasets":  # the served model carries its own tables, not the bundled data
            skip |= {n for n in names if n != "__init__.py"}
        return skip

    shutil.copytree(src, tmp / "tiecast", symlinks=False, ignore=ignore)
    return tmp, tmp / "tiecast"


def _example_question(sf: ScenarioForecaster) -> tuple[str, str]:
    """A unit and a built-in scenario that applies to it (for the logged input example)."""
    from tiecast.features import builtin_scenario

    units = sf.ds.units["unit_id"].astype(str)
    # a unit every target is forecast for (not one whose latest figure is missing)
    ready = [u for u in units if all((u, t) in sf.forecastable_ for t in sf.targets)] or list(units)
    for unit in ready:
        for name in ("hub", "top3", "top1"):
            try:
                sf.apply(builtin_scenario(name, unit, sf.origin))
            except ConfigError:
                continue
            return unit, name
    return str(ready[0]), ""


def package_service(sf: ScenarioForecaster, *, metadata: dict[str, Any] | None = None) -> ModelPackage:
    """The :class:`TiecastService` of a fitted ScenarioForecaster as a :class:`~tiecast.training.ModelPackage`."""
    ds = sf.ds
    meta = {"dataset": ds.name, "dataset_fingerprint": ds.fingerprint, "origin": sf.origin,
            "horizons": sf.horizons, "targets": list(sf.targets),
            "data_end": {t: int(y) for t, y in sf.forecaster_.data_end_.items()}, **(metadata or {})}
    model = TiecastService(sf, meta)
    unit, scenario = _example_question(sf)
    example = pd.DataFrame({"unit_id": [unit, unit], "target": [sf.targets[0], sf.targets[-1]],
                            # declared as a number so that 2.5 reaches the check (a long column would truncate)
                            "horizon": [float(sf.horizons), 1.0], "scenario": [scenario, ""]})
    output = model.answer(example)
    signature = request_signature(sf, example, output)
    folder, code = _stage_code()
    return ModelPackage(python_model=model, signature=signature, input_example=example,
                        pip_requirements=service_requirements(), code_paths=[str(code)],
                        metadata={"tiecast": meta}, cleanup=lambda: shutil.rmtree(folder, ignore_errors=True))


def service_package(forecaster: DirectForecaster, ds: Dataset, pf: PanelFeatures, seed: int, n_jobs: int
                    ) -> ModelPackage:
    """:data:`~tiecast.training.Packager` of the request model: the effect model is fitted on top of the final
    forecaster (reused, not refitted), at the last panel year."""
    sf = ScenarioForecaster(ds, horizons=forecaster.horizons, targets=list(forecaster.targets_), seed=seed,
                            n_jobs=n_jobs, features=pf, forecaster=forecaster).fit()
    return package_service(sf)


def load_service(uri: str) -> Any:
    """The pyfunc model at ``uri`` (``models:/tiecast-korea@champion``, ``runs:/...``, a folder)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as e:
        raise ConfigError(f"cannot load the model {uri!r}: {e.message.splitlines()[0]}; train and promote one "
                          "(`tiecast train`, `tiecast promote`) or give --model", parameter="model") from None
    except OSError as e:
        raise ConfigError(f"cannot load the model {uri!r}: {e}", parameter="model") from None


def read_request(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """A request file: the JSON body the server takes (``dataframe_split`` / ``dataframe_records``, optional
    ``params``), or a table (.csv, .parquet) with the request columns."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"request file {p} does not exist", parameter="input")
    if p.suffix.lower() == ".parquet":
        return request_frame(pd.read_parquet(p)), None
    if p.suffix.lower() in (".csv", ".gz"):
        return request_frame(pd.read_csv(p, dtype={"unit_id": str, "scenario": str}, keep_default_na=False)), None
    try:
        body = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"request file {p} is not JSON (or .csv/.parquet): {e}", parameter="input") from None
    if not isinstance(body, dict) or not ({"dataframe_split", "dataframe_records"} & set(body)):
        raise ConfigError(f"request file {p}: expected an object with 'dataframe_split' or 'dataframe_records' "
                          f"(columns {', '.join(REQUEST_COLUMNS)}) and optional 'params'", parameter="input")
    try:
        if "dataframe_split" in body:
            split = body["dataframe_split"]
            frame = pd.DataFrame(split.get("data", []), columns=split.get("columns"))
        else:
            frame = pd.DataFrame.from_records(body["dataframe_records"])
    except (AttributeError, TypeError, ValueError) as e:
        raise ConfigError(f"request file {p}: malformed dataframe: {e}", parameter="input") from None
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"request file {p}: 'params' must be an object", parameter="input")
    return request_frame(frame), params


def request_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Request columns in the signature's types (unit codes as text, horizons as numbers) where they convert
    without loss; anything else is left for the model's checks to name."""
    out = frame.copy()
    if "unit_id" in out and out["unit_id"].map(lambda v: isinstance(v, (int, str))).all():
        out["unit_id"] = out["unit_id"].astype(str)
    if "horizon" in out and pd.api.types.is_numeric_dtype(out["horizon"]) \
            and not pd.api.types.is_bool_dtype(out["horizon"]):
        out["horizon"] = out["horizon"].astype(float)
    if "scenario" in out:
        out["scenario"] = out["scenario"].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else v)
    return out


def predict_file(uri: str, request: str | Path, out: str | Path) -> pd.DataFrame:
    """Answer a request file offline with the model at ``uri`` (its pyfunc ``predict``, as the server does) and
    write the answer (.csv, .csv.gz, .parquet or .json: the server's ``{"predictions": [...]}``)."""
    from mlflow.exceptions import MlflowException

    frame, params = read_request(request)
    model = load_service(uri)
    chunks = [frame.iloc[i:i + MAX_QUESTIONS] for i in range(0, max(len(frame), 1), MAX_QUESTIONS)]
    try:
        parts = [model.predict(c.reset_index(drop=True), params=params) for c in chunks]
    except MlflowException as e:
        raise ConfigError(e.message.split("Error: ", 1)[-1], parameter="input") from None
    for i, part in enumerate(parts):  # question numbers count rows of the whole file
        part["question"] += i * MAX_QUESTIONS
    answer = pd.concat(parts, ignore_index=True)
    if str(out).lower().endswith(".json"):
        text = json.dumps({"predictions": json.loads(answer.to_json(orient="records", force_ascii=False))},
                          ensure_ascii=False)
        atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    else:
        from tiecast.common import write_table

        write_table(answer, out)
    return answer


def serve_command(uri: str, host: str, port: int, workers: int = 1) -> list[str]:
    """MLflow's scoring server on ``uri`` in this environment (``--env-manager local``); run it with
    :func:`serve_environment`."""
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
            "--host", host, "--port", str(port), "--workers", str(workers)]


def serve_environment() -> dict[str, str]:
    """This process's environment with this interpreter's scripts folder first on ``PATH``: MLflow starts the
    server as ``uvicorn`` from ``PATH``, which a virtual environment used without activation lacks."""
    import os

    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
