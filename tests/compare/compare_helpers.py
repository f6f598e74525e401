"""Two synthetic scans of one area: a Voronoi field, cropped at two places, one grain turned in the second.

Imported by the tests as a plain module (tests/compare is on sys.path under pytest's default import mode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from orix.crystal_map import CrystalMap, PhaseList
from orix.quaternion import Rotation

from stemgrains.boundaries import classify_boundaries, extract_boundaries, write_boundaries, write_classification
from stemgrains.grains import segment_grains, write_grains
from stemgrains.io import write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance

STEP = 2.0


def field(shape: tuple[int, int], n_grains: int, seed: int, min_sep: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi labels 1..n of ``shape`` (seeds at least ``min_sep`` px apart) and one random orientation
    ``(n, 4)`` per grain."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    seeds: list[np.ndarray] = []
    while len(seeds) < n_grains:
        s = rng.uniform([0, 0], [ny, nx])
        if all(np.hypot(*(s - t)) >= min_sep for t in seeds):
            seeds.append(s)
    sd = np.array(seeds)
    rr, cc = np.indices(shape)
    lab = np.argmin((rr[..., None] - sd[:, 0]) ** 2 + (cc[..., None] - sd[:, 1]) ** 2, axis=-1) + 1
    q = rng.normal(size=(n_grains, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return lab.astype(np.int32), q


def crystal_map(q: np.ndarray, phase, valid: np.ndarray | None = None) -> CrystalMap:
    """A CrystalMap of per-pixel quaternions ``(ny, nx, 4)``; ``valid`` False pixels are not indexed."""
    ny, nx = q.shape[:2]
    rr, cc = np.indices((ny, nx))
    pid = np.zeros(ny * nx, int) if valid is None else np.where(valid.ravel(), 0, -1)
    return CrystalMap(rotations=Rotation(q.reshape(-1, 4)), phase_id=pid, x=cc.ravel() * STEP, y=rr.ravel() * STEP,
                      phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm",
                      prop={"reliability": np.full(ny * nx, 50.0)})


def write_results(path: Path, xmap: CrystalMap, *, grains: bool = True, field_xy=(1.0, 0.0),
                  small_grains: str = "unassign") -> Path:
    """A results file as `stemgrains run` lays it out (orientation, grains, boundaries, classification), or
    index-only (``grains=False``)."""
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
        if grains:
            gm = segment_grains(xmap, min_grain_size=2, small_grains=small_grains)
            bt = extract_boundaries(gm, xmap)
            write_grains(f, gm)
            write_boundaries(f, bt)
            write_classification(f, classify_boundaries(gm, bt, field_xy))
    return path


def rotate_about(q: np.ndarray, axis, angle_deg: float) -> np.ndarray:
    """Orientations ``(n, 4)`` turned by ``angle_deg`` about the sample axis ``axis``: O · R⁻¹ (a rotation of the
    crystal in the sample frame; orix convention v_crystal = O · v_sample)."""
    r = Rotation.from_axes_angles(np.asarray(axis, float), np.radians(angle_deg))
    return (Rotation(q) * ~r).data


def specimen_grid(a: np.ndarray, turn: int = 0, flip: bool = False) -> np.ndarray:
    """The grid change of :func:`two_scans`' second scan applied to an array (for checking a found op)."""
    a = a[::-1] if flip else a
    for _ in range(turn % 4):
        a = np.rot90(a, -1, axes=(0, 1))
    return a


def two_scans(tmp: Path, phase, *, shape=(32, 32), n_grains=14, seed=5, offset=(3, -2), turned_grain=None,
              turn_deg=3.0, turn_axis=(1.0, 2.0, 0.5), grains=True, specimen_turn: int = 0,
              specimen_flip: bool = False):
    """Scan 1 = field[4:4+ny, 4:4+nx]; scan 2 = the window moved by ``offset`` (so scan-1 pixel p is scan-2
    pixel p − offset... see ``expected_shift``), grain ``turned_grain`` (field label, default the one at the
    centre) turned by ``turn_deg`` about ``turn_axis``; scan 2 optionally taken with the specimen turned by
    ``specimen_turn`` × 90° about z (from +x toward +y), after turning it over about x when ``specimen_flip``.
    Returns (path1, path2, field labels, turned label, expected shift)."""
    ny, nx = shape
    big = (ny + 8 + abs(offset[0]) * 2, nx + 8 + abs(offset[1]) * 2)
    lab, gq = field(big, n_grains, seed)
    r0, c0 = 4 + abs(offset[0]), 4 + abs(offset[1])
    w1 = (slice(r0, r0 + ny), slice(c0, c0 + nx))
    w2 = (slice(r0 + offset[0], r0 + offset[0] + ny), slice(c0 + offset[1], c0 + offset[1] + nx))
    turned = int(lab[r0 + ny // 2, c0 + nx // 2]) if turned_grain is None else turned_grain
    gq2 = gq.copy()
    gq2[turned - 1] = rotate_about(gq[turned - 1:turned], turn_axis, turn_deg)[0]
    q1 = gq[lab[w1] - 1]
    q2 = gq2[lab[w2] - 1]
    if specimen_flip:
        # turned over about x (180°: y -> −y, z -> −z): rows reversed, O' = O · Rx(180°)⁻¹
        q2 = rotate_about(q2[::-1].reshape(-1, 4), (1, 0, 0), 180.0).reshape(q2.shape)
    if specimen_turn % 4:
        # the specimen turned by +90° about z (x -> y) per step: new grid = np.rot90(old, -1), O' = O · Rz⁻¹
        for _ in range(specimen_turn % 4):
            q2 = np.rot90(q2, -1, axes=(0, 1))
            q2 = rotate_about(q2.reshape(-1, 4), (0, 0, 1), 90.0).reshape(q2.shape)
    p1 = write_results(tmp / "scan1.h5", crystal_map(q1, phase), grains=grains)
    p2 = write_results(tmp / "scan2.h5", crystal_map(np.ascontiguousarray(q2), phase), grains=grains)
    # scan-1 pixel p is field pixel p + (r0, c0); scan-2 pixel p' is field pixel p' + (r0, c0) + offset
    expected = (-offset[0], -offset[1])
    return p1, p2, lab[w1], turned, expected
