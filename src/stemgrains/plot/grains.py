"""Figures of grains and boundaries: grain map with classified boundaries, misorientation-angle histogram.

Colour keys are pure functions (:func:`grain_colors`, :func:`boundary_classes`) testable without drawing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..crystal.symmetry import laue_group
from ..io.results import atomic_savefig
from ..boundaries import BoundaryTable
from ..grains import GrainMap
from ._layout import is_wide, tidy_short_axes, trim_blank

__all__ = [
    "grain_colors",
    "boundary_classes",
    "plot_grain_map",
    "plot_misorientation_histogram",
    "save_grain_figures",
]

#: Colour of each boundary class (special/CSL colours cycle through SPECIAL_COLORS).
CLASS_COLORS = {"low angle": "0.6", "high angle": "k"}
SPECIAL_COLORS = ("tab:red", "tab:blue", "tab:orange", "tab:purple", "tab:cyan", "tab:olive", "tab:pink")


def grain_colors(grain_map: GrainMap, mode: str = "ipf", seed: int = 0) -> np.ndarray:
    """RGB ``(n_grains + 1, 3)`` per grain id (row 0 = unassigned, white).

    ``mode="ipf"``: the project's IPF key (:func:`stemgrains.plot.colors.grain_ipf_colors`: orix
    ``IPFColorKeyTSL`` of the grain's mean orientation for the beam direction z, Laue group of its phase);
    ``"random"``: random colours (reproducible with ``seed``).
    """
    from .colors import grain_ipf_colors

    n = grain_map.n_grains
    rgb = np.ones((n + 1, 3))
    if mode == "random":
        rgb[1:] = np.random.default_rng(seed).uniform(0.15, 0.95, (n, 3))
        return rgb
    if mode != "ipf":
        from ..errors import ParameterError

        raise ParameterError(f"grain colour mode must be 'ipf' or 'random', got {mode!r}")
    if n:
        ids = np.asarray(grain_map.table["id"]).astype(np.int64)
        rgb[ids] = grain_ipf_colors(grain_map)
    return rgb


def boundary_classes(boundaries: Any) -> list[str]:
    """Class label of each boundary: the special name if any, else ``"Σ<n>"`` for a CSL with Σ ≥ 3, else
    ``"low angle"`` / ``"high angle"`` (``"phase boundary"`` between different phases)."""
    out = []
    special = boundaries["special"] if "special" in boundaries else np.full(len(boundaries), "")
    for i in range(len(boundaries)):
        if special[i]:
            out.append(str(special[i]))
        elif boundaries["phase_a"][i] != boundaries["phase_b"][i]:
            out.append("phase boundary")
        elif boundaries["csl_sigma"][i] >= 3:
            out.append(f"Σ{int(boundaries['csl_sigma'][i])}")
        elif boundaries["low_angle"][i]:
            out.append("low angle")
        else:
            out.append("high angle")
    return out


def _class_colors(classes: list[str]) -> dict[str, Any]:
    colors: dict[str, Any] = dict(CLASS_COLORS)
    colors["phase boundary"] = "tab:green"
    extra = sorted({c for c in classes if c not in colors}, key=lambda c: (not c.startswith("Σ"), len(c), c))
    for k, c in enumerate(extra):
        colors[c] = SPECIAL_COLORS[k % len(SPECIAL_COLORS)]
    return colors


def plot_grain_map(
    grain_map: GrainMap,
    boundary_table: BoundaryTable | None = None,
    *,
    color: str = "ipf",
    boundary_style: str = "edges",
    fig: Figure | None = None,
    title: str | None = None,
) -> Figure:
    """Grain map coloured by grain (IPF-z colour of the mean orientation, with its key; or random colours),
    boundaries drawn coloured by class (low angle grey, high angle black, CSL/special coloured, with a legend).

    ``boundary_style="edges"`` (default) draws the boundaries on the pixel edges between the grains, so lines sit
    on the grain borders and meet at the triple junctions; ``"segments"`` draws the fitted straight segments
    (start → end) used for trace angles and normals. Axes in nm (x right, y down, as the sample frame);
    unassigned pixels white.
    """
    from .colors import draw_ipf_keys

    if boundary_style not in ("edges", "segments"):
        from ..errors import ParameterError

        raise ParameterError(f"boundary_style must be 'edges' or 'segments', got {boundary_style!r}")
    ny, nx = grain_map.shape
    s_nm = float(grain_map.scan_step_nm)
    own = fig is None
    pids = np.asarray(grain_map.table["phase_id"]).astype(int) if len(grain_map.table) else []
    fig, ax, key_slots, legend_slot, gs, under = _grain_map_layout(fig, grain_map, color == "ipf", pids)
    rgb = grain_colors(grain_map, color)[grain_map.labels]
    extent = (-0.5 * s_nm, (nx - 0.5) * s_nm, (ny - 0.5) * s_nm, -0.5 * s_nm)
    ax.imshow(rgb, origin="upper", interpolation="nearest", extent=extent)
    lax = fig.add_subplot(legend_slot)
    lax.set_axis_off()
    if boundary_table is not None and len(boundary_table.boundaries):
        b = boundary_table.boundaries
        classes = boundary_classes(b)
        colors = _class_colors(classes)
        if boundary_style == "segments":
            sg = boundary_table.segments
            lines = np.stack([sg["start"], sg["end"]], axis=1)
            bid = np.asarray(sg["boundary_id"])
        else:
            p = boundary_table.pairs
            ra, ca, rb, cb = (np.asarray(p[k], float) for k in ("row_a", "col_a", "row_b", "col_b"))
            mx, my = (ca + cb) / 2, (ra + rb) / 2
            hx, hy = np.abs(rb - ra) / 2, np.abs(cb - ca) / 2  # half edge, perpendicular to the pixel pair
            lines = np.stack([np.stack([mx - hx, my - hy], 1), np.stack([mx + hx, my + hy], 1)], axis=1)
            bid = np.asarray(p["boundary_id"])
        lines = lines * s_nm
        cls = np.array(classes, dtype=object)[bid]
        order = ["low angle", "high angle", "phase boundary"] + [c for c in colors if c not in CLASS_COLORS]
        present = [c for c in dict.fromkeys(order) if np.any(cls == c)]
        lw = float(np.clip(300.0 / max(ny, nx), 0.8, 2.5))
        for c in present:
            sel = cls == c
            ax.add_collection(LineCollection(lines[sel], colors=colors[c], linewidths=0.6 * lw if c == "low angle" else lw,
                                             capstyle="projecting"))
        fractions = {c: float(np.sum(b["length_nm"][np.array(classes) == c]) / max(np.sum(b["length_nm"]), 1e-12))
                     for c in present}
        handles = [Line2D([], [], color=colors[c], lw=2, label=f"{c} ({100 * fractions[c]:.0f}% length)")
                   for c in present]
        lax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, title="boundaries",
                   title_fontsize=8, alignment="left")
    else:
        lax.text(0.0, 1.0, "no boundaries", va="top", fontsize=8, transform=lax.transAxes)
    if color == "ipf":
        draw_ipf_keys(fig, key_slots, grain_map.phases, phase_ids=pids)
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.set_title(title or f"{grain_map.n_grains} grains" + (" (IPF-z colours)" if color == "ipf" else " (random colours)"))
    tidy_short_axes(fig)
    if own and under:  # as tall as the map and the keys under it need
        trim_blank(fig, ax, "y", min_in=2.0)
    elif own:  # the key beside a tall map, not inches away (a figure given is the caller's to lay out)
        trim_blank(fig, ax, "x", min_in=4.0, gridspec=gs)
    return fig


#: inches of the IPF key (its title, the sector, the pole labels) and of the map's title and axis labels
_KEY_IN, _LABELS_IN = 2.1, 0.9


def _grain_map_layout(fig: Figure | None, grain_map: GrainMap, ipf: bool,
                      pids: Any) -> tuple[Figure, Any, list[Any], Any, Any, bool]:
    """The figure of :func:`plot_grain_map` sized to the map's aspect, its map axes, the slots of the IPF keys and
    of the boundary legend, its gridspec, and whether the keys stand under the map.

    A wide map (:func:`._layout.is_wide`) spans the figure's width, the keys and the legend side by side under it
    (beside it, an 8 × 60 map stood 0.8 in tall in a 3.8 in figure, the key and legend stacked beside it); any other
    map stands beside a column of the keys, then the legend, from the top, the figure at most 9 in tall (a 60 × 8
    map made it 12.8 in, its key and legend spread down a blank column). A figure given: the map beside the keys
    over the legend, as it is."""
    ny, nx = grain_map.shape
    laue = {laue_group(grain_map.phases[int(i)]).name for i in np.unique(pids)} if ipf else set()
    n_keys = max(1, len(laue)) if ipf else 0
    if fig is None and is_wide((ny, nx)):
        width = max(8.6, 2.6 * (n_keys + 1))
        map_h = max(0.3, (width - 0.9) * ny / max(nx, 1))
        below = _KEY_IN if ipf else 0.4 + 0.22 * 4
        fig = Figure(figsize=(width, map_h + _LABELS_IN + below), dpi=120, layout="constrained")
        gs = fig.add_gridspec(2, n_keys + 1, height_ratios=(map_h + _LABELS_IN, below))
        ax = fig.add_subplot(gs[0, :])
        return fig, ax, [gs[1, k] for k in range(n_keys)], gs[1, n_keys], gs, True
    own = fig is None
    map_w = 6.0
    height = min(9.0, max(3.0, map_w * ny / max(nx, 1))) + 0.8
    fig = fig or Figure(figsize=(map_w + 2.6, height), dpi=120, layout="constrained")
    # from the top: the keys (each _KEY_IN), then the legend (in a figure given, halves as before)
    key_in = min(_KEY_IN * n_keys, 0.5 * height) if own else 0.5 * height
    gs = fig.add_gridspec(2, 2, width_ratios=(map_w, 2.6), height_ratios=(key_in, height - key_in) if ipf else (1, 1))
    ax = fig.add_subplot(gs[:, 0])
    return fig, ax, [gs[0, 1]], gs[1, 1] if ipf else gs[:, 1], gs, False


def plot_misorientation_histogram(
    grain_map: GrainMap,
    boundary_table: BoundaryTable,
    *,
    bin_deg: float = 2.5,
    n_random: int = 50_000,
    fig: Figure | None = None,
) -> Figure:
    """Length-weighted histogram of boundary disorientation angles, one panel per phase (boundaries within
    that phase), against the random (Mackenzie-type) distribution of that Laue group, computed numerically
    with orix from ``n_random`` random orientation pairs."""
    from ..boundaries.misorientation import random_disorientation_angles

    b = boundary_table.boundaries
    same = (np.asarray(b["phase_a"]) == np.asarray(b["phase_b"])) & np.isfinite(b["misorientation_deg"])
    pids = [int(p) for p in np.unique(np.asarray(b["phase_a"])[same])] or [None]
    fig = fig or Figure(figsize=(6, 3.2 * len(pids)), dpi=120)
    for k, pid in enumerate(pids):
        ax = fig.add_subplot(len(pids), 1, k + 1)
        if pid is None:  # bare 0-1 axes said nothing of what the figure is
            ax.set_title("Boundary disorientation angles", fontsize=10)
            ax.text(0.5, 0.5, f"no boundaries between grains of one phase\n({grain_map.n_grains} grain"
                    f"{'' if grain_map.n_grains == 1 else 's'}): "
                    "nothing to histogram", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        phase = grain_map.phases[pid]
        rand = random_disorientation_angles(phase, n_random, seed=k)
        top = max(float(np.max(rand)), float(np.nanmax(b["misorientation_deg"][same])), 1.0)
        bins = np.arange(0.0, top + bin_deg, bin_deg)
        sel = same & (np.asarray(b["phase_a"]) == pid)
        counts, _, _ = ax.hist(b["misorientation_deg"][sel], bins=bins, weights=b["length_nm"][sel], density=True,
                               color="tab:blue", alpha=0.7, label=f"boundaries (length-weighted, n = {int(sel.sum())})")
        h, e = np.histogram(rand, bins=bins, density=True)
        ax.step(e[:-1], h, where="post", color="k", lw=1.5, label=f"random ({laue_group(phase).name})")
        ax.set_xlabel("disorientation angle (°)")
        ax.set_ylabel("density (1/°)")
        ax.set_title(f"phase {pid}: {phase.name}", fontsize=10)
        # headroom above the tallest bar for the legend (it hid a bar where one stood under it)
        peak = max(float(np.nanmax(counts, initial=0.0)), float(np.max(h, initial=0.0)))
        if peak > 0:
            ax.set_ylim(0.0, 1.45 * peak)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


#: the files :func:`save_grain_figures` writes (without a prefix)
GRAIN_FIGURES = ("grains_ipf.png", "grains_random.png", "misorientation_histogram.png")


def save_grain_figures(
    directory: str | os.PathLike, grain_map: GrainMap, boundary_table: BoundaryTable, *, prefix: str = ""
) -> list[Path]:
    """Save ``grains_ipf.png``, ``grains_random.png`` and ``misorientation_histogram.png`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in zip(GRAIN_FIGURES, (
        plot_grain_map(grain_map, boundary_table, color="ipf"),
        plot_grain_map(grain_map, boundary_table, color="random"),
        plot_misorientation_histogram(grain_map, boundary_table),
    )):
        path = out / f"{prefix}{name}"
        atomic_savefig(fig, path, bbox_inches="tight")
        paths.append(path)
    return paths
