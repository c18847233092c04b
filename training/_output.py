"""Comparison tables and files of a backtest (``metrics.csv``, ``forecasts.csv``, ``comparison.txt``, PNG
plots), written atomically."""

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

from ._backtest import ABLATIONS, BACKTEST_FORECAST_COLUMNS, METHODS, METRIC_COLUMNS, BacktestResult
from ._baselines import BASELINES

__all__ = ["comparison_tables", "comparison_text", "improvement", "selection_frame", "selection_tables",
           "write_backtest"]


def improvement(result: BacktestResult, target: str, group: str = "all") -> pd.DataFrame:
    """Per horizon: tiecast MAPE, the best baseline/peer and its MAPE, relative gain (%), and for each ablation
    its MAPE and the gain of the group (``noties``/``ties_gain_pct``, ``nomigration``/``migration_gain_pct``)."""
    s = result.summary(group)
    s = s[s["target"] == target].pivot_table(index="horizon", columns="method", values="mape")
    if s.empty or "tiecast" not in s:
        return pd.DataFrame()
    others = [m for m in BASELINES if m in s.columns]
    best = s[others].idxmin(axis=1)
    best_value = s[others].min(axis=1)
    out = pd.DataFrame({"tiecast": s["tiecast"], "best_other": best, "best_other_mape": best_value,
                        "gain_pct": 100 * (1 - s["tiecast"] / best_value)})
    for method, group in ABLATIONS.items():
        if method in s:
            out[f"no{group}"] = s[method]
            out[f"{group}_gain_pct"] = 100 * (1 - s["tiecast"] / s[method])
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
            ablated = [a for a in ABLATIONS.values() if f"no{a}" in imp.columns]
            for col in ("h", "tiecast", "best other", "its MAPE", "gain",
                        *[c for a in ablated for c in (f"no-{a}", f"{a} gain")]):
                it.add_column(col, justify="right")
            for rec in imp.to_dict("records"):
                cells = [str(rec["horizon"]), f"{rec['tiecast']:.3f}", str(rec["best_other"]),
                         f"{rec['best_other_mape']:.3f}", f"{rec['gain_pct']:+.1f}%"]
                for a in ablated:
                    cells += [_fmt(rec[f"no{a}"], 3), f"{rec[f'{a}_gain_pct']:+.1f}%"]
                it.add_row(*cells)
            tables.append(it)
    return tables


def selection_tables(result: BacktestResult) -> list[Table]:
    """Per target, tiecast's weights at the last backtest origin by horizon and the inner origins they were
    chosen on (why tiecast forecasts what it does)."""
    tables = []
    for target, by_origin in result.selection.items():
        if not by_origin:
            continue
        origin = max(by_origin)
        sel = by_origin[origin]
        t = Table(title=f"{target}: tiecast's weights at origin {origin} (chosen on inner origins before it)",
                  title_justify="left")
        t.add_column("h", justify="right")
        for member in sel.members:
            t.add_column(member, justify="right")
        t.add_column("inner origins / how")
        for h, weights in sel.weights.items():
            how = ", ".join(map(str, sel.origins.get(h, []))) or sel.notes.get(h, "")
            t.add_row(str(h), *[f"{w:.2f}" if w > 0 else "-" for w in weights], how)
        tables.append(t)
    return tables


def comparison_text(result: BacktestResult, width: int = 110) -> str:
    """The comparison tables and the per-target plans as plain text."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, highlight=False)
    for plan in result.plans.values():
        console.print(plan.note, soft_wrap=True)
    for table in [*comparison_tables(result), *selection_tables(result)]:
        console.print(table)
    return buffer.getvalue()


def selection_frame(result: BacktestResult) -> pd.DataFrame:
    """tiecast's weights per target, test origin, horizon and member, with the inner origins they were chosen
    on (calendar years) and how (``note``); ``design``: for a LightGBM member, ``absolute`` or ``relative``
    (to the cross-section) at that origin, with the common share it was chosen on and a relative member's
    common-growth rule."""
    rows = []
    for target, by_origin in result.selection.items():
        roll = result.rolls.get(target)
        for origin, sel in by_origin.items():
            designs = roll.designs(roll.tm.calendar.period(origin), sel.members) if roll is not None else {}
            for h, weights in sel.weights.items():
                inner = ",".join(map(str, sel.origins.get(h, [])))
                for member, w in zip(sel.members, weights, strict=True):
                    rows.append({"target": target, "origin": origin, "horizon": h, "member": member,
                                 "weight": round(float(w), 6), "inner_origins": inner,
                                 "inner_error": sel.errors.get(h, {}).get(member, np.nan),
                                 "note": sel.notes.get(h, ""), "design": _design_text(designs.get(member))})
    return pd.DataFrame(rows, columns=["target", "origin", "horizon", "member", "weight", "inner_origins",
                                       "inner_error", "note", "design"])


def _design_text(design: dict | None) -> str:
    """'relative (share 0.191, rule recent)', 'absolute (share 0.012)' or '' for a member without boosters."""
    if not design:
        return ""
    share = design["common_share"]
    text = ("relative" if design["relative"] else "absolute") + (f" (share {share:.3f}" if share is not None
                                                                 else " (share unknown")
    return text + (f", rule {design['common_rule']})" if design["relative"] else ")")


def write_backtest(result: BacktestResult, ds: Dataset, out: str | Path) -> list[Path]:
    """Write ``metrics.csv`` (exactly METRIC_COLUMNS), ``forecasts.csv`` (BACKTEST_FORECAST_COLUMNS: every method's
    forecast of every unit, origin and horizon with the actual), ``selection.csv`` (tiecast's weights),
    ``comparison.txt`` and the PNG plots into ``out``."""
    from ._plots import write_plots

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {out}: cannot create it ({exc})", parameter="out") from exc
    if not folder.is_dir():
        raise ConfigError(f"output folder {out} is not a folder", parameter="out")
    written = [folder / "metrics.csv", folder / "forecasts.csv", folder / "selection.csv", folder / "comparison.txt"]
    write_table(result.metrics[METRIC_COLUMNS], written[0])
    write_table(result.forecasts.reindex(columns=BACKTEST_FORECAST_COLUMNS), written[1])
    write_table(selection_frame(result), written[2])
    text = comparison_text(result)
    atomic_write(written[3], lambda tmp: tmp.write_text(text, encoding="utf-8"))
    written += write_plots(result, ds, folder)
    return written
