"""Public preprocessing functions (:mod:`stemgrains.preprocess.api`): input validation, and correct answers on
simple constructed patterns (known spot positions, an off-centre direct beam, rings, a radial background),
through the calibrated rotation, flip and ellipticity."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.data import Calibration
from stemgrains.errors import InputError, ParameterError
from stemgrains.preprocess import api
from stemgrains.preprocess.api import SpotParams

# --- tolerances ---------------------------------------------------------------------------------------------------
TOL_SPOT_PX = 0.2  # detected spot position vs the constructed one, in detector pixels (as q / q_pixel_size)
TOL_CENTER_PX = 0.2  # direct-beam centre
TOL_RING_REL = 0.02  # polar transform of a ring: spread along the angle relative to the ring's height
TOL_BACKGROUND = 0.5  # radial background with spots vs without, counts (spots of 500; the profile changes by ≤ 5 per bin)

SHAPE = (128, 128)
PX = 0.01  # 1/Å per pixel
CALIBRATIONS = {
    "plain": Calibration(PX),
    "rotated": Calibration(PX, q_rotation_deg=37.0),
    "flipped": Calibration(PX, q_rotation_deg=-120.0, q_flip=True),
    "elliptic": Calibration(PX, q_rotation_deg=75.0, q_flip=True, ellipticity=(1.05, 20.0)),
}


def gaussian(pos, amp, sigma, shape=SHAPE):
    rows, cols = np.indices(shape)
    return amp * np.exp(-((rows - pos[0]) ** 2 + (cols - pos[1]) ** 2) / (2 * sigma**2))


def with_center(cal, center):
    return Calibration(cal.q_pixel_size, q_rotation_deg=cal.q_rotation_deg, q_flip=cal.q_flip, ellipticity=cal.ellipticity, center=center)


def sample_q_of_pixels(cal, center, shape=SHAPE):
    """Sample-frame q (…, 2) of every detector pixel (from Calibration.detector_to_sample_q)."""
    rows, cols = np.indices(shape)
    return cal.detector_to_sample_q(np.stack([rows - center[0], cols - center[1]], -1).astype(float))


def spot_pattern(cal, center, qs, beam_amp=200.0, spot_amp=50.0, sigma=1.5, background=1.0):
    """A direct beam at ``center`` and a Gaussian spot at each sample-frame q in ``qs`` (placed through the
    calibration's sample → detector mapping)."""
    img = background + gaussian(center, beam_amp, 2.0)
    for q in qs:
        drow, dcol = cal.sample_q_to_detector(np.asarray(q, float))
        img = img + gaussian((center[0] + drow, center[1] + dcol), spot_amp, sigma)
    return img


def nearest_peak_error_px(peaks, count, q):
    return float(np.min(np.linalg.norm(peaks[:count, :2] - np.asarray(q), axis=1)) / PX)


# --------------------------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------------------------
def assert_one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    for w in words:
        assert w in msg


BAD_SHAPES = [np.zeros(16), np.zeros((2, 2, 16, 16))]
NON_NUMERIC = [np.full((2, 16, 16), "a"), np.ones((2, 16, 16), bool), np.full((2, 16, 16), None, dtype=object)]


@pytest.mark.parametrize("arr", BAD_SHAPES, ids=["1d", "4d"])
def test_stack_functions_reject_wrong_ndim(arr):
    cal = Calibration(PX)
    with pytest.raises(InputError) as e:
        api.detect_spots(arr, cal)
    assert_one_line(e, "patterns", str(arr.shape))
    with pytest.raises(InputError) as e:
        api.processed_images(arr, cal, np.zeros((1, 2)))
    assert_one_line(e, "patterns")


@pytest.mark.parametrize("arr", NON_NUMERIC, ids=["str", "bool", "object"])
def test_stack_functions_reject_non_numeric(arr):
    cal = Calibration(PX)
    with pytest.raises(InputError) as e:
        api.detect_spots(arr, cal)
    assert_one_line(e, "numeric")
    with pytest.raises(InputError) as e:
        api.processed_images(arr, cal, np.zeros((2, 2)))
    assert_one_line(e, "numeric")


def test_stack_functions_reject_complex():
    with pytest.raises(InputError):
        api.detect_spots(np.ones((2, 16, 16), complex), Calibration(PX))


@pytest.mark.parametrize("dtype", ["float16", ">f4", ">u2"])
def test_detect_spots_accepts_any_numeric_dtype(dtype):
    cal = Calibration(PX)
    img = spot_pattern(cal, (63.5, 63.5), [(0.3, 0.1)])
    want = api.detect_spots(img, cal)
    got = api.detect_spots(img.astype(dtype), cal)
    assert got[1][0] == want[1][0]


def test_detect_spots_parameter_errors():
    img = np.ones((2, 16, 16))
    with pytest.raises(ParameterError) as e:
        api.detect_spots(img, Calibration(PX), SpotParams(refine_center=False))
    assert_one_line(e, "center")
    with pytest.raises(ParameterError) as e:
        api.detect_spots(img, Calibration(PX, center=(20.0, 3.0)))
    assert_one_line(e, "outside")
    with pytest.raises(InputError) as e:
        api.processed_images(img, Calibration(PX), np.zeros((3, 2)))
    assert_one_line(e, "centers")


@pytest.mark.parametrize(
    "kw", [dict(q_max=0.0), dict(q_max=np.nan), dict(beam_radius_px=-1.0), dict(n_sigma=0.0), dict(max_peaks=0),
           dict(min_distance_px=0), dict(ring_radius_px=1), dict(n_sigma_sparse=5.0), dict(n_sigma=3.0, n_sigma_sparse=3.5)],
)
def test_spot_params_validation(kw):
    with pytest.raises(ParameterError) as e:
        SpotParams(**kw)
    assert_one_line(e)


def test_an_empty_q_range_is_refused():
    """q_min at or beyond q_max (or what the detector reaches) detected no spot and indexed nothing, silently."""
    with pytest.raises(ParameterError, match=r"^q_min: expected a value below q_max \(0.5 1/Å\), got 1"):
        SpotParams(q_min=1.0, q_max=0.5)
    with pytest.raises(ParameterError, match=r"^q_min: expected a finite value of at least 0"):
        SpotParams(q_min=-0.1)
    cal = Calibration(PX)
    reach = api.detector_q_reach(cal, (32, 32))
    with pytest.raises(ParameterError, match=r"^q_min: the inner radius of the spots, .* is not below their outer"):
        api.detect_spots(np.zeros((32, 32)), cal, SpotParams(q_min=1.01 * reach))
    assert api.detect_spots(np.zeros((32, 32)), cal, SpotParams(q_min=0.5 * reach))[1][0] == 0


def test_sparse_threshold_must_lie_below_n_sigma():
    """n_sigma_sparse >= n_sigma took no weaker spots (it only ever lowers the threshold): refused, unless off."""
    with pytest.raises(ParameterError, match=r"^n_sigma_sparse: expected a value below n_sigma \(5\), got 6"):
        SpotParams(n_sigma_sparse=6.0)
    assert SpotParams(n_sigma_sparse=6.0, min_spots=0).min_spots == 0
    assert SpotParams(n_sigma=3.0).n_sigma == 3.0  # the default sparse threshold with n_sigma lowered below it: harmless


@pytest.mark.parametrize("arr", [np.zeros(16), np.zeros((2, 16, 16))], ids=["1d", "3d"])
def test_single_pattern_functions_reject_wrong_ndim(arr):
    cal = Calibration(PX)
    with pytest.raises(InputError) as e:
        api.direct_beam_center(arr)
    assert_one_line(e, "2-D")
    with pytest.raises(InputError) as e:
        api.polar_transform(arr, cal, (8.0, 8.0), 0.1)
    assert_one_line(e, "2-D")


def test_radial_background_rejects_wrong_ndim():
    with pytest.raises(InputError):
        api.radial_background(np.zeros((2, 16, 16)), Calibration(PX), (8.0, 8.0), PX, 0.1)


@pytest.mark.parametrize("func", ["direct_beam_center", "polar_transform", "radial_background"])
def test_single_pattern_functions_reject_non_numeric(func):
    arr = np.full((16, 16), "a")
    cal = Calibration(PX)
    call = {
        "direct_beam_center": lambda: api.direct_beam_center(arr),
        "polar_transform": lambda: api.polar_transform(arr, cal, (8.0, 8.0), 0.1),
        "radial_background": lambda: api.radial_background(arr, cal, (8.0, 8.0), PX, 0.1),
    }[func]
    with pytest.raises(InputError):
        call()


def test_radial_background_quantile_validation():
    with pytest.raises(ParameterError) as e:
        api.radial_background(np.ones((16, 16)), Calibration(PX), (8.0, 8.0), PX, 0.1, quantile=1.5)
    assert_one_line(e, "quantile")


@pytest.mark.parametrize("bw", [0.0, -0.01])
def test_radial_background_bin_width_validation(bw):
    with pytest.raises(ParameterError):
        api.radial_background(np.ones((16, 16)), Calibration(PX), (8.0, 8.0), bw, 0.1)


def test_empty_stack_gives_empty_results():
    peaks, counts, centers = api.detect_spots(np.zeros((0, 32, 32)), Calibration(PX))
    assert peaks.shape == (0, SpotParams().max_peaks, 3) and counts.shape == (0,) and centers.shape == (0, 2)
    assert api.processed_images(np.zeros((0, 32, 32)), Calibration(PX), np.zeros((0, 2))).shape == (0, 32, 32)


# --------------------------------------------------------------------------------------------------------------------
# spots and centres on constructed patterns
# --------------------------------------------------------------------------------------------------------------------
QS = [(0.31, -0.17), (-0.12, 0.36), (-0.25, -0.28)]  # sample-frame q of three spots, 1/Å


@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
@pytest.mark.parametrize("refine", [False, True])
def test_detect_spots_finds_constructed_spots_in_the_sample_frame(name, refine):
    cal = CALIBRATIONS[name]
    rng = np.random.default_rng(len(name))
    center = (63.5 + rng.uniform(-3, 3), 63.5 + rng.uniform(-3, 3))
    img = spot_pattern(cal, center, QS)
    used = with_center(cal, center) if not refine else cal  # refine: found from the detector middle
    peaks, counts, centers = api.detect_spots(img, used, SpotParams(refine_center=refine, q_max=0.6))
    assert counts[0] == len(QS)
    for q in QS:
        assert nearest_peak_error_px(peaks[0], counts[0], q) < TOL_SPOT_PX
    np.testing.assert_allclose(centers[0], center, atol=TOL_CENTER_PX if refine else 0)
    assert np.all(peaks[0, : counts[0], 2] > 0)
    # the amplitudes follow the spots' heights (excess of the 3 × 3 box sum) ** power
    bright = spot_pattern(cal, center, QS[:1], spot_amp=200.0) - gaussian(center, 200.0, 2.0)
    dim = spot_pattern(cal, center, QS[:1], spot_amp=50.0) - gaussian(center, 200.0, 2.0)
    pb = api.detect_spots(np.stack([bright, dim]), with_center(cal, center), SpotParams(refine_center=False, power=1.0))
    assert pb[0][0, 0, 2] / pb[0][1, 0, 2] == pytest.approx(4.0, rel=0.02)


def test_detect_spots_q_window_and_integer_input():
    cal = CALIBRATIONS["rotated"]
    center = (64.0, 62.0)
    img = spot_pattern(cal, center, QS + [(0.05, 0.0)])  # the fourth spot is inside q_min (2.5 × beam radius = 0.1)
    peaks, counts, _ = api.detect_spots(np.rint(img).astype(np.uint16), with_center(cal, center), SpotParams(refine_center=False, q_max=0.36))
    assert counts[0] == 1  # |q| = 0.354, 0.379, 0.375: the last two lie beyond q_max; the central spot is cut
    assert nearest_peak_error_px(peaks[0], counts[0], QS[0]) < TOL_SPOT_PX


def test_center_found_despite_a_brighter_spot_beyond_the_search_radius():
    cal = CALIBRATIONS["plain"]
    beam = (69.3, 58.6)  # 7.2 px from the detector middle (63.5, 63.5); search radius 128 / 8 = 16 px
    img = 1.0 + gaussian(beam, 100.0, 2.0) + gaussian((beam[0] - 24.0, beam[1] + 20.0), 400.0, 2.0)
    _, _, centers = api.detect_spots(img, cal)
    np.testing.assert_allclose(centers[0], beam, atol=TOL_CENTER_PX)
    # a nominal centre given in the calibration is the start of the search
    _, _, centers = api.detect_spots(img, with_center(cal, (75.0, 50.0)))
    np.testing.assert_allclose(centers[0], beam, atol=TOL_CENTER_PX)
    # without refinement the calibrated centre is used as it is
    _, _, centers = api.detect_spots(img, with_center(cal, (60.0, 61.0)), SpotParams(refine_center=False))
    np.testing.assert_array_equal(centers[0], (60.0, 61.0))
    # per pattern: a stack with moving beams
    stack = np.stack([1.0 + gaussian((63.5 + d, 63.5 - d), 100.0, 2.0) for d in (-4.2, 0.0, 5.7)])
    _, _, centers = api.detect_spots(stack, cal)
    np.testing.assert_allclose(centers, [(63.5 + d, 63.5 - d) for d in (-4.2, 0.0, 5.7)], atol=TOL_CENTER_PX)


def test_direct_beam_center():
    beam = (40.3, 71.8)
    img = 2.0 + gaussian(beam, 100.0, 1.5)
    np.testing.assert_allclose(api.direct_beam_center(img - 2.0, radius_px=6.0), beam, atol=0.02)
    np.testing.assert_allclose(api.direct_beam_center(img, radius_px=6.0), beam, atol=TOL_CENTER_PX)  # flat background
    # a brighter spot elsewhere: start near the beam
    img2 = img + gaussian((90.0, 20.0), 300.0, 1.5)
    np.testing.assert_allclose(api.direct_beam_center(img2, radius_px=6.0, start=(42.0, 70.0)), beam, atol=TOL_CENTER_PX)
    np.testing.assert_allclose(api.direct_beam_center(img2.astype(np.float32), radius_px=6.0, start=(42.0, 70.0)), beam, atol=TOL_CENTER_PX)


# --------------------------------------------------------------------------------------------------------------------
# polar transform, radial background, processed images
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
def test_polar_transform_of_a_ring_is_constant_along_the_angle(name):
    cal = CALIBRATIONS[name]
    center = (62.2, 65.7)
    q = np.linalg.norm(sample_q_of_pixels(cal, center), axis=-1)
    q0, width = 0.35, 0.04  # 4 px wide: bilinear interpolation of the sampled ring errs by < 1 %
    img = 5.0 + 100.0 * np.exp(-((q - q0) ** 2) / (2 * width**2))  # a circle in the sample frame (an ellipse on the detector)
    polar, radii, angles = api.polar_transform(img, cal, center, q_max=0.5, n_radial=51, n_angles=180)
    assert polar.shape == (51, 180) and radii[-1] == pytest.approx(0.5) and angles[1] == pytest.approx(2 * np.pi / 180)
    k = int(np.argmin(np.abs(radii - q0)))
    ring = polar[k]
    assert ring.min() > 0.95 * 105.0
    assert np.ptp(ring) < TOL_RING_REL * 100.0
    np.testing.assert_array_equal(np.argmax(polar, axis=0), k)
    assert np.ptp(polar[0]) < 1e-9  # the centre is one point


@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
def test_polar_transform_puts_a_spot_at_its_sample_frame_angle(name):
    cal = CALIBRATIONS[name]
    center = (60.0, 66.0)
    phi = np.deg2rad(40.0)  # from +x toward +y
    img = spot_pattern(cal, center, [(0.3 * np.cos(phi), 0.3 * np.sin(phi))], beam_amp=0.0)
    polar, radii, angles = api.polar_transform(img, cal, center, q_max=0.5, n_radial=51, n_angles=360)
    i, j = np.unravel_index(np.argmax(polar), polar.shape)
    assert radii[i] == pytest.approx(0.3, abs=0.011)
    assert abs(np.rad2deg(angles[j]) - 40.0) <= 1.0


@pytest.mark.parametrize("name", ["plain", "elliptic"])
def test_radial_background_follows_a_constructed_profile(name):
    cal = CALIBRATIONS[name]
    center = (63.0, 64.0)
    q = np.linalg.norm(sample_q_of_pixels(cal, center), axis=-1)

    def profile(x):
        return 10.0 + 50.0 * np.exp(-x / 0.2)

    img = profile(q)
    bw = 0.02
    prof = api.radial_background(img, cal, center, bin_width_q=bw, q_max=0.6)
    assert prof.shape == (30,)
    # each ring's value lies between its lower and upper median (the profile at the ring pixels' median radius)
    ring = np.floor(q / bw).astype(int)
    lower = np.array([np.quantile(profile(q[ring == k]), 0.5, method="lower") for k in range(30)])
    upper = np.array([np.quantile(profile(q[ring == k]), 0.5, method="higher") for k in range(30)])
    assert np.all(prof >= lower - 1e-9) and np.all(prof <= upper + 1e-9)
    assert np.all(np.diff(prof) < 0)
    # sparse bright spots (500 counts) hardly move the medians
    rng = np.random.default_rng(0)
    for _ in range(15):
        img = img + gaussian((rng.uniform(20, 108), rng.uniform(20, 108)), 500.0, 1.0)
    prof = api.radial_background(img, cal, center, bin_width_q=bw, q_max=0.6)
    assert np.all(prof >= lower - TOL_BACKGROUND) and np.all(prof <= upper + TOL_BACKGROUND)
    lo = api.radial_background(img, cal, center, bin_width_q=bw, q_max=0.6, quantile=0.0)
    assert np.all(lo <= prof + 1e-12)


def test_processed_images_remove_a_radial_background_and_keep_spots():
    cal = CALIBRATIONS["elliptic"]
    center = (63.0, 64.0)
    q = np.linalg.norm(sample_q_of_pixels(cal, center), axis=-1)
    background = 20.0 + 30.0 * np.exp(-q / 0.3) + 8.0 * np.exp(-((q - 0.4) ** 2) / (2 * 0.05**2))  # an amorphous ring
    spots = spot_pattern(cal, center, QS, beam_amp=0.0, background=0.0)
    stack = np.stack([background + spots, background])
    out = api.processed_images(stack, cal, np.array([center, center]), SpotParams(power=1.0))
    assert out.shape == stack.shape and out.dtype == np.float32
    inner = (q > 0.05) & (q < 0.55)  # away from the detector edges (see the next test)
    assert out[1][inner].max() < 1.0  # the smooth background is gone (≤ its change over one bin)
    for qs in QS:
        drow, dcol = cal.sample_q_to_detector(np.asarray(qs))
        r, c = int(round(center[0] + drow)), int(round(center[1] + dcol))
        assert out[0][r, c] > 0.5 * 50.0  # the spot's 3 × 3 mean stays (50 × ≈ 0.7)


def test_processed_image_of_a_constant_pattern_is_zero():
    out = api.processed_images(np.full((64, 64), 10.0), Calibration(PX), np.array([[31.5, 31.5]]), SpotParams(power=1.0))
    assert out.max() == 0.0
