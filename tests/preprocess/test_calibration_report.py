"""What `stemgrains calibrate` shows a user of a fit (fresh-user review): the ellipse axis angle in one range,
(−90°, 90°], in the printed line, the JSON and the figure; the figure's axes labelled for what they show."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stemgrains.crystal import load_phase
from stemgrains.data import Calibration, Dataset4D, axis_angle_deg
from stemgrains.io.calibration import read_calibration_json, write_calibration_json
from stemgrains.preprocess import calibrate
from stemgrains.preprocess.calibrate import _derived, calibration_from_matrix
from stemgrains.simulate import default_q_pixel_size, sample_cif, simulate_patterns

RATIO = 1.05
ANGLE = 112.0  # the long axis outside (−90°, 90°]: reported as 112 − 180 = −68°


@pytest.fixture(scope="module")
def fit112():
    """Na-β″, 30 grains, a 5 % ellipticity with its long axis at 112°, the file's pixel size 4 % off; rings only."""
    phase = load_phase(sample_cif("na_beta2_alumina"))
    p = default_q_pixel_size(1.5, (128, 128))
    sim = simulate_patterns([phase], scan_shape=(16, 16), n_grains=30, seed=11, dose=1e4,
                            q_pixel_size=p * math.sqrt(RATIO), ellipticity=(RATIO, ANGLE))
    stated = Calibration(q_pixel_size=p * 1.04, scan_step_nm=2.0)
    fit = calibrate(Dataset4D(sim.data, stated), [phase], method="rings", confirm=False)
    assert fit.ok, fit.reason
    return fit


def test_axis_angle_range():
    assert axis_angle_deg(112.0) == pytest.approx(-68.0)
    assert axis_angle_deg(-67.8) == pytest.approx(-67.8)
    for a in (90.0, -90.0, 270.0, -270.0):
        assert axis_angle_deg(a) == 90.0  # (−90°, 90°]: the closed end is +90
    assert axis_angle_deg(180.0) == 0.0


def test_reported_angle_and_calibration_angle_agree_at_the_end_of_the_range():
    """An axis along +row: the fitted calibration said 90° and the reported value (printed, figure) −90°."""
    s = np.diag([40.0, 42.0])  # px per 1/Å; longer along +row
    base = Calibration(q_pixel_size=0.025)
    q0 = np.eye(2)
    cal = calibration_from_matrix(base, s, q0)
    assert cal.ellipticity[1] == 90.0
    assert _derived(base, s, q0)[2] == 90.0


def test_printed_json_and_figure_give_one_axis_angle(fit112, tmp_path):
    from stemgrains.commands.calibrate import format_fit
    from stemgrains.plot.calibration import plot_calibration

    printed = format_fit(fit112, tmp_path / "c.json")
    angle = fit112.values["ellipticity_angle_deg"]
    assert -90 < angle <= 90 and abs(axis_angle_deg(angle - ANGLE)) < 5
    assert f"at {angle:.1f} ±" in printed
    doc = json.loads(write_calibration_json(tmp_path / "c.json", fit112).read_text())
    assert doc["calibration"]["ellipticity_angle_deg"] == doc["values"]["ellipticity_angle_deg"] == angle
    fig = plot_calibration(fit112)
    panel = fig.axes[2]
    assert panel.get_title().startswith("(c)")
    assert tuple(panel.get_xlim()) == (-90.0, 90.0)
    for line in panel.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        assert np.all((x >= -90) & (x <= 90)), line.get_label()
    marks = [ln for ln in panel.get_lines() if ln.get_label().startswith("fitted long axis")]
    assert len(marks) == 1 and np.allclose(marks[0].get_xdata(), angle)
    assert f"{angle:.1f}°" in marks[0].get_label() and f"at {angle:.1f} ±" in fig._suptitle.get_text()
    # the drawn ratio fitted / stated is smallest along the long axis (where the detector stretches the pattern)
    curve = next(ln for ln in panel.get_lines() if ln.get_linestyle() == "-")
    x, y = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    assert abs(axis_angle_deg(x[np.argmin(y)] - angle)) <= 1.0


def test_a_json_with_the_axis_in_0_180_reads_as_the_same_distortion(tmp_path):
    """Files written with the axis in [0°, 180°) (by hand, or another program) still read, as the same map."""
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"calibration": {"q_pixel_size": 0.025, "ellipticity_ratio": RATIO,
                                             "ellipticity_angle_deg": ANGLE}}))
    got = Calibration(**read_calibration_json(p))
    assert got.ellipticity == (RATIO, ANGLE)
    same = Calibration(q_pixel_size=0.025, ellipticity=(RATIO, axis_angle_deg(ANGLE)))
    q = np.array([[0.3, 0.1], [-0.2, 0.5]])
    assert np.allclose(got.sample_q_to_detector(q), same.sample_q_to_detector(q))


def test_ring_scale_panel_is_labelled_for_what_it_shows(fit112):
    """Panel (c) said "true |q| / stated |q|" on its y axis; it shows the fitted calibration's |q| (and the rings'
    per sector) relative to the stated calibration's, not the truth, which the fit does not know."""
    from stemgrains.plot.calibration import plot_calibration

    panel = plot_calibration(fit112).axes[2]
    assert "true" not in panel.get_ylabel().lower() and "stated" in panel.get_ylabel()
    labels = [ln.get_label() for ln in panel.get_lines()]
    assert any(lb.startswith("fitted |q| / stated |q|") for lb in labels), labels


def _percent(line: str, after: str) -> float:
    import re

    return float(re.search(re.escape(after) + r".*?([+-]?\d+\.\d+) %", line).group(1))


def test_printed_percentages_say_what_they_are(fit112, tmp_path):
    """The pixel-size line said '(stated ..., +x %)' with x the change across the long axis, which users read as the
    isotropic change. Now the mean pixel size's change (√ pixel area: the isotropic change), the change of
    q_pixel_size (across the long axis) and the ellipticity are printed apart, each as the fitted numbers give it;
    here the truth is a mean pixel size 3.8 % below the stated one with a 5 % ellipticity, and q_pixel_size (across
    the axis) 1.5 % above it."""
    from stemgrains.commands.calibrate import format_fit

    lines = format_fit(fit112, tmp_path / "c.json").splitlines()
    v, st = fit112.values, fit112.stated.q_pixel_size
    mean = next(ln for ln in lines if "mean pixel size" in ln)
    assert "isotropic" in mean
    iso = _percent(mean, "1/Å per px:")
    assert iso == pytest.approx(100 * (v["q_pixel_size_mean"] / st - 1), abs=0.006)
    assert iso == pytest.approx(100 * (1 / 1.04 - 1), abs=0.5)  # the truth: p against the stated 1.04 p
    across = next(ln for ln in lines if ln.lstrip().startswith("q_pixel_size"))
    assert "across the ellipse's long axis" in across
    assert _percent(across, "1/Å per px:") == pytest.approx(100 * (v["q_pixel_size"] / st - 1), abs=0.006)
    ell = next(ln for ln in lines if ln.lstrip().startswith("ellipticity"))
    assert _percent(ell, "(") == pytest.approx(100 * (v["ellipticity_ratio"] - 1), abs=0.006)
    assert abs(_percent(ell, "(") - 5.0) < 1.0
