"""An accelerating voltage outside what electron microscopes use (config.VOLTAGE_RANGE_KV) is refused in one line
naming where it came from: a value in V (3e5) or a typo indexed with a wavelength orders of magnitude off and
reported success (a fresh user's `--voltage 1e9`: "indexed 9/9 patterns", exit 0)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains import config
from stemgrains.cli import main
from stemgrains.data import Calibration, electron_wavelength
from stemgrains.errors import ParameterError

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples" / "nba_sample.h5"
CIF = SAMPLE.parent / "na_beta2_alumina.cif"


def _refused(argv, capsys) -> str:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own refusals exit
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("kv", [1e9, 3e5, 0.001])
def test_the_option_is_refused_before_any_work(kv, tmp_path, capsys):
    for cmd in (["index", SAMPLE, "--phase", CIF, "-o", tmp_path / "x.h5"],
                ["run", SAMPLE, "--phase", CIF, "-o", tmp_path / "r"],
                ["simulate", "--phase", "au", "--scan", "2,2", "-o", tmp_path / "s.h5"]):
        err = _refused(cmd + ["--voltage", repr(kv)], capsys)
        assert "--voltage" in err and "3000" in err, err
    assert not any(tmp_path.iterdir())


def test_a_file_or_calibration_json_voltage_is_named_by_its_source(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    shutil.copy(SAMPLE, bad)
    with h5py.File(bad, "a") as f:
        f["data"].attrs["accelerating_voltage_kV"] = 3e5  # volts written as kV
    err = _refused(["index", bad, "--phase", CIF, "-o", tmp_path / "x.h5"], capsys)
    assert "bad.h5: accelerating_voltage_kV 300000" in err and "give --voltage to override it" in err, err
    cal = tmp_path / "c.json"
    cal.write_text(json.dumps({"accelerating_voltage_kV": 1e12}))
    err = _refused(["index", SAMPLE, "--phase", CIF, "-o", tmp_path / "x.h5", "--calibration", cal], capsys)
    assert "c.json" in err and "accelerating_voltage_kV 1e+12" in err, err
    assert not (tmp_path / "x.h5").exists()


def test_the_api_and_the_wavelength_check_the_range():
    lo, hi = config.VOLTAGE_RANGE_KV
    assert electron_wavelength(hi) > 0 and Calibration(q_pixel_size=0.02, accelerating_voltage_kV=lo)
    for kv in (0.5 * lo, 2 * hi):
        with pytest.raises(ParameterError, match="accelerating voltage of"):
            electron_wavelength(kv)
        with pytest.raises(ParameterError, match="accelerating_voltage_kV"):
            Calibration(q_pixel_size=0.02, accelerating_voltage_kV=kv)


@pytest.mark.parametrize("cmd", [["info"], ["virtual", "--bf", "10", "-o", "v.png"], ["vdf-grains", "-o", "d"]])
def test_the_other_commands_name_the_option(cmd, tmp_path, capsys, monkeypatch):
    """info, virtual and vdf-grains blamed the data file for a --voltage 1e9 (a second review)."""
    monkeypatch.chdir(tmp_path)
    err = _refused([cmd[0], SAMPLE, *cmd[1:], "--voltage", "1e9"], capsys)
    assert "--voltage expects a value from 1 to 3000 kV, got 1e+09" in err, err


def test_a_vendor_files_beam_energy_is_named_by_the_file():
    """A HyperSpy file with beam_energy in V (300000) and detector axes in mrad was refused without the file's name:
    the mrad → 1/Å conversion checked the voltage before the file was named."""
    from stemgrains.io._vendor import calibration_from_axes

    axes = [{"navigate": True, "units": "nm", "scale": 2.0}] * 2 + [{"navigate": False, "units": "mrad", "scale": 0.1}] * 2
    found, _ = calibration_from_axes(axes, 300.0, "ok.hspy")
    assert found["q_pixel_size"] == pytest.approx(1e-4 / electron_wavelength(300.0))
    with pytest.raises(ParameterError, match=r"^bad\.hspy: accelerating_voltage_kV 300000: .*give --voltage to override it"):
        calibration_from_axes(axes, 3e5, "bad.hspy")


@pytest.mark.parametrize("attrs, option, fix", [
    ({"q_rotation_deg": np.nan}, "--q-rotation", ["--q-rotation", "0"]),
    ({"ellipticity_ratio": 0.0}, "--ellipticity", ["--ellipticity", "1,0"]),
    ({"affine": np.array([1.0, 0.0])}, "--affine", ["--affine", "1,0,0,1"]),
])
def test_a_files_bad_detector_geometry_names_its_override(attrs, option, fix, tmp_path, capsys):
    """A NaN rotation, a zero ellipticity or a short affine stated in a file were refused without the option that
    overrides them (the voltage, pixel size and scan step had it)."""
    bad = tmp_path / "bad.h5"
    shutil.copy(SAMPLE, bad)
    with h5py.File(bad, "a") as f:
        f["data"].attrs.update(attrs)
    err = _refused(["info", bad], capsys)
    assert f"(the value stated in this file; give {option} to override it)" in err, err
    assert main(["info", str(bad), *fix]) == 0
