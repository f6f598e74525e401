"""GrainMaps with known boundary geometry for the boundary tests (built directly from label images)."""

from __future__ import annotations

import numpy as np
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.grains import segment_grains


def xmap_from_labels(labels: np.ndarray, grain_q: np.ndarray, point_group: str = "m-3m", step: float = 2.0,
                     phase_of_grain: np.ndarray | None = None, phases: list[Phase] | None = None) -> CrystalMap:
    """A noise-free CrystalMap whose pixels carry the orientation of their grain (labels 1..n)."""
    ny, nx = labels.shape
    rr, cc = np.indices((ny, nx))
    q = np.asarray(grain_q)[labels.ravel() - 1]
    pid = np.zeros(labels.size, int) if phase_of_grain is None else np.asarray(phase_of_grain)[labels.ravel() - 1]
    phases = phases or [Phase(name="p", point_group=point_group)]
    return CrystalMap(rotations=Rotation(q), phase_id=pid, x=cc.ravel() * step, y=rr.ravel() * step,
                      phase_list=PhaseList(phases=phases, ids=list(range(len(phases)))), scan_unit="nm")


def grain_map_from_labels(labels, grain_q=None, point_group="m-3m", step=2.0, **kw):
    """(GrainMap, xmap) of a label image; grain orientations random (seeded) unless given."""
    n = int(labels.max())
    if grain_q is None:
        rng = np.random.default_rng(0)
        grain_q = rng.normal(size=(n, 4))
        grain_q /= np.linalg.norm(grain_q, axis=1, keepdims=True)
    xmap = xmap_from_labels(labels, grain_q, point_group, step, **kw)
    gm = segment_grains(xmap, min_grain_size=1, threshold_deg=0.01)
    return gm, xmap
