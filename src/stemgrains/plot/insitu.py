"""Figures of an in-situ series: event sites on the boundary-behaviour map, a time-lapse montage of the
differential images with the boundaries overlaid, and the enrichment chart."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .classification import BEHAVIOUR_COLORS as _CLASSIFICATION_COLORS
from .virtual import _save, draw_segments

__all__ = ["plot_event_sites", "plot_montage", "plot_enrichment", "BEHAVIOUR_COLORS", "SITE_MARKERS"]

#: the behaviour colours of boundary_behaviour.png (plot.classification), so that the two maps read alike (this one
#: had green for transmitting and blue for parallel); unknown: light grey
BEHAVIOUR_COLORS = {**_CLASSIFICATION_COLORS, "": "#bdbdbd"}
SITE_MARKERS = {"boundary": "o", "triple_junction": "^", "interior": "s", "interface": "D", "edge": "x"}


def _segment_color(sites: Any):
    seg_ids = np.asarray(sites.segments["segment_id"])
    beh = np.asarray(sites.segments["behaviour"]).astype(str)
    lut = {int(s): BEHAVIOUR_COLORS.get(b, BEHAVIOUR_COLORS[""]) for s, b in zip(seg_ids, beh)}
    return lambda sid: lut.get(sid, BEHAVIOUR_COLORS[""])


def _map_extent(sites: Any) -> tuple[float, float, float, float]:
    x0, x1, y0, y1 = sites.extent_nm
    return (x0, x1, y1, y0)


def _boundary_legend(ax: Any, sites: Any) -> None:
    from matplotlib.lines import Line2D

    present = sorted(set(np.asarray(sites.segments["behaviour"]).astype(str).tolist()))
    handles = [Line2D([], [], color=BEHAVIOUR_COLORS.get(b, "k"), lw=2, label=b or "unclassified") for b in present]
    handles += [Line2D([], [], ls="", marker=m, mfc="none", mec="k", label=s.replace("_", " "))
                for s, m in SITE_MARKERS.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def plot_event_sites(result: Any, sites: Any, *, path: str | os.PathLike | None = None) -> Figure:
    """Grain map (faded) with boundaries coloured by behaviour, electrode interfaces, and every event at its
    position (marker = site kind, number = event id, colour = first frame)."""
    from matplotlib import colormaps

    fig = Figure(figsize=(7.2, 5.2))
    ax = fig.add_subplot()
    lab = np.ma.masked_equal(sites.labels, 0)
    ax.imshow(lab, cmap="Pastel1", extent=_map_extent(sites), interpolation="nearest", alpha=0.6)
    draw_segments(ax, _BoundaryPairs(sites), sites.scan_step_nm, color=_segment_color(sites), lw=1.6)
    x0, x1, y0, y1 = sites.extent_nm
    side = {"left": ([x0, x0], [y0, y1]), "right": ([x1, x1], [y0, y1]), "top": ([x0, x1], [y0, y0]),
            "bottom": ([x0, x1], [y1, y1])}
    for e in sites.interface:
        ax.plot(*side[e], color="#ff7f0e", lw=5, solid_capstyle="butt")
    ev = result.events
    n_frames = len(result.times)
    cmap = colormaps["viridis"]
    for i in range(len(ev)):
        c = cmap(ev["first_frame"][i] / max(1, n_frames - 1))
        ax.plot(ev["x_nm"][i], ev["y_nm"][i], SITE_MARKERS.get(str(ev["site"][i]), "o"), ms=9, mfc="none", mec=c,
                mew=2)
        ax.annotate(str(ev["event_id"][i]), (ev["x_nm"][i], ev["y_nm"][i]), xytext=(5, 5), textcoords="offset points",
                    fontsize=7, color="k")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.set_title(f"{len(ev)} events on the boundary-behaviour map (orange: electrode interface; colour of a marker: "
                 "first frame)", fontsize=8)
    _boundary_legend(ax, sites)
    return _save(fig, path)


class _BoundaryPairs:
    """Adapter: SiteMap edge midpoints → the ``pairs`` layout :func:`draw_segments` reads."""

    def __init__(self, sites: Any) -> None:
        s = sites.scan_step_nm
        mx, my = sites.edge_xy[:, 0] / s, sites.edge_xy[:, 1] / s
        vertical = np.abs(mx - np.rint(mx)) > 0.25  # midpoint between two columns -> vertical edge
        self.pairs = {
            "row_a": np.where(vertical, my, my - 0.5), "row_b": np.where(vertical, my, my + 0.5),
            "col_a": np.where(vertical, mx - 0.5, mx), "col_b": np.where(vertical, mx + 0.5, mx),
            "segment_id": sites.edge_segment,
        }


def plot_montage(result: Any, sites: Any, *, n_max: int = 8, path: str | os.PathLike | None = None) -> Figure:
    """Differential images of up to ``n_max`` frames (evenly chosen) in the map frame, the boundaries overlaid and
    the events found so far circled."""
    n = len(result.times)
    idx = np.unique(np.linspace(1, n - 1, min(n_max, n - 1)).astype(int))
    ncol = min(4, len(idx))
    nrow = int(np.ceil(len(idx) / ncol))
    fig = Figure(figsize=(3.2 * ncol, 3.0 * nrow + 0.4))
    d = result.differential[idx]
    lim = float(np.nanpercentile(np.abs(d[:, result.region]), 99.5)) if np.any(result.region) else 1.0
    H, W = result.differential.shape[1:]
    t = result.transform
    ev = result.events
    for k, fi in enumerate(idx):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        img = np.where(result.region, result.differential[fi], np.nan)
        if abs(t.rotation_deg) < 1e-9:
            (xa, xb), (ya, yb) = t.to_map(np.array([-0.5, -0.5]), np.array([-0.5, W - 0.5]))[0], \
                t.to_map(np.array([-0.5, H - 0.5]), np.array([-0.5, -0.5]))[1]
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=(xa, xb, yb, ya), interpolation="nearest")
        else:  # rotated frame: show it on its own pixel grid transformed point-wise
            rr, cc = np.mgrid[0:H, 0:W]
            x, y = t.to_map(rr, cc)
            ax.pcolormesh(x, y, img, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
        draw_segments(ax, _BoundaryPairs(sites), sites.scan_step_nm, color="k", lw=0.6)
        seen = np.asarray(ev["first_frame"]) <= fi
        ax.plot(np.asarray(ev["x_nm"])[seen], np.asarray(ev["y_nm"])[seen], "o", ms=10, mfc="none", mec="#ff7f0e",
                mew=1.2)
        x0, x1, y0, y1 = sites.extent_nm
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_title(f"frame {fi} (t = {result.times[fi]:g}) − frame 0", fontsize=8)
        ax.tick_params(labelsize=6)
        if k // ncol == nrow - 1 or k + ncol >= len(idx):  # the lowest panel of its column
            ax.set_xlabel("x (nm)", fontsize=7)
        if k % ncol == 0:
            ax.set_ylabel("y (nm)", fontsize=7)
    fig.suptitle("differential images (red brighter, blue darker than frame 0); boundaries black, events orange",
                 fontsize=8)
    return _save(fig, path)


def plot_enrichment(table: Any, *, path: str | os.PathLike | None = None) -> Figure:
    """Observed vs expected (uniform along boundary length) events per label and per behaviour, with the
    binomial p-value over each bar; a third panel for the electrode interface per conduction-plane class when the
    table has ``interface`` rows."""
    present = set(np.asarray(table["level"]).astype(str).tolist())
    levels = [lv for lv in ("label", "behaviour", "interface") if lv in present or lv != "interface"]
    fig = Figure(figsize=(5 * len(levels), 4))
    for k, level in enumerate(levels):
        ax = fig.add_subplot(1, len(levels), k + 1)
        m = np.asarray(table["level"]).astype(str) == level
        names = np.asarray(table["name"]).astype(str)[m]
        obs = np.asarray(table["observed"], float)[m]
        exp = np.asarray(table["expected"], float)[m]
        p = np.asarray(table["p_value"], float)[m]
        xs = np.arange(len(names))
        ax.bar(xs - 0.2, obs, 0.4, label="observed", color="#d62728")
        ax.bar(xs + 0.2, exp, 0.4, label="expected (uniform along length)", color="#7f7f7f")
        top = max([1.0, *obs.tolist(), *[v for v in exp.tolist() if np.isfinite(v)]])
        for x, o, e, pv in zip(xs, obs, exp, p):
            if np.isfinite(pv):
                ax.text(x, max(o, e if np.isfinite(e) else 0) + 0.03 * top, f"p={pv:.2g}", ha="center", fontsize=7)
        ax.set_ylim(0, 1.15 * top)
        if not np.nansum(obs):  # empty bars read as a broken figure
            where = "at the electrode interface" if level == "interface" else "on a classified boundary"
            ax.text(0.5, 0.5, f"no event {where}:\nnothing to compare", transform=ax.transAxes, ha="center",
                    va="center", fontsize=9)
        ax.set_xticks(xs, names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("events at the electrode interface" if level == "interface" else "events on boundaries")
        ax.set_title("interface, per conduction-plane class" if level == "interface" else f"per {level}", fontsize=9)
        if k == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
