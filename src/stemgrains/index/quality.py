"""Does the phase (and the calibration) explain the patterns? The phase-fit check of an orientation map.

Every indexed pattern carries two spot-fit numbers (computed by :func:`stemgrains.index._cpu.solution_quality`
for the final solution):

- ``spot_fit_fraction``: the fraction of the *detected* spots that lie within ``fit_tolerance +
  fit_tolerance_rel·|q|`` of a spot the solution predicts (any allowed reflection within
  ``fit_excitation_window`` of the Ewald sphere). Positions only: no intensity enters, so dynamical intensities do
  not bias it. A right phase with a right calibration explains nearly every spot (median ≥ 0.9 on kinematic
  data); a wrong phase, or a pixel size / distortion a few % off, leaves many spots unexplained.
- ``spot_fit_residual``: the RMS distance (1/Å) of the explained spots to the predicted ones.

The check (:func:`phase_fit_check`) summarises them per phase and warns, in one line per phase, when more than
``max_poor_fraction`` of its indexed patterns have a spot-fit fraction below ``min_fraction`` (or the median is
below it). This is the test the correlation index alone cannot make: a wrong phase can still find *some*
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

__all__ = ["PhaseFit", "PhaseFitReport", "phase_fit_check"]


@dataclass
class PhaseFit:
    """Spot-fit summary of one phase over its indexed patterns.

    Attributes
    ----------
    phase_id, name
    n_indexed : patterns indexed as this phase.
    median_fit_fraction : median fraction of detected spots explained (0–1).
    poor_fraction : fraction of its patterns with a spot-fit fraction below the threshold.
    median_residual : median RMS distance of explained spots to predicted ones, 1/Å.
    median_correlation_index : median correlation index (0–1).
    ok : True when the phase explains its patterns.
    """

    phase_id: int
    name: str
    n_indexed: int
    median_fit_fraction: float
    poor_fraction: float
    median_residual: float
    median_correlation_index: float
    ok: bool


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


def phase_fit_check(xmap: Any, min_fraction: float | None = None, max_poor_fraction: float | None = None) -> PhaseFitReport:
    """Check that each phase of an indexed map explains its patterns' spots.

    Parameters
    ----------
    xmap
        orix ``CrystalMap`` from :func:`stemgrains.index.index_orientations` (props ``spot_fit_fraction``,
        ``spot_fit_residual``, ``correlation_index``). Maps without spot-fit props (imported .ang/.ctf) give an
        empty report.
    min_fraction
        A pattern is poorly fit below this spot-fit fraction (default ``config.PHASE_FIT_MIN_FRACTION``).
    max_poor_fraction
        A phase fails when more of its patterns than this are poorly fit, or its median is poorly fit
        (default ``config.PHASE_FIT_MAX_POOR_FRACTION``).

    Returns
    -------
    PhaseFitReport
    """
    lo = config.PHASE_FIT_MIN_FRACTION if min_fraction is None else float(min_fraction)
    mx = config.PHASE_FIT_MAX_POOR_FRACTION if max_poor_fraction is None else float(max_poor_fraction)
    report = PhaseFitReport(phases=[], min_fraction=lo, max_poor_fraction=mx)
    if "spot_fit_fraction" not in xmap.prop:
        return report
    pid = np.asarray(xmap.phase_id)
    fit = np.asarray(xmap.prop["spot_fit_fraction"], dtype=float)
    res = np.asarray(xmap.prop["spot_fit_residual"], dtype=float)
    ci = np.asarray(xmap.prop["correlation_index"], dtype=float)
    for k, phase in xmap.phases_in_data:
        if k < 0:
            continue
        m = pid == k
        if not m.any():
            continue
        f = fit[m]
        med = float(np.median(f))
        poor = float(np.mean(f < lo))
        ok = med >= lo and poor <= mx
        pf = PhaseFit(
            phase_id=int(k), name=str(phase.name), n_indexed=int(m.sum()), median_fit_fraction=med, poor_fraction=poor,
            median_residual=float(np.median(res[m])), median_correlation_index=float(np.median(ci[m])), ok=ok,
        )
        report.phases.append(pf)
        if not ok:
            report.warnings.append(
                f"phase {phase.name!r} does not explain the patterns: {100 * poor:.0f}% of its {pf.n_indexed} indexed "
                f"patterns have fewer than {100 * lo:.0f}% of their spots at predicted positions (median {100 * med:.0f}%); "
                "check the phase (CIF) and the calibration (pixel size, distortion)"
            )
    return report


def write_phase_fit(group: Any, report: PhaseFitReport) -> None:
    """Record ``report`` as the JSON attribute ``phase_fit`` of an h5py group (``/orientation``)."""
    import json

    group.attrs["phase_fit"] = json.dumps(report.as_dict())
