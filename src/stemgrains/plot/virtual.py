"""Figures of virtual images and VDF grain maps."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..io.results import atomic_savefig
from ._layout import is_wide, map_colorbar, set_wrapped_title, tidy_short_axes

__all__ = ["plot_virtual_image", "plot_vdf_grain_map", "draw_segments"]


def _save(fig: Figure, path: Any) -> Figure:
    tidy_short_axes(fig)
    if path is not None:
        atomic_savefig(fig, path, dpi=150, bbox_inches="tight")
    return fig


def _extent(shape: tuple[int, int], step: float | None) -> tuple[float, float, float, float]:
    s = step or 1.0
    ny, nx = shape
    return (-0.5 * s, (nx - 0.5) * s, (ny - 0.5) * s, -0.5 * s)


def plot_virtual_image(image: np.ndarray, *, title: str = "", pixel_size_nm: float | None = None,
                       path: str | os.PathLike | None = None) -> Figure:
    """Grey-scale virtual image (scan_row down, scan_col right) with a colour bar; axes in nm when the step is known.
    Non-finite pixels (patterns with non-finite counts under the detector) are drawn red and counted in the title:
    white would read as the brightest value."""
    import matplotlib

    fig = Figure(figsize=(5, 4.4))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="red")
    im = ax.imshow(np.ma.masked_invalid(image), cmap=cmap, extent=_extent(image.shape, pixel_size_nm),
                   interpolation="nearest")
    map_colorbar(fig, ax, im, "counts", np.shape(image))  # under a wide map, slim beside a tall one
    ax.set_xlabel("x (nm)" if pixel_size_nm else "scan column")
    ax.set_ylabel("y (nm)" if pixel_size_nm else "scan row")
    n_bad = int(np.size(image) - np.isfinite(image).sum())
    if n_bad:
        title = f"{title}\n" if title else ""
        title += f"red: {n_bad} of {np.size(image)} positions without a value (non-finite counts)"
    ax.set_title("", fontsize=9)
    set_wrapped_title(ax, title, share=0.62 if not is_wide(np.shape(image)) else 0.9)
    return _save(fig, path)


def draw_segments(ax: Any, boundaries: Any, step: float, color: Any = "white", lw: float = 0.8) -> None:
    """Draw the pixel edges of every boundary (from ``BoundaryTable.pairs``) on ``ax`` in nm; ``color`` may be a
    callable segment_id → colour."""
    from matplotlib.collections import LineCollection

    pairs = boundaries.pairs
    ra, ca = np.asarray(pairs["row_a"], float), np.asarray(pairs["col_a"], float)
    rb, cb = np.asarray(pairs["row_b"], float), np.asarray(pairs["col_b"], float)
    my, mx = (ra + rb) / 2, (ca + cb) / 2
    vertical = ra == rb  # horizontal neighbours -> vertical edge
    x0 = np.where(vertical, mx, mx - 0.5)
    x1 = np.where(vertical, mx, mx + 0.5)
    y0 = np.where(vertical, my - 0.5, my)
    y1 = np.where(vertical, my + 0.5, my)
    lines = np.stack([np.stack([x0, y0], -1), np.stack([x1, y1], -1)], 1) * step
    colors = [color(int(s)) for s in pairs["segment_id"]] if callable(color) else color
    ax.add_collection(LineCollection(lines, colors=colors, linewidths=lw))


def plot_vdf_grain_map(result: Any, *, boundaries: Any = None, path: str | os.PathLike | None = None) -> Figure:
    """Colour composite of a VDF grain map (each reflection group in its own colour, brightness = its normalised
    VDF intensity, as in published RGB VDF grain maps), next to the labels; indexed boundaries drawn over both
    when ``boundaries`` (a BoundaryTable) is given."""
    step = result.scan_step_nm
    ny, nx = result.labels.shape
    panel_w = float(np.clip(4.0 * nx / max(ny, 1), 1.6, 4.6))  # a tall map's panels narrow (they stood 5 in apart)
    fig = Figure(figsize=(2 * panel_w + 1.4, 4.6), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ext = _extent(result.labels.shape, step)
    ax1.imshow(result.composite, extent=ext, interpolation="nearest")
    lab = np.ma.masked_equal(result.labels, 0)
    ax2.imshow(lab, cmap="tab20", extent=ext, interpolation="nearest")
    share = panel_w / fig.get_figwidth()
    for ax, title in ((ax1, f"VDF colour composite ({result.n_groups} reflection groups, {len(result.reflections)} "
                            "reflections)"), (ax2, f"VDF grains ({int(result.labels.max())}), unassigned blank")):
        ax.set_title("", fontsize=9)
        set_wrapped_title(ax, title, share=share)
    for ax in (ax1, ax2):
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
        if boundaries is not None:
            draw_segments(ax, boundaries, step, color="white" if ax is ax1 else "black", lw=0.7)
    return _save(fig, path)


def plot_bragg_vector_map(result: Any, *, path: str | os.PathLike | None = None) -> Figure:
    """Bragg-vector map (log scale) with the distinct reflections circled in their group's colour."""
    from matplotlib.colors import LogNorm

    from ..virtual.vdf import group_colors

    bvm = result.bvm
    ky, kx = bvm.shape
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.add_subplot()
    pos = bvm[bvm > 0]
    vmin = float(np.percentile(pos, 50)) if pos.size else 1e-3
    ax.imshow(np.maximum(bvm, vmin), cmap="gray", norm=LogNorm(vmin=vmin, vmax=max(float(bvm.max()), vmin * 10)))
    cols = group_colors(result.n_groups)
    mid = ((ky - 1) / 2, (kx - 1) / 2)
    r = result.parameters.get("disk_radius_px", 2.0)
    from matplotlib.patches import Circle

    for (dr, dc), g in zip(result.reflections, result.groups):
        ax.add_patch(Circle((mid[1] + dc, mid[0] + dr), r + 0.5, fill=False, color=cols[g], lw=0.8))
    ax.set_title("Bragg-vector map and VDF disks (colour = grain group)", fontsize=9)
    ax.set_xlabel("detector column (px)")
    ax.set_ylabel("detector row (px)")
    return _save(fig, path)
