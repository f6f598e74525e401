"""Numba kernels of grain segmentation against their slow references and against orix."""

from __future__ import annotations

import numpy as np
import pytest
from orix.quaternion import Rotation, symmetry

from stemgrains.grains import _kernels as K
from stemgrains.crystal.symmetry import disorientation_angle



def test_edge_angles_kernel_matches_reference():
    rng = np.random.default_rng(2)
    ny, nx = 9, 11
    q = Rotation.random(ny * nx).data.reshape(ny, nx, 4)
    phase_index = rng.integers(0, 2, (ny, nx))
    valid = rng.random((ny, nx)) > 0.2
    syms = [symmetry.Oh.proper_subgroup.data, symmetry.D6h.proper_subgroup.data]
    sym_table = np.zeros((2, 24, 4))
    sym_table[0, :24] = syms[0]
    sym_table[1, :12] = syms[1]
    n_sym = np.array([24, 12])
    fast = K.edge_angles(q, phase_index, valid, sym_table, n_sym)
    ref = K.edge_angles_reference(q, phase_index, valid, sym_table, n_sym)
    for f, r in zip(fast, ref):
        assert f.shape == r.shape
        np.testing.assert_array_equal(np.isinf(f), np.isinf(r))
        np.testing.assert_allclose(f[np.isfinite(f)], r[np.isfinite(r)], atol=1e-7)
    assert np.isinf(fast[0]).any() and np.isfinite(fast[0]).any()
    # inputs untouched
    assert valid.dtype == bool


@pytest.mark.parametrize("seed", range(5))
def test_union_find_matches_scipy_components(seed):
    rng = np.random.default_rng(seed)
    ny, nx = rng.integers(1, 30, 2)
    p = rng.uniform(0.3, 0.8)
    jr = rng.random((ny, nx - 1)) < p
    jd = rng.random((ny - 1, nx)) < p
    valid = rng.random((ny, nx)) > 0.1
    jr &= valid[:, :-1] & valid[:, 1:]
    jd &= valid[:-1, :] & valid[1:, :]
    fast = K.union_find_labels(jr, jd, valid)
    ref = K.connected_labels_reference(jr, jd, valid)
    np.testing.assert_array_equal(fast, ref)
    py = K._union_find_labels.py_func(np.pad(jr, ((0, 0), (0, 1))), np.pad(jd, ((0, 1), (0, 0))), valid)
    np.testing.assert_array_equal(py, ref)


def test_labels_are_in_raster_order_of_first_appearance():
    rng = np.random.default_rng(3)
    lab = K.relabel_raster(rng.integers(0, 9, (20, 20)) * 7)
    flat = lab.ravel()
    seen = [v for i, v in enumerate(flat) if v > 0 and v not in flat[:i]]
    assert seen == list(range(1, len(seen) + 1))


@pytest.mark.parametrize("laue", [symmetry.Oh, symmetry.D6h, symmetry.D3d, symmetry.C2h], ids=lambda s: s.name)
def test_reduce_to_reference_matches_reference(laue):
    sym = laue.proper_subgroup.data
    q, ref = Rotation.random(100).data, Rotation.random(100).data
    fast = K.reduce_to_reference(q, ref, sym)
    slow = K.reduce_to_reference_reference(q, ref, sym)
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    # the reduced quaternion is within the disorientation angle of the reference
    ang = 2 * np.arccos(np.clip(np.abs(np.sum(fast * ref, axis=1)), 0, 1))
    np.testing.assert_allclose(ang, disorientation_angle(q, ref, sym), atol=1e-6)
    assert np.all(np.sum(fast * ref, axis=1) >= 0)
