"""Figures of virtual images and VDF grain maps."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_virtual_image", "plot_vdf_grain_map", "draw_segments"]


def _save(fig: Figure, path: Any) -> Figure:
    if path is not None:
        from ..io.results import _publish
        import tempfile
        from pathlib import Path

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.stem}.", suffix=p.suffix)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
            _publish(tmp, p)
        except BaseException:
            os.unlink(tmp)
            raise
    return fig


def _extent(shape: tuple[int, int], step: float | None) -> tuple[float, float, float, float]:
    s = step or 1.0
    ny, nx = shape
    return (-0.5 * s, (nx - 0.5) * s, (ny - 0.5) * s, -0.5 * s)


def plot_virtual_image(image: np.ndarray, *, title: str = "", pixel_size_nm: float | None = None,
                       path: str | os.PathLike | None = None) -> Figure:
    """Grey-scale virtual image (scan_row down, scan_col right) with a colour bar; axes in nm when the step is known."""
    fig = Figure(figsize=(5, 4.4))
    ax = fig.add_subplot()
    im = ax.imshow(image, cmap="gray", extent=_extent(image.shape, pixel_size_nm), interpolation="nearest")
    fig.colorbar(im, ax=ax, label="counts")
    ax.set_xlabel("x (nm)" if pixel_size_nm else "scan column")
    ax.set_ylabel("y (nm)" if pixel_size_nm else "scan row")
    ax.set_title(title, fontsize=9)
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
    fig = Figure(figsize=(10, 4.6))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ext = _extent(result.labels.shape, step)
    ax1.imshow(result.composite, extent=ext, interpolation="nearest")
    ax1.set_title(f"VDF colour composite ({result.n_groups} reflection groups, {len(result.reflections)} reflections)",
                  fontsize=9)
    lab = np.ma.masked_equal(result.labels, 0)
    ax2.imshow(lab, cmap="tab20", extent=ext, interpolation="nearest")
    ax2.set_title(f"VDF grains ({int(result.labels.max())}), unassigned blank", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
        if boundaries is not None:
            draw_segments(ax, boundaries, step, color="white" if ax is ax1 else "black", lw=0.7)
    return _save(fig, path)
