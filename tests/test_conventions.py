"""The statements of docs/conventions.md, checked against the code (issue #16 item 6).

Each test quotes the rule it checks; if one fails, either the code or the page is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from orix.crystal_map import CrystalMap, PhaseList
from orix.quaternion import Orientation, Rotation
from orix.vector import Vector3d

from stemgrains import Calibration
from stemgrains.boundaries import extract_boundaries
from stemgrains.crystal import load_phase
from stemgrains.grains import c_axis_geometry, segment_grains
from stemgrains.io import load_orientation_map, write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance

PAGE = Path(__file__).resolve().parents[1] / "docs" / "conventions.md"
QPIX = 0.02


def _sample_q(cal: Calibration, drow: float, dcol: float) -> np.ndarray:
    return cal.detector_to_sample_q(np.array([[drow, dcol]], dtype=float))[0]


def test_page_states_the_rules_checked_here():
    text = PAGE.read_text(encoding="utf-8")
    for rule in ("`data[scan_row, scan_col, det_row, det_col]`", "`v_crystal = O * v_sample`",
                 "`c = O⁻¹ (0, 0, 1)`", "`x = scan_col × scan_step_nm`", "`t = ẑ × n = (−n_y, n_x)`",
                 "(dcol, drow) = A · E · F · R(−θ) · (qx, qy) / q_pixel_size"):
        assert rule in text, rule


@pytest.mark.parametrize("theta", [0.0, 30.0, -75.0])
def test_detector_col_axis_points_at_q_rotation_from_x_toward_y(theta):
    # "with θ = 0 and no flip, +col is +x and +row is +y ... with θ > 0, the detector's +col axis points at θ
    # from +x toward +y"
    cal = Calibration(q_pixel_size=QPIX, q_rotation_deg=theta)
    t = np.radians(theta)
    np.testing.assert_allclose(_sample_q(cal, 0, 1), QPIX * np.array([np.cos(t), np.sin(t)]), atol=1e-12)
    np.testing.assert_allclose(_sample_q(cal, 1, 0), QPIX * np.array([-np.sin(t), np.cos(t)]), atol=1e-12)


def test_q_flip_swaps_the_detector_axes():
    cal = Calibration(q_pixel_size=QPIX, q_flip=True)
    np.testing.assert_allclose(_sample_q(cal, 0, 1), [0.0, QPIX], atol=1e-12)  # +col → +y
    np.testing.assert_allclose(_sample_q(cal, 1, 0), [QPIX, 0.0], atol=1e-12)  # +row → +x


def test_ellipticity_lengthens_the_axis_at_its_angle():
    # "distances along the axis at φ (from +col toward +row) are ratio times longer than across it, where one
    # pixel is q_pixel_size"
    ratio, phi = 1.5, 30.0
    cal = Calibration(q_pixel_size=QPIX, ellipticity=(ratio, phi))
    p = np.radians(phi)
    along = QPIX * np.array([np.cos(p), np.sin(p)])  # θ = 0: sample (x, y) is detector (col, row)
    across = QPIX * np.array([-np.sin(p), np.cos(p)])
    d_along = cal.sample_q_to_detector(along[None])[0]
    d_across = cal.sample_q_to_detector(across[None])[0]
    assert np.linalg.norm(d_along) == pytest.approx(ratio)
    assert np.linalg.norm(d_across) == pytest.approx(1.0)


def test_affine_maps_the_ideal_offset_to_the_measured_one():
    a = (1.02, 0.01, -0.03, 0.97)
    plain = Calibration(q_pixel_size=QPIX, q_rotation_deg=20.0)
    distorted = Calibration(q_pixel_size=QPIX, q_rotation_deg=20.0, affine=a)
    q = np.array([[0.3, -0.7]])
    ideal = plain.sample_q_to_detector(q)[0][::-1]  # (dcol, drow)
    measured = distorted.sample_q_to_detector(q)[0][::-1]
    np.testing.assert_allclose(measured, np.reshape(a, (2, 2)) @ ideal, atol=1e-12)


def test_orientation_maps_sample_to_crystal_and_c_axis_is_its_inverse_on_001():
    rng = np.random.default_rng(5)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ori = Rotation(q)
    c, alpha, _ = c_axis_geometry(q, np.ones(len(q), bool))
    expected = ((~ori) * Vector3d.zvector()).unit.data
    expected *= np.where(expected[:, 2:] < 0, -1.0, 1.0)  # "taken with c_z ≥ 0"
    np.testing.assert_allclose(c, expected, atol=1e-9)
    # and O maps that sample vector back onto the crystal c direction: v_crystal = O * v_sample
    back = (ori * Vector3d(c)).unit.data
    np.testing.assert_allclose(np.abs(back[:, 2]), 1.0, atol=1e-9)
    np.testing.assert_allclose(alpha, np.degrees(np.arccos(np.abs(c[:, 2]))), atol=1e-9)


@pytest.fixture(scope="module")
def two_grain_map(data_samples):
    """A 6 × 8 map: grain of columns 0–3 (left) and of columns 4–7 (right), 2 nm step."""
    phase = load_phase(data_samples / "na_beta2_alumina.cif")
    ny, nx, step = 6, 8, 2.0
    r, cidx = np.divmod(np.arange(ny * nx), nx)
    left = Rotation.from_axes_angles([0, 0, 1], 0.0)
    right = Rotation.from_axes_angles([1, 0, 0], np.radians(40.0))
    q = np.where((cidx < nx // 2)[:, None], left.data, right.data)
    return CrystalMap(rotations=Rotation(q), phase_id=np.zeros(ny * nx, int), x=cidx * step, y=r * step,
                      phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm")


def test_map_coordinates_are_nm_along_columns_and_rows(two_grain_map, tmp_path):
    # "x = scan_col × scan_step_nm, y = scan_row × scan_step_nm, origin at the centre of scan pixel (0, 0)"
    path = tmp_path / "map.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=two_grain_map.phases)
        write_orientation_map(f, two_grain_map)
    xmap = load_orientation_map(path)
    assert xmap.shape == (6, 8) and xmap.scan_unit == "nm"
    rows, cols = np.indices(xmap.shape)
    np.testing.assert_allclose(xmap.x.reshape(xmap.shape), 2.0 * cols)
    np.testing.assert_allclose(xmap.y.reshape(xmap.shape), 2.0 * rows)


def test_boundary_normal_points_from_grain_a_into_grain_b(two_grain_map):
    # "n points from grain A (the smaller label) into grain B; t = ẑ × n = (−n_y, n_x), angles in (−90°, 90°]"
    gm = segment_grains(two_grain_map, min_grain_size=1)
    bt = extract_boundaries(gm, two_grain_map)
    seg = bt.segments
    assert len(seg) == 1
    a, b = int(seg["grain_a"][0]), int(seg["grain_b"][0])
    assert a < b
    side_a = gm.labels[0, 0]  # the left grain
    n = np.asarray(seg["normal"][0], dtype=float)
    expected_n = np.array([1.0, 0.0]) if side_a == a else np.array([-1.0, 0.0])
    np.testing.assert_allclose(n, expected_n, atol=1e-9)
    assert float(seg["trace_angle_deg"][0]) == pytest.approx(90.0)  # t = (0, ±1): along y, folded into (−90, 90]
