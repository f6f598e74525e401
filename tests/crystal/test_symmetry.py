"""The shared symmetry and quaternion maths (stemgrains.crystal.symmetry) against slow references and orix."""

from __future__ import annotations

import numpy as np
import pytest
from orix.crystal_map import Phase
from orix.quaternion import Orientation, Rotation, symmetry

from stemgrains.crystal import symmetry as S

LAUE = [symmetry.Ci, symmetry.C2h, symmetry.D2h, symmetry.C4h, symmetry.D4h, symmetry.S6, symmetry.D3d,
        symmetry.C6h, symmetry.D6h, symmetry.Th, symmetry.Oh]


def test_quaternion_product_kernels_match_reference_and_orix():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5, 4))  # not unit: the product is bilinear and must hold for any quaternions
    b = rng.normal(size=(5, 4))  # broadcast against a
    fast = S.quaternion_multiply(a, b)
    ref = S.quaternion_multiply_reference(a, b)
    assert fast.shape == (7, 5, 4)
    np.testing.assert_array_equal(fast, ref)  # the same arithmetic in the same order
    ua, ub = Rotation.random(30).data, Rotation.random(30).data
    orix = (Rotation(ua) * Rotation(ub)).data
    np.testing.assert_allclose(S.quaternion_multiply(ua, ub), orix, atol=1e-12)
    for i in range(5):  # the one-item kernels, compiled and as python
        np.testing.assert_array_equal(S.qmul(ua[i], ub[i]), fast_i := S.quaternion_multiply(ua[i], ub[i]))
        np.testing.assert_allclose(S.qmul.py_func(ua[i], ub[i]), fast_i, atol=1e-15)
        np.testing.assert_array_equal(S.qconj(ua[i]), S.quaternion_conjugate(ua[i]))
        np.testing.assert_allclose(S.qmul(ua[i], S.qconj(ua[i])), [1, 0, 0, 0], atol=1e-12)
    with pytest.raises(ValueError, match="length 4"):
        S.quaternion_multiply(np.zeros((3, 3)), np.zeros((3, 4)))


@pytest.mark.parametrize("laue", LAUE, ids=lambda s: s.name)
def test_disorientation_angle_matches_orix_and_reference(laue):
    rng = np.random.default_rng(1)
    qa = Rotation.random(200).data
    # half close pairs (the interesting range for grain growing), half random
    qb = np.concatenate([(Rotation.from_axes_angles(rng.normal(size=(100, 3)), rng.uniform(0, 0.2, 100))
                          * Rotation(qa[:100])).data, Rotation.random(100).data])
    sym = S.laue_rotations(laue)
    fast = S.disorientation_angle(qa, qb, sym)
    ref = S.disorientation_angle_reference(qa, qb, sym)
    orix = Orientation(qb, laue).angle_with(Orientation(qa, laue))
    np.testing.assert_allclose(fast, ref, atol=1e-7)
    np.testing.assert_allclose(fast, orix, atol=1e-6)
    # the python function of the numba kernel gives the same (coverage of the kernel body)
    py = np.array([S.disorientation_angle_single.py_func(a, b, sym, len(sym)) for a, b in zip(qa[:20], qb[:20])])
    np.testing.assert_allclose(py, fast[:20], atol=1e-12)


def test_disorientation_angle_is_symmetric_and_invariant():
    sym = symmetry.Oh.proper_subgroup.data
    qa, qb = Rotation.random(50).data, Rotation.random(50).data
    a = S.disorientation_angle(qa, qb, sym)
    np.testing.assert_allclose(S.disorientation_angle(qb, qa, sym), a, atol=1e-9)
    s = sym[np.random.default_rng(0).integers(0, len(sym), 50)]
    qa_eq = (Rotation(s) * Rotation(qa)).data * -1  # symmetry equivalent and q ≡ -q
    np.testing.assert_allclose(S.disorientation_angle(qa_eq, qb, sym), a, atol=1e-7)
    assert np.all(a <= np.radians(62.8 + 1e-6))  # cubic disorientation limit


def test_laue_groups_of_phases_and_point_groups():
    assert len(S.laue_rotations(Phase(point_group="m-3m"))) == 24
    assert len(S.laue_rotations(Phase(point_group="6/mmm"))) == 12
    assert len(S.laue_rotations(Phase(point_group="-3m"))) == 6
    assert len(S.laue_rotations(Phase(point_group="432"))) == 24
    assert len(S.laue_rotations(symmetry.C6v)) == 12  # a point group itself: 6mm → 6/mmm → 622
    np.testing.assert_allclose(S.laue_rotations(Phase()), [[1, 0, 0, 0]])  # no point group: identity only
    assert S.laue_group(Phase(point_group="32")).name == "-3m"
    assert S.proper_laue_group(Phase(point_group="6mm")).name == "622"
    assert S.laue_rotations(symmetry.Oh).flags.c_contiguous


def test_c_axis_geometry_against_orix():
    rng = np.random.default_rng(3)
    q = Rotation.random(100).data
    c_orix = (Rotation(q).inv() * _z()).data
    c_orix = c_orix * np.where(c_orix[:, 2:] < 0, -1.0, 1.0)
    hexa = rng.random(100) > 0.1
    c, alpha, trace = S.c_axis_geometry(q, hexa, flat_tolerance_deg=2.0)
    np.testing.assert_allclose(c[hexa], c_orix[hexa], atol=1e-12)
    assert np.all(np.isnan(c[~hexa])) and np.all(np.isnan(alpha[~hexa])) and np.all(np.isnan(trace[~hexa]))
    np.testing.assert_allclose(alpha[hexa], np.degrees(np.arccos(np.abs(c_orix[hexa, 2]))), atol=1e-9)
    t = trace[hexa & (alpha > 2.0)]
    assert np.all((t > -90) & (t <= 90))
    # the trace d = (cos t, sin t) is perpendicular to c's in-plane part
    sel = hexa & (alpha > 2.0)
    d = np.stack([np.cos(np.radians(trace[sel])), np.sin(np.radians(trace[sel]))], axis=1)
    np.testing.assert_allclose(np.sum(d * c[sel, :2], axis=1), 0.0, atol=1e-9)


def _z():
    from orix.vector import Vector3d

    return Vector3d([0.0, 0.0, 1.0])
