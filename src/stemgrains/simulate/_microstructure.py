"""Grain maps and orientations for synthetic polycrystals (all randomness from a caller's numpy Generator)."""

from __future__ import annotations

import math

import numpy as np
from orix.quaternion import Rotation
from scipy.spatial import cKDTree

from ..errors import ParameterError

__all__ = ["voronoi_labels", "random_quaternions", "scatter_quaternions", "paint_disks"]


def voronoi_labels(scan_shape: tuple[int, int], n_grains: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi grain map: each scan pixel takes the label (1..n) of its nearest seed point.

    Seeds are uniform in the scan area (pixel units). Returns (ny, nx) int32. Labels whose seed owns no
    pixel (possible for many grains on a small scan) are simply absent.
    """
    ny, nx = scan_shape
    n = int(n_grains)
    if n < 1:
        raise ParameterError(f"n_grains must be >= 1, got {n_grains!r}")
    seeds = rng.uniform(0.0, 1.0, size=(n, 2)) * np.array([ny, nx], dtype=float) - 0.5
    rr, cc = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    _, idx = cKDTree(seeds).query(np.column_stack([rr.ravel(), cc.ravel()]))
    return (np.asarray(idx, dtype=np.int32) + 1).reshape(ny, nx)


def paint_disks(
    labels: np.ndarray, n_disks: int, radius_px: float, rng: np.random.Generator, first_label: int | None = None
) -> np.ndarray:
    """Copy of ``labels`` with ``n_disks`` round particles (new labels first_label, first_label + 1, …)
    of radius ``radius_px`` painted at uniform random centres (later disks overwrite earlier ones)."""
    out = np.array(labels, dtype=np.int32, copy=True)
    ny, nx = out.shape
    start = int(out.max()) + 1 if first_label is None else int(first_label)
    rr, cc = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    centres = rng.uniform(0.0, 1.0, size=(int(n_disks), 2)) * np.array([ny, nx], dtype=float)
    for i, (r0, c0) in enumerate(centres):
        out[(rr - r0) ** 2 + (cc - c0) ** 2 <= radius_px**2] = start + i
    return out


def random_quaternions(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) unit quaternions uniform on SO(3), scalar first with a ≥ 0.

    A normalised 4-D standard normal vector is uniform on S³ (Haar measure on SO(3)); the same method as
    ``orix.quaternion.Rotation.random``, but drawn from the given Generator so a seed reproduces it
    (orix draws from numpy's global state).
    """
    q = rng.standard_normal((int(n), 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return q


def scatter_quaternions(quaternions: np.ndarray, sigma_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Each orientation O composed with a small random rotation ΔR applied first in the sample frame
    (O' = O ΔR, so ``v_crystal = O ΔR v_sample``): ΔR has a uniform random axis and a normal angle of
    standard deviation ``sigma_deg``. Input (..., 4), output (..., 4), scalar first, a ≥ 0."""
    q = np.asarray(quaternions, dtype=np.float64)
    shape = q.shape[:-1]
    n = int(np.prod(shape))
    axes = rng.standard_normal((n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.normal(0.0, math.radians(float(sigma_deg)), size=n)
    dq = np.column_stack([np.cos(angles / 2), np.sin(angles / 2)[:, None] * axes])
    out = (Rotation(q.reshape(n, 4)) * Rotation(dq)).data
    out[out[:, 0] < 0] *= -1
    return out.reshape(shape + (4,))
