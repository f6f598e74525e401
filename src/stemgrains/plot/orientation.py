"""Orientation-map figures: IPF-coloured map with its colour key, correlation-index and reliability maps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .. import config
from ..io.results import atomic_savefig
from ._layout import is_wide, map_colorbar, set_wrapped_suptitle, settle_blank, text_width_in, tidy_short_axes, trim_blank

__all__ = ["ipf_colors", "plot_orientation_map", "plot_quality_map", "save_orientation_figures"]


def ipf_colors(xmap: Any, direction: tuple[float, float, float] = (0, 0, 1)) -> np.ndarray:
    """(ny, nx, 3) RGB of the IPF colour of the sample ``direction`` (default z, the beam): the project's one
    key, :func:`stemgrains.plot.colors.map_ipf_colors` (orix ``IPFColorKeyTSL`` of each phase's Laue group);
    black where not indexed. A pure function of the orientations."""
    from .colors import map_ipf_colors

    return map_ipf_colors(xmap, direction)


def _step_and_unit(xmap: Any) -> tuple[float, str]:
    """Scan step and its unit: nm where the map has a physical step, else pixels."""
    from ..io import map_scan_step_nm

    step = map_scan_step_nm(xmap)
    return (step, "nm") if step else (1.0, "px")


def _extent(xmap: Any) -> tuple[float, float, float, float]:
    """imshow extent of a map (pixel centres at k · step), in nm where the map has a physical step."""
    from .._grid import map_shape

    ny, nx = map_shape(xmap)
    step, _ = _step_and_unit(xmap)
    return (-0.5 * step, (nx - 0.5) * step, (ny - 0.5) * step, -0.5 * step)


def plot_orientation_map(xmap: Any, path: str | os.PathLike | None = None, direction: tuple[float, float, float] = (0, 0, 1)) -> Figure:
    """IPF-coloured map (beam direction by default) with the colour key of each Laue group present
    (:func:`stemgrains.plot.colors.draw_ipf_keys`); x right, y down, in nm."""
    from .colors import draw_ipf_keys

    from .._grid import map_shape

    ny, nx = map_shape(xmap)
    phases = [(i, p) for i, p in xmap.phases if i >= 0 and p.point_group is not None]
    # a wide map: only as tall as the map and its colour keys need (it stood in blank space)
    fig = Figure(figsize=(9.0, min(5.2, max(1.7 * max(1, len(phases)) + 1.0, 6.3 * ny / nx + 1.4))),
                 layout="constrained")
    gs = fig.add_gridspec(max(1, len(phases)), 2, width_ratios=[3.2, 1])
    ax = fig.add_subplot(gs[:, 0])
    ax.imshow(ipf_colors(xmap, direction), extent=_extent(xmap), interpolation="nearest")
    unit = _step_and_unit(xmap)[1]
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit})")
    title = f"IPF-{'xyz'[int(np.argmax(np.abs(direction)))]} orientation map (black: not indexed)"
    # a tall map's column is narrow (its key stood beyond a wide blank gap): a two-line title no wider than it needs
    narrow = 6.3 * nx / ny < 3.0
    ax.set_title(title.replace(" (", "\n(", 1), fontsize=10) if narrow else ax.set_title(title)
    present = np.unique(np.asarray(xmap.phase_id))
    draw_ipf_keys(fig, [gs[k, 1] for k in range(len(phases))], xmap.phases, direction, phase_ids=present)
    tidy_short_axes(fig)
    trim_blank(fig, ax, "x", min_in=3.0, gridspec=gs)  # the key beside the map, not beyond blank space
    if path is not None:
        atomic_savefig(fig, path, dpi=150)
    return fig


def plot_quality_map(xmap: Any, prop: str, path: str | os.PathLike | None = None, vmax: float | None = None,
                     cmap: str = "viridis", cut: float | None = None, gamma: float | None = None) -> Figure:
    """A scalar property map (e.g. ``correlation_index``, ``reliability``) with a colour bar; not-indexed pixels grey.
    ``cut``: a threshold drawn on the colour bar (dashed), with the share of indexed pixels at or above it in the
    title. ``gamma``: a power-law colour scale from 0 to ``vmax`` (matplotlib ``PowerNorm``; < 1 spreads the low
    values)."""
    from .._grid import map_shape

    ny, nx = map_shape(xmap)
    vals = np.asarray(xmap.prop[prop], dtype=float).reshape(ny, nx)
    pid = np.asarray(xmap.phase_id).reshape(ny, nx)
    data = np.ma.masked_where(pid < 0, vals)
    wide = is_wide((ny, nx))  # its colour bar under it (map_colorbar): beside it, it stood several times its height
    share = ""
    if cut is not None:
        ok = vals[pid >= 0]
        share = f"; {100 * np.mean(ok >= cut) if ok.size else 0:.0f}\u00a0% ≥ the cut\u00a0{cut:g}, dashed on the colour bar"
    n_bad = int((pid < 0).sum())
    median = np.nanmedian(vals[pid >= 0]) if np.isfinite(vals[pid >= 0]).any() else np.nan
    # (no-break spaces: a number is not wrapped away from its unit)
    title = f"{prop.replace('_', ' ')} (median {median:.2f}; {n_bad}\u00a0px not indexed{share})"
    # a tall map: narrower (it stood in a blank 6.4 in), but wide enough for its title in two lines (three over a
    # narrow map)
    size = (7.5, min(5.0, max(2.8, 6.0 * ny / nx + 2.0))) if wide else \
        (min(6.4, max(3.2, 4.2 * nx / ny + 2.6, text_width_in(title, 2))), 5.0)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    cm = __import__("matplotlib").colormaps[cmap].copy()
    cm.set_bad("0.6")
    if gamma is None:
        im = ax.imshow(data, extent=_extent(xmap), interpolation="nearest", cmap=cm, vmin=0, vmax=vmax)
    else:
        from matplotlib.colors import PowerNorm

        im = ax.imshow(data, extent=_extent(xmap), interpolation="nearest", cmap=cm,
                       norm=PowerNorm(gamma, vmin=0, vmax=vmax))
    cbar = map_colorbar(fig, ax, im, prop.replace("_", " "), (ny, nx), shrink=0.85)
    if cut is not None:
        (cbar.ax.axvline if wide else cbar.ax.axhline)(cut, color="cyan", ls="--", lw=1.5)
        lo, hi = cbar.ax.get_xlim() if wide else cbar.ax.get_ylim()
        cbar.set_ticks(sorted({float(t) for t in cbar.get_ticks() if lo <= t <= hi} | {float(cut)}))
    unit = _step_and_unit(xmap)[1]
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit})")
    set_wrapped_suptitle(fig, title)
    tidy_short_axes(fig)
    if wide:  # as tall as the map, its bar and title need: a blank band stood under the title
        trim_blank(fig, ax, "y", min_in=1.2)
    settle_blank(fig)  # what trim_blank cannot: a tall map centred under its title, a line scan's band closed
    if path is not None:
        atomic_savefig(fig, path, dpi=150)
    return fig


def plot_phase_fit(xmap: Any, path: str | os.PathLike | None = None, report: Any = None) -> Figure:
    """The phase-fit check (:func:`stemgrains.index.quality.phase_fit_check`): the map of the spot fit beyond chance
    of each solution it judges (grey: not indexed, or fewer than ``config.PHASE_FIT_MIN_SPOTS`` spots above the
    detection threshold), and its histogram per phase with the threshold; the verdict in the title."""
    from ..index.quality import judged_phase_id, phase_fit_check, spot_fit_excess

    from .._grid import map_shape

    report = report if report is not None else phase_fit_check(xmap)
    ny, nx = map_shape(xmap)
    fit = spot_fit_excess(xmap)
    pid = judged_phase_id(xmap)  # grey where the check does not judge
    fig = Figure(figsize=(10.0, 3.4 if is_wide((ny, nx)) else 4.4), layout="constrained")  # (a line scan: blank)
    ax, hx = fig.subplots(1, 2, width_ratios=[1.15, 1])
    cm = __import__("matplotlib").colormaps["RdYlGn"].copy()
    cm.set_bad("0.6")
    im = ax.imshow(np.ma.masked_where(pid.reshape(ny, nx) < 0, fit.reshape(ny, nx)), extent=_extent(xmap),
                   interpolation="nearest", cmap=cm, vmin=0, vmax=1)
    map_colorbar(fig, ax, im, "spot fit beyond chance", (ny, nx), shrink=0.85)  # under a wide map (a line scan)
    ax.set_xlabel(f"x ({xmap.scan_unit})")
    ax.set_ylabel(f"y ({xmap.scan_unit})")
    ax.set_title("spot fit per pattern (grey: not indexed, or too few spots to judge)", fontsize=10)
    bins = np.linspace(0, 1, 21)
    for p in report.phases:
        hx.hist(fit[pid == p.phase_id], bins=bins, histtype="step", lw=1.5,
                label=f"{p.name}: median {p.median_fit_fraction:.2f}\n{100 * p.poor_fraction:.0f}% poor, largest poor region {100 * p.largest_poor_region:.0f}%"
                + ("" if np.isnan(p.reliable_fraction) else f"\n{100 * p.reliable_fraction:.0f}% reliable (R ≥ {config.PHASE_FIT_RELIABILITY:g})"))
    hx.axvline(report.min_fraction, color="k", ls="--", lw=1, label=f"threshold {report.min_fraction:.2f}")
    hx.set_xlabel("spot fit beyond chance, (f − c)/(1 − c)")
    hx.set_ylabel("patterns")
    hx.legend(fontsize=8, loc="upper left")
    verdict = "phase fit: OK" if report.ok else "phase fit FAILED:\n" + ", ".join(p.name for p in report.phases if not p.ok)
    if not report.phases:
        n_indexed = int(np.sum(np.asarray(xmap.phase_id) >= 0))
        verdict = "phase fit: no pattern to judge"
        why = ("no pattern was indexed: check the calibration\n(--q-pixel-size, centre) and the phase" if n_indexed == 0
               else f"{n_indexed} patterns indexed, none with at least\n{config.PHASE_FIT_MIN_SPOTS} spots above the "
                    "detection threshold")
        hx.text(0.5, 0.5, why, transform=hx.transAxes, ha="center", va="center", fontsize=10, color="firebrick",
                bbox=dict(facecolor="white", edgecolor="none"))
    hx.set_title(verdict, fontsize=10, color="k" if report.ok else "firebrick")
    tidy_short_axes(fig)
    if path is not None:
        atomic_savefig(fig, path, dpi=150, bbox_inches="tight")
    return fig


#: the files :func:`save_orientation_figures` writes (phase_fit.png only for maps with spot-fit props,
#: c_axis_reliability.png only for maps with a c-axis reliability, i.e. of a non-cubic phase, grain_reliability.png
#: only for maps with that prop: indexed by stemgrains with the grain vote)
ORIENTATION_FIGURES = ("orientation_ipf_z.png", "correlation_index.png", "reliability.png", "phase_fit.png",
                       "c_axis_reliability.png", "grain_reliability.png")


#: the reliability maps (R, c-axis R, grain R: each 0–100) share one colour scale, 0–100 with this power law, so
#: that they read side by side and the values around the usual cut (5) are not all black
RELIABILITY_GAMMA = 0.5


def save_orientation_figures(xmap: Any, folder: str | os.PathLike) -> list[Path]:
    """Write orientation_ipf_z.png, correlation_index.png, reliability.png (phase_fit.png for maps with spot-fit
    props, c_axis_reliability.png for maps with a finite c-axis reliability at an indexed pixel, grain_reliability.png for maps with a
    grain reliability) into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / name for name in ORIENTATION_FIGURES[:3]]
    plot_orientation_map(xmap, out[0])
    plot_quality_map(xmap, "correlation_index", out[1], vmax=1.0)
    # the reliabilities share one colour scale and show the usual cut, so the maps read side by side
    rel = dict(vmax=100.0, cmap="magma", cut=config.GRAIN_VOTE_RELIABILITY, gamma=RELIABILITY_GAMMA)
    plot_quality_map(xmap, "reliability", out[2], **rel)
    if "spot_fit_fraction" in xmap.prop:
        out.append(folder / ORIENTATION_FIGURES[3])
        plot_phase_fit(xmap, out[-1])
    indexed = np.asarray(xmap.phase_id) >= 0  # (a map of nothing indexed has no phase, cubic or not, to show it for)
    if "c_axis_reliability" in xmap.prop and np.isfinite(np.asarray(xmap.prop["c_axis_reliability"], dtype=float)[indexed]).any():
        out.append(folder / ORIENTATION_FIGURES[4])
        plot_quality_map(xmap, "c_axis_reliability", out[-1], **rel)
    if "grain_reliability" in xmap.prop:
        out.append(folder / ORIENTATION_FIGURES[5])
        plot_quality_map(xmap, "grain_reliability", out[-1], **rel)
    return out
