"""The scale benchmark runs end to end at a tiny size, and its categorical fast path gives the same features."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tiecast.features import build_features

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import features_scale  # noqa: E402

pytestmark = pytest.mark.slow  # runs the benchmark script in a subprocess


def test_benchmark_script_runs_and_reports_ratios(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "features_scale.py"), "--units", "60",
                           "--pairs", "1500", "--years", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["flows_rows"] == 1500 * 3
    assert report["results"]["tiecast"]["rows"] == 60 * 3
    assert report["results"]["floor"]["rows"] > 0
    assert report["ratio_tiecast_to_floor"] > 0
    assert all(r["peak_rss_mb"] > 0 for r in report["results"].values())


def test_categorical_and_text_unit_ids_give_identical_features(tmp_path: Path) -> None:
    features_scale.generate(tmp_path, n_units=40, n_pairs=600, n_years=3, seed=1)
    ds = features_scale._load_dataset_fast(tmp_path)
    assert isinstance(ds.flows["origin"].dtype, pd.CategoricalDtype)
    as_text = ds.flows.astype({"origin": str, "destination": str, "kind": str})
    fast = build_features(ds).frame
    slow = build_features(ds, flows=as_text).frame
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast["migration_reciprocated_share"].notna().all()
