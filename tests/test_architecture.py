"""The architecture holds: layers point one way, packages use each other's public API only, the package installs
as ``tiecast.*`` with its bundled data, and the backtest measures exactly the model that ``train`` registers."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from test_training_backtest import FAST, write_synthetic

from tiecast.features import build_features, load_dataset
from tiecast.training import backtest, train_and_register

ROOT = Path(__file__).resolve().parent.parent
# Package -> the tiecast packages it may import (common <- features <- training <- serving <- cli).
LAYERS = {
    "common": set(),
    "features": {"common"},
    "training": {"common", "features"},
    "serving": {"common", "features", "training"},
    "cli": {"common", "features", "training", "serving"},
}
FOLDERS = {"common": ROOT / "tiecast" / "common", "features": ROOT / "features", "training": ROOT / "training",
           "serving": ROOT / "serving", "cli": ROOT / "tiecast" / "cli"}


def _tiecast_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute ``tiecast...`` import in a file (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in out if m == "tiecast" or m.startswith("tiecast.")
            or m.split(".")[0] in ("features", "training", "serving")]


@pytest.mark.parametrize("package", list(LAYERS))
def test_layers_point_one_way_and_only_public_apis_cross(package: str) -> None:
    offences = []
    for path in sorted(FOLDERS[package].rglob("*.py")):
        for line, module in _tiecast_imports(path):
            parts = module.split(".")
            where = f"{path.relative_to(ROOT)}:{line} imports {module}"
            if parts[0] != "tiecast":
                offences.append(f"{where} (use the tiecast.* name)")
                continue
            other = parts[1] if len(parts) > 1 else ""
            if other in ("", "datasets"):
                continue
            if other != package and other not in LAYERS[package]:
                offences.append(f"{where} (layer {package} may use only {sorted(LAYERS[package])})")
            elif other != package and any(p.startswith("_") for p in parts[2:]):
                offences.append(f"{where} (private module of another package)")
    assert not offences, "\n".join(offences)


def test_generic_top_level_names_are_refused() -> None:
    """`import features` from a checkout would create a second copy with its own error classes."""
    result = subprocess.run([sys.executable, "-c", "import features"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "import this package as tiecast.features" in result.stderr


@pytest.mark.slow
def test_wheel_installs_tiecast_packages_and_finds_the_bundled_data(tmp_path: Path) -> None:
    """A built wheel holds only tiecast.* and the bundled dataset, and works outside the source checkout."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("tiecast-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"tiecast"}, top
    assert "tiecast/datasets/korea/panel.csv" in names and "tiecast/features/ties/_gravity.py" in names
    assert not any(n.startswith("tiecast/datasets/korea/../") or "/raw/" in n for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import tiecast, tiecast.features as f; ds = f.load_dataset('korea'); "
            "print(tiecast.__file__); print(ds.path); print(len(ds.units), len(ds.panel))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    module_file, data_path, sizes = run.stdout.strip().splitlines()
    assert module_file.startswith(str(site)) and data_path.startswith(str(site)), run.stdout
    assert sizes == "229 4122"


@pytest.mark.slow
def test_registered_model_forecasts_exactly_what_the_backtest_measured(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Train on the data up to origin o and load the registered MLflow model: its forecasts from o (points and
    both intervals) equal the backtest's forecasts at origin o made from the full data."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    ds = load_dataset(write_synthetic(tmp_path / "synth"))
    origin, horizons = 2016, 2
    bt = backtest(ds, targets=["population"], origins=[origin], horizons=horizons, params=FAST,
                  methods=("tiecast",))
    measured = bt.forecasts[(bt.forecasts["method"] == "tiecast") & (bt.forecasts["origin"] == origin)]
    assert len(measured) > 10

    upto = dataclasses.replace(ds, panel=ds.panel[ds.panel["year"] <= origin].reset_index(drop=True),
                               flows=ds.flows[ds.flows["year"] <= origin].reset_index(drop=True))
    pf = build_features(upto)
    trained = train_and_register(upto, features=pf, targets=["population"], origins=[origin - 2],
                                 horizons=horizons, params=FAST)
    model = mlflow.pyfunc.load_model(f"models:/{trained.model_name}@challenger")
    rows = pf.frame[pf.frame["year"] == origin].reset_index(drop=True).astype({c: float for c in pf.names})
    served = model.predict(rows)
    served = served[served["target"] == "population"].rename(columns={"year": "origin"})
    merged = measured.merge(served, on=["unit_id", "origin", "horizon"], suffixes=("_bt", "_model"),
                            validate="1:1")
    assert len(merged) == len(measured)
    for col in ("point", "lower80", "upper80", "lower90", "upper90"):
        np.testing.assert_allclose(merged[f"{col}_model"], merged[f"{col}_bt"], rtol=1e-12, err_msg=col)
    # The combination is the same too: the members' weights and the inner origins they were chosen on.
    served_sel = trained.forecaster.selection_["population"]
    measured_sel = bt.selection["population"][origin]
    assert served_sel.weights == measured_sel.weights and served_sel.origins == measured_sel.origins
    assert len(served_sel.members) > 1 and served_sel.origins[1]
    # Not vacuous: the intervals are real and differ by horizon.
    assert np.isfinite(merged["lower90_bt"]).all()
    widths = (merged["upper90_bt"] / merged["lower90_bt"]).groupby(merged["horizon"]).mean()
    assert widths.loc[2] > widths.loc[1]


def test_forecaster_and_backtest_share_one_training_loop() -> None:
    """No second copy of the fit/predict/residual/calibration chain in the backtest."""
    source = (ROOT / "training" / "_backtest.py").read_text(encoding="utf-8")
    for private in ("fit_boosters", "conformal_quantiles", "actual_growth(", "PairTable"):
        assert private not in source, f"training/_backtest.py uses {private}: go through RollingFit"
    assert pd.Series(["RollingFit", "rolling_fit"]).map(lambda s: s in source).all()
