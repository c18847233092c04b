"""PNG plots of a backtest: MAPE by horizon per method, and forecast fans of a few units.

Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tiecast.common import atomic_write
from tiecast.features import Dataset

from ._backtest import METHODS, BacktestResult

__all__ = ["plot_fans", "plot_mape", "write_plots"]

FAN_UNITS = 4


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)


def plot_mape(result: BacktestResult, target: str, path: Path) -> Path | None:
    """MAPE (%) by horizon per method, all units and small/mid-size cities side by side."""
    summary = pd.concat([result.summary(g).assign(group=g) for g in ("all", "small_mid")])
    summary = summary[summary["target"] == target]
    if summary.empty:
        return None
    groups = [g for g in ("all", "small_mid") if (summary["group"] == g).any()]
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        sub = summary[summary["group"] == group]
        for method in METHODS:
            m = sub[sub["method"] == method]
            if m.empty:
                continue
            style = {"linewidth": 2.5} if method == "tiecast" else {"linewidth": 1.2, "linestyle": "--"}
            ax.plot(m["horizon"], m["mape"], marker="o", label=method, **style)
        ax.set_xlabel("horizon h (years after the origin)")
        ax.set_ylabel("MAPE (%)")
        ax.set_title(f"{target}: {group} units")
        ax.set_xticks(sorted(sub["horizon"].unique()))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def plot_fans(result: BacktestResult, ds: Dataset, target: str, path: Path) -> Path | None:
    """Forecast fans (80%/90% intervals) of a few units at the last backtest origin, with actual history."""
    f = result.forecasts
    if f.empty:
        return None
    f = f[(f["target"] == target) & (f["method"] == "tiecast")]
    if f.empty:
        return None
    origin = int(f["origin"].max())
    f = f[f["origin"] == origin]
    # The units with the largest and smallest forecast growth, the median one and the largest unit.
    last_h = f[f["horizon"] == f["horizon"].max()].set_index("unit_id")
    growth = np.log(last_h["point"]).sort_values()
    picks = list(dict.fromkeys([growth.index[0], growth.index[-1], growth.index[len(growth) // 2],
                                last_h["actual"].idxmax()]))[:FAN_UNITS]
    names = ds.unit_names()
    panel = ds.panel
    fig, axes = plt.subplots(1, len(picks), figsize=(4 * len(picks), 3.4), squeeze=False)
    for ax, unit in zip(axes[0], picks, strict=True):
        hist = panel[(panel["unit_id"] == unit) & panel[target].notna()]
        ax.plot(hist["year"], hist[target], color="black", linewidth=1.2, label="actual")
        fc = f[f["unit_id"] == unit].sort_values("horizon")
        years = origin + fc["horizon"].to_numpy()
        ax.fill_between(years, fc["lower90"], fc["upper90"], alpha=0.2, color="tab:blue", label="90%")
        ax.fill_between(years, fc["lower80"], fc["upper80"], alpha=0.35, color="tab:blue", label="80%")
        ax.plot(years, fc["point"], color="tab:blue", marker="o", markersize=3, label=f"tiecast (origin {origin})")
        name = names.get(unit, unit)
        label = ds.units.set_index("unit_id")["name_en"].get(unit, name) if "name_en" in ds.units else name
        ax.set_title(f"{label} ({unit})", fontsize=9)
        ax.axvline(origin, color="grey", linewidth=0.8, linestyle=":")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{target} ({ds.column_info(target).get('unit', 'level')})")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def write_plots(result: BacktestResult, ds: Dataset, folder: Path) -> list[Path]:
    """``mape_by_horizon_<target>.png`` and ``fans_<target>.png`` for every backtested target."""
    out = []
    for target, plan in result.plans.items():
        if not plan.origins:
            continue
        for path in (plot_mape(result, target, folder / f"mape_by_horizon_{target}.png"),
                     plot_fans(result, ds, target, folder / f"fans_{target}.png")):
            if path is not None:
                out.append(path)
    return out
