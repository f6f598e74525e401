"""Calibration.affine, calibration JSON files and the calibration recorded in results files."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from stemgrains.data import Calibration
from stemgrains.errors import FileFormatError, ParameterError
from stemgrains.io import load_4d, read_calibration_json, read_results_calibration, write_4d, write_calibration_json
from stemgrains.io.results import atomic_h5, write_provenance


def test_affine_composes_last_and_identity_changes_nothing():
    base = Calibration(q_pixel_size=0.02, q_rotation_deg=17.0, q_flip=True, ellipticity=(1.04, 25.0))
    same = Calibration(q_pixel_size=0.02, q_rotation_deg=17.0, q_flip=True, ellipticity=(1.04, 25.0), affine=(1, 0, 0, 1))
    np.testing.assert_allclose(base._affine(), same._affine(), atol=1e-15)
    a = np.array([[1.03, 0.02], [-0.01, 0.97]])
    cal = Calibration(q_pixel_size=0.02, q_rotation_deg=17.0, q_flip=True, ellipticity=(1.04, 25.0), affine=tuple(a.ravel()))
    np.testing.assert_allclose(cal._affine(), a @ base._affine(), atol=1e-15)
    # measured = A @ ideal on (dcol, drow) columns; sample_q_to_detector returns (drow, dcol)
    q = np.array([[0.3, -0.2], [0.5, 0.4]])
    ideal = base.sample_q_to_detector(q)[:, ::-1]
    np.testing.assert_allclose(cal.sample_q_to_detector(q)[:, ::-1], ideal @ a.T, atol=1e-12)
    np.testing.assert_allclose(cal.detector_to_sample_q(cal.sample_q_to_detector(q)), q, atol=1e-12)


def test_ellipticity_convention():
    """ratio: lengths along the axis at angle_deg (detector frame, +col toward +row) are ratio times longer."""
    cal = Calibration(q_pixel_size=0.01, ellipticity=(1.05, 30.0))
    t = math.radians(30.0)
    # a sample vector along the long axis (rotation 0: sample x ∥ col, y ∥ row)
    along = cal.sample_q_to_detector(np.array([0.1 * math.cos(t), 0.1 * math.sin(t)]))
    across = cal.sample_q_to_detector(np.array([-0.1 * math.sin(t), 0.1 * math.cos(t)]))
    assert np.hypot(*along) == pytest.approx(10.5)
    assert np.hypot(*across) == pytest.approx(10.0)
    assert math.degrees(math.atan2(along[0], along[1])) == pytest.approx(30.0)


@pytest.mark.parametrize("bad", [(1, 0, 0), (1, 0, 0, float("nan")), (1, 1, 1, 1), (20, 0, 0, 1), "abc"])
def test_bad_affine_is_a_parameter_error(bad):
    with pytest.raises(ParameterError, match="affine"):
        Calibration(q_pixel_size=0.01, affine=bad)


def test_attrs_round_trip_with_affine(tmp_path):
    cal = Calibration(q_pixel_size=0.02, center=(31.5, 32.0), q_rotation_deg=-12.0, q_flip=True, ellipticity=(1.03, 40.0),
                      affine=(1.01, 0.005, -0.003, 0.99))
    assert Calibration.from_attrs(cal.to_attrs()) == cal
    data = np.zeros((2, 2, 64, 64), np.uint16)
    path = write_4d(tmp_path / "d.h5", data, cal)
    assert load_4d(path).calibration == cal


def test_json_round_trip_and_overrides(tmp_path):
    cal = Calibration(q_pixel_size=0.02, center=(31.5, 32.0), q_rotation_deg=-12.0, q_flip=True, ellipticity=(1.03, 40.0),
                      affine=(1.01, 0.005, -0.003, 0.99))
    p = write_calibration_json(tmp_path / "c.json", cal)
    kw = read_calibration_json(p)
    assert Calibration(**kw) == cal
    # a hand-written flat file with a subset of the keys
    (tmp_path / "flat.json").write_text(json.dumps({"q_rotation_deg": 30, "q_flip": True}))
    assert read_calibration_json(tmp_path / "flat.json") == {"q_rotation_deg": 30, "q_flip": True}


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not a readable calibration JSON"),
        ('{"q_pixel_size": -1}', "q_pixel_size"),
        ('{"pixel_size": 0.01}', "unknown calibration key"),
        ('{"center_row": 3}', "center_row and center_col"),
        ('{"q_flip": "yes"}', "q_flip"),
        ('{"affine": [1, 0]}', "affine"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_calibration_json_names_the_file(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(FileFormatError, match=match) as err:
        read_calibration_json(p)
    assert str(p) in str(err.value)
    with pytest.raises(FileFormatError, match="not found"):
        read_calibration_json(tmp_path / "missing.json")


def test_results_file_records_every_field(tmp_path):
    cal = Calibration(q_pixel_size=0.02, center=(31.5, 32.0), q_rotation_deg=-12.0, q_flip=True, ellipticity=(1.03, 40.0),
                      affine=(1.01, 0.005, -0.003, 0.99))
    path = tmp_path / "r.h5"
    with atomic_h5(path) as f:
        write_provenance(f, calibration=cal)
    with h5py.File(path, "r") as f:
        assert set(f["calibration"].attrs) >= {"q_pixel_size", "center_row", "center_col", "q_rotation_deg", "q_flip",
                                               "ellipticity_ratio", "ellipticity_angle_deg", "affine"}
    assert read_results_calibration(path) == cal
    with pytest.raises(FileFormatError, match="not found"):
        read_results_calibration(tmp_path / "none.h5")
