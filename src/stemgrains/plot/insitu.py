"""Figures of an in-situ series: event sites on the boundary-behaviour map, a time-lapse montage of the
differential images with the boundaries overlaid, and the enrichment chart."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .classification import BEHAVIOUR_COLORS as _CLASSIFICATION_COLORS
from .virtual import _save, draw_segments

__all__ = ["plot_event_sites", "plot_montage", "plot_enrichment", "BEHAVIOUR_COLORS", "SITE_MARKERS",
           "SITE_NAMES"]

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


def _frame_colours(n_frames: int) -> tuple[Any, Any]:
    """(colour map, norm) of an event's first frame: one viridis colour per frame 1 … ``n_frames − 1`` (frame 0 is
    the reference)."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm

    k = max(1, n_frames - 1)
    return colormaps["viridis"].resampled(k), BoundaryNorm(np.arange(0.5, k + 1.0), k)


#: how the key of :func:`plot_event_sites` names each site kind (``SITE_MARKERS``)
SITE_NAMES = {"boundary": "on a boundary", "triple_junction": "at a triple junction", "interior": "in a grain interior",
              "interface": "at the electrode interface", "edge": "at the map's edge"}
_HEADERS = ("boundaries (behaviour)", "events (number: event id)")


def _imaged_outline(ax: Any, result: Any, sites: Any) -> bool:
    """Dashed outline of the analysed region (frame 0's pixels valid in every frame, on the map) on the map axes
    ``ax``, where it lies inside the map (frames that show part of it): the rest of the map was never looked at.
    Returns whether it was drawn."""
    from scipy import ndimage

    region = np.asarray(getattr(result, "region", None) if result is not None else None)
    transform = getattr(result, "transform", None)
    if region.ndim != 2 or transform is None or not region.any():
        return False
    rim = region & ~ndimage.binary_erosion(region, border_value=0)
    rr, cc = np.nonzero(rim)
    x, y = transform.to_map(rr, cc)
    x0, x1, y0, y1 = sites.extent_nm
    s = sites.scan_step_nm
    if not np.any((x > x0 + s) & (x < x1 - s) & (y > y0 + s) & (y < y1 - s)):
        return False  # the frames cover the whole map: the outline would be its border
    gr, gc = np.mgrid[-1 : region.shape[0] + 1, -1 : region.shape[1] + 1]  # padded: the outline closes at the frame's edge
    X, Y = transform.to_map(gr, gc)
    ax.contour(X, Y, np.pad(region, 1).astype(float), levels=[0.5], colors="k", linestyles="--", linewidths=1.0)
    return True


def _sites_key(ax: Any, sites: Any, ev: Any, wide: bool, outline: bool = False) -> Any:
    """The legend of :func:`plot_event_sites` in the (blank) axes ``ax``: the boundaries' behaviour colours and the
    electrode interface, then the marker of each site kind present and the contrast sign (open: brighter, filled:
    darker than frame 0), each part under a bold header; ``wide``: the two parts side by side."""
    from matplotlib.lines import Line2D

    def header(text: str) -> Any:
        return Line2D([], [], ls="", label=text)

    present = sorted(set(np.asarray(sites.segments["behaviour"]).astype(str).tolist()))
    lines = [header(_HEADERS[0])]
    lines += [Line2D([], [], color=BEHAVIOUR_COLORS.get(b, "k"), lw=2, label=b or "unclassified") for b in present]
    if sites.interface:
        lines.append(Line2D([], [], color="#ff7f0e", lw=5, label="electrode interface"))
    if outline:
        lines.append(Line2D([], [], color="k", ls="--", lw=1.0, label="area the frames show"))
    marks = []
    if len(ev):
        kinds = set(np.asarray(ev["site"]).astype(str).tolist())
        marks = [header(_HEADERS[1])]
        marks += [Line2D([], [], ls="", marker=m, mfc="none", mec="k", mew=1.5, label=SITE_NAMES[s])
                  for s, m in SITE_MARKERS.items() if s in kinds]
        marks += [Line2D([], [], ls="", marker="o", mfc="none", mec="0.3", mew=1.5, label="open: brighter than frame 0"),
                  Line2D([], [], ls="", marker="o", mfc="0.3", mec="0.3", mew=1.5, label="filled: darker than frame 0")]
    if wide and marks:  # one part a column (a legend fills its columns in turn)
        lines += [header("")] * (len(marks) - len(lines))
        marks += [header("")] * (len(lines) - len(marks))
    handles = lines + marks
    legend = ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, ncol=2 if wide and marks else 1,
                       borderaxespad=0.0, handlelength=1.8, columnspacing=2.5)
    for h, text in zip(handles, legend.get_texts()):
        if h.get_label() in _HEADERS:
            text.set_fontweight("bold")
    ax.axis("off")
    return legend


def _sites_layout(sites: Any) -> tuple[Figure, Any, Any, Any, Any]:
    """Figure, map axes, key axes, the colour bar's (blank) axes and the gridspec of the key and the bar (the side
    column's; of the whole figure for a wide map) of :func:`plot_event_sites`, sized to the map's aspect: a wide map (:func:`._layout.is_wide`) spans the
    figure, its key and colour bar side by side under it; any other stands beside a column holding the key over the
    colour bar."""
    from ._layout import is_wide

    x0, x1, y0, y1 = sites.extent_nm
    aspect = (y1 - y0) / max(x1 - x0, 1e-9)
    if is_wide((aspect, 1.0)):
        width = 9.5
        map_in = max(0.3, (width - 1.0) * aspect) + 0.8
        fig = Figure(figsize=(width, map_in + _BAR_IN + 0.3), layout="constrained")
        gs = fig.add_gridspec(2, 2, height_ratios=(map_in, _BAR_IN), width_ratios=(6.5, 3.0))
        return fig, fig.add_subplot(gs[0, :]), fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1]), gs
    map_w = 5.5
    height = min(9.0, max(3.6, map_w * aspect)) + 0.8
    fig = Figure(figsize=(map_w + 2.8, height), layout="constrained")
    gs = fig.add_gridspec(1, 2, width_ratios=(map_w, 2.8))
    side = gs[0, 1].subgridspec(3, 1, height_ratios=(1.0, _BAR_IN, max(0.1, height - 1.0 - _BAR_IN)), hspace=0.0)
    return fig, fig.add_subplot(gs[0, 0]), fig.add_subplot(side[0]), fig.add_subplot(side[1]), side


#: inches of the first-frame colour bar with its labels above (time) and below (frame)
_BAR_IN = 0.95


def _first_frame_bar(fig: Figure, holder: Any, cmap: Any, norm: Any, times: np.ndarray) -> Any:
    """The horizontal colour bar of the events' first frame inside the blank axes ``holder`` (at most 2.4 in wide,
    0.12 in thick, under the room for its time axis), the frames below, their times above when they are not the
    frame indices. Draws the figure."""
    from matplotlib.cm import ScalarMappable

    fig.draw_without_rendering()
    holder.axis("off")
    w, h = holder.get_position().width * fig.get_figwidth(), holder.get_position().height * fig.get_figheight()
    cax = holder.inset_axes([0.0, 1.0 - 0.5 / h, min(1.0, 2.4 / w), 0.12 / h])
    cbar = fig.colorbar(ScalarMappable(norm, cmap), cax=cax, orientation="horizontal")
    cbar.set_label("first frame of the event (marker colour)", fontsize=7)
    n = len(times)
    frames = np.arange(1, max(2, n))
    ticks = frames if len(frames) <= 10 else frames[:: -(-len(frames) // 8)]
    cbar.set_ticks(ticks)
    cax.tick_params(labelsize=7)
    if n > 1 and not np.allclose(times, np.arange(n)):
        # each frame's own time above its tick (a secondary axis interpolating frame → time put the labels between
        # the frames for uneven times and ran past the last one)
        top = cax.secondary_xaxis("top")
        top.set_xticks(ticks, labels=[f"{times[int(k)]:g}" for k in ticks])
        top.set_xlabel("time of that frame", fontsize=7)
        top.tick_params(labelsize=7)
    return cbar


def plot_event_sites(result: Any, sites: Any, *, path: str | os.PathLike | None = None) -> Figure:
    """Grain map (faded) with boundaries coloured by behaviour, electrode interfaces, and every event at its
    position (marker = site kind, open/filled = brighter/darker than frame 0, number = event id, colour = first
    frame), with a key and a colour bar of the first frame (and its time, when times were given)."""
    from ._layout import set_wrapped_suptitle, trim_blank

    ev = result.events
    fig, ax, key, holder, side = _sites_layout(sites)
    lab = np.ma.masked_equal(sites.labels, 0)
    ax.imshow(lab, cmap="Pastel1", extent=_map_extent(sites), interpolation="nearest", alpha=0.6)
    draw_segments(ax, _BoundaryPairs(sites), sites.scan_step_nm, color=_segment_color(sites), lw=1.6)
    x0, x1, y0, y1 = sites.extent_nm
    edges = {"left": ([x0, x0], [y0, y1]), "right": ([x1, x1], [y0, y1]), "top": ([x0, x1], [y0, y0]),
             "bottom": ([x0, x1], [y1, y1])}
    for e in sites.interface:
        ax.plot(*edges[e], color="#ff7f0e", lw=5, solid_capstyle="butt")
    outline = _imaged_outline(ax, result, sites)
    cmap, norm = _frame_colours(len(result.times))
    for i in range(len(ev)):
        c = cmap(norm(ev["first_frame"][i]))
        ax.plot(ev["x_nm"][i], ev["y_nm"][i], SITE_MARKERS.get(str(ev["site"][i]), "o"), ms=9, mec=c, mew=2,
                mfc=c if float(ev["contrast"][i]) < 0 else "none")
        ax.annotate(str(ev["event_id"][i]), (ev["x_nm"][i], ev["y_nm"][i]), xytext=(5, 5), textcoords="offset points",
                    fontsize=7, color="k")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    set_wrapped_suptitle(fig, f"{len(ev)} event{'' if len(ev) == 1 else 's'} on the boundary-behaviour map", 9)
    wide = side.ncols == 2  # (the side column's gridspec has one column)
    legend = _sites_key(key, sites, ev, wide, outline)
    fig.draw_without_rendering()
    key_in = legend.get_window_extent().height / fig.dpi + 0.1
    if wide:  # the key's row as tall as the key (or the bar) needs
        row = max(_BAR_IN, key_in)
        fig.set_figheight(fig.get_figheight() + row - side.get_height_ratios()[1])
        side.set_height_ratios((side.get_height_ratios()[0], row))
    else:  # the colour bar right under the key (its height as drawn)
        side.set_height_ratios((key_in, _BAR_IN, max(0.1, fig.get_figheight() - key_in - _BAR_IN)))
    if len(ev):
        _first_frame_bar(fig, holder, cmap, norm, np.asarray(result.times, float))
    else:
        holder.axis("off")
    if wide:  # as tall as the map and its key need
        trim_blank(fig, ax, "y", min_in=2.0)
    else:  # the key beside a tall map, not inches away
        trim_blank(fig, ax, "x", min_in=3.0, gridspec=ax.get_subplotspec().get_gridspec())
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


def _montage_grid(n_panels: int, aspect: float) -> tuple[int, int, float, float]:
    """(columns, rows, panel width, panel height) in inches of :func:`plot_montage`: panels of about 7 in² at the
    map's ``aspect`` (height / width; at most 5.5 in wide, 4.5 in tall), as many columns as 14 in hold, the rows
    then filled evenly (6 panels: 2 rows of 3, not 4 and 2)."""
    pw = min(5.5, float(np.sqrt(7.0 / aspect)))
    ph = min(4.5, pw * aspect)
    pw = ph / aspect
    ncol = max(1, min(n_panels, int(14.0 // (pw + 0.7))))
    nrow = -(-n_panels // ncol)
    return -(-n_panels // nrow), nrow, pw, ph


def _reference_level(result: Any) -> float:
    """The level the events' contrast is relative to: the median of frame 0 over the searched region."""
    level = (result.parameters or {}).get("reference_level")
    if level is None:
        level = float(np.nanmedian(result.registered[0][result.region])) if np.any(result.region) else 1.0
    return float(level) or 1.0


def _differential_bar(fig: Figure, axes: list[Any], mappable: Any, level: float, width_in: float) -> Any:
    """The one colour bar of the montage's differential images, under the panels: the intensity difference in the
    frames' units below, the same relative to frame 0's median level (the scale of events.csv ``contrast``)
    above."""
    from ._layout import wrap_text

    shrink = min(0.8, 4.5 / width_in)
    cbar = fig.colorbar(mappable, ax=axes, location="bottom", shrink=shrink, aspect=35, pad=0.02, extend="both")
    room = max(shrink, 0.9) * width_in  # the labels wrapped to the figure's width (a narrow one cut them)
    cbar.set_label(wrap_text("frame − frame 0 (intensity, in the frames' units)", room, 8), fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    rel = cbar.ax.secondary_xaxis("top", functions=(lambda d: d / level, lambda r: r * level))
    rel.set_xlabel(wrap_text(f"(frame − frame 0) / {level:.3g} (frame 0's median): relative, as events.csv contrast",
                             room, 8), fontsize=8)
    rel.tick_params(labelsize=7)
    return cbar


def plot_montage(result: Any, sites: Any, *, n_max: int = 8, path: str | os.PathLike | None = None) -> Figure:
    """Differential images (frame − frame 0) of up to ``n_max`` frames (evenly chosen) in the map frame, panels
    sized to the map's aspect, the boundaries overlaid and the events found so far circled; one colour bar under
    them in the frames' intensity units and relative to frame 0's median level."""
    from ._layout import set_wrapped_suptitle

    n = len(result.times)
    idx = np.unique(np.linspace(1, n - 1, min(n_max, n - 1)).astype(int))
    x0, x1, y0, y1 = sites.extent_nm
    ncol, nrow, pw, ph = _montage_grid(len(idx), (y1 - y0) / max(x1 - x0, 1e-9))
    narrow = pw < 2.2  # the panel's title in two lines
    width = max(3.0, ncol * (pw + 0.7) + 0.3)
    fig = Figure(figsize=(width, nrow * (ph + (1.0 if narrow else 0.8)) + 1.6), layout="constrained")
    d = result.differential[idx]
    lim = float(np.nanpercentile(np.abs(d[:, result.region]), 99.5)) if np.any(result.region) else 1.0
    lim = lim if np.isfinite(lim) and lim > 0 else 1.0
    H, W = result.differential.shape[1:]
    t = result.transform
    ev = result.events
    axes, im = [], None
    for k, fi in enumerate(idx):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        axes.append(ax)
        img = np.where(result.region, result.differential[fi], np.nan)
        if abs(t.rotation_deg) < 1e-9:
            (xa, xb), (ya, yb) = t.to_map(np.array([-0.5, -0.5]), np.array([-0.5, W - 0.5]))[0], \
                t.to_map(np.array([-0.5, H - 0.5]), np.array([-0.5, -0.5]))[1]
            im = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=(xa, xb, yb, ya), interpolation="nearest")
        else:  # rotated frame: show it on its own pixel grid transformed point-wise
            rr, cc = np.mgrid[0:H, 0:W]
            x, y = t.to_map(rr, cc)
            im = ax.pcolormesh(x, y, img, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
        draw_segments(ax, _BoundaryPairs(sites), sites.scan_step_nm, color="k", lw=0.6)
        seen = np.asarray(ev["first_frame"]) <= fi
        ax.plot(np.asarray(ev["x_nm"])[seen], np.asarray(ev["y_nm"])[seen], "o", ms=10, mfc="none", mec="#ff7f0e",
                mew=1.2)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_aspect("equal")
        ax.set_title(f"frame {fi} − frame 0\nt = {result.times[fi]:g}" if narrow else
                     f"frame {fi} (t = {result.times[fi]:g}) − frame 0", fontsize=8)
        ax.tick_params(labelsize=6)
        if k // ncol == nrow - 1 or k + ncol >= len(idx):  # the lowest panel of its column
            ax.set_xlabel("x (nm)", fontsize=7)
        if k % ncol == 0:
            ax.set_ylabel("y (nm)", fontsize=7)
    _differential_bar(fig, axes, im, _reference_level(result), width)
    shown = (f"; {len(idx)} of the {n - 1} frames shown (events.csv has every frame's events)"
             if len(idx) < n - 1 else "")
    set_wrapped_suptitle(fig, "differential images, each frame − frame 0 (red brighter, blue darker); boundaries "
                         f"black, events found by that frame circled orange{shown}", fontsize=8)
    _fit_panels(fig, axes[0])
    return _save(fig, path)


def _fit_panels(fig: Figure, ax: Any, steps: int = 8) -> None:
    """Cut the figure's height by the blank the constrained layout leaves above and below a fixed-aspect panel like
    ``ax`` in its slot (a wide map's panels stood in blank rows): the least height at which the panel still fills
    its slot's width, by bisection (the margins move as the figure shrinks). Draws the figure."""

    def blank() -> tuple[float, float]:
        fig.draw_without_rendering()  # twice: a layout starts from the last one's positions
        fig.draw_without_rendering()
        w, h = fig.get_size_inches()
        slot, image = ax.get_position(original=True), ax.get_position()
        return (slot.width - image.width) * w, (slot.height - image.height) * h

    h0 = fig.get_figheight()
    bx, by = blank()
    if by < 0.03 or bx >= 0.03:  # no blank row, or the panel already narrower than its slot
        return
    lo, hi = max(1.0, h0 - by * 1.5 * len(fig.axes)), h0  # too short at lo (or the least), fills at hi
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        fig.set_figheight(mid)
        bx, by = blank()
        if bx >= 0.03:
            lo = mid
        else:
            hi = mid
            if by < 0.03:
                break
    fig.set_figheight(hi)
    blank()


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
