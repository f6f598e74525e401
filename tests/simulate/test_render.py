"""Spot rendering: numba kernel vs the slow numpy reference, and the profile's basic properties."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.errors import InputError, ParameterError
from stemgrains.simulate import render_pattern, render_patterns
from stemgrains.simulate._render import _render_csr_kernel, render_patterns_reference


def _random_spots(rng, n_pat, shape):
    counts = rng.integers(0, 12, size=n_pat)
    starts = np.r_[0, np.cumsum(counts)].astype(np.int64)
    n = int(starts[-1])
    # positions partly off the detector and on its edges
    rows = rng.uniform(-8, shape[0] + 8, n)
    cols = rng.uniform(-8, shape[1] + 8, n)
    amps = rng.uniform(0, 100, n)
    amps[rng.random(n) < 0.1] = 0.0
    return rows, cols, amps, starts


@pytest.mark.parametrize("radius, blur", [(2.07, 1.0), (0.0, 0.3), (5.5, 0.6), (0.2, 0.05)])
@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_matches_reference(radius, blur, seed):
    rng = np.random.default_rng(seed)
    shape = (33, 40)
    rows, cols, amps, starts = _random_spots(rng, 5, shape)
    ref = render_patterns_reference(rows, cols, amps, starts, shape, radius, blur)
    fast = render_patterns(np.column_stack([rows, cols]), amps, starts, shape, radius, blur)
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-10)
    # the uncompiled kernel too (same code path numba compiles)
    py_func = getattr(_render_csr_kernel, "py_func", _render_csr_kernel)  # NUMBA_DISABLE_JIT=1: plain function
    slow = py_func(rows, cols, amps, starts, shape[0], shape[1], radius, blur)
    np.testing.assert_allclose(slow, ref, rtol=1e-10, atol=1e-10)


def test_kernel_does_not_mutate_inputs():
    rng = np.random.default_rng(3)
    rows, cols, amps, starts = _random_spots(rng, 3, (20, 20))
    copies = [a.copy() for a in (rows, cols, amps, starts)]
    _render_csr_kernel(rows, cols, amps, starts, 20, 20, 2.0, 1.0)
    for a, b in zip((rows, cols, amps, starts), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("radius", [0.0, 1.5, 3.0])
def test_spot_integrates_to_amplitude_and_is_centred(radius):
    r0, c0, amp = 20.3, 17.8, 250.0
    img = render_pattern(np.array([[r0, c0]]), [amp], (41, 37), radius, 0.8)
    assert img.sum() == pytest.approx(amp, rel=1e-12)
    rr, cc = np.indices(img.shape)
    assert (img * rr).sum() / img.sum() == pytest.approx(r0, abs=0.02)
    assert (img * cc).sum() / img.sum() == pytest.approx(c0, abs=0.02)
    # a disk: flat top of radius ~ R, nothing beyond R + 4σ + 1 px
    rho = np.hypot(rr - r0, cc - c0)
    assert np.all(img[rho > radius + 4 * 0.8 + 1] == 0)


def test_spot_partly_off_detector_keeps_its_normalisation():
    full = render_pattern(np.array([[10.0, 10.0]]), [100.0], (21, 21), 2.0, 1.0)
    edge = render_pattern(np.array([[10.0, 0.0]]), [100.0], (21, 21), 2.0, 1.0)
    # the on-detector half of an edge spot carries the same values as the same half of a centred spot
    np.testing.assert_allclose(edge[:, :5], full[:, 10:15], rtol=1e-12)
    assert edge.sum() < 100.0


def test_validation():
    with pytest.raises(ParameterError):
        render_pattern(np.zeros((1, 2)), [1.0], (10, 10), -1.0, 1.0)
    with pytest.raises(ParameterError):
        render_pattern(np.zeros((1, 2)), [1.0], (10, 10), 1.0, 0.0)
    with pytest.raises(InputError):
        render_pattern(np.zeros((2, 2)), [1.0], (10, 10), 1.0, 1.0)
    with pytest.raises(InputError):
        render_patterns(np.zeros((2, 2)), [1.0, 1.0], [0, 3], (10, 10), 1.0, 1.0)
    with pytest.raises(InputError):
        render_pattern(np.array([[np.nan, 1.0]]), [1.0], (10, 10), 1.0, 1.0)
