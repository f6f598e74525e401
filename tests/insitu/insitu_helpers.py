"""A small Na-β″-like lamella results file with known boundaries, for the in-situ tests."""

from __future__ import annotations

import numpy as np
from diffpy.structure import Lattice, Structure
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.boundaries import classify_boundaries, extract_boundaries, write_boundaries, write_classification
from stemgrains.grains import segment_grains, write_grains
from stemgrains.io.results import atomic_h5, write_parameters

STEP = 2.0


def four_grain_labels(ny: int = 50, nx: int = 60) -> np.ndarray:
    """Grains 1 (top left), 2 (bottom left), 3 (top right), 4 (bottom right); the vertical boundary at column
    29.5, the left horizontal one at row 24.5, the right one at row 34.5: triple junctions at (24.5, 29.5) and
    (34.5, 29.5) (row, col)."""
    lab = np.zeros((ny, nx), np.int32)
    r, c = np.mgrid[0:ny, 0:nx]
    lab[(c < 30) & (r < 25)] = 1
    lab[(c < 30) & (r >= 25)] = 2
    lab[(c >= 30) & (r < 35)] = 3
    lab[(c >= 30) & (r >= 35)] = 4
    return lab


def write_lamella(path, labels=None, euler_deg=None, field=(1, 0), electrodes=("left", "right")):
    """Grains → boundaries → classification of a trigonal phase written to a results file; returns its path."""
    labels = four_grain_labels() if labels is None else labels
    n = int(labels.max())
    if euler_deg is None:
        euler_deg = [(0, 90, 0), (0, 90, 90), (30, 20, 10), (90, 60, 45)][:n]
    rot = Rotation.from_euler(np.radians(np.asarray(euler_deg, float)))
    phase = Phase(name="nba", point_group="-3m", structure=Structure(lattice=Lattice(5.6, 5.6, 33.5, 90, 90, 120)))
    ny, nx = labels.shape
    rr, cc = np.indices((ny, nx))
    xmap = CrystalMap(rotations=rot[labels.ravel() - 1], phase_id=np.zeros(labels.size, int), x=cc.ravel() * STEP,
                      y=rr.ravel() * STEP, phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm")
    gm = segment_grains(xmap, min_grain_size=1, threshold_deg=0.5)
    bt = extract_boundaries(gm, xmap)
    cls = classify_boundaries(gm, bt, field)
    with atomic_h5(path) as f:
        write_grains(f, gm)
        write_boundaries(f, bt)
        write_classification(f, cls)
        if electrodes:
            write_parameters(f, "transport", {"electrodes": {e: {"edge": e, "potential_V": float(i == 0)}
                                                             for i, e in enumerate(electrodes)}})
    return path, gm, bt, cls
