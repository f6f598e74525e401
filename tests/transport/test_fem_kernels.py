"""FEM building blocks vs slow references (element matrices, node copies)."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.transport import _fem
from stemgrains.transport._reference import element_matrix_reference, node_copies_reference


def test_element_matrices_match_gauss_quadrature():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(20, 3))
    ke = _fem.element_matrices(s)
    for i in range(len(s)):
        np.testing.assert_allclose(ke[i], element_matrix_reference(*s[i]), atol=1e-13)
    np.testing.assert_allclose(ke.sum(axis=2), 0.0, atol=1e-13)  # constants have no energy


def test_element_energy_of_a_linear_field():
    # φ = gx·x + gy·y on a unit square: energy ∇φᵀ Σ ∇φ exactly
    s = np.array([[1.3, -0.4, 0.7]])
    gx, gy = 0.6, -1.1
    phi = np.array([0.0, gx, gx + gy, gy])  # TL, TR, BR, BL
    energy = phi @ _fem.element_matrices(s)[0] @ phi
    assert energy == pytest.approx(1.3 * gx**2 + 2 * -0.4 * gx * gy + 0.7 * gy**2)


def random_regions(rng, shape):
    ny, nx = shape
    group = rng.integers(1, 4, size=shape)
    kind = np.ones(shape, np.int8)
    other = rng.random(shape) < 0.2
    group[other] = rng.choice([-1, -2], size=int(other.sum()))
    kind[other] = 2
    pore = rng.random(shape) < 0.1
    kind[pore] = 0
    return group, kind


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("periodic", [(False, False), (True, False), (False, True), (True, True)])
def test_node_copies_kernel_matches_reference(seed, periodic):
    rng = np.random.default_rng(seed)
    group, kind = random_regions(rng, (7, 9))
    got = _fem.node_copies(group, kind, *periodic)
    ref = node_copies_reference(group, kind, *periodic)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[2] == ref[2]
    # the pure-python path of the numba kernel gives the same answer
    py = _fem._node_copies_kernel.py_func(group.astype(np.int64), kind, *periodic)
    np.testing.assert_array_equal(py[0], got[0])


@pytest.mark.parametrize("seed", range(4))
def test_different_grains_never_share_a_node_copy(seed):
    rng = np.random.default_rng(seed)
    group, kind = random_regions(rng, (10, 10))
    corner, node_of, _ = _fem.node_copies(group, kind)
    owner = {}
    for r in range(10):
        for c in range(10):
            if kind[r, c] != 1:
                continue
            for d in corner[r, c]:
                assert owner.setdefault(int(d), group[r, c]) == group[r, c]
    # pixels of one region that share a corner share its copy
    for r in range(9):
        for c in range(9):
            if kind[r, c] and kind[r, c + 1] and group[r, c] == group[r, c + 1]:
                assert corner[r, c, 1] == corner[r, c + 1, 0] and corner[r, c, 2] == corner[r, c + 1, 3]


def test_uniform_map_has_one_copy_per_node():
    corner, node_of, shape = _fem.node_copies(np.ones((3, 4), np.int64), np.ones((3, 4), np.int8))
    assert shape == (4, 5) and len(node_of) == 20
    np.testing.assert_array_equal(node_of, np.arange(20))
    assert corner[1, 2].tolist() == [7, 8, 13, 12]
