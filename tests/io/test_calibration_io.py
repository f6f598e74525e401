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
        # each taken silently before: nothing applied, an angle of 0 made up, true read as 1, a 'file' value taken
        ("{}", "holds no calibration value"),
        ('{"ellipticity_ratio": 1.05}', "give both ellipticity_ratio and ellipticity_angle_deg"),
        ('{"q_pixel_size": true}', "q_pixel_size must be a number, got true"),
        ('{"calibration": {"q_pixel_size": 0.028}, "origin": {"q_pixel_size": "file"}}', "has none to give"),
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


def _fit(status, stated, fitted, stated_origin, method="rings"):
    from stemgrains.preprocess.calibrate import CalibrationFit

    return CalibrationFit(calibration=fitted, status=status, reason=None if status == "ok" else "no better",
                          method=method, values={}, uncertainty={}, center={}, notes=[], stated=stated,
                          stated_origin=stated_origin)


def test_a_fit_gives_another_scan_only_what_it_fitted_or_was_given(tmp_path):
    """The calibration.json of `calibrate` carried the fitted scan's own voltage (and, unconfirmed, its stated pixel
    size): given to another scan with --calibration, they replaced that scan's values with no note. Now the fit
    records each value's origin, and a reader takes only the values fitted or given to calibrate."""
    stated = Calibration(q_pixel_size=0.02, accelerating_voltage_kV=300.0, q_rotation_deg=7.0)
    fitted = Calibration(q_pixel_size=0.0207, accelerating_voltage_kV=300.0, q_rotation_deg=7.0,
                         center=(31.5, 32.5), ellipticity=(1.04, 20.0))
    origin = {"q_pixel_size": "file", "accelerating_voltage_kV": "file", "q_rotation_deg": "command line",
              "q_flip": "default", "center": "default", "ellipticity": "default", "affine": "default"}
    path = write_calibration_json(tmp_path / "ok.json", _fit("ok", stated, fitted, origin))
    doc = json.loads(path.read_text())
    assert doc["origin"]["q_pixel_size"] == "fitted (rings)" and doc["origin"]["accelerating_voltage_kV"] == "file"
    assert read_calibration_json(path) == {"q_pixel_size": 0.0207, "q_rotation_deg": 7.0, "center": (31.5, 32.5),
                                           "ellipticity": (1.04, 20.0)}
    # unconfirmed: the stated calibration is kept; only what calibrate was given is passed on
    path = write_calibration_json(tmp_path / "unconfirmed.json", _fit("unconfirmed", stated, stated, origin))
    assert json.loads(path.read_text())["calibration"]["q_pixel_size"] == 0.02
    assert read_calibration_json(path) == {"q_rotation_deg": 7.0}
    origin["q_rotation_deg"] = "file"  # and with nothing given: refused in one line, not silently nothing
    path = write_calibration_json(tmp_path / "nothing.json", _fit("unconfirmed", stated, stated, origin))
    with pytest.raises(FileFormatError, match=r"nothing.json: this calibration fit is unconfirmed \(it was not applied\)"):
        read_calibration_json(path)
    # a fit written before the origin record: its fitted geometry when ok, never the voltage
    doc = json.loads((tmp_path / "ok.json").read_text())
    del doc["origin"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert read_calibration_json(tmp_path / "old.json") == {"q_pixel_size": 0.0207, "center": (31.5, 32.5),
                                                            "ellipticity": (1.04, 20.0)}


def test_an_invented_origin_or_a_summary_without_its_block_is_refused(tmp_path):
    block = {"q_pixel_size": 0.021, "center": [31.0, 33.0], "origin": {"q_pixel_size": "my notebook",
                                                                       "center": "fitted (rings)"}}
    (tmp_path / "summary.json").write_text(json.dumps({"calibration": block}))
    with pytest.raises(FileFormatError, match=r"summary.json: origin of q_pixel_size: expected one of .*got 'my notebook'"):
        read_calibration_json(tmp_path / "summary.json")
    # used to list every summary key as an unknown calibration key
    (tmp_path / "summary.json").write_text(json.dumps({"input": "a.h5", "scan_shape": [4, 4], "n_grains": 3}))
    with pytest.raises(FileFormatError, match="summary.json: a run's summary.json without its 'calibration' block"):
        read_calibration_json(tmp_path / "summary.json")


def test_a_pixel_size_fitted_at_another_voltage_is_noted(tmp_path):
    """A pixel size fitted on a 300 kV scan given to a 200 kV scan was taken without a word; at one camera length
    it would be λ(300)/λ(200) = 0.785 times as large."""
    from stemgrains.pipeline import calibration_summary, input_warnings
    from stemgrains.settings import load_calibrated

    stated = Calibration(q_pixel_size=0.02, accelerating_voltage_kV=300.0)
    fitted = Calibration(q_pixel_size=0.021, accelerating_voltage_kV=300.0)
    origin = {k: "file" for k in Calibration.__dataclass_fields__}
    fit = write_calibration_json(tmp_path / "fit300.json", _fit("ok", stated, fitted, origin))
    data = np.zeros((2, 2, 16, 16), np.float32)
    for kv in (200.0, 300.0):
        write_4d(tmp_path / f"scan{kv:g}.h5", data, Calibration(q_pixel_size=0.03, accelerating_voltage_kV=kv))
    ds = load_calibrated(tmp_path / "scan200.h5", {"file": str(fit)})
    assert ds.calibration.q_pixel_size == 0.021 and ds.calibration.accelerating_voltage_kV == 200.0
    notes = [n for n in input_warnings(calibration_summary(ds), 1.0, []) if "fitted or given at 300 kV" in n]
    assert len(notes) == 1 and "would be 0.01649" in notes[0] and "fit300.json" in notes[0]
    same = load_calibrated(tmp_path / "scan300.h5", {"file": str(fit)})  # the voltage it was fitted at: no note
    assert "notes" not in calibration_summary(same)
    given = load_calibrated(tmp_path / "scan200.h5", {"file": str(fit), "q_pixel_size": 0.02})  # given: not the file's
    assert "notes" not in calibration_summary(given)


def test_a_voltage_from_another_run_that_replaces_the_files_own_is_noted(tmp_path):
    """A run's summary given 200 kV on its command line replaced another scan's stated 300 kV without a word."""
    from stemgrains.pipeline import calibration_summary, input_warnings
    from stemgrains.settings import load_calibrated

    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"calibration": {"accelerating_voltage_kV": 200.0, "q_pixel_size": 0.02,
                                                   "origin": {"accelerating_voltage_kV": "command line",
                                                              "q_pixel_size": "file"}}}))
    data = np.zeros((2, 2, 16, 16), np.float32)
    write_4d(tmp_path / "s300.h5", data, Calibration(q_pixel_size=0.03, accelerating_voltage_kV=300.0))
    write_4d(tmp_path / "s200.h5", data, Calibration(q_pixel_size=0.03, accelerating_voltage_kV=200.0))
    ds = load_calibrated(tmp_path / "s300.h5", {"file": str(summary)})
    assert ds.calibration.accelerating_voltage_kV == 200.0  # as documented: given to that run, passed on
    lines = input_warnings(calibration_summary(ds), 1.0, [])
    assert any("accelerating_voltage_kV 200 kV from" in n and "replaces the 300 kV that" in n for n in lines), lines
    same = load_calibrated(tmp_path / "s200.h5", {"file": str(summary)})  # nothing replaced: no note
    assert not any("replaces" in n for n in input_warnings(calibration_summary(same), 1.0, []))
