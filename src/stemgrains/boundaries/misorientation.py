"""Misorientation of boundaries: disorientation angle/axis (orix), Miller indices, CSL Σ, special misorientations.

The misorientation of boundary A|B is ``M = O_B · O_A⁻¹`` (crystal A → crystal B, orix convention), reduced
with orix into the fundamental zone of the symmetry pair (proper rotations of the Laue group of the phase): the
disorientation. Its axis is given in the crystal frame of A, Cartesian and as direction indices (``[uvw]``, or
Miller–Bravais ``[UVTW]`` for hexagonal/trigonal phases). Boundaries between different phases get NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from orix.quaternion import Orientation, Rotation
from orix.vector import Miller

from .. import config
from ..crystal import is_hexagonal_like
from ..errors import ParameterError
from .._grid import map_arrays
from ..crystal.symmetry import disorientation_angle, laue_group, laue_rotations, proper_laue_group
from ._kernels import min_angle_equivalent, misorientation_distance
from .csl import match_csl

__all__ = [
    "SpecialMisorientation",
    "parse_special",
    "parse_specials",
    "check_special_axes",
    "special_quaternion",
    "disorientation",
    "axis_indices",
    "boundary_misorientations",
    "pair_misorientation_angles",
    "random_disorientation_angles",
]


class SpecialMisorientation(NamedTuple):
    """A user-defined special misorientation: rotation of ``angle_deg`` about crystal direction ``axis``
    (``[uvw]`` or Miller–Bravais ``[UVTW]``), matched within ``tolerance_deg`` (misorientation distance)."""

    name: str
    angle_deg: float
    axis: tuple[float, ...]
    tolerance_deg: float = 5.0


def parse_special(spec: Any, *, check_sum: bool = True) -> SpecialMisorientation:
    """A special misorientation from a tuple ``(name, angle, axis, tol)`` or text ``"NAME:ANGLE:U,V,W:TOL"``
    (``U,V,T,W`` for Miller–Bravais; ``:TOL`` optional, default 5°). ``check_sum=False`` leaves out the check
    ``U + V + T = 0`` of a Miller–Bravais axis, which :func:`check_special_axes` makes once the phases are known
    (a 4-index axis for no hexagonal/trigonal phase is refused first, as the more basic error)."""
    if isinstance(spec, SpecialMisorientation):
        out = spec
    elif isinstance(spec, str):
        out = _parse_special_text(spec)
    else:
        try:
            out = SpecialMisorientation(str(spec[0]), float(spec[1]), tuple(float(v) for v in spec[2]),
                                        float(spec[3]) if len(spec) > 3 else 5.0)
        except (TypeError, ValueError, IndexError):
            raise ParameterError(f"special misorientation {spec!r}: expected (name, angle_deg, axis, tolerance_deg)") from None
    label = repr(spec) if isinstance(spec, str) else repr(out.name)  # the spec as typed, where it was text
    if not str(out.name).strip():
        raise ParameterError(f"special misorientation {spec!r}: NAME is empty; expected {SPECIAL_GRAMMAR}")
    if len(out.axis) not in (3, 4) or not np.any(out.axis):
        raise ParameterError(f"special misorientation {label}: axis needs 3 (uvw) or 4 (UVTW) indices, not all 0, "
                             f"got {out.axis!r}; expected {SPECIAL_GRAMMAR}")
    if check_sum and len(out.axis) == 4 and abs(out.axis[0] + out.axis[1] + out.axis[2]) > 1e-9:
        u, v, t = out.axis[:3]
        raise ParameterError(f"special misorientation {label}: Miller–Bravais axis needs U + V + T = 0, got "
                             f"{u:g} + {v:g} + {t:g} = {u + v + t:g}; expected {SPECIAL_GRAMMAR}")
    if not (np.isfinite(out.angle_deg) and 0 <= out.angle_deg <= 180):
        raise ParameterError(f"special misorientation {label}: ANGLE must be in [0, 180] degrees, got "
                             f"{out.angle_deg:g}; expected {SPECIAL_GRAMMAR}")
    if not np.all(np.isfinite(out.axis)):
        raise ParameterError(f"special misorientation {label}: axis indices must be finite, got {out.axis!r}; "
                             f"expected {SPECIAL_GRAMMAR}")
    if not (np.isfinite(out.tolerance_deg) and out.tolerance_deg > 0):
        raise ParameterError(f"special misorientation {label}: TOL must be a finite number > 0 degrees, "
                             f"got {out.tolerance_deg:g}; expected {SPECIAL_GRAMMAR}")
    return out


#: the text form of a special misorientation, as the errors state it
SPECIAL_GRAMMAR = ("NAME:ANGLE:U,V,W[:TOL] (ANGLE, TOL in degrees, TOL default 5; axis [uvw] or Miller–Bravais "
                   "U,V,T,W), e.g. twin:86.3:1,1,-2,0:5")


def _parse_special_text(spec: str) -> SpecialMisorientation:
    """``"NAME:ANGLE:U,V,W[:TOL]"`` → :class:`SpecialMisorientation` (values not range-checked), or a one-line
    ParameterError naming the spec, the part that is wrong and :data:`SPECIAL_GRAMMAR`."""
    def bad(what: str) -> ParameterError:
        return ParameterError(f"special misorientation {spec!r}: {what}; expected {SPECIAL_GRAMMAR}")

    parts = spec.split(":")
    if len(parts) not in (3, 4):
        raise bad("no ':' between its parts" if len(parts) == 1 else f"{len(parts)} parts separated by ':', not 3 or 4")
    name, angle, axis_text = parts[0], parts[1], parts[2]
    if not name.strip():
        raise bad("NAME is empty")

    def number(text: str, what: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise bad(f"{what} {text!r} is not a number") from None

    indices = axis_text.split(",")
    axis = tuple(number(v, f"axis {axis_text!r}: index") for v in indices)
    if len(axis) not in (3, 4):
        raise bad(f"axis {axis_text!r} has {len(axis)} {'index' if len(axis) == 1 else 'indices'}, not 3 or 4")
    if not any(axis):
        raise bad(f"axis {axis_text!r} is all zeros")
    tol = number(parts[3], "TOL") if len(parts) == 4 else 5.0
    return SpecialMisorientation(name, number(angle, "ANGLE"), axis, tol)


def parse_specials(specs: Sequence[Any] | None, *, check_sum: bool = True) -> list[SpecialMisorientation]:
    """Several special misorientations (each as :func:`parse_special` takes it) with distinct names: a boundary
    matching several of them is named after the closest one (ties: the first given), so two of one name could not
    be told apart in column ``special`` or the per-special counts.

    Raises
    ------
    ParameterError
        A spec :func:`parse_special` refuses, or a name given twice (one line starting ``special:``; the CLI
        names ``--special`` or the config file and key).
    """
    out = [parse_special(s, check_sum=check_sum) for s in (specs or [])]
    seen: set[str] = set()
    for s in out:
        if s.name in seen:
            raise ParameterError(f"special: special misorientation {s.name!r} is given twice; give each special "
                                 "misorientation its own NAME")
        seen.add(s.name)
    return out


def check_special_axes(special: Sequence[Any], phases: Any) -> None:
    """Refuse a special misorientation whose axis has four (Miller–Bravais ``[UVTW]``) indices when none of
    ``phases`` is hexagonal or trigonal: it could match no boundary.

    Parameters
    ----------
    special
        Special misorientations (anything :func:`parse_special` takes).
    phases
        orix ``PhaseList`` (ids < 0, "not indexed", are skipped) or a sequence of ``Phase``.

    Raises
    ------
    ParameterError
        One line starting ``special:`` (the CLI names it ``--special`` where typed) with the phases and their crystal
        systems.
    """
    items = [(int(i), p) for i, p in phases] if hasattr(phases, "ids") else list(enumerate(phases))
    items = [(i, p) for i, p in items if i >= 0]
    if any(is_hexagonal_like(p) for _, p in items):
        for s in special or []:  # a Miller–Bravais axis needs U + V + T = 0
            try:
                parse_special(s)
            except ParameterError as err:
                raise ParameterError(f"special: {err}") from None
        return
    known = ", ".join(f"{i}:{p.name} ({p.point_group.system if p.point_group is not None else 'no point group'})"
                      for i, p in items)
    for s in special or []:
        s = parse_special(s, check_sum=False)
        if len(s.axis) == 4:
            axis = ",".join(f"{v:g}" for v in s.axis)
            raise ParameterError(f"special: special misorientation {s.name!r}: axis {axis} has 4 (Miller–Bravais "
                                 f"[UVTW]) indices, which only hexagonal/trigonal phases take; the phases are "
                                 f"{known or 'none'} (give the axis as [uvw], U,V,W)")


def special_quaternion(special: SpecialMisorientation, phase: Any) -> np.ndarray | None:
    """The special misorientation as a quaternion in the phase's Cartesian crystal frame (None if its axis
    notation does not fit the phase, e.g. four indices for a cubic phase)."""
    if len(special.axis) == 4:
        if not is_hexagonal_like(phase):
            return None
        v = Miller(UVTW=np.asarray(special.axis, dtype=float), phase=phase)
    else:
        v = Miller(uvw=np.asarray(special.axis, dtype=float), phase=phase)
    axis = v.unit.data.reshape(3)
    return Rotation.from_axes_angles(axis, np.radians(special.angle_deg)).data.reshape(4)


def disorientation(q_a: np.ndarray, q_b: np.ndarray, phase: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disorientation of orientations ``q_b`` relative to ``q_a`` (both ``(n, 4)``, one phase).

    The misorientation ``M = O_B · O_A⁻¹`` is replaced by its symmetry equivalent ``S_i · M · S_j`` of smallest
    angle (numba kernel over the proper rotations of the Laue group; the tests check it against orix's
    ``Misorientation.reduce``, which is ~100× slower on thousands of boundaries). Among the equivalents of that
    angle the one whose axis lies in orix's fundamental sector of the proper group is returned (conjugation
    ``S·M·S⁻¹`` rotates the axis by ``S``).

    Returns
    -------
    angle_deg, axis, quaternions
        Angle (deg), unit axis ``(n, 3)`` (Cartesian crystal frame of A) and the disorientation ``(n, 4)``.
    """
    from orix.vector import Vector3d

    q_a = np.asarray(q_a, dtype=float).reshape(-1, 4)
    q_b = np.asarray(q_b, dtype=float).reshape(-1, 4)
    m = (Rotation(q_b) * ~Rotation(q_a)).data.reshape(-1, 4)
    sym = laue_rotations(phase)
    rep = min_angle_equivalent(m, sym)
    w = np.clip(rep[:, 0], -1.0, 1.0)
    angle = 2.0 * np.arccos(w)
    vec = rep[:, 1:]
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    axis = np.where(norm > 1e-12, vec / np.where(norm > 0, norm, 1.0), np.array([0.0, 0.0, 1.0]))
    if phase.point_group is not None and len(sym) > 1:
        axis = Vector3d(axis).in_fundamental_sector(proper_laue_group(phase)).unit.data.reshape(-1, 3)
    half = angle / 2.0
    quat = np.concatenate([np.cos(half)[:, None], np.sin(half)[:, None] * axis], axis=1)
    return np.degrees(angle), axis, quat


def axis_indices(axis: np.ndarray, phase: Any, max_index: int = 12) -> np.ndarray:
    """Crystal direction indices of Cartesian axes, rounded to the closest small integers (orix ``Miller.round``
    on ``[uvw]``): ``(n, 4)`` Miller–Bravais ``[UVTW]`` for hexagonal/trigonal phases (converted from the rounded
    ``[uvw]`` so that U + V + T = 0 holds exactly), else ``(n, 3)`` ``[uvw]``."""
    axis = np.asarray(axis, dtype=float).reshape(-1, 3)
    hexa = is_hexagonal_like(phase)
    out = np.full((len(axis), 4 if hexa else 3), np.nan)
    ok = np.all(np.isfinite(axis), axis=1) & (np.linalg.norm(axis, axis=1) > 0)
    if ok.any():
        m = Miller(xyz=axis[ok], phase=phase)
        m.coordinate_format = "uvw"
        uvw = m.round(max_index=max_index).uvw
        if hexa:  # [uvw] -> [UVTW] = [(2u - v)/3, (2v - u)/3, -(u + v)/3, w], scaled to coprime integers
            uvw = np.rint(uvw)
            four = np.stack([2 * uvw[:, 0] - uvw[:, 1], 2 * uvw[:, 1] - uvw[:, 0], -(uvw[:, 0] + uvw[:, 1]),
                             3 * uvw[:, 2]], axis=1)
            g = np.gcd.reduce(np.abs(four).astype(np.int64), axis=1)
            uvw = four / np.where(g > 0, g, 1)[:, None]
        out[ok] = uvw
    return out + 0.0  # no negative zeros


def boundary_misorientations(
    grain_map: Any,
    grain_a: np.ndarray,
    grain_b: np.ndarray,
    *,
    low_angle_deg: float = config.LOW_ANGLE_DEG,
    special: Sequence[Any] | None = None,
    max_sigma: int = 29,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Misorientation columns of boundaries A|B from the grains' mean orientations.

    Returns the columns ``misorientation_deg``, ``misorientation_axis``, ``axis_uvw`` (``(n, 4)`` if any phase is
    hexagonal/trigonal, NaN-padded for the others), ``low_angle``, ``csl_sigma``, ``csl_deviation_deg``,
    ``special`` and ``special_deviation_deg``, and a dict of what was used (for the parameters).
    """
    check_special_axes(special or [], grain_map.phases)  # a 4-index axis for no hexagonal phase: refused first
    specials = parse_specials(special)
    n = len(grain_a)
    t = grain_map.table
    ia, ib = grain_map.index_of(grain_a), grain_map.index_of(grain_b)
    qa = np.asarray(t["mean_quaternion"])[ia].reshape(n, 4)
    qb = np.asarray(t["mean_quaternion"])[ib].reshape(n, 4)
    pa = np.asarray(t["phase_id"])[ia].reshape(n)
    pb = np.asarray(t["phase_id"])[ib].reshape(n)
    phases = grain_map.phases
    same = (pa == pb) & (pa >= 0)
    hexa_any = any(is_hexagonal_like(phases[int(p)]) for p in np.unique(pa[same]))
    angle = np.full(n, np.nan)
    axis = np.full((n, 3), np.nan)
    uvw = np.full((n, 4 if hexa_any else 3), np.nan)
    sigma = np.zeros(n, dtype=np.int64)
    sigma_dev = np.full(n, np.nan)
    special_name = np.full(n, "", dtype=f"<U{max([len(s.name) for s in specials] + [1])}")
    special_dev = np.full(n, np.nan)
    lattices: dict[str, Any] = {}
    for p in np.unique(pa[same]):
        sel = same & (pa == p)
        phase = phases[int(p)]
        ang, ax, mq = disorientation(qa[sel], qb[sel], phase)
        angle[sel], axis[sel] = ang, ax
        idx = axis_indices(ax, phase)
        uvw[np.ix_(np.flatnonzero(sel), np.arange(idx.shape[1]))] = idx
        sigma[sel], sigma_dev[sel] = match_csl(mq, phase, max_sigma)
        from .csl import lattice_centring

        lat = phase.structure.lattice
        lattices[str(int(p))] = {
            "centring": lattice_centring(phase),
            "abc_deg": [lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma],
            "c_over_a": lat.c / lat.a,
        }
        sym = laue_rotations(phase)
        best = np.full(int(sel.sum()), np.inf)
        names = special_name[sel]
        for s in specials:
            sq = special_quaternion(s, phase)
            if sq is None:
                continue
            d = np.degrees(misorientation_distance(mq, sq, sym)[:, 0])
            hit = (d <= s.tolerance_deg) & (d < best)
            names[hit] = s.name
            best[hit] = d[hit]
        special_name[sel] = names
        special_dev[sel] = np.where(np.isfinite(best), best, np.nan)
    cols = {
        "misorientation_deg": angle,
        "misorientation_axis": axis,
        "axis_uvw": uvw,
        "low_angle": np.where(np.isfinite(angle), angle < low_angle_deg, False),
        "csl_sigma": sigma,
        "special": special_name,
        "csl_deviation_deg": sigma_dev,
        "special_deviation_deg": special_dev,
    }
    info = {
        "special": [list(s) for s in specials],
        "csl_max_sigma": int(max_sigma),
        "csl_lattices": lattices,
        "misorientation_from": "grain mean orientations",
    }
    return cols, info


def pair_misorientation_angles(
    xmap: Any, row_a: np.ndarray, col_a: np.ndarray, row_b: np.ndarray, col_b: np.ndarray
) -> np.ndarray:
    """Disorientation angle (deg) across each pixel pair (NaN where the pixels are of different phases or not
    indexed)."""
    q, phase_id, _ = map_arrays(xmap)
    pa, pb = phase_id[row_a, col_a], phase_id[row_b, col_b]
    out = np.full(len(pa), np.nan)
    for p in np.unique(pa[(pa == pb) & (pa >= 0)]):
        sel = (pa == p) & (pb == p)
        out[sel] = np.degrees(
            disorientation_angle(q[row_a[sel], col_a[sel]], q[row_b[sel], col_b[sel]], laue_rotations(xmap.phases[int(p)]))
        )
    return out


def random_disorientation_angles(phase: Any, n: int = 100_000, seed: int = 0) -> np.ndarray:
    """Disorientation angles (deg) of ``n`` pairs of uniformly random orientations of the phase's Laue group
    (orix): the random ("Mackenzie") distribution to compare boundary misorientations with."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(2, n, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    g = laue_group(phase) if phase.point_group is not None else None
    oa, ob = Orientation(q[0], symmetry=g), Orientation(q[1], symmetry=g)
    return np.asarray(ob.angle_with(oa, degrees=True))
