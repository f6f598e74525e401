"""Does the phase (and the calibration) explain the patterns? The phase-fit check of an orientation map.

Every indexed pattern carries two spot-fit numbers (computed by :func:`stemgrains.index._cpu.solution_quality`
for the final solution):

- ``spot_fit_fraction``: the fraction of the *detected* spots that lie within ``fit_tolerance +
  fit_tolerance_rel·|q|`` of a spot the solution predicts (any allowed reflection within
  ``fit_excitation_window`` of the Ewald sphere). Positions only: no intensity enters, so dynamical intensities do
  not bias it. A right phase with a right calibration explains nearly every spot (median ≥ 0.9 on kinematic
  data); a wrong phase, or a pixel size / distortion a few % off, leaves many spots unexplained.
- ``spot_fit_residual``: the RMS distance (1/Å) of the explained spots to the predicted ones.

- ``spot_fit_chance``: the fraction of randomly placed spots the same solution would explain (a dense
  reciprocal lattice — long cell axes, low symmetry — explains much by chance); the fit is judged beyond it,
  (f − c)/(1 − c) (:func:`spot_fit_excess`).

The check (:func:`phase_fit_check`) summarises them per phase and warns, in one line per phase, when the median
fit beyond chance is below ``min_fraction``, or when a connected region of poorly explained patterns covers more
than ``max_poor_fraction`` of the map (a grain the phase cannot explain). This is the test the correlation index alone cannot make: a wrong phase can still find *some*
orientation whose template correlates with the pattern. Thresholds: :mod:`stemgrains.config`
(``PHASE_FIT_MIN_FRACTION``, ``PHASE_FIT_MAX_POOR_FRACTION``).

The idea of counting explained and unexplained reflections is that of automatic indexing by spot positions
(e.g. the "fraction of indexed reflections" of crystallographic auto-indexing, and the phase/orientation
reliability checks of ACOM, Rauch & Véron, Mater. Charact. 98 (2014) 1–9).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import config

__all__ = ["PhaseFit", "PhaseFitReport", "judged_phase_id", "phase_fit_check", "spot_fit_excess"]


@dataclass
class PhaseFit:
    """Spot-fit summary of one phase over its indexed patterns.

    Attributes
    ----------
    phase_id, name
    n_indexed : patterns indexed as this phase (all of them).
    n_judged : those of them the check judges: at least ``config.PHASE_FIT_MIN_SPOTS`` spots above the detection
        threshold (:func:`judged_phase_id`).
    median_fit_fraction : median spot fit beyond chance (:func:`spot_fit_excess`, 0–1).
    poor_fraction : fraction of its patterns poorly explained (spot fit beyond chance below the threshold).
    median_residual : median RMS distance of explained spots to predicted ones, 1/Å.
    median_correlation_index : median correlation index (0–1).
    ok : True when the phase explains its patterns.
    largest_poor_region : the largest connected region of poorly explained patterns, as a fraction of the indexed
        patterns.
    reliable_fraction : fraction of the judged patterns indexed with reliability ≥ ``config.PHASE_FIT_RELIABILITY``
        (NaN on maps without a reliability).
    """

    phase_id: int
    name: str
    n_indexed: int
    n_judged: int
    median_fit_fraction: float
    poor_fraction: float
    median_residual: float
    median_correlation_index: float
    ok: bool
    largest_poor_region: float = 0.0
    reliable_fraction: float = float("nan")


@dataclass
class PhaseFitReport:
    """Result of :func:`phase_fit_check`: one :class:`PhaseFit` per phase with indexed patterns, the thresholds,
    and one-line warnings (empty when every phase explains its patterns)."""

    phases: list[PhaseFit]
    min_fraction: float
    max_poor_fraction: float
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "min_fraction": self.min_fraction,
            "max_poor_fraction": self.max_poor_fraction,
            "phases": [asdict(p) for p in self.phases],
            "warnings": list(self.warnings),
        }


def spot_fit_excess(xmap: Any) -> np.ndarray:
    """Per pattern, the spot fit beyond chance, (f − c) / (1 − c): f the fraction of detected spots explained
    (``spot_fit_fraction``), c the fraction of randomly placed spots the same solution would explain
    (``spot_fit_chance``). 1: every spot explained; 0: no better than chance. NaN where not indexed."""
    f = np.asarray(xmap.prop["spot_fit_fraction"], dtype=float)
    # (indexing, not .get: on a cropped map only indexing returns the crop's values)
    c = np.asarray(xmap.prop["spot_fit_chance"], dtype=float) if "spot_fit_chance" in xmap.prop else np.zeros_like(f)
    out = (f - c) / np.maximum(1.0 - c, 1e-9)
    return np.where(np.asarray(xmap.phase_id) >= 0, out, np.nan)


def judged_phase_id(xmap: Any) -> np.ndarray:
    """The map's phase ids ``(n,)`` with −1 where the phase-fit check does not judge the pattern: not indexed, or
    fewer than ``config.PHASE_FIT_MIN_SPOTS`` spots above the detection threshold (``spot_fit_n_peaks``; fewer
    cannot show a misfit)."""
    pid = np.asarray(xmap.phase_id)
    if "spot_fit_n_peaks" in xmap.prop:
        pid = np.where(np.asarray(xmap.prop["spot_fit_n_peaks"]) >= config.PHASE_FIT_MIN_SPOTS, pid, -1)
    return pid


def phase_fit_check(xmap: Any, min_fraction: float | None = None, max_poor_fraction: float | None = None) -> PhaseFitReport:
    """Check that each phase of an indexed map explains its patterns' spots.

    Judged on the spot fit beyond chance (:func:`spot_fit_excess`) of the patterns with at least
    ``config.PHASE_FIT_MIN_SPOTS`` spots above the detection threshold (``spot_fit_n_peaks``; fewer cannot show a
    misfit); a pattern is *poorly explained* below ``min_fraction``. A phase fails when (a) its median is below ``min_fraction`` (the phase explains the patterns
    no better than a wrong lattice would: a wrong CIF or calibration), or (b) a connected region of its poorly
    explained patterns (8-neighbours) holds more than ``max_poor_fraction`` of the indexed patterns — a grain
    the phase cannot explain: a close but wrong structure, a missing phase, or a grain the search mis-indexed, or
    (c) it has at least ``config.PHASE_FIT_MIN_JUDGED`` judged patterns and fewer than
    ``config.PHASE_FIT_MIN_RELIABLE_FRACTION`` of them have reliability ≥ ``config.PHASE_FIT_RELIABILITY``: the
    spots are explained but by many orientations alike — a cell larger than the crystal's explains the few spots of
    a small cell anywhere (Na-β″ or ZrO₂ for Au data pass (a) with 82-100 % of the spots explained).

    Parameters
    ----------
    xmap
        orix ``CrystalMap`` from :func:`stemgrains.index.index_orientations` (props ``spot_fit_fraction``,
        ``spot_fit_chance``, ``spot_fit_residual``, ``correlation_index``). Maps without spot-fit props (imported
        .ang/.ctf) give an empty report.
    min_fraction
        Default ``config.PHASE_FIT_MIN_FRACTION``.
    max_poor_fraction
        Default ``config.PHASE_FIT_MAX_POOR_FRACTION``.

    Returns
    -------
    PhaseFitReport
    """
    from scipy import ndimage

    lo = config.PHASE_FIT_MIN_FRACTION if min_fraction is None else float(min_fraction)
    mx = config.PHASE_FIT_MAX_POOR_FRACTION if max_poor_fraction is None else float(max_poor_fraction)
    report = PhaseFitReport(phases=[], min_fraction=lo, max_poor_fraction=mx)
    if "spot_fit_fraction" not in xmap.prop:
        return report
    pid = judged_phase_id(xmap)
    exc = spot_fit_excess(xmap)
    res = np.asarray(xmap.prop["spot_fit_residual"], dtype=float)
    ci = np.asarray(xmap.prop["correlation_index"], dtype=float)
    reliability = np.asarray(xmap.prop["reliability"], dtype=float) if "reliability" in xmap.prop else None
    from .._grid import map_shape

    shape = map_shape(xmap)
    n_judged_all = max(int((pid >= 0).sum()), 1)  # the judged patterns of every phase
    step = float(xmap.dx) if getattr(xmap, "dx", 0) else 1.0
    for k, phase in xmap.phases_in_data:
        if k < 0:
            continue
        m = pid == k
        if not m.any():
            continue
        e = exc[m]
        med = float(np.median(e))
        poor_px = m & (exc < lo)
        regions, n_reg = ndimage.label(poor_px.reshape(shape), structure=np.ones((3, 3), int))
        sizes = np.bincount(regions.ravel())[1:] if n_reg else np.zeros(0, int)
        big = int(sizes.max()) if len(sizes) else 0
        largest = big / n_judged_all
        rel = float(np.mean(reliability[m] >= config.PHASE_FIT_RELIABILITY)) if reliability is not None else float("nan")
        ambiguous = int(m.sum()) >= config.PHASE_FIT_MIN_JUDGED and rel < config.PHASE_FIT_MIN_RELIABLE_FRACTION
        ok = med >= lo and largest <= mx and not ambiguous
        pf = PhaseFit(
            phase_id=int(k), name=str(phase.name), n_indexed=int((np.asarray(xmap.phase_id) == k).sum()),
            n_judged=int(m.sum()), median_fit_fraction=med,
            poor_fraction=float(np.mean(e < lo)), median_residual=float(np.median(res[m])),
            median_correlation_index=float(np.median(ci[m])), ok=ok, largest_poor_region=largest, reliable_fraction=rel,
        )
        report.phases.append(pf)
        if med < lo:
            report.warnings.append(
                f"phase {phase.name!r} does not explain the patterns: a median {100 * med:.0f}% of their spots beyond "
                f"chance lie at predicted positions (threshold {100 * lo:.0f}%); check the phase (CIF) and the "
                "calibration (pixel size, distortion)"
            )
        elif ambiguous:
            report.warnings.append(
                f"phase {phase.name!r} explains the spots but fixes no orientation: only {100 * rel:.0f}% of its "
                f"{int(m.sum())} patterns are indexed with reliability ≥ {config.PHASE_FIT_RELIABILITY:g} (a right phase "
                f"gave 21-99% on test scans): many orientations fit equally, as when the CIF's cell is larger than the "
                "crystal's (e.g. Na-β″ for Au); check the phase (CIF) and the calibration"
            )
        elif largest > mx:
            r, c = np.argwhere(regions == 1 + int(np.argmax(sizes))).mean(axis=0)
            report.warnings.append(
                f"phase {phase.name!r} leaves a region of {big} patterns ({100 * largest:.1f}% of the map, around "
                f"x = {c * step:.0f}, y = {r * step:.0f} {xmap.scan_unit}) poorly explained: a wrong or missing phase, "
                "or a grain the search mis-indexed (drawn in phase_fit.png: written by run, and by index --figures)"
            )
    return report


def write_phase_fit(group: Any, report: PhaseFitReport) -> None:
    """Record ``report`` as the JSON attribute ``phase_fit`` of an h5py group (``/orientation``)."""
    import json

    group.attrs["phase_fit"] = json.dumps(report.as_dict())
