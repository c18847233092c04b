"""Report charts as PNG bytes (matplotlib, Agg), every one set in the bundled Korean font.

Each function draws one figure and returns its PNG; nothing is shown or kept open. Maps draw the dataset's
``boundaries.geojson`` (one Feature per unit with the property ``unit_id``; WGS84) in an equirectangular
projection with the aspect of the map's mean latitude.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports never open a window

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from tiecast.common import ConfigError

from ._font import chart_rc

__all__ = [
    "BASE_COLOR",
    "COOP_COLOR",
    "MapData",
    "TrajectoryPanel",
    "beeswarm_chart",
    "chart_style",
    "choropleth_chart",
    "difference_chart",
    "group_bar_chart",
    "national_ties_chart",
    "tie_map_chart",
    "trajectory_chart",
    "waterfall_chart",
]

BASE_COLOR = "#1f5fa8"
COOP_COLOR = "#d9622b"
HIST_COLOR = "#333333"
POS_COLOR = "#2a9d5c"
NEG_COLOR = "#c0392b"


_RC_DEPTH = [0]


@contextmanager
def chart_style() -> Iterator[None]:
    """The report charts' matplotlib settings (font, sizes); nested uses cost nothing, so a report wraps all its
    charts in one (copying matplotlib's settings is a noticeable part of a small chart's time)."""
    if _RC_DEPTH[0]:
        yield
        return
    with matplotlib.rc_context(chart_rc()):  # type: ignore[arg-type]
        _RC_DEPTH[0] += 1
        try:
            yield
        finally:
            _RC_DEPTH[0] -= 1


def _png(fig: Figure, tight: bool = False) -> bytes:
    """PNG of a figure; ``tight`` crops to the drawn extent (an extra draw: only for the one-off summary charts,
    per-unit charts have fixed layouts)."""
    buffer = io.BytesIO()
    extra: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.06} if tight else {}
    fig.savefig(buffer, format="png", pil_kwargs={"compress_level": 2}, **extra)
    return buffer.getvalue()


def _few_ticks(ax: Axes) -> None:
    """At most about four labelled ticks per axis (every tick is five artists: they dominate a small chart's
    drawing time)."""
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))


def _figure(width: float, height: float) -> Figure:
    """A figure outside pyplot (no global figure registry: cheaper, and safe in forked workers)."""
    return Figure(figsize=(width, height))


# ---- trajectories -------------------------------------------------------------------------------------------
@dataclass
class TrajectoryPanel:
    """One target's history and forecast (levels): ``forecast`` has year, point, lower80, upper80, lower90,
    upper90 and optionally cooperation, cooperation_lower90, cooperation_upper90."""

    title: str
    ylabel: str
    history: pd.Series  # year -> value
    forecast: pd.DataFrame
    labels: dict[str, str] = field(default_factory=dict)  # history, baseline, cooperation, band80, band90
    scale: float = 1.0  # values are divided by it for display


# The charts' legends are drawn by the page (HTML), not in the image: a matplotlib legend is a third of a small
# chart's drawing time. Each entry: (label, kind, colour, opacity) with kind line / dashed / dotted / band / marker.
TRAJECTORY_LEGEND = (("history", "line", HIST_COLOR, 1.0), ("band90", "band", BASE_COLOR, 0.13),
                     ("band80", "band", BASE_COLOR, 0.22), ("baseline", "line", BASE_COLOR, 1.0),
                     ("cooperation", "dashed", COOP_COLOR, 1.0), ("coop80", "band", COOP_COLOR, 0.14),
                     ("coop90", "dotted", COOP_COLOR, 1.0))
DIFFERENCE_LEGEND = (("band90", "band", COOP_COLOR, 0.15), ("band80", "band", COOP_COLOR, 0.3),
                     ("difference", "marker", COOP_COLOR, 1.0))


def trajectory_chart(panels: Sequence[TrajectoryPanel]) -> bytes:
    with chart_style():
        fig = _figure(3.6 * len(panels), 2.4)
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, p in zip(axes[0], panels, strict=True):
            s, f, lab = p.scale, p.forecast, p.labels
            hist = p.history.dropna()
            ax.plot(hist.index, hist.to_numpy() / s, color=HIST_COLOR, lw=1.6, label=lab.get("history", "history"))
            if len(f):
                last_year, last = int(hist.index[-1]), float(hist.iloc[-1])
                years = np.r_[last_year, f["year"].to_numpy(int)]

                def joined(col: str, f: pd.DataFrame = f, last: float = last, s: float = s) -> np.ndarray:
                    return np.r_[last, f[col].to_numpy(float)] / s

                ax.fill_between(years, joined("lower90"), joined("upper90"), color=BASE_COLOR, alpha=0.13, lw=0,
                                label=lab.get("band90", "90%"))
                ax.fill_between(years, joined("lower80"), joined("upper80"), color=BASE_COLOR, alpha=0.22, lw=0,
                                label=lab.get("band80", "80%"))
                ax.plot(years, joined("point"), color=BASE_COLOR, lw=1.8, label=lab.get("baseline", "baseline"))
                if "cooperation" in f and f["cooperation"].notna().any():
                    ax.plot(years, joined("cooperation"), color=COOP_COLOR, lw=1.8, ls="--",
                            label=lab.get("cooperation", "cooperation"))
                    if "cooperation_lower80" in f:
                        ax.fill_between(years, joined("cooperation_lower80"), joined("cooperation_upper80"),
                                        color=COOP_COLOR, alpha=0.14, lw=0, label=lab.get("coop80", "80%"))
                    if "cooperation_lower90" in f:
                        for col in ("cooperation_lower90", "cooperation_upper90"):
                            ax.plot(years, joined(col), color=COOP_COLOR, lw=0.7, ls=":",
                                    label=lab.get("coop90", "90%") if col.endswith("lower90") else None)
                ax.axvline(last_year, color="#999999", lw=0.7, ls=":")
            ax.set_title(f"{p.title} – {p.ylabel}" if p.ylabel else p.title, fontsize=10, loc="left")
            ax.grid(axis="y", alpha=0.25, lw=0.5)
            _few_ticks(ax)
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100
                                                                          else f"{v:,.1f}"))
        fig.subplots_adjust(left=0.09, right=0.985, top=0.9, bottom=0.1, wspace=0.22)
        return _png(fig)


def difference_chart(panels: Sequence[tuple[str, pd.DataFrame, str]], labels: Mapping[str, str]) -> bytes:
    """The cooperation effect (with - without) over the years with its 80% and 90% intervals, one panel per
    target: (title, frame with year, difference, difference_lower80/upper80/lower90/upper90, y label)."""
    with chart_style():
        fig = _figure(3.6 * len(panels), 2.0)
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, (title, f, ylabel) in zip(axes[0], panels, strict=True):
            y = f["year"].to_numpy(int)
            ax.fill_between(y, f["difference_lower90"], f["difference_upper90"], color=COOP_COLOR, alpha=0.15, lw=0,
                            label=labels.get("band90", "90%"))
            ax.fill_between(y, f["difference_lower80"], f["difference_upper80"], color=COOP_COLOR, alpha=0.3, lw=0,
                            label=labels.get("band80", "80%"))
            ax.plot(y, f["difference"], color=COOP_COLOR, lw=1.8, marker="o", ms=3,
                    label=labels.get("difference", "difference"))
            ax.axhline(0, color="#555555", lw=0.8)
            ax.set_title(f"{title} ({ylabel})" if ylabel else title, fontsize=10, loc="left")
            ax.grid(axis="y", alpha=0.25, lw=0.5)
            _few_ticks(ax)
        fig.subplots_adjust(left=0.08, right=0.985, top=0.88, bottom=0.12, wspace=0.22)
        return _png(fig)


# ---- SHAP ---------------------------------------------------------------------------------------------------
def waterfall_chart(panels: Sequence[tuple[str, str, float, Sequence[tuple[str, float]], str, float]]) -> bytes:
    """SHAP waterfalls (in % points of growth over the horizon), one panel per target:
    (title, start label, start value, [(group label, contribution)], end label, end value)."""
    with chart_style():
        heights = [len(p[3]) + 2 for p in panels]
        fig = _figure(3.7 * len(panels), 0.28 * max(heights) + 0.9)
        axes = fig.subplots(1, len(panels), squeeze=False)
        for ax, (title, start_label, start, steps, end_label, end) in zip(axes[0], panels, strict=True):
            labels = [start_label, *[s[0] for s in steps], end_label]
            pos = np.arange(len(labels))[::-1]
            widths = np.array([start, *[s[1] for s in steps], end], dtype=float)
            cum = np.cumsum(widths[:-1])
            lefts = np.r_[0.0, cum[:-1], 0.0]
            colors = ["#8a8a8a", *[POS_COLOR if v >= 0 else NEG_COLOR for v in widths[1:-1]], BASE_COLOR]
            ax.barh(pos, widths, left=lefts, color=colors, height=0.6)  # one call: one artist per bar, no loop
            ends = np.r_[lefts, lefts + widths]
            lo, hi = float(min(ends.min(), 0.0)), float(max(ends.max(), 0.0))
            pad = 0.12 * max(hi - lo, 1e-6)
            ax.set_xlim(lo - pad, hi + 3 * pad)
            for y, v, x in zip(pos, widths, np.maximum(lefts, lefts + widths), strict=True):
                ax.annotate(f"{v:+.2f}", xy=(x, y), xytext=(3, 0), textcoords="offset points", va="center",
                            fontsize=7.5)
            ax.set_yticks([])
            ax.set_ylim(-0.6, len(labels) - 0.4)
            for y, text in zip(pos, labels, strict=True):
                ax.annotate(text, xy=(0, y), xycoords=("axes fraction", "data"), xytext=(-4, 0),
                            textcoords="offset points", ha="right", va="center", fontsize=8.5)
            ax.spines["left"].set_visible(False)
            ax.axvline(0, color="#555555", lw=0.8)
            ax.set_title(title, fontsize=10, loc="left")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
            ax.grid(axis="x", alpha=0.25, lw=0.5)
        fig.subplots_adjust(left=0.2, right=0.96, top=1 - 0.3 / fig.get_figheight(),
                            bottom=0.45 / fig.get_figheight(), wspace=0.85)
        return _png(fig)


def group_bar_chart(table: pd.DataFrame, title: str, xlabel: str) -> bytes:
    """Mean absolute contribution by feature group (rows), one bar per column (e.g. all units, small/mid)."""
    with chart_style():
        fig = _figure(5.2, 0.32 * len(table) * max(1, len(table.columns)) + 0.9)
        ax = fig.subplots()
        n = len(table.columns)
        pos = np.arange(len(table))[::-1]
        width = 0.8 / n
        colors = [BASE_COLOR, COOP_COLOR, "#6a6a6a"]
        for k, col in enumerate(table.columns):
            ax.barh(pos + (n - 1 - 2 * k) * width / 2, table[col].to_numpy(float), height=width,
                    color=colors[k % len(colors)], label=str(col))
        ax.set_yticks(pos, list(table.index))
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.25, lw=0.5)
        if n > 1:
            ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        return _png(fig, tight=True)


def beeswarm_chart(contrib: np.ndarray, values: np.ndarray, labels: Sequence[str], title: str, xlabel: str,
                   low_high: tuple[str, str] = ("low", "high"), seed: int = 0) -> bytes:
    """SHAP beeswarm: one row per feature (first on top), a dot per unit at its contribution, coloured by the
    feature's value rank among the units (grey = missing)."""
    rng = np.random.default_rng(seed)
    with chart_style():
        k = contrib.shape[1]
        fig = _figure(6.4, 0.3 * k + 1.0)
        ax = fig.subplots()
        cmap = matplotlib.colormaps["coolwarm"]
        for j in range(k):
            y0 = k - 1 - j
            c, v = contrib[:, j], values[:, j]
            # vertical jitter proportional to the local density of contributions (a beeswarm's spread)
            bins = np.histogram_bin_edges(c, bins=30)
            which = np.clip(np.digitize(c, bins) - 1, 0, len(bins) - 2)
            counts = np.bincount(which, minlength=len(bins) - 1)
            spread = 0.38 * counts[which] / max(counts.max(), 1)
            jitter = rng.uniform(-1, 1, len(c)) * spread
            finite = np.isfinite(v)
            ranks = np.full(len(v), np.nan)
            if finite.any():
                ranks[finite] = pd.Series(v[finite]).rank(pct=True).to_numpy()
            colors = np.where(finite[:, None], cmap(np.nan_to_num(ranks, nan=0.5)), np.array([[0.7, 0.7, 0.7, 1]]))
            ax.scatter(c, y0 + jitter, s=6, c=colors, lw=0)
        ax.set_yticks(np.arange(k)[::-1], list(labels))
        ax.axvline(0, color="#555555", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.25, lw=0.5)
        sm = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 1))
        bar = fig.colorbar(sm, ax=ax, fraction=0.03, pad=0.02, ticks=[0, 1])
        bar.ax.set_yticklabels(list(low_high))
        fig.tight_layout()
        return _png(fig, tight=True)


# ---- maps ---------------------------------------------------------------------------------------------------
@dataclass
class MapData:
    """Unit polygons (outer rings and holes drawn alike, as filled rings) and label points."""

    rings: dict[str, list[np.ndarray]]
    points: pd.DataFrame  # unit_id -> lon, lat (dataset centroids, else the polygon's mean vertex)
    aspect: float
    boxes: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)  # per ring
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        self.boxes = {u: [(float(r[:, 0].min()), float(r[:, 0].max()), float(r[:, 1].min()), float(r[:, 1].max()))
                          for r in rr] for u, rr in self.rings.items()}
        allb = [b for bb in self.boxes.values() for b in bb]
        if allb:
            self.bounds = (min(b[0] for b in allb), max(b[1] for b in allb), min(b[2] for b in allb),
                           max(b[3] for b in allb))

    @classmethod
    def load(cls, path: Path, units: pd.DataFrame) -> MapData:
        try:
            collection = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the boundaries {path}: {exc}", parameter="data") from exc
        rings: dict[str, list[np.ndarray]] = {}
        for feat in collection.get("features", []):
            uid = str(feat.get("properties", {}).get("unit_id"))
            geom = feat.get("geometry") or {}
            polys = geom.get("coordinates", [])
            if geom.get("type") == "Polygon":
                polys = [polys]
            rings[uid] = [np.asarray(ring, dtype=float)[:, :2] for poly in polys for ring in poly[:1]]
        pts = units.assign(unit_id=units["unit_id"].astype(str)).set_index("unit_id")
        lon = pts["lon"] if "lon" in pts else pd.Series(np.nan, index=pts.index)
        lat = pts["lat"] if "lat" in pts else pd.Series(np.nan, index=pts.index)
        points = pd.DataFrame({"lon": lon.astype(float), "lat": lat.astype(float)})
        for uid, rr in rings.items():
            if uid in points.index and not np.isfinite(points.loc[uid]).all() and rr:
                big = max(rr, key=len)
                points.loc[uid] = big.mean(axis=0)
        all_lat = np.concatenate([r[:, 1] for rr in rings.values() for r in rr]) if rings else np.array([36.0])
        return cls(rings=rings, points=points, aspect=1 / math.cos(math.radians(float(np.mean(all_lat)))))

    def polygons(self, units: Sequence[str] | None = None, coarse: bool = False,
                 view: tuple[float, float, float, float] | None = None) -> tuple[list[np.ndarray], list[str]]:
        """Rings and their unit ids; ``coarse``: every 4th vertex (locator maps); ``view`` (lon0, lon1, lat0,
        lat1): only rings that reach into it."""
        ids = list(self.rings) if units is None else [u for u in units if u in self.rings]
        polys, owners = [], []
        for uid in ids:
            for ring, box in zip(self.rings[uid], self.boxes[uid], strict=True):
                if view is not None and (box[1] < view[0] or box[0] > view[1] or box[3] < view[2]
                                         or box[2] > view[3]):
                    continue
                polys.append(ring[::4] if coarse and len(ring) > 16 else ring)
                owners.append(uid)
        return polys, owners

    def extent(self) -> tuple[float, float, float, float]:
        return self.bounds


def _base_map(ax: Axes, md: MapData, face: Mapping[Any, str] | None = None, default: str = "#ececec",
              edge: str = "#ffffff", lw: float = 0.25, coarse: bool = False,
              view: tuple[float, float, float, float] | None = None) -> None:
    polys, owners = md.polygons(coarse=coarse, view=view)
    colors = [(face or {}).get(o, default) for o in owners]
    ax.add_collection(PolyCollection(polys, facecolors=colors, edgecolors=edge, linewidths=lw))
    ax.set_aspect(md.aspect)
    ax.set_axis_off()  # no ticks: cheaper than emptying them


def tie_map_chart(md: MapData, unit: str, partners: pd.DataFrame, names: Mapping[Any, Any], title: str,
                  legend: Mapping[str, str]) -> bytes:
    """The unit (dark), its strongest partners coloured by tie index and the flows as lines (width ~ two-way
    volume), zoomed on them, with a locator of the whole country. ``partners``: destination, tie_index, volume."""
    with chart_style():
        fig = _figure(6.4, 4.6)
        ax = fig.add_axes((0.0, 0.0, 0.78, 0.92))
        cmap = matplotlib.colormaps["YlOrRd"]
        ti = partners.set_index("destination")["tie_index"].astype(float)
        if ti.isna().all():  # no tie index (no coordinates): colour by volume
            ti = partners.set_index("destination")["volume"].astype(float)
        top = float(max(ti.max(), 1e-9)) if len(ti) else 1.0
        face = {p: matplotlib.colors.to_hex(cmap(0.25 + 0.75 * v / top)) for p, v in ti.items()}
        face[unit] = "#1f3b73"
        pts = md.points
        involved = [unit, *partners["destination"]]
        xs, ys = pts.loc[involved, "lon"].to_numpy(float), pts.loc[involved, "lat"].to_numpy(float)
        pad = max(0.35, 0.18 * max(np.ptp(xs), np.ptp(ys)))
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        half = max(np.ptp(xs), np.ptp(ys) * md.aspect) / 2 + pad
        view = (cx - half, cx + half, cy - half / md.aspect, cy + half / md.aspect)
        _base_map(ax, md, face, view=view)
        x0, y0 = float(pts.at[unit, "lon"]), float(pts.at[unit, "lat"])  # type: ignore[arg-type]
        vol = partners["volume"].to_numpy(float)
        widths = 0.6 + 3.0 * np.sqrt(vol / max(vol.max(), 1e-9)) if len(vol) else []
        segs = [[(x0, y0), (pts.loc[p, "lon"], pts.loc[p, "lat"])] for p in partners["destination"]]
        ax.add_collection(LineCollection(segs, linewidths=widths, colors="#1f3b73", alpha=0.45, zorder=3))
        ax.scatter([x0], [y0], s=30, color="#1f3b73", zorder=4, edgecolor="white", lw=0.8)
        ax.set_xlim(view[0], view[1])
        ax.set_ylim(view[2], view[3])
        for p in involved:
            ax.annotate(str(names.get(p, p)), (pts.loc[p, "lon"], pts.loc[p, "lat"]), xytext=(3, 3),
                        textcoords="offset points", fontsize=8 if p != unit else 9.5,
                        fontweight="semibold" if p == unit else "normal", zorder=5,
                        bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.7})
        ax.set_title(title, fontsize=10, loc="left")
        # locator
        inset = fig.add_axes((0.78, 0.45, 0.22, 0.47))
        _base_map(inset, md, {unit: "#1f3b73", **{p: "#e8894a" for p in partners["destination"]}}, lw=0.1,
                  coarse=True)
        lon0, lon1, lat0, lat1 = md.extent()
        inset.set_xlim(lon0, lon1)
        inset.set_ylim(lat0, lat1)
        inset.add_patch(matplotlib.patches.Rectangle((cx - half, cy - half / md.aspect), 2 * half,
                                                     2 * half / md.aspect, fill=False, ec="#333333", lw=0.7))
        fig.text(0.79, 0.40, legend.get("note", ""), va="top", ha="left", fontsize=7.5, linespacing=1.6)
        return _png(fig)


def choropleth_chart(md: MapData, values: pd.Series, title: str, label: str, cmap: str = "RdBu",
                     center: float | None = 0.0, outline: Sequence[str] = ()) -> bytes:
    """Units coloured by ``values`` (diverging around ``center``); ``outline``: units drawn with a dark edge."""
    with chart_style():
        fig = _figure(5.2, 6.0)
        ax = fig.subplots()
        v = values.astype(float)
        finite = v[np.isfinite(v)]
        if center is not None and len(finite):
            lim = float(np.nanpercentile(np.abs(finite - center), 98)) or 1.0
            norm = matplotlib.colors.Normalize(center - lim, center + lim)
        else:
            norm = matplotlib.colors.Normalize(float(finite.min()), float(finite.max()))
        cm = matplotlib.colormaps[cmap]
        face = {u: matplotlib.colors.to_hex(cm(norm(x))) for u, x in v.items() if np.isfinite(x)}
        _base_map(ax, md, face, default="#dddddd", lw=0.2)
        if outline:
            polys, _ = md.polygons(list(outline))
            ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors="#222222", linewidths=0.6))
        lon0, lon1, lat0, lat1 = md.extent()
        ax.set_xlim(lon0, lon1)
        ax.set_ylim(lat0, lat1)
        sm = matplotlib.cm.ScalarMappable(cmap=cm, norm=norm)
        fig.colorbar(sm, ax=ax, fraction=0.035, pad=0.01, label=label)
        ax.set_title(title, fontsize=10, loc="left")
        fig.tight_layout()
        return _png(fig, tight=True)


def national_ties_chart(md: MapData, pairs: pd.DataFrame, names: Mapping[Any, Any], title: str, label_top: int = 8
                        ) -> bytes:
    """The strongest reciprocal ties of the country as lines (width and colour ~ tie index); ``pairs``: origin,
    destination, tie_index (one row per unordered pair)."""
    with chart_style():
        fig = _figure(5.2, 6.0)
        ax = fig.subplots()
        _base_map(ax, md, default="#eeeeee", lw=0.2)
        pts = md.points
        t = pairs["tie_index"].to_numpy(float)
        norm = matplotlib.colors.Normalize(float(t.min()), float(t.max()))
        cm = matplotlib.colormaps["plasma_r"]
        segs = [[(pts.loc[a, "lon"], pts.loc[a, "lat"]), (pts.loc[b, "lon"], pts.loc[b, "lat"])]
                for a, b in zip(pairs["origin"], pairs["destination"], strict=True)]
        ax.add_collection(LineCollection(segs, linewidths=0.8 + 3.0 * norm(t), colors=cm(norm(t)), zorder=3))
        ends = pd.unique(pd.concat([pairs["origin"].head(label_top), pairs["destination"].head(label_top)]))
        for u in ends:
            ax.annotate(str(names.get(u, u)), (pts.loc[u, "lon"], pts.loc[u, "lat"]), fontsize=6.5, xytext=(2, 2),
                        textcoords="offset points", zorder=4,
                        bbox={"boxstyle": "round,pad=0.08", "fc": "white", "ec": "none", "alpha": 0.6})
        lon0, lon1, lat0, lat1 = md.extent()
        ax.set_xlim(lon0, lon1)
        ax.set_ylim(lat0, lat1)
        sm = matplotlib.cm.ScalarMappable(cmap=cm, norm=norm)
        fig.colorbar(sm, ax=ax, fraction=0.035, pad=0.01, label="RTI")
        ax.set_title(title, fontsize=10, loc="left")
        fig.tight_layout()
        return _png(fig, tight=True)
