"""Population backtest on the validation origins 2011–2014 (before the test origins 2015–2020).

Every modelling default of tiecast was chosen on these origins (and checked for robustness on the external
suite); this script reproduces the validation figures quoted in the README: the default combination with its
ablations (no ties, no migration), LightGBM alone (``members=["gbm"]``) and the candidate set with the drift
baselines. Usage: ``python benchmarks/validation_backtest.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tiecast.features import build_features, load_dataset
from tiecast.training import backtest


def main() -> None:
    ds = load_dataset("korea")
    pf = build_features(ds)
    start = time.perf_counter()
    for label, members in (("default members", None), ("LightGBM alone", ["gbm"]),
                           ("with drift baselines", ["gbm", "linear", "drift", "drift_recent", "naive"])):
        result = backtest(ds, pf, targets=["population"], origins=[2011, 2012, 2013, 2014], horizons=5, seed=0,
                          n_jobs=2, members=members)
        for group in ("all", "small_mid"):
            table = result.summary(group).pivot_table(index="method", columns="horizon", values="mape")
            print(f"population MAPE %, validation origins 2011–2014, {group} units, tiecast = {label}")
            print(table.round(3).to_string(), end="\n\n")
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
