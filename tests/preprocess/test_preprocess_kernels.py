"""Preprocessing kernels (:mod:`stemgrains.preprocess._kernels`) against their slow references
(:mod:`stemgrains.preprocess._reference`): random inputs of several sizes, ``.py_func`` where cheap, and no kernel
modifies its inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemgrains.data import Calibration
from stemgrains.preprocess import _kernels as K
from stemgrains.preprocess import _reference as ref

# --- tolerances ---------------------------------------------------------------------------------------------------
TOL = 1e-9  # float64 results: the same arithmetic in another order
TOL_F32 = 1e-5  # float32 outputs (processed images), relative

HYP = settings(max_examples=20, deadline=None)
SHAPES = [(1, 1), (1, 7), (2, 2), (9, 11), (32, 32), (17, 40)]
CALIBRATIONS = [
    Calibration(0.02),
    Calibration(0.015, q_rotation_deg=31.0),
    Calibration(0.02, q_rotation_deg=-112.0, q_flip=True, ellipticity=(1.04, 25.0)),
]


def call_unmutated(f, *args):
    """Call ``f(*args)`` and assert that no array argument changed."""
    before = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
    out = f(*args)
    for a, b in zip(args, before):
        if b is not None:
            np.testing.assert_array_equal(a, b, err_msg=f"{getattr(f, '__name__', f)} modified an input")
    return out


def affines(cal):
    a = np.ascontiguousarray(cal._affine())
    return a, np.ascontiguousarray(np.linalg.inv(a))


def spotty_pattern(rng, shape=(48, 52), n_spots=12, beam=(22.3, 27.8), background=2.0, jitter=True):
    """Poisson pattern: a bright direct beam, Gaussian spots, a smooth background (float64 counts).

    ``jitter`` adds uniform noise below 0.01 count: integer counts make ties in the 3 × 3 box sums, and the
    reference box sum (uniform_filter × 9) is not exact, so it may break a tie differently from the kernel."""
    rows, cols = np.indices(shape)
    lam = background + 40 * np.exp(-((rows - beam[0]) ** 2 + (cols - beam[1]) ** 2) / (2 * 2.0**2))
    for _ in range(n_spots):
        r, c = rng.uniform(2, shape[0] - 3), rng.uniform(2, shape[1] - 3)
        lam = lam + rng.uniform(5, 40) * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 1.2**2))
    counts = rng.poisson(lam).astype(np.float64)
    return counts + rng.uniform(0, 0.01, shape) if jitter else counts


# --------------------------------------------------------------------------------------------------------------------
# small building blocks
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_box_sum3_matches_reference(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.normal(size=shape)
    np.testing.assert_allclose(call_unmutated(K.box_sum3, img), ref.box_sum3(img), atol=TOL)
    np.testing.assert_allclose(K.box_sum3.py_func(img), ref.box_sum3(img), atol=TOL)
    ints = rng.integers(0, 1000, shape).astype(np.uint16)  # integer detectors
    np.testing.assert_allclose(K.box_sum3(ints), ref.box_sum3(ints), atol=TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_bilinear_matches_map_coordinates(shape):
    rng = np.random.default_rng(sum(shape) + 1)
    img = rng.normal(size=shape)
    ky, kx = shape
    pts = [(rng.uniform(-1.5, ky + 0.5), rng.uniform(-1.5, kx + 0.5)) for _ in range(40)]
    pts += [(0.0, 0.0), (ky - 1.0, kx - 1.0), (ky - 1.0, 0.3 * (kx - 1)), (-1e-9, 0.0), (ky - 1 + 1e-9, 0.0)]
    for r, c in pts:
        assert call_unmutated(K.bilinear, img, r, c) == pytest.approx(ref.bilinear(img, r, c), abs=TOL)
        assert K.bilinear.py_func(img, r, c) == pytest.approx(ref.bilinear(img, r, c), abs=TOL)


@HYP
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES[2:]), radius=st.floats(0.5, 12.0), n_iter=st.integers(1, 6))
def test_center_of_mass_disk_matches_reference(seed, shape, radius, n_iter):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, shape) ** 4
    r0, c0 = rng.uniform(-2, shape[0] + 1), rng.uniform(-2, shape[1] + 1)  # starts off the detector too
    fast = call_unmutated(K.center_of_mass_disk, img, r0, c0, radius, n_iter)
    np.testing.assert_allclose(fast, ref.center_of_mass_disk(img, r0, c0, radius, n_iter), atol=TOL)


def test_center_of_mass_disk_py_func_and_zero_image():
    rng = np.random.default_rng(4)
    img = rng.uniform(0, 1, (20, 24))
    np.testing.assert_allclose(K.center_of_mass_disk.py_func(img, 9.2, 11.7, 5.0, 3), ref.center_of_mass_disk(img, 9.2, 11.7, 5.0, 3), atol=TOL)
    # nothing in the disk: the start comes back
    assert K.center_of_mass_disk(np.zeros((20, 24)), 9.2, 11.7, 5.0, 3) == (9.2, 11.7)


@HYP
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES[2:]), radius=st.floats(1.0, 9.0), integer=st.booleans())
def test_brightest_near_matches_reference(seed, shape, radius, integer):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 4, shape).astype(float) if integer else rng.normal(size=shape)  # integer: ties (first in raster order)
    r, c = rng.uniform(0, shape[0] - 1), rng.uniform(0, shape[1] - 1)
    assert call_unmutated(K.brightest_near, img, r, c, radius) == ref.brightest_near(img, r, c, radius)
    assert K.brightest_near.py_func(img, r, c, radius) == ref.brightest_near(img, r, c, radius)


def test_brightest_near_empty_disk_gives_nearest_pixel():
    img = np.arange(20.0).reshape(4, 5)
    assert K.brightest_near(img, 1.3, 2.6, 0.2) == (1.0, 3.0)  # no pixel centre within 0.2 px


@pytest.mark.parametrize("shape", [(20, 23), (9, 9)])
def test_ring_mean_matches_reference(shape):
    rng = np.random.default_rng(5)
    img = rng.uniform(0, 10, shape)
    for row, col, radius in [(5, 6, 3), (1, 1, 3), (shape[0] - 1, 4, 2), (4, 4, 4)]:
        assert call_unmutated(K.ring_mean, img, row, col, radius) == pytest.approx(ref.ring_mean(img, row, col, radius), abs=TOL)


def test_ring_mean_of_a_ring_constant_image():
    """Independent of the corner weighting: an image constant on the ring gives that constant, also at the edges."""
    rows, cols = np.indices((21, 21))
    img = np.maximum(np.abs(rows - 10), np.abs(cols - 10)).astype(float) * 3.0  # 3 × Chebyshev distance from (10, 10)
    for radius in (2, 3, 7, 10):
        assert call_unmutated(K.ring_mean, img, 10, 10, radius) == pytest.approx(3.0 * radius, abs=TOL)
        assert K.ring_mean.py_func(img, 10, 10, radius) == pytest.approx(3.0 * radius, abs=TOL)
    assert K.ring_mean(np.ones((5, 5)), 0, 0, 2) == pytest.approx(1.0)  # partly off the image
    assert K.ring_mean(np.ones((5, 5)), 0, 0, 9) == 0.0  # entirely off the image


@HYP
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.sampled_from([(3, 3), (9, 11), (32, 32), (17, 40)]),
    min_distance=st.integers(1, 3),
    max_peaks=st.integers(1, 30),
    levels=st.sampled_from([3, 20, 0]),
)
def test_find_peaks_matches_reference(seed, shape, min_distance, max_peaks, levels):
    rng = np.random.default_rng(seed)
    # few grey levels → plateaus and ties (broken in raster order); 0 → continuous values
    img = rng.integers(0, levels, shape).astype(float) if levels else rng.normal(size=shape)
    thr = float(np.quantile(img, 0.3))
    ex = (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(0, 4))
    fast = call_unmutated(K.find_peaks, img, thr, min_distance, max_peaks, *ex)
    slow = ref.find_peaks(img, thr, min_distance, max_peaks, *ex)
    assert fast.shape == slow.shape
    np.testing.assert_allclose(fast, slow, atol=TOL)


def test_find_peaks_py_func_and_subpixel_position():
    rows, cols = np.indices((25, 25))
    img = np.exp(-((rows - 11.3) ** 2 + (cols - 14.8) ** 2) / (2 * 0.8**2))  # a parabola's vertex is exact for log; close here
    for f in (K.find_peaks, K.find_peaks.py_func):
        out = f(img, 0.01, 2, 5, -10.0, -10.0, 0.0)
        assert out.shape == (1, 3)
        assert abs(out[0, 0] - 11.3) < 0.1 and abs(out[0, 1] - 14.8) < 0.1
        assert f(img, 0.01, 2, 5, 11.0, 15.0, 1.5).shape == (0, 3)  # inside the excluded disk
    np.testing.assert_allclose(K.find_peaks.py_func(img, 0.01, 2, 5, -10.0, -10.0, 0.0), ref.find_peaks(img, 0.01, 2, 5, -10.0, -10.0, 0.0), atol=TOL)


# --------------------------------------------------------------------------------------------------------------------
# resampling and background
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cal", CALIBRATIONS)
@pytest.mark.parametrize("shape", [(32, 32), (17, 40)])
def test_polar_transform_matches_reference(cal, shape):
    rng = np.random.default_rng(shape[1])
    img = rng.normal(size=shape)
    affine, _ = affines(cal)
    center = (rng.uniform(0, shape[0] - 1), rng.uniform(0, shape[1] - 1))
    q = np.linspace(0, 25 * cal.q_pixel_size, 23)  # reaches past the detector edge: zeros there
    a = np.sort(rng.uniform(-np.pi, 3 * np.pi, 37))
    fast = call_unmutated(K.polar_transform, img, *center, affine, q, a)
    np.testing.assert_allclose(fast, ref.polar_transform(img, *center, affine, q, a), atol=TOL)
    np.testing.assert_allclose(K.polar_transform.py_func(img, *center, affine, q[:5], a[:6]), fast[:5, :6], atol=TOL)


@pytest.mark.parametrize("cal", CALIBRATIONS)
@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.5, 1.0])
def test_radial_background_matches_reference(cal, quantile):
    rng = np.random.default_rng(int(quantile * 10))
    img = rng.poisson(5, (33, 41)).astype(float)
    _, inv = affines(cal)
    center = (15.2, 22.7)
    for bw, n_bins in ((cal.q_pixel_size, 30), (2.5 * cal.q_pixel_size, 4), (0.5 * cal.q_pixel_size, 80)):
        fast = call_unmutated(K.radial_background, img, *center, inv, bw, n_bins, quantile)
        np.testing.assert_allclose(fast, ref.radial_background(img, *center, inv, bw, n_bins, quantile), atol=TOL)
    np.testing.assert_allclose(K.radial_background.py_func(img, *center, inv, bw, 10, quantile), ref.radial_background(img, *center, inv, bw, 10, quantile), atol=TOL)


@pytest.mark.parametrize("cal", CALIBRATIONS)
@pytest.mark.parametrize("power", [1.0, 0.5])
def test_processed_image_matches_reference(cal, power):
    rng = np.random.default_rng(int(power * 7))
    _, inv = affines(cal)
    block = np.stack([spotty_pattern(rng) for _ in range(3)])
    centers = np.array([[22.3, 27.8], [20.0, 30.5], [25.5, 24.0]])
    for i in range(3):
        fast = call_unmutated(K.processed_image, block[i], *centers[i], inv, cal.q_pixel_size, 0.6, 0.5, power)
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, ref.processed_image(block[i], *centers[i], inv, cal.q_pixel_size, 0.6, 0.5, power), rtol=TOL_F32, atol=TOL_F32)
    fast = call_unmutated(K.processed_images, block, centers, inv, cal.q_pixel_size, 0.6, 0.5, power)
    np.testing.assert_allclose(fast, ref.processed_images(block, centers, inv, cal.q_pixel_size, 0.6, 0.5, power), rtol=TOL_F32, atol=TOL_F32)
    assert fast.shape == block.shape and fast.dtype == np.float32 and np.all(fast >= 0)
    np.testing.assert_array_equal(K.processed_images.py_func(block[:1], centers[:1], inv, cal.q_pixel_size, 0.6, 0.5, power), fast[:1])


# --------------------------------------------------------------------------------------------------------------------
# spot detection
# --------------------------------------------------------------------------------------------------------------------
def spot_args(cal, fixed, max_peaks=16, n_sigma=5.0, power=0.5, n_sigma_sparse=4.0, min_spots=8):
    _, inv = affines(cal)
    # fixed, centre row, col, search radius, beam radius, affine_inv, q_min, q_max, n_sigma, min_distance, max_peaks,
    # ring, power, n_sigma_sparse, min_spots
    return (fixed, 23.0, 26.0, 6.0, 4.0, inv, 5 * cal.q_pixel_size, 22 * cal.q_pixel_size, n_sigma, 2, max_peaks, 3,
            power, n_sigma_sparse, min_spots)


def assert_same_spots(fast, slow):
    peaks, m, cr, cc, m_strong = fast
    assert m == slow[1] and m_strong == slow[4] <= m
    np.testing.assert_allclose(peaks, slow[0], atol=TOL)
    assert not peaks[m:].any()
    np.testing.assert_allclose((cr, cc), slow[2:4], atol=TOL)


@pytest.mark.parametrize("cal", CALIBRATIONS)
@pytest.mark.parametrize("fixed", [False, True])
def test_detect_spots_matches_reference(cal, fixed):
    rng = np.random.default_rng(3 + fixed)
    for k in range(3):
        pattern = spotty_pattern(rng, n_spots=4 + 6 * k)
        for max_peaks, n_sigma, power, sparse, min_spots in ((16, 5.0, 0.5, 4.0, 8), (3, 3.0, 1.0, 2.0, 8),
                                                             (16, 9.0, 0.5, 3.0, 12), (16, 5.0, 0.5, 5.0, 0)):
            args = spot_args(cal, fixed, max_peaks, n_sigma, power, sparse, min_spots)
            fast = call_unmutated(K.detect_spots, pattern, *args)
            assert_same_spots(fast, ref.detect_spots(pattern, *args))
            assert 0 < fast[1] <= max_peaks
    args = spot_args(cal, fixed)
    assert_same_spots(K.detect_spots.py_func(pattern, *args), ref.detect_spots(pattern, *args))
    flat = np.full((48, 52), 7.0)  # no spots
    assert K.detect_spots(flat, *args)[1] == 0 == ref.detect_spots(flat, *args)[1]


def test_detect_spots_chunk_matches_reference():
    rng = np.random.default_rng(8)
    cal = CALIBRATIONS[2]
    block = np.stack([spotty_pattern(rng, n_spots=n) for n in (0, 3, 9, 15)])
    for fixed in (False, True):
        args = spot_args(cal, fixed)
        fast = call_unmutated(K.detect_spots_chunk, block, *args)
        slow = ref.detect_spots_chunk(block, *args)
        np.testing.assert_array_equal(fast[1], slow[1])
        np.testing.assert_array_equal(fast[3], slow[3])
        np.testing.assert_allclose(fast[0], slow[0], atol=TOL)
        np.testing.assert_allclose(fast[2], slow[2], atol=TOL)
        for a, b in zip(K.detect_spots_chunk.py_func(block[:2], *args), fast):
            np.testing.assert_allclose(a, b[:2], atol=TOL)
    # integer detector data, as read from files: the same answer as for the same counts in float64
    counts = np.stack([spotty_pattern(rng, n_spots=n, jitter=False) for n in (0, 3, 9, 15)])
    for fixed in (False, True):
        args = spot_args(cal, fixed)
        as_float = K.detect_spots_chunk(counts, *args)
        for got, want in zip(call_unmutated(K.detect_spots_chunk, counts.astype(np.uint16), *args), as_float):
            np.testing.assert_array_equal(got, want)


def test_sparse_patterns_take_weaker_spots_up_to_min_spots():
    """A pattern with fewer than min_spots spots above n_sigma also takes the brightest maxima above
    n_sigma_sparse (after the others), up to min_spots; patterns with enough spots are unchanged."""
    rng = np.random.default_rng(11)
    cal = CALIBRATIONS[0]
    pattern = spotty_pattern(rng, n_spots=12)
    strict = K.detect_spots(pattern, *spot_args(cal, False, n_sigma=9.0, min_spots=0))
    for min_spots in (strict[1] + 2, strict[1]):
        got = call_unmutated(K.detect_spots, pattern, *spot_args(cal, False, n_sigma=9.0, n_sigma_sparse=3.0,
                                                                  min_spots=min_spots))
        loose = K.detect_spots(pattern, *spot_args(cal, False, n_sigma=3.0, min_spots=0))
        assert got[1] == min(min_spots, loose[1]) and loose[1] > strict[1] + 2 and got[4] == strict[1] == strict[4]
        np.testing.assert_array_equal(got[0][:strict[1]], strict[0][:strict[1]])  # the strong spots first, as before
        weak = {tuple(np.round(r, 9)) for r in loose[0][:loose[1]]} - {tuple(np.round(r, 9)) for r in strict[0][:strict[1]]}
        assert all(tuple(np.round(r, 9)) in weak for r in got[0][strict[1]:got[1]])


def test_select_kth_equals_sorting():
    """select_kth (three-way quickselect) = np.sort(a)[k], with many ties (sparse patterns) and without."""
    rng = np.random.default_rng(5)
    for trial in range(400):
        n = int(rng.integers(1, 400))
        if trial % 3 == 0:
            a = rng.integers(0, int(rng.integers(1, 6)), n).astype(float) / 9.0  # mostly equal values
        elif trial % 3 == 1:
            a = np.zeros(n)
        else:
            a = rng.normal(size=n)
        k = int(rng.integers(0, n))
        assert K.select_kth(a.copy(), k) == np.sort(a)[k]


@pytest.mark.parametrize("background", [0.3, 5.0, 300.0])  # 300: ring quantiles above the counting limit
@pytest.mark.parametrize("quantile", [0.0, 0.3, 0.5, 1.0])
def test_ring_quantiles_counted_equal_the_selection(background, quantile):
    """Integer counts: the counted ring quantiles are the selected ones, exactly, with the same ring per pixel."""
    rng = np.random.default_rng(int(background * 10 + quantile * 100))
    cal = CALIBRATIONS[-1]
    _, inv = affines(cal)
    for shape, center in (((48, 52), (22.3, 27.8)), ((31, 17), (15.0, 8.5))):
        p = spotty_pattern(rng, shape=shape, beam=center, background=background, jitter=False)
        S = K.box_sum3(p)
        cells = K.box_sum3(np.ones(shape))
        mean = S / cells
        n_bins = 40
        prof, bins = K.ring_quantiles_counted(S, *center, inv, cal.q_pixel_size, n_bins, quantile, mean)
        vals, starts, counts, bins_ref = K.ring_values(mean, *center, inv, cal.q_pixel_size, n_bins)
        want = np.zeros(n_bins)
        for b in range(n_bins):
            if counts[b]:
                k = min(counts[b] - 1, int(quantile * (counts[b] - 1) + 0.5))
                want[b] = np.sort(vals[starts[b]:starts[b + 1]])[k]
        np.testing.assert_array_equal(bins, bins_ref)
        np.testing.assert_allclose(prof, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_processed_image_of_integer_counts_matches_reference(power):
    rng = np.random.default_rng(5)
    cal = CALIBRATIONS[0]
    _, inv = affines(cal)
    for background in (0.5, 300.0):
        block = np.stack([spotty_pattern(rng, background=background, jitter=False) for _ in range(2)]).astype(np.uint16)
        centers = np.array([[22.3, 27.8], [20.0, 30.5]])
        fast = K.processed_images(block, centers, inv, cal.q_pixel_size, 0.6, 0.5, power)
        want = ref.processed_images(block.astype(np.float64), centers, inv, cal.q_pixel_size, 0.6, 0.5, power)
        np.testing.assert_allclose(fast, want, rtol=TOL_F32, atol=TOL_F32)
