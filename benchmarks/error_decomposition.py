"""Where a backtest's errors come from: the common shock of an origin vs each unit's own error.

For every method, target, horizon and origin of a ``tiecast backtest --out DIR`` run (its ``forecasts.csv``)
the log errors e = log(actual / point) of the units are split into

- ``common``: |median over units of e|, the error every unit shares (a national boom, a level shift);
- ``unit``: mean over units of |e - median e|, what is left once the common error is removed;

next to ``mae`` = mean |e|. All in log points x 100 (about %), averaged over origins. A method that loses on
``common`` but not on ``unit`` forecasts the cross-section well and the shared growth badly.

    .venv/bin/tiecast backtest --data DIR --horizons 5 --out out/bt
    .venv/bin/python benchmarks/error_decomposition.py out/bt/forecasts.csv [--methods tiecast naive ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_METHODS = ("tiecast", "naive", "drift", "drift_recent", "autoets", "mlforecast")


def decompose(forecasts: pd.DataFrame, methods: tuple[str, ...] = DEFAULT_METHODS) -> pd.DataFrame:
    """Per (target, horizon, method): mean over origins of ``mae``, ``common`` and ``unit`` (log points x 100)."""
    f = forecasts[forecasts["method"].isin(methods)].copy()
    f["e"] = np.log(f["actual"] / f["point"])
    f = f[np.isfinite(f["e"])]
    keys = ["method", "target", "horizon", "origin"]
    median = f.groupby(keys)["e"].transform("median")
    f["abs"], f["dev"] = f["e"].abs(), (f["e"] - median).abs()
    per_origin = f.groupby(keys).agg(mae=("abs", "mean"), common=("e", "median"), unit=("dev", "mean"))
    per_origin["common"] = per_origin["common"].abs()
    out = 100 * per_origin.groupby(["target", "horizon", "method"]).mean()
    return out.reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("forecasts", type=Path, help="forecasts.csv written by tiecast backtest --out")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    args = parser.parse_args(argv)
    if not args.forecasts.is_file():
        print(f"{args.forecasts}: no such file; run tiecast backtest --out DIR first", file=sys.stderr)
        return 2
    table = decompose(pd.read_csv(args.forecasts), tuple(args.methods))
    if table.empty:
        print(f"{args.forecasts}: none of the methods {args.methods} is in the file", file=sys.stderr)
        return 2
    wide = table.pivot_table(index=["target", "horizon"], columns="method", values=["mae", "common", "unit"])
    print(wide.round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
