"""The common shock's share of growth variance per dataset, target and backtest origin, and the design the
default ``gbm`` members take there (absolute, or relative to the cross-section when the share is at least
RELATIVE_MIN_SHARE).

The share at origin o is ``PairTable.common_share``: from the one-step growths of the pairs ending by o
(never across a boundary break), var over periods of the cross-sectional median / (that + var of the units'
growth around it). It is what the forecaster computes inside ``fit`` at every cutoff, so the column
``design`` is the design each backtest origin's final LightGBM members used. Writes
``benchmarks/results/common_share.csv`` (bundled ``korea`` and the external suite):

    .venv/bin/python benchmarks/common_share.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "external"))

from run_suite import DATA, RUNS  # noqa: E402

from tiecast.features import build_features, load_dataset  # noqa: E402
from tiecast.training._backtest import _forecaster, _targets_frame, plan_target  # noqa: E402
from tiecast.training._model import RELATIVE_MIN_SHARE  # noqa: E402


def shares(name: str, folder: str, horizons: int) -> list[dict]:
    ds = load_dataset(folder)
    pf = build_features(ds)
    rows = []
    for target in ds.targets:
        roll = _forecaster(ds, pf, horizons, {}, 0).rolling_fit(pf.frame, _targets_frame(ds, target), target)
        plan = plan_target(roll.tm, None, horizons)
        for year in plan.origins:
            share = roll.table.common_share(roll.tm.calendar.period(year))
            rows.append({"dataset": name, "target": target, "origin": year, "common_share": round(share, 4),
                         "design": "relative" if share >= RELATIVE_MIN_SHARE else "absolute"})
    return rows


def main() -> int:
    rows = shares("korea", "korea", 5)
    for name, run in RUNS.items():
        rows += shares(name, str(DATA / name), run.horizons)
    table = pd.DataFrame(rows)
    out = REPO / "benchmarks" / "results" / "common_share.csv"
    table.to_csv(out, index=False)
    summary = table.groupby(["dataset", "target"]).agg(share_min=("common_share", "min"),
                                                       share_max=("common_share", "max"),
                                                       relative=("design", lambda d: int((d == "relative").sum())),
                                                       origins=("design", "size"))
    print(summary.to_string())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
