"""The external suite's tables (benchmarks/external/run_suite.py): the head-to-head counts and the committed
results' consistency (the best-other table is the per-cell minimum of the per-method table it was written with)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def _run_suite():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("run_suite", REPO / "benchmarks" / "external" / "run_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_suite"] = module
    spec.loader.exec_module(module)
    return module


def test_head_to_head_counts_cells_pairs_and_ratios() -> None:
    rows = []
    # pair a: tiecast beats naive at h 1 and 2 (a win of the pair), ties drift at h 1, loses to drift at h 2.
    for h, (t, naive, drift) in enumerate([(1.0, 2.0, 1.0), (2.0, 4.0, 1.6)], start=1):
        rows += [("a", "y", h, "tiecast", t), ("a", "y", h, "naive", naive), ("a", "y", h, "drift", drift)]
    # pair b: one horizon, tiecast loses to naive, beats drift.
    rows += [("b", "y", 1, "tiecast", 3.0), ("b", "y", 1, "naive", 2.0), ("b", "y", 1, "drift", 6.0)]
    means = pd.DataFrame(rows, columns=["dataset", "target", "horizon", "method", "mape"])
    versus = _run_suite().head_to_head(means).set_index("method")
    assert versus.loc["naive", ["cells_won", "cells", "pairs_won", "pairs"]].tolist() == [2, 3, 1, 2]
    assert versus.loc["drift", ["cells_won", "cells", "pairs_won", "pairs"]].tolist() == [2, 3, 1, 2]
    np.testing.assert_allclose(versus.loc["naive", "mean_ratio"], (0.5 + 0.5 + 1.5) / 3)
    np.testing.assert_allclose(versus.loc["drift", "worst_ratio"], 1.25)


def test_committed_suite_tables_agree() -> None:
    best = pd.read_csv(RESULTS / "external_suite.csv")
    best = best[best["status"] == "ok"].set_index(["dataset", "target", "horizon"])
    means = pd.read_csv(RESULTS / "external_suite_methods.csv")
    wide = means.pivot_table(index=["dataset", "target", "horizon"], columns="method", values="mape")
    assert set(wide.index) == set(best.index)
    wide = wide.loc[best.index]
    others = [c for c in wide.columns if not c.startswith("tiecast")]
    assert {"naive", "drift", "drift_recent", "autoets", "mlforecast"} <= set(others)
    np.testing.assert_allclose(wide["tiecast"], best["tiecast"], atol=1e-4)
    np.testing.assert_allclose(wide[others].min(axis=1), best["best_other_mape"], atol=1e-4)
    assert (wide[others].idxmin(axis=1) == best["best_other"]).all()
    # The summary line of the committed markdown counts the same pairs as the table.
    wins = (best["ratio"] <= 1).groupby(level=["dataset", "target"]).all()
    md = (RESULTS / "external_suite.md").read_text()
    assert f"every horizon on {int(wins.sum())} of {len(wins)} (dataset, target) pairs" in md
