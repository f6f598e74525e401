"""Figures of the conduction-plane grain-boundary classification (docs/classification.md).

* grain colours: the project's one IPF key (:mod:`stemgrains.plot.colors`: orix ``IPFColorKeyTSL``, sample
  direction z, the grain phase's Laue group), re-exported here as :func:`grain_ipf_colors`.
* :func:`plot_grain_traces` — IPF-coloured grain map with each grain's conduction-plane trace as a bar.
* :func:`plot_boundary_behaviour` — boundary segments coloured by behaviour on a faint grain map, field arrow.
* :func:`plot_boundary_table` — a boundary table figure (ids, grains, misorientations, label, behaviour).

Every function returns a :class:`matplotlib.figure.Figure` (Agg, no pyplot state) and saves a PNG when
``path`` is given. Maps are drawn in the sample frame: x to the right, y down, axes in nm.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..crystal.symmetry import c_axis_angles
from ..io.results import atomic_savefig
from .. import config
from ..errors import InputError, ParameterError
from ._layout import is_tall, tidy_short_axes, trim_blank, wrap_text
from .colors import NO_ORIENTATION_RGB, draw_ipf_keys, grain_ipf_colors, ipf_key_image

__all__ = [
    "BEHAVIOUR_COLORS",
    "grain_ipf_colors",
    "ipf_key_image",
    "plot_grain_traces",
    "plot_boundary_behaviour",
    "plot_boundary_table",
]

#: Behaviour → colour, as in the published schematic (blocking red, transmitting black, parallel cyan).
BEHAVIOUR_COLORS = {
    "blocking": "#e41a1c",
    "transmitting": "#000000",
    "parallel": "#00bcd4",
    "depleting": "#6a3d9a",
    "other-phase": "#9e9e9e",
}
_BEHAVIOUR_TEXT = {
    "blocking": "blocking: Na⁺ piles up",
    "transmitting": "transmitting",
    "parallel": "parallel: no flow across",
    "depleting": "depleting: Na⁺ drawn away",
    "other-phase": "other phase",
}
_UNASSIGNED_RGB = (1.0, 1.0, 1.0)
_NO_ORIENTATION_RGB = NO_ORIENTATION_RGB


def _phase_items(phases: Any) -> list[tuple[int, Any]]:
    from orix.crystal_map import Phase, PhaseList

    if isinstance(phases, Phase):
        phases = PhaseList(phases)
    return [(int(i), p) for i, p in phases if int(i) >= 0]


def _grain_image(grain_map: Any, colors: np.ndarray, fade: float = 0.0) -> np.ndarray:
    """``(ny, nx, 3)`` RGB image of grain colours (unassigned white), blended toward white by ``fade``."""
    labels = np.asarray(grain_map.labels)
    lut = np.tile(np.array(_UNASSIGNED_RGB), (int(labels.max(initial=0)) + 1, 1))
    ids = np.asarray(grain_map.table["id"]).astype(np.int64)
    lut[ids] = colors
    img = lut[np.clip(labels, 0, None)]
    return (1.0 - fade) * img + fade * 1.0


def _label_edges(labels: np.ndarray, scan_step_nm: float) -> np.ndarray:
    """Pixel edges between different labels as line pieces ``(k, 2, 2)`` of (x, y) in nm."""
    labels = np.asarray(labels)
    r, c = np.nonzero(labels[:, :-1] != labels[:, 1:])  # vertical edges at x = c + 0.5
    vert = np.stack([np.stack([c + 0.5, r - 0.5], 1), np.stack([c + 0.5, r + 0.5], 1)], 1)
    r, c = np.nonzero(labels[:-1, :] != labels[1:, :])  # horizontal edges at y = r + 0.5
    horiz = np.stack([np.stack([c - 0.5, r + 0.5], 1), np.stack([c + 0.5, r + 0.5], 1)], 1)
    return np.concatenate([vert, horiz]).astype(np.float64) * scan_step_nm


def _extent(grain_map: Any) -> tuple[float, float, float, float]:
    ny, nx = grain_map.labels.shape
    s = float(grain_map.scan_step_nm)
    return (-0.5 * s, (nx - 0.5) * s, (ny - 0.5) * s, -0.5 * s)


def _frame_map(ax: Any, grain_map: Any, title: str) -> None:
    """The map axes' limits (the whole scan, y down), x/y labels in nm and title (over a tall map wrapped to about
    3 in: its column is no narrower than its title, and the key beside it stood an inch away)."""
    ext = _extent(grain_map)
    ax.set_xlim(ext[:2])
    ax.set_ylim(ext[2:])
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.set_title(wrap_text(title, 3.0, ax.title.get_fontsize()) if is_tall(grain_map.labels.shape) else title)


def _new_figure(grain_map: Any, map_w_in: float, side_in: float, extra_h_in: float) -> tuple[Figure, Any]:
    """Figure sized for a map ``map_w_in`` wide (aspect kept), a side panel and room for text below."""
    ny, nx = grain_map.labels.shape
    h = min(12.0, max(3.0, map_w_in * ny / max(nx, 1))) + extra_h_in
    fig = Figure(figsize=(map_w_in + side_in, h), dpi=130, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def _finish(fig: Figure, path: str | os.PathLike | None, narrow: tuple[Any, Any] | None = None) -> Figure:
    """Tidy the short axes of ``fig`` and save it to ``path``; ``narrow=(map axes, its gridspec)``: the map's
    column first narrowed to the map (:func:`._layout.trim_blank`: beside a tall map the key stood inches away)."""
    tidy_short_axes(fig)
    if narrow is not None:
        trim_blank(fig, narrow[0], "x", min_in=4.0, gridspec=narrow[1])
    if path is not None:
        atomic_savefig(fig, path, dpi=130, bbox_inches="tight")  # legends and notes outside the axes stay in
    return fig


def _add_ipf_keys(fig: Figure, slots: list[Any], grain_map: Any) -> None:
    """IPF-z colour keys of the Laue groups of the grains present (the project's one key, plot/colors.py)."""
    pids = np.asarray(grain_map.table["phase_id"]).astype(int) if len(grain_map.table) else np.zeros(0, int)
    draw_ipf_keys(fig, slots, grain_map.phases, phase_ids=pids)


def _no_trace_note(grain_map: Any) -> str:
    """Why :func:`plot_grain_traces` drew no trace: no grain at all (a map smaller than ``min_grain_size``), or no
    grain of a phase with conduction planes (e.g. cubic)."""
    if len(grain_map.table):
        return "No grain of a phase with\nconduction planes (a c-axis):\nno traces drawn."
    min_px = grain_map.parameters.get("min_grain_size")
    return "No grain" + (f" of at least\n{min_px} pixels (min_grain_size)" if min_px else "") + ":\nno traces drawn."


def plot_grain_traces(
    grain_map: Any,
    *,
    flat_tolerance_deg: float = config.FLAT_TOLERANCE_DEG,
    length_scale: str = "cos_alpha",
    min_length_fraction: float = 0.2,
    show_ids: bool = True,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """IPF-z coloured grain map with each grain's conduction-plane trace drawn as a bar at its centroid (grey where
    the grain's ``median_c_axis_reliability`` is below ``config.C_AXIS_RELIABILITY_CUT``: the c axis is ambiguous).

    Parameters
    ----------
    grain_map
        :class:`~stemgrains.grains.GrainMap` (table columns ``id``, ``phase_id``, ``centroid_row``,
        ``centroid_col``, ``c_axis``; ``mean_quaternion`` for the colours).
    flat_tolerance_deg
        Grains with alpha below this (degrees) are flat: no trace; drawn as a hollow circle.
    length_scale
        ``"cos_alpha"`` (default, as asked in issue 5: the bar grows as the planes lie flatter in the lamella)
        or ``"sin_alpha"`` (the bar grows with the in-plane anisotropy, longest for edge-on planes). The bar
        length is ``L_max · max(weight, min_length_fraction)``, with ``L_max`` the same for every grain.
    min_length_fraction
        Shortest bar as a fraction of ``L_max`` (so every defined trace stays visible), in [0, 1].
    show_ids
        Write each grain's id next to its centroid.
    title
        Axes title; a default is used when None.
    path
        Save the figure there as PNG.
    """
    if length_scale not in ("cos_alpha", "sin_alpha"):
        raise ParameterError(f"length_scale must be 'cos_alpha' or 'sin_alpha', got {length_scale!r}")
    if not (0.0 <= float(min_length_fraction) <= 1.0):
        raise ParameterError(f"min_length_fraction must be in [0, 1], got {min_length_fraction!r}")
    table = grain_map.table
    for col in ("id", "phase_id", "centroid_row", "centroid_col", "c_axis"):
        if col not in table:
            raise InputError(f"grain_map.table lacks column {col!r}")
    s = float(grain_map.scan_step_nm)
    ny, nx = grain_map.labels.shape
    map_w, side_w = 6.0, 2.2
    fig = Figure(figsize=(map_w + side_w, min(12.0, max(4.0, map_w * ny / max(nx, 1))) + 0.6), dpi=130,
                 layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(map_w, side_w))
    ax = fig.add_subplot(gs[:, 0])
    ax.imshow(_grain_image(grain_map, grain_ipf_colors(grain_map)), extent=_extent(grain_map),
              interpolation="nearest")
    ax.add_collection(LineCollection(_label_edges(grain_map.labels, s), colors="0.15", linewidths=0.8, zorder=2))

    n = len(table)
    c = np.asarray(table["c_axis"], dtype=np.float64).reshape(n, 3)
    has_c = np.all(np.isfinite(c), axis=1) & (np.abs(c).sum(axis=1) > 0)
    c_unit = np.where(has_c[:, None], c, [0.0, 0.0, 1.0])
    c_unit = c_unit / np.linalg.norm(c_unit, axis=1, keepdims=True)
    alpha = c_axis_angles(c_unit)[0]
    flat = has_c & (alpha < flat_tolerance_deg)
    traced = has_c & ~flat
    x = np.asarray(table["centroid_col"], dtype=np.float64) * s
    y = np.asarray(table["centroid_row"], dtype=np.float64) * s

    area = np.asarray(table["area_px"], dtype=np.float64) if "area_px" in table else np.bincount(
        np.asarray(grain_map.labels).ravel(), minlength=int(np.max(table["id"], initial=0)) + 1
    )[np.asarray(table["id"]).astype(int)]
    diam_px = 2.0 * np.sqrt(np.maximum(area, 1.0) / np.pi)
    l_max = s * min(0.6 * float(np.median(diam_px[has_c])) if has_c.any() else 10.0, 0.15 * max(ny, nx))
    weight = np.cos(np.radians(alpha)) if length_scale == "cos_alpha" else np.sin(np.radians(alpha))
    half = 0.5 * l_max * np.maximum(weight, min_length_fraction)
    d = np.stack([-c_unit[:, 1], c_unit[:, 0]], axis=1)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
    seg = np.stack([np.stack([x - half * d[:, 0], y - half * d[:, 1]], 1),
                    np.stack([x + half * d[:, 0], y + half * d[:, 1]], 1)], axis=1)[traced]
    lw = 3.0
    rel_c = (np.asarray(table["median_c_axis_reliability"], dtype=np.float64) if "median_c_axis_reliability" in table
             else np.full(n, np.nan))
    uncertain = rel_c < config.C_AXIS_RELIABILITY_CUT  # NaN (no such column, cubic): not judged
    ink = np.where(uncertain[:, None], [0.6, 0.6, 0.6, 1.0], [0.0, 0.0, 0.0, 1.0])
    ax.add_collection(LineCollection(seg, colors="white", linewidths=lw + 2.5, capstyle="round", zorder=3))
    ax.add_collection(LineCollection(seg, colors=ink[traced], linewidths=lw, capstyle="round", zorder=4))
    ax.scatter(x[flat], y[flat], s=70, facecolors="white", edgecolors=ink[flat], linewidths=1.8, zorder=5)
    if show_ids:
        # the id sits beside the bar, offset along the trace normal (display y points up, the map's y down)
        nrm = np.stack([d[:, 1], -d[:, 0]], axis=1)
        nrm = np.where(traced[:, None], nrm, [0.7071, -0.7071])
        strip = ny <= 2  # a line scan: beside the bar the id stood half off the strip; it stands above it
        for gid, xi, yi, (ox, oy) in zip(np.asarray(table["id"]).tolist(), x.tolist(), y.tolist(), nrm.tolist()):
            ax.annotate(str(gid), (xi, -0.5 * s) if strip else (xi, yi), xytext=(0, 4) if strip else (9 * ox, -9 * oy),
                        textcoords="offset points", fontsize=7, ha="center", va="bottom" if strip else "center",
                        color="black", zorder=6, annotation_clip=False,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.6))
    _frame_map(ax, grain_map, title or ("Grains (IPF-z) and conduction-plane traces" if has_c.any()
                                        else "Grains (IPF-z): no grains" if not n
                                        else "Grains (IPF-z): no conduction planes"))
    if show_ids and ny <= 2:
        ax.set_title(ax.get_title(), pad=16)  # room for the ids above the strip
    side = fig.add_subplot(gs[1, 1])
    side.set_axis_off()
    _add_ipf_keys(fig, [gs[0, 1]], grain_map)  # one key per Laue group, stacked in the slot
    if not has_c.any():  # e.g. a cubic phase, or no grain at all (a map smaller than min_grain_size): no trace
        side.text(0.0, 1.0, _no_trace_note(grain_map), transform=side.transAxes, ha="left", va="top", fontsize=7.5)
        return _finish(fig, path, (ax, gs))
    weight_txt = "cos α" if length_scale == "cos_alpha" else "sin α"
    handles = [
        Line2D([], [], color="black", lw=lw, solid_capstyle="round",
               label=f"conduction-plane trace,\nlength ∝ {weight_txt}"),
        Line2D([], [], ls="none", marker="o", ms=8, mfc="white", mec="black", mew=1.8,
               label=f"flat grain (α < {flat_tolerance_deg:g}°):\ntrace undefined"),
    ]
    if uncertain.any():
        handles.append(Line2D([], [], color="0.6", lw=lw, solid_capstyle="round",
                              label=f"grey: c axis ambiguous (median\nc-axis reliability < {config.C_AXIS_RELIABILITY_CUT:g})"))
    # legend and notes in the side column under the key: nothing below the map can collide with its x label
    side.legend(handles=handles, loc="upper left", fontsize=7.5, frameon=False)
    flat_side = "flatter in the lamella" if length_scale == "cos_alpha" else "closer to edge-on"
    side.text(0.0, 0.45 - 0.13 * bool(uncertain.any()), "α: angle between the conduction\nplanes and the lamella surface\n(90° = edge-on, 0° = flat).\n"
              f"Bars grow as the planes lie\n{flat_side}; the shortest bar\nis {min_length_fraction:g} × the longest.",
              transform=side.transAxes, ha="left", va="top", fontsize=7)
    return _finish(fig, path, (ax, gs))


def _segment_lines(boundaries: Any, scan_step_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Line pieces (k, 2, 2) in nm and their segment ids: pixel edges from ``pairs``, else start–end lines."""
    pairs = boundaries.pairs
    if pairs is not None and len(pairs) and all(k in pairs for k in ("row_a", "col_a", "row_b", "col_b", "segment_id")):
        ra, ca = np.asarray(pairs["row_a"], float), np.asarray(pairs["col_a"], float)
        rb, cb = np.asarray(pairs["row_b"], float), np.asarray(pairs["col_b"], float)
        mr, mc = 0.5 * (ra + rb), 0.5 * (ca + cb)
        horizontal_pair = ra == rb  # neighbours in the same row: the edge between them is vertical
        dx = np.where(horizontal_pair, 0.0, 0.5)
        dy = np.where(horizontal_pair, 0.5, 0.0)
        lines = np.stack([np.stack([mc - dx, mr - dy], 1), np.stack([mc + dx, mr + dy], 1)], 1)
        return lines * scan_step_nm, np.asarray(pairs["segment_id"]).astype(np.int64)
    segs = boundaries.segments
    if not len(segs) or "start" not in segs or "end" not in segs:
        return np.zeros((0, 2, 2)), np.zeros(0, dtype=np.int64)
    lines = np.stack([np.asarray(segs["start"], float), np.asarray(segs["end"], float)], axis=1)
    return lines * scan_step_nm, np.asarray(segs["segment_id"]).astype(np.int64)


def plot_boundary_behaviour(
    grain_map: Any,
    boundaries: Any,
    classification: Any,
    field: Any = None,
    *,
    annotate: bool = True,
    title: str | None = None,
    note: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Boundary segments coloured by their behaviour under the field, on a faint IPF grain map.

    Segments whose grains leave the c axis ambiguous (column ``c_axis_reliability`` below
    ``config.C_AXIS_RELIABILITY_CUT``, as :func:`plot_boundary_table` greys their labels) are drawn pale and thin:
    their behaviour may be wrong. A map none of whose boundaries is classified (no phase with Na⁺ conduction planes,
    e.g. Au) is drawn as such: grey boundaries, no field and no model parameters.

    Parameters
    ----------
    grain_map
        :class:`~stemgrains.grains.GrainMap`.
    boundaries
        :class:`~stemgrains.boundaries.BoundaryTable` (pixel pairs, or segment start/end points, for geometry).
    classification
        :class:`~stemgrains.boundaries.classify.BoundaryClassification` of the same boundaries.
    field
        In-plane field direction ``(x, y)`` drawn as one arrow; default: the classification's single field.
        With per-boundary or per-segment fields, each segment's field is drawn as a small arrow at its middle.
    annotate
        Write boundary ids at the middle of each boundary.
    title
        Axes title; a default is used when None.
    note
        A warning written in the key panel (e.g. that the phase fit failed), or None.
    path
        Save the figure there as PNG.
    """
    seg_cls = classification.segments
    s = float(grain_map.scan_step_nm)
    fig, ax = _new_figure(grain_map, 6.5, 3.0, 0.7)
    # the key (legend, field arrow, parameters) in a panel of its own right of the map, in that panel's
    # coordinates: anchored to the map, a wide or one-row map left it no height and they piled up
    fig.delaxes(ax)
    grid = fig.add_gridspec(1, 2, width_ratios=(6.5, 3.0))
    ax = fig.add_subplot(grid[0, 0])
    side = fig.add_subplot(grid[0, 1])
    side.axis("off")
    ax.imshow(_grain_image(grain_map, grain_ipf_colors(grain_map), fade=0.72), extent=_extent(grain_map),
              interpolation="nearest")
    lines, line_seg = _segment_lines(boundaries, s)
    sid = np.asarray(seg_cls["segment_id"]).astype(np.int64) if len(seg_cls) else np.zeros(0, np.int64)
    order = np.argsort(sid)
    pos = np.clip(np.searchsorted(sid[order], line_seg), 0, max(len(sid) - 1, 0))
    known = (len(sid) > 0) & (sid[order][pos] == line_seg) if len(sid) else np.zeros(len(line_seg), bool)

    def per_line(column: str, missing: Any) -> np.ndarray:
        if not len(sid) or column not in seg_cls:
            return np.full(len(line_seg), missing)
        return np.where(known, np.asarray(seg_cls[column])[order][pos], missing)

    line_beh = per_line("behaviour", "other-phase").astype(str)
    uncertain = per_line("c_axis_reliability", np.nan).astype(np.float64) < config.C_AXIS_RELIABILITY_CUT
    classified = bool(np.any(line_beh != "other-phase")) or bool(
        len(seg_cls) and np.any(np.asarray(seg_cls["label"]).astype(str) != "other-phase"))
    _draw_behaviour_lines(ax, grain_map, lines, line_beh, uncertain)
    placed = _annotate_boundaries(ax, seg_cls, sid, lines, line_seg) if annotate and len(lines) else np.zeros((0, 2))
    grains_named = annotate and _annotate_grains(ax, grain_map, placed)

    params = getattr(classification, "parameters", {}) or {}
    local_field = False
    if field is None and isinstance(params.get("field"), (list, tuple)):
        field = params["field"]
    if not classified:  # nothing depends on a field: draw none
        field = None
    e_unit = None
    if field is not None:
        e = np.asarray(field, dtype=np.float64).reshape(-1)
        if e.shape != (2,) or not np.all(np.isfinite(e)) or not np.any(e):
            raise InputError(f"field must be one non-zero in-plane vector (x, y), got {field!r}")
        e_unit = e / np.linalg.norm(e)
        _same_field(e_unit, params.get("field"))
    elif classified and len(seg_cls) and "field" in seg_cls:
        local_field = _local_field_arrows(ax, seg_cls, sid, lines, line_seg)

    default_title = ("No grain boundary in the map" if not len(lines)
                     else "Grain boundaries: not classified" if not classified
                     else "Grain-boundary behaviour (may be meaningless: see the note)" if note
                     else "Grain-boundary behaviour under the local transport field" if local_field
                     else "Grain-boundary behaviour under the applied field")
    _frame_map(ax, grain_map, title or default_title)
    if not np.any(np.asarray(grain_map.labels) > 0):  # an empty map says why instead of a blank panel
        ax.text(0.5, 0.5, "no grain: no pixel was indexed,\nor none passed the segmentation's cuts",
                transform=ax.transAxes, ha="center", va="center",
                fontsize=9, color="firebrick", bbox=dict(facecolor="white", edgecolor="none"))
    legend, texts = _behaviour_key(side, classification, line_beh, uncertain, local_field, classified, note,
                                   bool(np.any(np.asarray(grain_map.labels) <= 0)), grains_named)
    _below_legend(side, legend, e_unit, texts)
    return _finish(fig, path, (ax, grid))


def _same_field(e_unit: np.ndarray, classified_under: Any) -> None:
    """Refuse to draw an arrow along ``e_unit`` over a classification made under another single field
    (``classified_under``, its ``parameters["field"]``): the figure showed the arrow of one field and the colours of
    another."""
    c = np.asarray(classified_under if classified_under is not None else np.nan, dtype=np.float64).reshape(-1)
    if c.shape == (2,) and np.all(np.isfinite(c)) and np.any(c) and not np.allclose(e_unit, c / np.linalg.norm(c),
                                                                                  atol=1e-6):
        raise ParameterError(f"field {tuple(np.round(e_unit, 4))}: the classification was made under the field "
                             f"{tuple(float(v) for v in c)}; draw it with that field (or field=None), or classify again")


def _draw_behaviour_lines(ax: Any, grain_map: Any, lines: np.ndarray, line_beh: np.ndarray, uncertain: np.ndarray) -> None:
    """The segments of :func:`plot_boundary_behaviour`, coloured by behaviour (important ones on top); where the
    c axis is ambiguous, pale and thinner."""
    ny, nx = grain_map.labels.shape
    lw = float(np.clip(300.0 / max(ny, nx), 1.0, 3.0))
    for name in ("other-phase", "parallel", "transmitting", "depleting", "blocking"):  # draw important on top
        for pale in (True, False):
            sel = (line_beh == name) & (uncertain == pale)
            if sel.any():
                ax.add_collection(LineCollection(lines[sel], colors=BEHAVIOUR_COLORS[name], linewidths=lw * (0.6 if pale else 1.0),
                                                 alpha=0.35 if pale else 1.0, zorder=3,
                                                 capstyle="butt" if pale else "projecting"))  # butt: translucent ends do not overlap


def _annotate_boundaries(ax: Any, seg_cls: Any, sid: np.ndarray, lines: np.ndarray, line_seg: np.ndarray) -> np.ndarray:
    """Each boundary's id at a point on it near its middle; returns those points (k, 2) as (x, y) in nm."""
    seg_to_bnd = dict(zip(sid.tolist(), np.asarray(seg_cls["boundary_id"]).astype(int).tolist()))
    mids = lines.mean(axis=1)
    bid_of_line = np.array([seg_to_bnd.get(k, -1) for k in line_seg.tolist()])
    placed = []
    for bid in np.unique(bid_of_line[bid_of_line >= 0]).tolist():
        m = mids[bid_of_line == bid]
        centre = m.mean(axis=0)
        p = m[np.argmin(np.sum((m - centre) ** 2, axis=1))]
        ax.annotate(str(bid), p, xytext=(3, -3), textcoords="offset points", fontsize=7, zorder=6,
                    bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="0.5", lw=0.5, alpha=0.85))
        placed.append(p)
    return np.asarray(placed, dtype=np.float64).reshape(-1, 2)


#: grain ids are written on a behaviour map of at most this many grains (more would hide the boundaries)
MAX_GRAIN_LABELS = 150


def _annotate_grains(ax: Any, grain_map: Any, avoid: np.ndarray = np.zeros((0, 2))) -> bool:
    """Each grain's id (the ``grain_a``/``grain_b`` of the boundary table), italic, at its pixel farthest from
    its edge and the map's border (the distance transform of the edge map), away from the points ``avoid`` ((k, 2)
    x, y in nm: the boundary ids), the tie nearest the grain's centroid; nothing on maps of more than
    :data:`MAX_GRAIN_LABELS` grains. Returns whether ids were written."""
    from scipy import ndimage

    labels = np.asarray(grain_map.labels)
    ids = np.unique(labels[labels > 0])
    if not len(ids) or len(ids) > MAX_GRAIN_LABELS:
        return False
    padded = np.pad(labels, 1, constant_values=-1)  # the map's border is an edge too: ids stay inside
    edge = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy:dy + labels.shape[0], dx:dx + labels.shape[1]] != labels
    depth = ndimage.distance_transform_edt(~edge) + 1.0  # edge pixels 1: a one-pixel grain has its own
    s = float(grain_map.scan_step_nm)
    rows, cols = np.indices(labels.shape)
    pt_per_px = ax.bbox.width * 72.0 / ax.figure.dpi / labels.shape[1]  # a boundary id spans ~14 × 10 points
    wide, tall = int(np.ceil(16.0 / pt_per_px)), int(np.ceil(12.0 / pt_per_px))
    for x, y in np.asarray(avoid, dtype=np.float64).reshape(-1, 2) / s:  # not under a boundary id
        depth[(cols >= x - 1) & (cols <= x + wide) & (rows >= y - 1) & (rows <= y + tall)] *= 0.25
    for g in ids.tolist():
        rr, cc = np.nonzero(labels == g)
        d = depth[rr, cc]
        top = d >= d.max() - 0.5
        k = np.argmin((rr[top] - rr.mean()) ** 2 + (cc[top] - cc.mean()) ** 2)
        r, c = rr[top][k], cc[top][k]
        ax.text(c * s, r * s, str(g), fontsize=8, fontstyle="italic", color="0.15", ha="center", va="center",
                zorder=7, path_effects=[patheffects.withStroke(linewidth=2, foreground="white")])  # over boundary ids
    return True


def _below_legend(side: Any, legend: Any, e: np.ndarray | None, texts: list[tuple[str, dict[str, Any]]]) -> None:
    """The field arrow (:func:`_field_arrow`, where ``e`` is given) and the key's ``texts`` stacked under the
    ``legend`` of the key panel ``side``, in inches: placed by fractions of the panel, a tall map's panel held them
    inches apart (the arrow mid-height, the parameters at the bottom)."""
    fig = side.figure
    fig.draw_without_rendering()
    height_in = max(side.get_window_extent().height / fig.dpi, 1e-6)
    top = side.transAxes.inverted().transform((0.0, legend.get_window_extent().y0))[1] - 0.15 / height_in
    if e is not None:
        box = 0.8 / height_in
        _field_arrow(side, e, (0.05, top - 0.25 / height_in - box, 0.9 / max(side.get_window_extent().width / fig.dpi,
                                                                                    1e-6), box))
        top -= box + 0.4 / height_in
    for text, kwargs in texts:
        t = side.text(0.02, top, text, transform=side.transAxes, va="top", ha="left", **kwargs)
        fig.draw_without_rendering()
        top = side.transAxes.inverted().transform((0.0, t.get_window_extent().y0))[1] - 0.12 / height_in


def _field_arrow(side: Any, e: np.ndarray, bounds: tuple[float, float, float, float]) -> None:
    """The applied field ``e`` (unit, sample frame) as one arrow in the key panel (y flipped: image y points down),
    in an inset of the panel at ``bounds`` (x0, y0, width, height; panel fractions)."""
    key = side.inset_axes(bounds)
    key.set_xlim(-1, 1)
    key.set_ylim(-1, 1)
    key.set_aspect("equal")
    key.axis("off")
    key.annotate("", xy=(0.8 * e[0], -0.8 * e[1]), xytext=(-0.8 * e[0], 0.8 * e[1]),
                 arrowprops=dict(arrowstyle="-|>,head_width=0.45,head_length=0.9", lw=2.5, color="black"))
    key.set_title(f"field E = ({e[0]:.2g}, {e[1]:.2g})", fontsize=8)


def _local_field_arrows(ax: Any, seg_cls: Any, sid: np.ndarray, lines: np.ndarray, line_seg: np.ndarray) -> bool:
    """Each segment's own field as a small arrow at its middle; whether any was drawn."""
    mid_xy: dict[int, list[np.ndarray]] = {}
    for k, p in zip(line_seg.tolist(), lines.mean(axis=1)):
        mid_xy.setdefault(k, []).append(p)
    pts = np.array([np.mean(mid_xy[k], axis=0) if k in mid_xy else (np.nan, np.nan) for k in sid.tolist()])
    ef = np.asarray(seg_cls["field"], dtype=np.float64)
    ok = np.all(np.isfinite(pts), axis=1) & np.all(np.isfinite(ef), axis=1)
    if not ok.any():
        return False
    ax.quiver(pts[ok, 0], pts[ok, 1], ef[ok, 0], ef[ok, 1], angles="xy", color="black", zorder=5.5,
              width=0.004, scale=25, label="local field E")
    return True


def _behaviour_key(side: Any, classification: Any, line_beh: np.ndarray, uncertain: np.ndarray, local_field: bool,
                   classified: bool, note: str | None, unassigned: bool, grains_named: bool = False,
                   ) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """The key panel of :func:`plot_boundary_behaviour`: legend (length fractions), pale-segment entry, the
    ``unassigned`` pixels' colour where there are any, what the numbers on the map are; returns the legend and the
    warning note and the model's parameters as ``(text, text keywords)`` for :func:`_below_legend`."""
    summary = classification.summary() if hasattr(classification, "summary") else {}
    frac = summary.get("behaviour_fraction", {})
    present = set(line_beh.tolist()) | {k for k, v in frac.items() if v > 0}
    handles = []
    for name in ("blocking", "transmitting", "parallel", "depleting", "other-phase"):
        if name not in present:
            continue
        text = _BEHAVIOUR_TEXT[name] if classified else "not classified: no phase\nwith Na⁺ conduction planes"
        handles.append(Patch(color=BEHAVIOUR_COLORS[name], label=text + (f" ({100 * frac[name]:.0f} %)" if name in frac else "")))
    if classified and np.any(uncertain & (line_beh != "other-phase")):
        handles.append(Line2D([], [], color="0.3", alpha=0.35, lw=1.5,
                              label=f"pale: c axis ambiguous\n(c-axis reliability < {config.C_AXIS_RELIABILITY_CUT:g})"))
    if local_field:
        handles.append(Line2D([], [], ls="none", marker=r"$\rightarrow$", ms=14, color="black", label="local field E"))
    if unassigned:
        handles.append(Patch(facecolor=_UNASSIGNED_RGB, edgecolor="0.6", lw=0.5, label="no grain (unassigned pixels)"))
    if grains_named:  # the ids boundary_table.png lists: a boundary (boxed) and its grains a | b (italic)
        # no mathtext marker: it asks for the STIX fonts, and matplotlib says so on stderr where they are missing
        handles.append(Patch(visible=False, label="italic numbers: grain ids; boxed:\nboundary ids "
                                                  "(boundary_table.png)"))

    legend = side.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False,
                         title="boundary behaviour\n(% of boundary length)", title_fontsize=8, alignment="left")
    texts: list[tuple[str, dict[str, Any]]] = []  # placed under the legend (and the arrow): _below_legend
    if note:
        texts.append((note, dict(fontsize=7.5, color="#b00000", wrap=True)))
    p = getattr(classification, "parameters", {}) or {}
    if p and classified:
        texts.append((f"τ_flow = {p.get('tau_flow', '?')}, r_block = {p.get('r_block', '?')}\n"
                      f"δ = {p.get('type_tolerance_deg', '?')}°, σ_ip/σ_op = {p.get('conductivity_ratio', '?'):g}",
                      dict(fontsize=7)))
    return legend, texts


def plot_boundary_table(
    classification: Any,
    *,
    max_rows: int = 40,
    sort_by: str | None = None,
    title: str | None = None,
    note: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """A boundary table figure: id, grains, length, misorientation, transport-path misorientation, c-axis
    reliability (when the table has one: grey below ``config.C_AXIS_RELIABILITY_CUT``), label, behaviour.

    Parameters
    ----------
    classification
        :class:`~stemgrains.boundaries.classify.BoundaryClassification`.
    max_rows
        Show at most this many boundaries (the rest is counted in a footnote), >= 1.
    sort_by
        A boundary-table column to sort by (descending for ``length_nm``), or None for table order.
    title
        Figure title; a default is used when None.
    note
        A warning written under the title (e.g. that the phase fit failed), or None.
    path
        Save the figure there as PNG.
    """
    if int(max_rows) < 1:
        raise ParameterError(f"max_rows must be >= 1, got {max_rows!r}")
    b = classification.boundaries
    n = len(b)
    order = np.arange(n)
    if sort_by is not None:
        if sort_by not in b:
            raise ParameterError(f"sort_by: no column {sort_by!r} in the boundary table")
        order = np.argsort(b[sort_by], kind="stable")
        if sort_by == "length_nm":
            order = order[::-1]
    shown = order[: int(max_rows)]

    def fmt(v: Any, spec: str = "{:.0f}") -> str:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return str(v)
        return "—" if not np.isfinite(x) else spec.format(x)

    if n and not np.any(np.asarray(b["label"]).astype(str) != "other-phase"):
        return _misorientation_table(b, shown, fmt, title, path)
    rel_c = np.asarray(b["c_axis_reliability"], dtype=np.float64) if "c_axis_reliability" in b else np.full(n, np.nan)
    with_rel = bool(np.isfinite(rel_c).any())
    header = ["GB", "Grains", "Length\n(nm)", "Misorientation\n(°)", "Transport-path\nmisorientation θ₂D (°)",
              "θ₃D\n(°)", *(["c-axis\nreliability"] if with_rel else []), "Label", "Behaviour"]
    rows = []
    colours = []
    for i in shown.tolist():
        beh = str(b["behaviour"][i])
        rows.append([
            str(int(b["boundary_id"][i])),
            f"{int(b['grain_a'][i])} | {int(b['grain_b'][i])}",
            fmt(b["length_nm"][i], "{:.1f}"),
            fmt(b["misorientation_deg"][i]) if "misorientation_deg" in b else "—",
            fmt(b["theta_2d"][i]),
            fmt(b["theta_3d"][i]),
            *([fmt(rel_c[i], "{:.1f}" if rel_c[i] < 10 else "{:.0f}")] if with_rel else []),
            "—" if str(b["label"][i]) == "other-phase" else str(b["label"][i]),
            beh,
        ])
        colours.append(BEHAVIOUR_COLORS.get(beh, "#cccccc"))
    uncertain = [bool(rel_c[i] < config.C_AXIS_RELIABILITY_CUT) for i in shown.tolist()]  # NaN: not judged
    row_in, head_in, top_in, foot_in = 0.24, 0.45, (0.7 if note else 0.45), (0.55 if with_rel else 0.3)
    table_in = head_in + row_in * max(len(rows), 1)
    h = top_in + table_in + foot_in
    fig = Figure(figsize=(9.0, h), dpi=130)
    ax = fig.add_axes((0.03, foot_in / h, 0.94, table_in / h))
    ax.axis("off")
    fig.suptitle(title or "Grain boundaries: misorientation and conduction-plane classification", fontsize=10,
                 y=1.0 - 0.12 / h, va="top")
    if note:
        fig.text(0.5, 1.0 - 0.38 / h, note, fontsize=8, va="top", ha="center", color="#b00000")
    if not rows:
        ax.text(0.5, 0.5, "no boundaries", ha="center", va="center")
        return _finish(fig, path)
    tab = ax.table(cellText=rows, colLabels=header, cellLoc="center", bbox=(0.0, 0.0, 1.0, 1.0),
                   colWidths=[0.06, 0.1, 0.09, 0.14, 0.2, 0.07, *([0.09] if with_rel else []), 0.1, 0.14])
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    head_frac, row_frac = head_in / table_in, row_in / table_in
    for (r, c), cell in tab.get_celld().items():
        cell.set_edgecolor("0.75")
        cell.set_height(head_frac if r == 0 else row_frac)
        if r == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_text_props(fontweight="bold")
        elif c == len(header) - 1:
            cell.get_text().set_color("white" if colours[r - 1] not in ("#00bcd4", "#9e9e9e") else "black")
            cell.set_facecolor(colours[r - 1])
            if uncertain[r - 1]:  # a behaviour read from an uncertain label: paler, in italics
                cell.set_alpha(0.4)
                cell.get_text().set_color("black")
                cell.get_text().set_fontstyle("italic")
        elif r % 2 == 0:
            cell.set_facecolor("#f7f7f7")
        if r > 0 and uncertain[r - 1] and c < len(header) - 1 and header[c] in ("c-axis\nreliability", "Label"):
            cell.get_text().set_color("0.55")
            cell.get_text().set_fontstyle("italic")
    if n > len(rows):
        fig.text(0.03, (0.36 if with_rel else 0.1) / h, f"… {n - len(rows)} more boundaries not shown (see the CSV export)",
                 fontsize=7, va="bottom")
    foot = ("θ₂D: angle between the two grains' conduction-plane traces (—: a grain's planes lie flat in the lamella, "
            "no trace); θ₃D: between the planes")
    if with_rel:
        foot += (f"\nc-axis reliability: the less certain grain's median; below {config.C_AXIS_RELIABILITY_CUT:g} grey "
                 "label, pale behaviour (another c axis explains its patterns nearly as well: the label may be wrong)")
    fig.text(0.97, 0.1 / h, foot, fontsize=7, va="bottom", ha="right", color="0.3")
    return _finish(fig, path)


def _misorientation_table(b: dict[str, np.ndarray], shown: np.ndarray, fmt: Any, title: str | None, path: Any) -> Figure:
    """:func:`plot_boundary_table` of a map none of whose boundaries has a conduction-plane class (no phase with Na⁺
    conduction planes: every boundary is ``other-phase``): what applies to it, the disorientation angle and axis
    (Cartesian crystal frame, the same in both grains') and the CSL Σ (Brandon criterion; — none), without the classification's
    columns."""
    n = len(b["boundary_id"])
    header = ["GB", "Grains", "Length\n(nm)", "Misorientation\n(°)", "Axis\n(crystal frame)", "CSL Σ"]
    rows = []
    for i in shown.tolist():
        axis = np.asarray(b["misorientation_axis"][i], dtype=np.float64).ravel() if "misorientation_axis" in b else np.full(3, np.nan)
        sigma = int(b["csl_sigma"][i]) if "csl_sigma" in b else 0
        rows.append([str(int(b["boundary_id"][i])), f"{int(b['grain_a'][i])} | {int(b['grain_b'][i])}",
                     fmt(b["length_nm"][i], "{:.1f}"),
                     fmt(b["misorientation_deg"][i]) if "misorientation_deg" in b else "—",
                     "—" if not np.all(np.isfinite(axis)) else "[" + " ".join(f"{v:.2f}" for v in axis) + "]",
                     f"Σ{sigma}" if sigma > 0 else "—"])
    row_in, head_in, top_in, foot_in = 0.24, 0.45, 0.45, 0.3
    table_in = head_in + row_in * max(len(rows), 1)
    h = top_in + table_in + foot_in
    fig = Figure(figsize=(7.0, h), dpi=130)
    ax = fig.add_axes((0.03, foot_in / h, 0.94, table_in / h))
    ax.axis("off")
    fig.suptitle(title or "Grain boundaries: misorientation", fontsize=10, y=1.0 - 0.12 / h, va="top")
    tab = ax.table(cellText=rows, colLabels=header, cellLoc="center", bbox=(0.0, 0.0, 1.0, 1.0),
                   colWidths=[0.08, 0.13, 0.12, 0.17, 0.34, 0.16])
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    for (r, c), cell in tab.get_celld().items():
        cell.set_edgecolor("0.75")
        cell.set_height(head_in / table_in if r == 0 else row_in / table_in)
        if r == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_text_props(fontweight="bold")
        elif r % 2 == 0:
            cell.set_facecolor("#f7f7f7")
    more = f"… {n - len(rows)} more boundaries not shown (see the CSV export). " if n > len(rows) else ""
    fig.text(0.97, 0.1 / h, more + "No phase with Na⁺ conduction planes: no conduction-plane classification "
             "(label other-phase in the CSV)", fontsize=7, va="bottom", ha="right", color="0.3")
    return _finish(fig, path)
