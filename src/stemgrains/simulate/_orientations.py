"""Grain orientations chosen by what the beam sees: a zone axis (maybe tilted off it), a c-axis angle, or random.

All orientations follow the orix convention (``v_crystal = O v_sample``, scalar-first quaternions) with the
beam along +z of the sample frame (docs/conventions.md), so the beam direction in the crystal frame is
``O ẑ`` = the third column of O's matrix.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from orix.quaternion import Rotation

from ..errors import ParameterError
from ._microstructure import random_quaternions

__all__ = ["beam_direction_quaternion", "zone_axis_quaternion", "c_axis_quaternion", "designed_orientations"]


def beam_direction_quaternion(
    u_crystal: np.ndarray, inplane_deg: float = 0.0, tilt_deg: float = 0.0, tilt_axis_deg: float = 0.0
) -> np.ndarray:
    """(4,) quaternion putting the Cartesian crystal direction ``u_crystal`` along the beam (+z_s), turned by
    ``inplane_deg`` about the beam, then tilted by ``tilt_deg`` about the in-plane sample axis at
    ``tilt_axis_deg`` from +x toward +y (so the beam ends ``tilt_deg`` away from ``u_crystal``)."""
    u = np.asarray(u_crystal, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(u)
    if not np.isfinite(norm) or norm == 0:
        raise ParameterError(f"beam direction must be a non-zero 3-vector, got {u_crystal!r}")
    u = u / norm
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, u)
    x /= np.linalg.norm(x)
    y = np.cross(u, x)
    # v_c = R v_s: the columns of R are the sample axes written in the crystal frame; z_s -> u
    O = Rotation.from_matrix(np.column_stack([x, y, u]))
    O = O * Rotation.from_axes_angles([0, 0, 1], math.radians(inplane_deg))
    if tilt_deg:
        t = math.radians(tilt_axis_deg)
        O = O * Rotation.from_axes_angles([math.cos(t), math.sin(t), 0.0], math.radians(tilt_deg))
    q = O.data.reshape(4).copy()
    return q if q[0] >= 0 else -q


def zone_axis_quaternion(phase: Any, uvw, inplane_deg: float = 0.0, tilt_deg: float = 0.0, tilt_axis_deg: float = 0.0):
    """:func:`beam_direction_quaternion` for the lattice direction [uvw] (three indices) of an orix phase."""
    base = np.asarray(phase.structure.lattice.base, dtype=np.float64)  # rows a, b, c (orix frame)
    return beam_direction_quaternion(np.asarray(uvw, dtype=np.float64) @ base, inplane_deg, tilt_deg, tilt_axis_deg)


def c_axis_quaternion(c_angle_deg: float, azimuth_deg: float = 0.0, inplane_deg: float = 0.0) -> np.ndarray:
    """Quaternion whose c-axis (crystal e3) makes ``c_angle_deg`` with the beam: 0 = c ∥ beam, 90 = edge-on
    (c in the specimen plane). ``azimuth_deg`` turns the beam about c in the crystal frame (from e1)."""
    t, p = math.radians(c_angle_deg), math.radians(azimuth_deg)
    return beam_direction_quaternion([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)], inplane_deg)


def designed_orientations(phase: Any, spec: list, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Per-grain orientations from a list of specs (one per grain), random parts drawn from ``rng``.

    Specs: ``("random",)``; ``("zone", (u, v, w), tilt_deg)`` (random in-plane angle and tilt axis);
    ``("c_angle", deg)`` (random azimuth about c and in-plane angle). Returns ((n, 4) quaternions, labels).
    """
    out, labels = [], []
    for s in spec:
        kind = s[0]
        if kind == "random":
            out.append(random_quaternions(1, rng)[0])
            labels.append("random")
        elif kind == "zone":
            uvw, tilt = s[1], float(s[2])
            out.append(zone_axis_quaternion(phase, uvw, rng.uniform(0, 360), tilt, rng.uniform(0, 360)))
            labels.append(f"zone [{' '.join(str(int(i)) for i in uvw)}] tilted {tilt:g} deg")
        elif kind == "c_angle":
            out.append(c_axis_quaternion(float(s[1]), rng.uniform(0, 360), rng.uniform(0, 360)))
            labels.append(f"c-axis {float(s[1]):g} deg from the beam")
        else:
            raise ParameterError(f"unknown orientation spec {s!r}; expected random, zone or c_angle")
    return np.array(out), labels
