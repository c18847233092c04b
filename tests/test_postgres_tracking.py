"""A shared MLflow tracking server on PostgreSQL: ``tiecast train`` and ``tiecast promote`` through it, the data
checked in PostgreSQL itself, and the champion served over HTTP by ``mlflow models serve``.

Real engines on loopback only: a throw-away PostgreSQL cluster (Debian package ``postgresql``; the test fails,
not skips, without it), ``mlflow server`` with proxied artifacts, and the model server.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from _servers import (
    PostgresServer,
    free_port,
    log_tail,
    spawn,
    start_mlflow_server,
    start_postgres,
    stop_process,
    wait_for_http,
)
from mlflow.tracking import MlflowClient
from test_training_backtest import write_synthetic

from tiecast.cli import main
from tiecast.features import load_dataset
from tiecast.training._tracking import git_commit

MODEL = "tiecast-synth"
CHAMPION_URI = f"models:/{MODEL}@champion"
# Few origins, horizons and members: the training takes seconds (the point here is the store, not the model).
TRAIN_ARGS = ["--target", "population", "--origins", "2016", "--horizons", "2", "--members", "gbm,naive",
              "--jobs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    try:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    except RuntimeError as exc:  # binaries missing or the cluster did not start: a failure, never a skip
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@pytest.fixture(scope="module")
def tracking_server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of ``mlflow server`` on the PostgreSQL database, artifacts proxied to a local folder."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    proc = start_mlflow_server(postgres.uri, root / "artifacts", port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 120, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _use_server(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    """Point this process (tiecast, mlflow) and its subprocesses at ``uri``; undone after the test.

    ``mlflow.set_tracking_uri`` (called by tiecast) writes the process-wide URI and the environment variables;
    monkeypatch records their old values first so later tests see the store they had before.
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", uri)
    monkeypatch.setattr(registry_utils, "_registry_uri", uri)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json_cell(value: Any) -> Any:
    return None if isinstance(value, float | np.floating) and np.isnan(value) else value


def _split_payload(example: pd.DataFrame) -> bytes:
    """``{"dataframe_split": ...}`` of any frame: columns and rows as they are (floats at full precision via
    repr, missing values as null)."""
    split = example.to_dict(orient="split", index=False)
    split["data"] = [[_json_cell(v) for v in row] for row in split["data"]]
    return json.dumps({"dataframe_split": split}, default=_json_default, allow_nan=False).encode("utf-8")


def _post_json(url: str, body: bytes, timeout: float = 60) -> Any:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _cell(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)) else str(value)


def _assert_same_predictions(got: Any, expected: Any) -> None:
    """The served predictions equal the in-process ones: numbers to 1e-9, everything else exactly."""
    if isinstance(expected, pd.DataFrame):
        frame = pd.DataFrame(got)
        assert list(frame.columns) == list(expected.columns) and len(frame) == len(expected)
        for col in expected.columns:
            want = expected[col].reset_index(drop=True)
            if pd.api.types.is_numeric_dtype(want) and not pd.api.types.is_bool_dtype(want):
                np.testing.assert_allclose(pd.to_numeric(frame[col]).to_numpy(float), want.to_numpy(float),
                                           rtol=0, atol=1e-9, equal_nan=True, err_msg=col)
            else:
                assert [_cell(v) for v in frame[col]] == [_cell(v) for v in want], col
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_train_promote_and_serve_through_a_postgres_tracking_server(
        postgres: PostgresServer, tracking_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import psycopg2

    uri = tracking_server
    _use_server(monkeypatch, uri)
    data = write_synthetic(tmp_path / "synth")
    ds = load_dataset(data)

    # The real CLI, with nothing but MLFLOW_TRACKING_URI telling it where the store is.
    assert main(["train", "--data", str(data), *TRAIN_ARGS]) == 0, capsys.readouterr().err
    assert main(["promote", "--data", str(data)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"({uri})" in out and "promoted: no champion yet" in out

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == client.get_model_version_by_alias(MODEL, "challenger").version
    assert champion.run_id is not None
    run = client.get_run(champion.run_id)
    assert run.data.tags["dataset_fingerprint"] == ds.fingerprint
    assert run.data.tags["git_commit"] == git_commit()[0]
    assert run.data.params["origins_population"] == "2016" and "primary_mape" in run.data.metrics
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server, not a local path
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"backtest"}

    # The runs and the registry really live in PostgreSQL.
    with psycopg2.connect(postgres.dsn(), connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM registered_models")
        assert [r[0] for r in cur.fetchall()] == [MODEL]
        cur.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s ORDER BY alias", (MODEL,))
        assert cur.fetchall() == [("challenger", int(champion.version)), ("champion", int(champion.version))]
        cur.execute("SELECT count(*) FROM runs WHERE run_uuid = %s AND status = 'FINISHED'", (run.info.run_id,))
        assert cur.fetchone() == (1,)
        cur.execute("SELECT value FROM tags WHERE run_uuid = %s AND key = 'dataset_fingerprint'",
                    (run.info.run_id,))
        assert cur.fetchone() == (ds.fingerprint,)
    conn.close()

    # Served over HTTP from the registry: the model's own input example, predictions as in this process.
    model = mlflow.pyfunc.load_model(CHAMPION_URI)
    example = model.input_example
    assert isinstance(example, pd.DataFrame) and len(example) > 0
    expected = model.predict(example)
    port = free_port()
    server = spawn([sys.executable, "-m", "mlflow", "models", "serve", "-m", CHAMPION_URI, "--env-manager", "local",
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                   tmp_path / "models-serve.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", 120, server)
        try:
            answer = _post_json(f"http://127.0.0.1:{port}/invocations", _split_payload(example))
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"/invocations: HTTP {exc.code} {exc.read()[:2000]!r}; log tail:\n"
                                 f"{log_tail(server)}") from None
    finally:
        stop_process(server)
    _assert_same_predictions(answer["predictions"], expected)
