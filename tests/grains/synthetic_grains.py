"""Synthetic polycrystal orientation maps with known grains (Voronoi cells, random orientations, noise).

Imported by the tests as a plain module (tests/grains is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import numpy as np
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation


def voronoi_labels(shape: tuple[int, int], n_seeds: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi label image (1..n_seeds) of random seed points; ties go to the lower seed index."""
    ny, nx = shape
    seeds = rng.uniform([0, 0], [ny, nx], size=(n_seeds, 2))
    rr, cc = np.indices(shape)
    d2 = (rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2
    return (np.argmin(d2, axis=-1) + 1).astype(np.int32)


def noisy_rotations(true_q: np.ndarray, noise_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel rotations: ``true_q`` (n, 4) composed with a random rotation of angle ~|N(0, noise_deg)|."""
    n = len(true_q)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    ang = np.radians(np.abs(rng.normal(0.0, noise_deg, size=n)))
    noise = Rotation.from_axes_angles(axes, ang)
    return (noise * Rotation(true_q)).data


def make_xmap(q: np.ndarray, phase_id: np.ndarray, phases: list[Phase], step: float = 2.0, unit: str = "nm",
              prop: dict | None = None) -> CrystalMap:
    ny, nx = phase_id.shape
    rr, cc = np.indices((ny, nx))
    return CrystalMap(
        rotations=Rotation(q.reshape(-1, 4)),
        phase_id=phase_id.ravel(),
        x=cc.ravel() * step,
        y=rr.ravel() * step,
        phase_list=PhaseList(phases=phases, ids=list(range(len(phases)))),
        prop={k: np.asarray(v).ravel() for k, v in (prop or {}).items()},
        scan_unit=unit,
    )


def random_quaternions(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed unit quaternions (normalised 4-D Gaussians), w ≥ 0."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


def separated_orientations(n: int, phase: Phase, min_angle_deg: float, rng: np.random.Generator) -> np.ndarray:
    """n random orientations, pairwise disorientations ≥ min_angle_deg (rejection sampling)."""
    from stemgrains.crystal.symmetry import disorientation_angle_reference as misorientation_angle_reference

    sym = phase.point_group.laue.proper_subgroup.data
    out: list[np.ndarray] = []
    while len(out) < n:
        q = random_quaternions(1, rng)
        if not out or misorientation_angle_reference(np.array(out), np.repeat(q, len(out), 0), sym).min() >= np.radians(
            min_angle_deg
        ):
            out.append(q[0])
    return np.array(out)


def synthetic_polycrystal(shape=(80, 100), n_grains=25, noise_deg=1.0, point_group="m-3m", seed=0, min_angle_deg=15.0):
    """(xmap, true_labels, true_quaternions per grain) of a one-phase Voronoi polycrystal.

    Grain orientations are random with pairwise disorientations ≥ ``min_angle_deg``; each pixel gets its grain's
    orientation composed with a random rotation of angle |N(0, noise_deg)| about a random axis."""
    rng = np.random.default_rng(seed)
    labels = voronoi_labels(shape, n_grains, rng)
    phase = Phase(name="test", point_group=point_group)
    grain_q = separated_orientations(n_grains, phase, min_angle_deg, rng)
    q = noisy_rotations(grain_q[labels.ravel() - 1], noise_deg, rng).reshape(*shape, 4)
    xmap = make_xmap(q, np.zeros(shape, dtype=int), [phase])
    return xmap, labels, grain_q


