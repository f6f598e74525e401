"""Diagnostic figure of a calibration fit: Bragg-vector map with the fitted ellipses, radial profile against the
phase's ring radii (stated vs fitted calibration), per-sector ring scales and the residuals of the joint fit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ._layout import set_wrapped_suptitle, wrap_text

__all__ = ["plot_calibration"]


def _strong_rings(fit: Any, n: int = 4, min_separation: float = 0.08) -> np.ndarray:
    """Radii (1/Å) of the ``n`` most populated rings of the fitted radial profile, at least ``min_separation``
    (1/Å) apart."""
    d = fit.diagnostics["offsets"]
    m = fit.diagnostics.get("fitted_matrix", fit.diagnostics["stated_matrix"])
    q = np.linalg.norm(d @ np.linalg.inv(m).T, axis=1)
    radii = np.asarray(fit.diagnostics["ring_radii"])
    if len(q) == 0 or len(radii) == 0:
        return radii[:0]
    near = np.abs(q[:, None] - radii[None, :])
    j = np.argmin(near, axis=1)
    ok = near[np.arange(len(q)), j] < 0.01
    counts = np.bincount(j[ok], minlength=len(radii))
    picked: list[float] = []
    for k in np.argsort(-counts, kind="stable"):
        if counts[k] == 0 or len(picked) == n:
            break
        if all(abs(radii[k] - r) >= min_separation for r in picked):
            picked.append(float(radii[k]))
    return np.sort(np.array(picked))


def _panel_note(ax: Any, text: str) -> None:
    """``text`` in the middle of an empty panel, wrapped to its width (a long reason ran over the next panel's
    axis label)."""
    width = ax.get_position().width * ax.figure.get_figwidth() * 0.9
    ax.text(0.5, 0.5, wrap_text(text, width, 9), ha="center", va="center", transform=ax.transAxes, fontsize=9)


def _ring_scale_panel(ax: Any, fit: Any, m_stated: np.ndarray, m_fit: np.ndarray) -> None:
    """Panel (c): per detector direction (degrees from +col toward +row, in (−90°, 90°], the range of the reported
    ``ellipticity_angle_deg``), the ring scale measured per sector (the phase's ring radii over the stated |q|) and
    the fitted calibration's |q| over the stated one for the same detector offset, with the fitted long axis
    marked at the angle the title, the printed line and the JSON give."""
    from ..data import axis_angle_deg

    rings = fit.diagnostics.get("rings", {})
    if "sector_scales" in rings:
        ang = np.array([axis_angle_deg(a) for a in np.rad2deg(np.asarray(rings["sector_angles"]))])
        ax.plot(ang, rings["sector_scales"], "o", color="C0", label="rings per sector: phase ring radius / stated |q|")
        t = np.deg2rad(np.linspace(-90.0, 90.0, 181))
        u = np.stack([np.cos(t), np.sin(t)], 1)
        # scale of |q| relative to the stated calibration along each detector direction
        s_st = np.linalg.norm(u @ np.linalg.inv(m_stated).T, axis=1)
        s_fit = np.linalg.norm(u @ np.linalg.inv(m_fit).T, axis=1)
        ax.plot(np.rad2deg(t), s_fit / s_st, "-", color="C3", label="fitted |q| / stated |q| (same detector offset)")
        if fit.values.get("ellipticity_angle_deg") is not None and fit.status != "undetermined":
            axis = float(fit.values["ellipticity_angle_deg"])
            ax.axvline(axis, color="C3", ls=":", lw=0.9, label=f"fitted long axis {axis:.1f}°")
        ax.set_xlim(-90.0, 90.0)
        ax.set_xticks(np.arange(-90, 91, 30))
        ax.legend(fontsize=8)
    else:
        _panel_note(ax, rings.get("reason", "ring fit not run"))
    ax.set_xlabel("detector direction (deg from +col toward +row)")
    ax.set_ylabel("|q| relative to the stated calibration (ratio)")
    ax.set_title("(c) ring scale vs detector direction", fontsize=10)


def plot_calibration(fit: Any, path: str | os.PathLike | None = None,
                     input_path: str | os.PathLike | None = None) -> Figure:
    """Four panels: (a) Bragg-vector map (detector offsets of all detected spots, log counts) with the fitted
    (solid) and stated (dashed) ellipses of the most populated rings; (b) radial profile of the spots, ``|q|`` with
    the stated and the fitted calibration, against the phase's ring radii; (c) ring scale per detector direction
    (−90° to 90°, the range of ``ellipticity_angle_deg``) with the fitted ellipse and its long axis; (d) residuals
    of the joint fit with orientations (px). A ``.png`` written to ``path`` records ``input_path`` (absolute, JSON
    text) in its text chunks (:data:`stemgrains.io.outputs.IMAGE_INPUT_KEY`, with ``stemgrains_figure`` =
    ``calibration``), which :func:`stemgrains.io.outputs.recorded_input` reads."""
    diag = fit.diagnostics
    d = np.asarray(diag["offsets"])
    m_stated = np.asarray(diag["stated_matrix"])
    m_fit = np.asarray(diag.get("fitted_matrix", m_stated))
    fig = Figure(figsize=(12.0, 9.0), layout="constrained")
    axs = fig.subplots(2, 2)

    ax = axs[0, 0]
    if len(d):
        lim = float(np.max(np.abs(d))) + 2
        h, xe, ye = np.histogram2d(d[:, 0], d[:, 1], bins=160, range=[[-lim, lim], [-lim, lim]])
        ax.imshow(np.log1p(h.T), extent=(xe[0], xe[-1], ye[-1], ye[0]), cmap="gray_r", interpolation="nearest")
        t = np.linspace(0, 2 * np.pi, 361)
        for k, g in enumerate(_strong_rings(fit)):
            circ = g * np.stack([np.cos(t), np.sin(t)], 1)
            e_fit = circ @ m_fit.T
            e_st = circ @ m_stated.T
            ax.plot(e_fit[:, 0], e_fit[:, 1], "-", color="C3", lw=0.9, label="fitted" if k == 0 else None)
            ax.plot(e_st[:, 0], e_st[:, 1], "--", color="C0", lw=0.7, label="stated" if k == 0 else None)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    else:
        _panel_note(ax, "no spot detected in the subsample")
    ax.set_xlabel("dcol (px)")
    ax.set_ylabel("drow (px)")
    ax.set_title("(a) Bragg-vector map and ring ellipses", fontsize=10)

    ax = axs[0, 1]
    radii = np.asarray(diag["ring_radii"])
    if len(d):
        qs = np.linalg.norm(d @ np.linalg.inv(m_stated).T, axis=1)
        qf = np.linalg.norm(d @ np.linalg.inv(m_fit).T, axis=1)
        hi = float(max(qs.max(), qf.max()))
        ax.hist(qs, bins=600, range=(0, hi), histtype="step", color="C0", lw=0.7, label="stated calibration")
        ax.hist(qf, bins=600, range=(0, hi), histtype="step", color="C3", lw=0.9, label="fitted calibration")
        for g in _strong_rings(fit, 8, 0.04):
            ax.axvline(g, color="k", lw=0.5, alpha=0.6)
        ax.set_xlim(0, hi)
        ax.legend(fontsize=8)
    else:
        _panel_note(ax, "no spot detected in the subsample")
    ax.set_xlabel("|q| (1/Å)")
    ax.set_ylabel("spots")
    ax.set_title(f"(b) radial profile; lines: {len(radii)} ring radii of the phase (most populated shown)", fontsize=10)

    _ring_scale_panel(axs[1, 0], fit, m_stated, m_fit)

    ax = axs[1, 1]
    joint = diag.get("orientations", {})
    res = np.asarray(joint.get("residuals", np.zeros((0, 2))))
    if len(res):
        r = float(np.percentile(np.linalg.norm(res, axis=1), 95)) * 1.3 + 0.1
        inside = np.all(np.abs(res) <= 0.97 * r, axis=1)  # a marker on the edge was drawn half cut
        ax.plot(res[inside, 0], res[inside, 1], ".", ms=3, alpha=0.6)
        ax.set_xlim(-r, r)
        ax.set_ylim(r, -r)
        ax.set_aspect("equal")
        n_off = int(np.sum(~inside))
        if n_off:
            ax.text(0.02, 0.02, f"{n_off} spot{'s' if n_off > 1 else ''} beyond ±{0.97 * r:.2f} px not shown",
                    transform=ax.transAxes, fontsize=8, va="bottom", ha="left", color="0.3")
        hist = joint.get("history", [])
        rms = hist[-1].get("rms_px", np.nan) if hist else np.nan
        ax.set_title(f"(d) joint fit residuals: {len(res)} spots, {hist[-1].get('patterns_used', 0) if hist else 0} "
                     f"patterns, rms {rms:.2f} px", fontsize=10)
    else:
        _panel_note(ax, joint.get("reason", "joint fit with orientations not run"))
        ax.set_title("(d) joint fit residuals", fontsize=10)
    ax.set_xlabel("dcol residual (px)")
    ax.set_ylabel("drow residual (px)")

    v, u = fit.values, fit.uncertainty
    if fit.values:
        head = ("" if fit.ok else "NOT APPLIED (it indexes no better than the stated calibration); the fit:\n") + (
                f"{fit.method}: q_pixel_size {v['q_pixel_size']:.5g} ± {u['q_pixel_size']:.2g} 1/Å/px "
                f"(stated {fit.stated.q_pixel_size:.5g}); ellipticity {v['ellipticity_ratio']:.4f} ± {u['ellipticity_ratio']:.4f} "
                f"at {v['ellipticity_angle_deg']:.1f} ± {u['ellipticity_angle_deg']:.1f}°")
    if not fit.values or fit.status == "undetermined":
        head = f"undetermined: {fit.reason}"
    set_wrapped_suptitle(fig, head)  # (one line ran off both edges of the figure)
    if path is not None:
        from ..io.results import atomic_savefig

        meta = None
        if input_path is not None and Path(path).suffix.lower() == ".png":
            import json

            from ..io.outputs import FIGURE_KIND_KEY, IMAGE_INPUT_KEY

            meta = {IMAGE_INPUT_KEY: json.dumps(str(Path(input_path).resolve())), FIGURE_KIND_KEY: "calibration"}
        atomic_savefig(fig, Path(path), dpi=120, metadata=meta)
    return fig
