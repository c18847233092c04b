"""Comparison tables and files of a backtest (``metrics.csv`` and PNG plots), written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from tiecast.common import ConfigError, atomic_write, write_table
from tiecast.features import Dataset

from ._backtest import METHODS, METRIC_COLUMNS, BacktestResult
from ._baselines import BASELINES

__all__ = ["comparison_tables", "comparison_text", "improvement", "write_backtest"]


def improvement(result: BacktestResult, target: str, group: str = "all") -> pd.DataFrame:
    """Per horizon: tiecast MAPE, the best baseline/peer and its MAPE, relative gain (%), ablation MAPE."""
    s = result.summary(group)
    s = s[s["target"] == target].pivot_table(index="horizon", columns="method", values="mape")
    if s.empty or "tiecast" not in s:
        return pd.DataFrame()
    others = [m for m in BASELINES if m in s.columns]
    best = s[others].idxmin(axis=1)
    best_value = s[others].min(axis=1)
    out = pd.DataFrame({"tiecast": s["tiecast"], "best_other": best, "best_other_mape": best_value,
                        "gain_pct": 100 * (1 - s["tiecast"] / best_value)})
    if "tiecast_noties" in s:
        out["noties"] = s["tiecast_noties"]
        out["ties_gain_pct"] = 100 * (1 - s["tiecast"] / s["tiecast_noties"])
    return out.reset_index()


def _fmt(value: float, digits: int = 2, pct: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:.0f}%" if pct else f"{value:,.{digits}f}"


def comparison_tables(result: BacktestResult) -> list[Table]:
    """Rich tables: per target, metrics by horizon and method (all units), MAPE for small/mid-size cities and
    tiecast's gain over the best baseline."""
    tables: list[Table] = []
    for target, plan in result.plans.items():
        if not plan.origins:
            continue
        summary = result.summary("all")
        summary = summary[summary["target"] == target]
        t = Table(title=f"{plan.note} — all units (mean over origins)", title_justify="left")
        for col in ("h", "method", "MAPE %", "RMSE", "MASE", "cov80", "cov90"):
            t.add_column(col, justify="left" if col == "method" else "right")
        for h, block in summary.groupby("horizon"):
            best = block["mape"].min()
            records: list[dict[Any, Any]] = block.to_dict("records")
            for rec in records:
                mark = "bold green" if rec["mape"] == best else ("bold" if rec["method"] == "tiecast" else "")
                mape = float(rec["mape"])
                t.add_row(str(h), str(rec["method"]), f"[{mark}]{mape:.3f}[/{mark}]" if mark else f"{mape:.3f}",
                          _fmt(rec["rmse"], 1), _fmt(rec["mase"]), _fmt(rec["coverage80"], pct=True),
                          _fmt(rec["coverage90"], pct=True), end_section=rec is records[-1])
        tables.append(t)
        for group in ("small_mid", "capital", "other"):
            g = result.summary(group)
            g = g[g["target"] == target]
            if g.empty:
                continue
            wide = g.pivot_table(index="method", columns="horizon", values="mape")
            wide = wide.reindex([m for m in METHODS if m in wide.index])
            gt = Table(title=f"{target} MAPE % — {group} units", title_justify="left")
            gt.add_column("method")
            for h in wide.columns:
                gt.add_column(f"h={h}", justify="right")
            for method, values in wide.iterrows():
                gt.add_row(str(method), *[f"{v:.3f}" for v in values])
            tables.append(gt)
        for group in ("all", "small_mid"):
            imp = improvement(result, target, group)
            if imp.empty:
                continue
            it = Table(title=f"{target}: tiecast vs the best other method — {group}", title_justify="left")
            for col in ("h", "tiecast", "best other", "its MAPE", "gain", "no-ties", "ties gain"):
                it.add_column(col, justify="right")
            for row in imp.itertuples(index=False):
                it.add_row(str(row.horizon), f"{row.tiecast:.3f}", str(row.best_other), f"{row.best_other_mape:.3f}",
                           f"{row.gain_pct:+.1f}%", _fmt(getattr(row, "noties", np.nan), 3),
                           f"{row.ties_gain_pct:+.1f}%" if hasattr(row, "ties_gain_pct") else "-")
            tables.append(it)
    return tables


def comparison_text(result: BacktestResult, width: int = 110) -> str:
    """The comparison tables and the per-target plans as plain text."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, highlight=False)
    for plan in result.plans.values():
        console.print(plan.note, soft_wrap=True)
    for table in comparison_tables(result):
        console.print(table)
    return buffer.getvalue()


def write_backtest(result: BacktestResult, ds: Dataset, out: str | Path) -> list[Path]:
    """Write ``metrics.csv`` (exactly METRIC_COLUMNS), ``comparison.txt`` and the PNG plots into ``out``."""
    from ._plots import write_plots

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {out}: cannot create it ({exc})", parameter="out") from exc
    if not folder.is_dir():
        raise ConfigError(f"output folder {out} is not a folder", parameter="out")
    written = [folder / "metrics.csv", folder / "comparison.txt"]
    write_table(result.metrics[METRIC_COLUMNS], written[0])
    text = comparison_text(result)
    atomic_write(written[1], lambda tmp: tmp.write_text(text, encoding="utf-8"))
    written += write_plots(result, ds, folder)
    return written
