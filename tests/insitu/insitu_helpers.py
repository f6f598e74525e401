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
    cls = classify_boundaries(gm, bt, field, conducting_phases=["nba"])  # a bare cell: named conducting
    with atomic_h5(path) as f:
        write_grains(f, gm)
        write_boundaries(f, bt)
        write_classification(f, cls)
        if electrodes:
            write_parameters(f, "transport", {"electrodes": {e: {"edge": e, "potential_V": float(i == 0)}
                                                             for i, e in enumerate(electrodes)}})
    return path, gm, bt, cls


#: Drift of the six-frame synthetic series (dy, dx) px, as in test_series.py.
DRIFT = np.array([[0, 0], [2.5, -3.2], [5.1, -4.0], [6.3, -7.7], [4.2, -9.9], [8.8, -6.1]])
FRAME_PIXEL = 0.5
FRAME_OFFSET = (-4.0, -8.0)
#: Centre line of the filament of :func:`filament_series`: x (nm) as a function of y (nm), along the vertical
#: boundary at x = 59 nm.
FILAMENT_Y = np.arange(0.0, 111.0, 8.0)


def filament_x(y):
    return 59.0 + 3.0 * np.sin(np.asarray(y, float) / 15.0)


def specimen_image(seed=0, pixel_nm=0.5):
    """A lamella as seen in HAADF on a ``pixel_nm`` grid (map frame, pixel (0, 0) at the origin): the four grains
    of :func:`four_grain_labels` with sharp contrast steps (levels 1, 1.4, 0.7, 1.2), an 8 % smooth texture, a hole
    (vacuum) of radius 9 nm at (95, 78) nm and twelve bright particles of radius 1.5 nm: edges of every kind."""
    from scipy import ndimage

    k = int(round(STEP / pixel_nm))
    lab = np.kron(four_grain_labels(), np.ones((k, k), int))
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.normal(size=lab.shape), 4.0)
    img = np.array([0, 1.0, 1.4, 0.7, 1.2])[lab] * (1 + 0.08 * tex / tex.std())
    rr, cc = np.mgrid[0 : lab.shape[0], 0 : lab.shape[1]] * pixel_nm
    img[np.hypot(cc - 95, rr - 78) < 9] = 0.05
    for x, y in rng.uniform(5, 95, size=(12, 2)):
        img += 0.8 * (np.hypot(cc - x, rr - y) < 1.5)
    return img


def filament_series(seed=1, amplitude=3.0, first_frame=2, with_filament=True, **kw):
    """Six drifting frames (256², 0.5 nm pixels, :data:`DRIFT`) of :func:`specimen_image` in which, from
    ``first_frame`` on, a bright filament grows along the vertical boundary (a chain of Gaussian blobs, σ 2 nm
    + 1 nm per frame, ``amplitude`` × the mean level): it covers 6, 10, 14, 18 % of the field in frames 2–5 at
    4–6 × the background. Returns ``(frames, drift)``."""
    from stemgrains.simulate.series import PlantedEvent, simulate_series

    ev = [PlantedEvent(float(filament_x(y)), float(y), first_frame, amplitude=amplitude, radius_nm=2.0, growth_nm=1.0)
          for y in FILAMENT_Y] if with_filament else []
    opts = dict(n_frames=6, shape=(256, 256), pixel_size_nm=FRAME_PIXEL, offset_nm=FRAME_OFFSET, drift_px=DRIFT,
                base_image=specimen_image(seed), base_pixel_nm=0.5, seed=seed)
    opts.update(kw)
    return simulate_series(ev, **opts)
