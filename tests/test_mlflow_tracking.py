"""MLflow tracking, the pyfunc model, registration and promotion, on a temporary sqlite store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from test_training_backtest import FAST, write_synthetic

from tiecast.cli import main
from tiecast.common import TrackingError
from tiecast.features import build_features, load_dataset
from tiecast.training import promote, tracking_uri, train_and_register
from tiecast.training._tracking import artifact_location

pytestmark = pytest.mark.slow  # trains and registers models



@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("mlflow")
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    yield root
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ds = load_dataset(write_synthetic(tmp_path_factory.mktemp("mlflow_data") / "synth"))
    return ds, build_features(ds)


@pytest.fixture(scope="module")
def trained(store, synth):  # type: ignore[no-untyped-def]
    ds, pf = synth
    return train_and_register(ds, features=pf, origins=[2015, 2016], horizons=2, params=FAST)


def test_store_resolution(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracking_uri() == f"sqlite:///{store / 'mlflow.db'}"
    assert artifact_location(tracking_uri()) == (store / "artifacts").as_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    default = tracking_uri()
    assert default.startswith("sqlite:///") and default.endswith("mlruns/mlflow.db")
    assert Path(default[len("sqlite:///"):]).parent.parent == Path(__file__).resolve().parent.parent


def test_run_records_everything(trained, synth, store: Path) -> None:  # type: ignore[no-untyped-def]
    ds, _ = synth
    client = MlflowClient(tracking_uri())
    run = client.get_run(trained.run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["dataset_fingerprint"] == ds.fingerprint and tags["git_commit"]
    assert tags["primary_target"] == "population"
    assert params["seed"] == "0" and params["lgbm_n_estimators"] == "60" and params["horizons"] == "2"
    assert params["origins_population"] == "2015,2016"
    assert "primary_mape" in metrics and "tiecast_population_all_mape_h1" in metrics
    assert "tiecast_population_all_coverage80_h2" in metrics and "mlforecast_population_all_mape_h2" in metrics
    assert "tiecast_population_small_mid_mape_h1" in metrics
    artifacts = {a.path for a in client.list_artifacts(trained.run_id, "backtest")}
    assert {"backtest/features.csv", "backtest/metrics.csv", "backtest/comparison.txt", "backtest/plots",
            "backtest/forecasts_latest.csv", "backtest/forecasts.csv", "backtest/selection.json",
            "backtest/selection_backtest.csv"} <= artifacts
    # The selection is visible in the run: members, weights per horizon and the inner origins they were chosen
    # on (calendar years, all before the model's last data year), in parameters and in selection.json.
    assert params["members"] == "gbm,gbm_noties,linear,naive" and params["selection_origins"] == "4"
    assert params["step"] == "1"
    sel = trained.forecaster.selection_["population"]
    for h in (1, 2):
        weights = dict(item.split(":") for item in params[f"weights_population_h{h}"].split(","))
        assert abs(sum(float(w) for w in weights.values()) - 1) < 1e-3 and set(weights) <= set(sel.members)
        assert params[f"selected_on_population_h{h}"] == ",".join(map(str, sel.origins[h]))
        assert sel.origins[h] and all(c + h <= 2019 for c in sel.origins[h])
    local = mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="backtest/selection.json",
                                                tracking_uri=tracking_uri())
    record = json.loads(Path(local).read_text(encoding="utf-8"))["population"]
    assert record["members"] == sel.members
    assert record["horizons"]["1"]["inner_origins"] == sel.origins[1]
    # ... and which horizons' inner origins were pooled for each horizon's weights (h - 1 .. h + 1).
    assert record["horizons"]["1"]["pooled_horizons"] == sel.horizons[1] and set(sel.horizons[1]) <= {1, 2}
    assert 1 in sel.horizons[1]
    assert set(record["horizons"]["1"]["inner_errors"]) >= {"gbm", "linear", "naive", "fitted"}
    # So is each LightGBM member's design: absolute or relative to the cross-section, on which common share.
    design = trained.forecaster.designs_["population"]["gbm"]
    assert record["designs"]["gbm"] == design and design["common_share"] is not None
    assert params["design_population_gbm"].startswith("relative" if design["relative"] else "absolute")
    assert f"{design['common_share']:.3f}" in params["design_population_gbm"]
    local = mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="backtest/features.csv",
                                                tracking_uri=tracking_uri())
    catalog = pd.read_csv(local)
    assert {"name", "group"} <= set(catalog.columns) and "history" in set(catalog["group"])
    assert str(store) in run.info.artifact_uri


def test_pyfunc_model_registered_as_challenger(trained, synth) -> None:  # type: ignore[no-untyped-def]
    _, pf = synth
    client = MlflowClient(tracking_uri())
    mv = client.get_model_version_by_alias("tiecast-synth", "challenger")
    assert str(mv.version) == trained.version and mv.run_id == trained.run_id
    model = mlflow.pyfunc.load_model("models:/tiecast-synth@challenger")
    assert model.metadata.signature is not None
    rows = pf.frame[pf.frame["year"] == 2019].reset_index(drop=True)
    got = model.predict(rows)
    expected = trained.forecaster.predict(rows)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    assert set(got["target"]) == {"population", "income"}
    assert got.loc[got["target"] == "population", "lower80"].notna().all()


def test_promote_first_then_only_if_better_or_forced(trained, synth, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    ds, pf = synth
    first = promote("synth")
    assert first.promoted and first.reason == "no champion yet"
    assert promote("synth").promoted is False  # already champion
    worse = train_and_register(ds, features=pf, origins=[2015, 2016], horizons=2,
                               params={"n_estimators": 2, "learning_rate": 0.01})
    assert worse.version != trained.version
    result = promote("synth")
    assert result.challenger_metric > result.champion_metric
    assert not result.promoted and "does not beat" in result.reason
    client = MlflowClient(tracking_uri())
    assert str(client.get_model_version_by_alias("tiecast-synth", "champion").version) == trained.version
    status = main(["promote", "--data", str(ds.path), "--force"])
    assert status == 0
    out = capsys.readouterr().out
    assert "promoted" in out and f"challenger version {worse.version}" in out
    assert str(client.get_model_version_by_alias("tiecast-synth", "champion").version) == worse.version
    assert client.get_run(worse.run_id).data.tags["promoted"] == "forced"


def test_same_data_and_seed_same_metrics(trained, synth) -> None:  # type: ignore[no-untyped-def]
    ds, pf = synth
    again = train_and_register(ds, features=pf, origins=[2015, 2016], horizons=2, params=FAST)
    client = MlflowClient(tracking_uri())
    a = client.get_run(trained.run_id).data.metrics
    b = client.get_run(again.run_id).data.metrics
    assert a == b


def test_promote_without_model_is_a_tracking_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(TrackingError, match="no registered model 'tiecast-nowhere'"):
        promote("nowhere")
    folder = write_synthetic(tmp_path / "other", n_units=6)
    assert main(["promote", "--data", str(folder)]) == 1
    assert f"run `tiecast train --data {folder}` first" in capsys.readouterr().err


def test_promote_refuses_backtests_on_other_splits(trained, synth) -> None:  # type: ignore[no-untyped-def]
    """A challenger measured on fewer horizons must not 'beat' a champion on an easier metric."""
    ds, pf = synth
    client = MlflowClient(tracking_uri(), registry_uri=tracking_uri())
    promote("synth", force=True)  # make sure some version is champion
    champion = str(client.get_model_version_by_alias("tiecast-synth", "champion").version)
    easier = train_and_register(ds, features=pf, origins=[2015, 2016], horizons=1, params=FAST)
    result = promote("synth")
    assert not result.promoted and "not comparable" in result.reason
    assert str(client.get_model_version_by_alias("tiecast-synth", "champion").version) == champion
    forced = promote("synth", force=True)
    assert forced.promoted
    assert client.get_run(easier.run_id).data.tags["promoted"] == "forced"
