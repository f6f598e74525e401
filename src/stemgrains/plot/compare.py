"""Figures of a scan comparison (:func:`stemgrains.compare.compare_results`): matched grains across the series,
per-grain orientation change, boundary changes. All maps on scan 1's grid, axes in nm (x right, y down)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..io.results import atomic_savefig
from ._layout import tidy_short_axes

__all__ = ["series_colors", "STATUS_COLORS", "plot_matched_grains", "plot_grain_rotation", "plot_boundary_changes"]

#: Colour of each boundary status in :func:`plot_boundary_changes` (drawn in this order, the last on top).
STATUS_COLORS = {"partly-outside": "0.6", "unchanged": "0.15", "moved": "tab:orange", "label-changed": "tab:blue",
                 "behaviour-changed": "tab:purple", "appeared": "tab:green", "vanished": "tab:red"}
NOT_COVERED_RGB = (0.93, 0.93, 0.93)
UNASSIGNED_RGB = (1.0, 1.0, 1.0)


def series_colors(n_max: int, seed: int = 0) -> np.ndarray:
    """RGB ``(n_max + 1, 3)`` per series id (row 0 white): random but reproducible, so one physical grain has one
    colour in every scan."""
    rgb = np.ones((n_max + 1, 3))
    rgb[1:] = np.random.default_rng(seed).uniform(0.25, 0.95, (n_max, 3))
    return rgb


def _extent(shape: tuple[int, int], step: float) -> tuple[float, float, float, float]:
    ny, nx = shape
    return (-0.5 * step, (nx - 0.5) * step, (ny - 0.5) * step, -0.5 * step)


def _panel_size(shape: tuple[int, int], width: float) -> float:
    ny, nx = shape
    return min(10.0, max(1.0, width * ny / max(nx, 1)))


def _wide(shape: tuple[int, int]) -> bool:
    return shape[1] > 2.5 * shape[0]


def _finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    tidy_short_axes(fig)
    if path is not None:
        atomic_savefig(fig, path, dpi=130, bbox_inches="tight")
    return fig


def _centroids(labels: np.ndarray) -> dict[int, tuple[float, float]]:
    ids, inv = np.unique(labels.ravel(), return_inverse=True)
    rr, cc = np.indices(labels.shape)
    n = np.bincount(inv)
    r = np.bincount(inv, rr.ravel()) / n
    c = np.bincount(inv, cc.ravel()) / n
    out = {}
    for k, g in enumerate(ids.tolist()):
        if g > 0:
            # a pixel of the grain nearest its centroid (concave grains keep the label on themselves)
            sel = labels == g
            d = (rr[sel] - r[k]) ** 2 + (cc[sel] - c[k]) ** 2
            i = int(np.argmin(d))
            out[int(g)] = (float(cc[sel][i]), float(rr[sel][i]))
    return out


def _label_edges(labels: np.ndarray, step: float) -> np.ndarray:
    """Pixel-edge lines ``(n, 2, 2)`` (nm) between 4-connected pixels of different labels."""
    r, c = np.nonzero(labels[:, 1:] != labels[:, :-1])  # edge between columns c and c + 1, along y
    v = np.stack([np.stack([c + 0.5, r - 0.5], 1), np.stack([c + 0.5, r + 0.5], 1)], 1)
    r, c = np.nonzero(labels[1:] != labels[:-1])  # between rows r and r + 1, along x
    h = np.stack([np.stack([c - 0.5, r + 0.5], 1), np.stack([c + 0.5, r + 0.5], 1)], 1)
    return np.concatenate([v, h]).astype(float) * step


def _draw_edges(ax: Any, labels: np.ndarray, step: float, color: str = "k") -> None:
    lines = _label_edges(labels, step)
    if len(lines):
        lw = float(np.clip(150.0 / max(labels.shape), 0.4, 1.2))
        ax.add_collection(LineCollection(lines, colors=color, linewidths=lw, zorder=2))


def _series_image(labels: np.ndarray, covered: np.ndarray, colors: np.ndarray) -> np.ndarray:
    img = colors[np.clip(labels, 0, len(colors) - 1)].copy()
    img[~covered] = NOT_COVERED_RGB
    return img


def plot_matched_grains(comparison: Any, *, annotate: bool | None = None, path: str | os.PathLike | None = None
                        ) -> Figure:
    """One panel per scan, every map registered onto scan 1's grid, grains coloured by series id (the same
    physical grain has the same colour and number in every panel); pale grey where a scan does not cover
    scan 1. ``annotate`` (default: when at most 80 grains per scan) writes the series ids."""
    labels, covered = comparison.series_labels, comparison.covered
    n, ny, nx = labels.shape
    step = comparison.scan_step_nm
    colors = series_colors(int(labels.max(initial=0)))
    ncol = 1 if _wide((ny, nx)) else min(n, 3)
    nrow = int(np.ceil(n / ncol))
    w = 8.0 if ncol == 1 else 4.2
    fig = Figure(figsize=(w * ncol, (_panel_size((ny, nx), w) + 0.75) * nrow + 0.3), dpi=130, layout="constrained")
    ext = _extent((ny, nx), step)
    for k in range(n):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        ax.imshow(_series_image(labels[k], covered[k], colors), extent=ext, interpolation="nearest")
        _draw_edges(ax, np.where(covered[k], labels[k], -1), step)
        ax.set_xlim(ext[:2])
        ax.set_ylim(ext[2:])
        reg = comparison.registrations[k]
        ids = _centroids(labels[k])
        if annotate if annotate is not None else len(ids) <= 80:
            fs = float(np.clip(260.0 / max(ny, nx), 5.0, 8.0))
            for g, (x, y) in ids.items():
                ax.text(x * step, y * step, str(g), ha="center", va="center", fontsize=fs, color="k",
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.6))
        head = f"scan {k + 1}: {comparison.names[k]}"
        if k:
            how = "given" if reg.given else f"NCC {reg.score:.2f}"
            parts = [reg.op.name] if reg.op.name != "none" or not reg.angle_deg else []
            parts += [f"rotated {reg.angle_deg:+.2f}°"] if reg.angle_deg else []
            head += f"\n{', '.join(parts)}, shift ({reg.shift[0]}, {reg.shift[1]}) px, {how}"
        ax.set_title(head, fontsize=8)
        ax.set_xlabel("x (nm)", fontsize=8)
        ax.set_ylabel("y (nm)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("grains matched across the series (series ids; grey: not covered)", fontsize=9)
    return _finish(fig, path)


def plot_grain_rotation(comparison: Any, scan_to: int = 2, *, vmax: float | None = None,
                        path: str | os.PathLike | None = None) -> Figure:
    """Scan ``scan_to − 1``'s grains (on scan 1's grid) coloured by the disorientation of their mean orientation
    between scans ``scan_to − 1`` and ``scan_to`` (deg); grains without a match are hatched by status."""
    from matplotlib import colormaps

    g = comparison.grains
    k = scan_to - 1
    sel = np.asarray(g["scan_to"]) == scan_to
    labels, covered = comparison.series_labels[k - 1], comparison.covered[k - 1] & comparison.covered[k]
    ny, nx = labels.shape
    step = comparison.scan_step_nm
    sid = np.asarray(g["series_id"])[sel]
    status = np.asarray(g["status"])[sel]
    from_scan = np.asarray(g["grain_from"])[sel] > 0
    dis = np.asarray(g["disorientation_deg"], float)[sel]
    top = vmax if vmax is not None else max(1.0, float(np.nanmax(dis)) if np.isfinite(dis).any() else 1.0)
    cmap = colormaps["viridis"]
    lut = np.tile(np.asarray(UNASSIGNED_RGB), (int(labels.max(initial=0)) + 1, 1))
    unmatched: dict[str, list[int]] = {}
    for s, st, fr, d in zip(sid.tolist(), status.tolist(), from_scan.tolist(), dis.tolist()):
        if not fr or s >= len(lut):
            continue
        if st == "matched" and np.isfinite(d):
            lut[s] = cmap(min(d / top, 1.0))[:3]
        elif st != "outside":
            lut[s] = (0.8, 0.8, 0.8)
            unmatched.setdefault(st, []).append(s)
    img = lut[labels]
    img[~covered] = NOT_COVERED_RGB
    wide = _wide((ny, nx))
    w = 8.0 if wide else 5.5
    fig = Figure(figsize=(w + (0.4 if wide else 1.6), _panel_size((ny, nx), w) + (2.2 if wide else 1.2)), dpi=130,
                 layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ext = _extent((ny, nx), step)
    ax.imshow(img, extent=ext, interpolation="nearest")
    _draw_edges(ax, np.where(covered, labels, -1), step)
    ax.set_xlim(ext[:2])
    ax.set_ylim(ext[2:])
    hatches = {"vanished": "xx", "merged": "//", "appeared": "..", "split": "\\\\"}
    handles = []
    for st, ids in unmatched.items():
        mask = np.isin(labels, ids) & covered
        ax.contourf(np.arange(nx) * step, np.arange(ny) * step, mask.astype(float), levels=[0.5, 1.5], colors="none",
                    hatches=[hatches.get(st, "++")])
        handles.append(Patch(facecolor=(0.8, 0.8, 0.8), hatch=hatches.get(st, "++"), label=st))
    ids = _centroids(np.where(covered, labels, 0))
    if len(ids) <= 80:
        fs = float(np.clip(260.0 / max(ny, nx), 5.0, 8.0))
        val = dict(zip(sid.tolist(), dis.tolist()))
        for s, (x, y) in ids.items():
            d = val.get(s, float("nan"))
            if np.isfinite(d):
                ax.text(x * step, y * step, f"{d:.1f}°", ha="center", va="center", fontsize=fs,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    sm = fig.colorbar(_mappable(cmap, top), ax=ax, shrink=0.7, fraction=0.05,
                      orientation="horizontal" if wide else "vertical", location="bottom" if wide else "right")
    sm.set_label("disorientation of the mean orientation (deg)", fontsize=8)
    if handles:
        where = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if wide else dict(
            loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=len(handles))
        ax.legend(handles=handles, fontsize=7, frameon=False, title="no match (grey, hatched)", title_fontsize=7,
                  **where)
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.set_title(f"orientation change per grain, scan {scan_to - 1} → {scan_to}", fontsize=9)
    return _finish(fig, path)


def _mappable(cmap: Any, top: float) -> Any:
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=Normalize(0.0, top), cmap=cmap)
    sm.set_array([])
    return sm


def _edges(points: np.ndarray, step: float) -> np.ndarray:
    """Pixel-edge lines ``(n, 2, 2)`` (nm) through trace points (x, y) = midpoints of 4-connected pixel pairs."""
    if len(points) == 0:
        return np.zeros((0, 2, 2))
    x, y = points[:, 0], points[:, 1]
    vertical = np.abs(x - np.round(x)) > 0.25  # pair across columns → the edge runs along y
    hx = np.where(vertical, 0.0, 0.5)
    hy = np.where(vertical, 0.5, 0.0)
    return np.stack([np.stack([x - hx, y - hy], 1), np.stack([x + hx, y + hy], 1)], axis=1) * step


def plot_boundary_changes(comparison: Any, scan_to: int = 2, *, path: str | os.PathLike | None = None) -> Figure:
    """Boundaries of scans ``scan_to − 1`` → ``scan_to`` on scan 1's grid, coloured by status (vanished ones
    where they were, the others where they are now), over a faint series-coloured grain map of ``scan_to``."""
    b = comparison.boundaries
    k = scan_to - 1
    sel = np.flatnonzero(np.asarray(b["scan_to"]) == scan_to)
    pts = comparison.boundary_points[k - 1]
    labels = comparison.series_labels[k]
    covered = comparison.covered[k - 1] & comparison.covered[k]
    ny, nx = labels.shape
    step = comparison.scan_step_nm
    colors = series_colors(int(comparison.series_labels.max(initial=0)))
    img = _series_image(labels, covered, colors)
    img = 1.0 - 0.3 * (1.0 - img)  # faint
    w = 8.0 if _wide((ny, nx)) else 5.5
    fig = Figure(figsize=(w + 2.2, max(_panel_size((ny, nx), w) + 0.8, 2.2)), dpi=130, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, extent=_extent((ny, nx), step), interpolation="nearest")
    lw = float(np.clip(300.0 / max(ny, nx), 1.0, 3.0))
    groups: dict[str, list[np.ndarray]] = {s: [] for s in STATUS_COLORS}
    counts = dict.fromkeys(STATUS_COLORS, 0)
    for i in sel.tolist():
        key = (int(b["series_grain_a"][i]), int(b["series_grain_b"][i]))
        st = str(b["status"][i])
        pa, pb = pts.get(key, (np.zeros((0, 2)), np.zeros((0, 2))))
        if st == "outside":
            continue
        # one colour per boundary: the first change in the order of STATUS_COLORS' legend priority
        name = st if st in STATUS_COLORS else next(
            (s for s in ("behaviour-changed", "label-changed", "moved") if s in st.split(";")), "unchanged")
        counts[name] += 1
        if name == "vanished" or len(pb) == 0:  # (partly-outside: an edge grain's boundary seen in scan j only)
            groups[name].append(_edges(pa, step))
        else:
            groups[name].append(_edges(pb, step))
            if name == "moved":  # where it was, thin
                groups.setdefault("moved (before)", []).append(_edges(pa, step))
    if groups.get("moved (before)"):
        ax.add_collection(LineCollection(np.concatenate(groups["moved (before)"]), colors="tab:orange",
                                         linewidths=0.5 * lw, linestyles=":", zorder=2))
    for name, color in STATUS_COLORS.items():
        if groups[name]:
            ax.add_collection(LineCollection(np.concatenate(groups[name]), colors=color, linewidths=lw,
                                             capstyle="projecting", zorder=3))
    handles = [Line2D([], [], color=c, lw=2.5, label=f"{s} ({counts[s]})") for s, c in STATUS_COLORS.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              title="boundaries", title_fontsize=8, alignment="left")
    ext = _extent((ny, nx), step)
    ax.set_xlim(ext[:2])
    ax.set_ylim(ext[2:])
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.set_title(f"boundary changes, scan {scan_to - 1} → {scan_to} (grey: not covered by both)", fontsize=9)
    return _finish(fig, path)
