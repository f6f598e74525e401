"""Figures of a :class:`~stemgrains.transport.TransportResult`.

* :func:`plot_current_density` – ``|J|`` on a log colour scale, streamlines of J, grain boundaries.
* :func:`plot_potential` – potential map with equipotential lines and grain boundaries.
* :func:`plot_boundary_mismatch` – every boundary face coloured by the normal-current mismatch ``J_A·n − J_B·n``.
* :func:`save_transport_figures` – all three as PNG files.

Axes are in nm, x to the right, y down (image orientation, as the sample frame), in the coordinates of every
other map figure: the centre of the map's pixel (row i, col j) at (x, y) = (j, i) × scan step, so a frame padded
around the map by the transport model lies at negative coordinates / beyond the map.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap, LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from ..io.results import atomic_savefig
from ._layout import is_wide, map_colorbar, set_wrapped_title, thin_colorbar_ticks, tidy_short_axes, trim_blank

__all__ = [
    "boundary_segments",
    "plot_current_density",
    "plot_potential",
    "plot_boundary_mismatch",
    "save_transport_figures",
]


def boundary_segments(labels: np.ndarray, h: float = 1.0) -> np.ndarray:
    """``(m, 2, 2)`` line segments ``[[x0, y0], [x1, y1]]`` (nm) of the pixel faces between different labels."""
    lab = np.asarray(labels)
    r, c = np.nonzero(lab[:, 1:] != lab[:, :-1])  # vertical faces at x = c + 1
    v = np.stack([np.stack([c + 1, r], 1), np.stack([c + 1, r + 1], 1)], 1)
    r, c = np.nonzero(lab[1:, :] != lab[:-1, :])  # horizontal faces at y = r + 1
    hz = np.stack([np.stack([c, r + 1], 1), np.stack([c + 1, r + 1], 1)], 1)
    return np.concatenate([v, hz]).astype(np.float64) * h


def _face_segments(result: Any) -> np.ndarray:
    """Segments (nm, grid frame) of the result's boundary faces."""
    f = result.faces
    r0, c0 = result.map_window[:2]
    ra, ca = np.asarray(f["row_a"]) + r0, np.asarray(f["col_a"]) + c0
    rb, cb = np.asarray(f["row_b"]) + r0, np.asarray(f["col_b"]) + c0
    ny, nx = result.labels.shape
    vertical = ra == rb
    # the face sits on the shared edge; for a periodic wrap, on the grid edge
    x = np.where(vertical, np.where(np.abs(ca - cb) == 1, np.maximum(ca, cb), nx), np.minimum(ca, cb))
    y = np.where(vertical, np.minimum(ra, rb), np.where(np.abs(ra - rb) == 1, np.maximum(ra, rb), ny))
    p0 = np.stack([x, y], 1)
    p1 = np.where(vertical[:, None], np.stack([x, y + 1], 1), np.stack([x + 1, y], 1))
    return np.stack([p0, p1], 1).astype(np.float64) * result.scan_step_nm + _origin(result)


def _origin(result: Any) -> np.ndarray:
    """Shift (x, y) in nm from the transport grid (origin at its top-left pixel corner) to map coordinates (origin
    at the centre of the map's first pixel, as in the orientation and grain figures)."""
    r0, c0 = result.map_window[:2]
    h = result.scan_step_nm
    return np.array([-(c0 + 0.5) * h, -(r0 + 0.5) * h])


def _setup(result: Any, title: str, figsize: tuple[float, float] | None) -> tuple[Figure, Any, list[float]]:
    ny, nx = result.labels.shape
    h = result.scan_step_nm
    ox, oy = _origin(result)
    if figsize is None:
        aspect = ny / nx
        if aspect <= 1.0:
            figsize = (7.0, max(3.0, 7.0 * aspect * 0.85))
        else:  # tall maps: the height capped (a 30 x 4 scan was 51 in tall), the width shrinks with it, + colour bar
            height = min(9.0, max(3.0, 7.0 * aspect * 0.85))
            figsize = (max(3.6, height / (aspect * 0.85) + 1.6), height)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.title.set_fontsize(10 if figsize[0] >= 5.0 else 9)
    set_wrapped_title(ax, title if figsize[0] >= 5.0 else title.replace(" (", "\n(", 1))
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    extent = [ox, nx * h + ox, ny * h + oy, oy]
    return fig, ax, extent


def _draw_boundaries(ax: Any, result: Any, color: str = "white", lw: float = 0.6) -> None:
    seg = boundary_segments(np.where(result.region == 1, result.labels, -result.region), result.scan_step_nm)
    if len(seg):
        ax.add_collection(LineCollection(seg + _origin(result), colors=color, linewidths=lw, alpha=0.8))


#: an edge electrode's bar: its end points in axes coordinates on the frame, and its offset outward (points)
_EDGE_BARS = {"left": (((0.0, 0.0), (0.0, 1.0)), (-4, 0)), "right": (((1.0, 1.0), (0.0, 1.0)), (4, 0)),
              "top": (((0.0, 1.0), (1.0, 1.0)), (0, 4)), "bottom": (((0.0, 1.0), (0.0, 0.0)), (0, -4))}


def _draw_electrodes(ax: Any, result: Any) -> None:
    """Mark the edge electrodes by a dark bar just outside the frame on their edge (neutral: the figures' colour
    scales use red and blue) and name every electrode with its potential under the title (a mask electrode by its
    file name); nothing is drawn over the data."""
    from matplotlib.transforms import offset_copy

    ny, nx = result.labels.shape
    h = result.scan_step_nm
    names = [str(n) for n in result.electrodes["name"]]
    volts = [float(v) for v in result.electrodes["potential_V"]]
    for name in names:
        if name in _EDGE_BARS:
            (xs, ys), (dx, dy) = _EDGE_BARS[name]
            ax.plot(xs, ys, transform=offset_copy(ax.transAxes, ax.figure, x=dx, y=dy, units="points"),
                    clip_on=False, color="0.15", linewidth=4, solid_capstyle="butt", zorder=5)
    if names:
        which = ", ".join(f"{n} {v:g} V" if n in _EDGE_BARS else f"{Path(n).name} {v:g} V (mask)"
                          for n, v in zip(names, volts))
        key = "electrodes (bars on their edges)" if any(n in _EDGE_BARS for n in names) else "electrodes"
        set_wrapped_title(ax, f"{ax.get_title()}\n{key}: {which}", pad=12 if "top" in names else 6)
    ox, oy = _origin(result)
    ax.set_xlim(ox, nx * h + ox)
    ax.set_ylim(ny * h + oy, oy)
    tidy_short_axes(ax.figure)
    if is_wide((ny, nx)):  # as tall as the map, its bar and title need: a blank band stood over a line scan's title
        trim_blank(ax.figure, ax, "y", min_in=1.5)


#: the grains under the mismatch figure's boundary colours: greys, so that no fill reads as a mismatch colour
_GRAIN_GREYS = ListedColormap(["0.93", "0.84", "0.77", "0.89", "0.80", "0.73", "0.87"])


def plot_current_density(result: Any, *, streamlines: bool = True, figsize: tuple[float, float] | None = None) -> Figure:
    """``|J|`` (log colour scale, σ_ip·V/nm; linear from 0 where it varies less than tenfold) with streamlines of J
    and the grain boundaries."""
    fig, ax, extent = _setup(result, f"current density |J| ({result.model} model)", figsize)
    mag = result.current_magnitude
    pos = mag[np.isfinite(mag) & (mag > 0)]
    if pos.size:
        vmax = float(pos.max())
        vmin = max(float(np.percentile(pos, 1)), vmax * 1e-6)
        shown = np.ma.masked_where(~np.isfinite(mag) | (mag <= 0), np.clip(mag, vmin, None))
        # within a decade a log scale from the 1st percentile stretched a few per cent into black-to-yellow (a line
        # scan's uniform current), with overlapping labels: then a linear scale from 0
        log = vmax >= 10.0 * vmin
        norm = LogNorm(vmin=vmin, vmax=vmax) if log else Normalize(vmin=0.0, vmax=vmax)
        im = ax.imshow(shown, extent=extent, cmap="inferno", norm=norm, interpolation="nearest")
        cbar = map_colorbar(fig, ax, im, "|J| (σ_ip V/nm)" + ("" if log else ", linear: it varies less than tenfold"))
    else:  # nothing flows: say so rather than leave a plain grey map
        ax.text(0.5, 0.5, "no current flows between the electrodes\n(no conducting path joins them)",
                transform=ax.transAxes, ha="center", va="center", fontsize=9,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.5"})
    ax.set_facecolor("0.6")
    if streamlines and pos.size and min(mag.shape) >= 2:  # streamplot needs a 2-D grid; 1 × n maps: colour only
        ny, nx = mag.shape
        h = result.scan_step_nm
        ox, oy = _origin(result)
        x = (np.arange(nx) + 0.5) * h + ox
        y = (np.arange(ny) + 0.5) * h + oy
        jx = np.nan_to_num(result.current_density[..., 0])
        jy = np.nan_to_num(result.current_density[..., 1])
        density = float(np.clip(max(nx, ny) / 60.0, 0.8, 2.5))
        ax.streamplot(x, y, jx, jy, color="cyan", linewidth=0.5, density=density, arrowsize=0.6)
    _draw_boundaries(ax, result)
    _draw_electrodes(ax, result)
    if pos.size and cbar.orientation == "horizontal":
        thin_colorbar_ticks(cbar)
    return fig


def plot_potential(result: Any, *, n_levels: int = 15, figsize: tuple[float, float] | None = None) -> Figure:
    """Potential (V) at pixel centres with equipotential lines and the grain boundaries."""
    fig, ax, extent = _setup(result, "potential", figsize)
    pot = result.potential
    shown = np.ma.masked_invalid(pot)
    im = ax.imshow(shown, extent=extent, cmap="viridis", interpolation="nearest")
    cbar = map_colorbar(fig, ax, im, "φ (V)")
    ax.set_facecolor("0.6")
    finite = pot[np.isfinite(pot)]
    if finite.size and finite.max() > finite.min() and min(pot.shape) >= 2:  # contours need a 2-D grid
        ny, nx = pot.shape
        h = result.scan_step_nm
        levels = np.linspace(finite.min(), finite.max(), n_levels + 2)[1:-1]
        ox, oy = _origin(result)
        ax.contour((np.arange(nx) + 0.5) * h + ox, (np.arange(ny) + 0.5) * h + oy, shown, levels=levels, colors="k",
                   linewidths=0.4)
    _draw_boundaries(ax, result)
    _draw_electrodes(ax, result)
    if cbar.orientation == "horizontal":
        thin_colorbar_ticks(cbar)
    return fig


#: a mismatch below this share of the largest current density is the solver's round-off: the figure says "zero
#: within round-off" and scales its colours to 1e-3 of the largest |J|
ROUND_OFF = 1e-9


def plot_boundary_mismatch(result: Any, *, figsize: tuple[float, float] | None = None) -> Figure:
    """Boundary faces coloured by ``J_A·n − J_B·n`` (red: more current arrives from the smaller-label grain A)."""
    fig, ax, extent = _setup(result, "normal-current mismatch at boundaries  J_A·n − J_B·n", figsize)
    grains = np.ma.masked_where(result.region != 1, result.labels % 7)
    ax.imshow(grains, extent=extent, cmap=_GRAIN_GREYS, vmin=-0.5, vmax=6.5, interpolation="nearest")
    ax.set_facecolor("0.55")  # outside the conducting region (pores, other phases): darker than any grain
    seg = _face_segments(result)
    mm = np.asarray(result.faces["mismatch"], dtype=np.float64)
    ok = np.isfinite(mm)
    if ok.any():
        lim = float(np.percentile(np.abs(mm[ok]), 99))
        j = np.hypot(result.current_density[..., 0], result.current_density[..., 1])
        j_max = float(np.nanmax(j)) if np.isfinite(j).any() else 0.0
        if lim < ROUND_OFF * j_max:  # (a line scan: a scale of ±3e-17 read as a finding)
            lim = 1e-3 * j_max
            set_wrapped_title(ax, f"{ax.get_title()} (zero within round-off)")
        lim = lim or 1.0  # no current at all
        lc = LineCollection(seg[ok], cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim), linewidths=2.0)
        lc.set_array(mm[ok])
        ax.add_collection(lc)
        cbar = map_colorbar(fig, ax, lc, "J_A·n − J_B·n (σ_ip V/nm)\nA: the grain of smaller id, n from A into B",
                            extend="both")
    else:  # no boundary face: say so (the grey grains alone read as a finding without a scale)
        ax.text(0.5, 0.5, "no grain boundary in the conducting region: no mismatch to show\n(light greys: grains; dark grey: "
                "outside the conducting region)",
                transform=ax.transAxes, ha="center", va="center", fontsize=9,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.5"})
    _draw_electrodes(ax, result)
    if ok.any() and cbar.orientation == "horizontal":  # its long labels (−0.0010) overlapped under a wide map
        thin_colorbar_ticks(cbar, symmetric=True)
    return fig


#: the figures :func:`save_transport_figures` writes, as ``{prefix}_{name}.png``
TRANSPORT_FIGURES = ("current", "potential", "mismatch")


def save_transport_figures(result: Any, directory: str | os.PathLike, prefix: str = "transport", dpi: int = 150) -> dict[str, Path]:
    """Write the three figures as PNG files into ``directory``; returns ``{name: path}``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fn in zip(TRANSPORT_FIGURES, (plot_current_density, plot_potential, plot_boundary_mismatch)):
        fig = fn(result)
        p = out / f"{prefix}_{name}.png"
        atomic_savefig(fig, p, dpi=dpi)
        paths[name] = p
    return paths
