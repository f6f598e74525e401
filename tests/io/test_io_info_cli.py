"""``stemgrains info``: good files print a summary; bad ones exit 2 with one line on stderr."""

from __future__ import annotations

import numpy as np
import pytest
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.cli import main
from stemgrains.data import Calibration
from stemgrains.io import write_4d, write_orientation_map


@pytest.fixture
def cube(tmp_path):
    cal = Calibration(q_pixel_size=0.0125, accelerating_voltage_kV=200, scan_step_nm=3.0, center=(4.0, 5.0))
    return write_4d(tmp_path / "cube.h5", np.zeros((3, 4, 10, 12), np.uint16), cal)


def test_info_on_project_file(cube, capsys):
    assert main(["info", str(cube)]) == 0
    out = capsys.readouterr().out
    assert "stemgrains HDF5" in out
    assert "3 x 4 scan, 10 x 12 detector" in out
    assert "uint16" in out
    assert "0.0125 1/Å" in out and "200 kV" in out and "3 nm" in out and "(4, 5)" in out


def test_info_overrides(cube, capsys):
    assert main(["info", str(cube), "--q-pixel-size", "0.02", "--voltage", "300", "--center", "1,2",
                 "--scan-step", "7"]) == 0
    out = capsys.readouterr().out
    assert "0.02 1/Å per pixel  [command line]" in out and "300 kV" in out and "7 nm" in out and "(1, 2)" in out
    assert main(["info", str(cube), "--q-flip"]) == 0  # a flip given apart from the file's rotation: each origin
    assert "q rotation:  0 deg  [file], flip True  [command line]" in capsys.readouterr().out


def test_info_names_the_calibration_file_its_values_came_from(cube, tmp_path, capsys):
    """A --calibration file's values were labelled [command line]."""
    import json

    cal = tmp_path / "c.json"
    cal.write_text(json.dumps({"q_pixel_size": 0.02, "center_row": 4, "center_col": 5}))
    assert main(["info", str(cube), "--calibration", str(cal), "--center", "3,4"]) == 0
    out = capsys.readouterr().out
    assert f"0.02 1/Å per pixel  [calibration file {cal}]" in out
    assert "(3, 4) px (row, col)  [command line]" in out  # typed: wins over the file, and says so


def test_info_npy_without_calibration(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.zeros((2, 2, 4, 4), np.float32))
    assert main(["info", str(tmp_path / "c.npy")]) == 0  # inspecting needs no calibration
    out = capsys.readouterr().out
    assert "not calibrated" in out and "--q-pixel-size" in out
    assert main(["info", str(tmp_path / "c.npy"), "--q-pixel-size", "0.01"]) == 0
    assert "0.01 1/Å per pixel  [command line]" in capsys.readouterr().out


def test_info_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "missing.h5" in captured.err and "not found" in captured.err
    assert "Traceback" not in captured.err


def test_info_bad_center(cube, capsys):
    assert main(["info", str(cube), "--center", "abc"]) == 2
    err = capsys.readouterr().err
    assert "--center" in err and err.count("\n") == 1


def test_info_orientation_map(tmp_path, capsys):
    n = 12
    xmap = CrystalMap(rotations=Rotation.random(n), phase_id=np.zeros(n, int), x=np.arange(n) % 4 * 2.0,
                      y=np.arange(n) // 4 * 2.0, phase_list=PhaseList(Phase("beta2", point_group="-3m")),
                      prop={"correlation_index": np.ones(n)}, scan_unit="nm")
    write_orientation_map(tmp_path / "res.h5", xmap)
    assert main(["info", str(tmp_path / "res.h5")]) == 0
    out = capsys.readouterr().out
    assert "orientation map" in out and "3 x 4" in out and "2 nm" in out and "beta2" in out and "-3m" in out


@pytest.mark.shared
def test_info_shared_map(shared_data, capsys):
    assert main(["info", str(shared_data / "maps" / "duplex_steel_ebsd.ang")]) == 0
    out = capsys.readouterr().out
    assert "100 x 117" in out and "1500 nm" in out and "austenite" in out and "ferrite" in out


def test_info_shows_a_nan_centre_as_unknown(cube, tmp_path, capsys):
    """A beam centre stored as NaN means unknown (issue: info refused the file, 'center row must be finite'): info
    shows it as unknown and says how to set it; it counts as not stored (found in every pattern), so the other
    commands read the file too; --center overrides it; an infinite centre is still refused."""
    import h5py

    from stemgrains.io import load_4d

    with h5py.File(cube, "a") as f:
        f["data"].attrs["center_row"] = np.nan
        f["data"].attrs["center_col"] = np.nan
    assert main(["info", str(cube)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("centre:")]
    assert lines == ["centre:      unknown (NaN in the file; found in every pattern): set it with --center ROW,COL or "
                     "fit it with `stemgrains calibrate`"]
    ds = load_4d(cube)
    assert ds.calibration.center is None and ds.metadata["calibration_origin"]["center"] == "unknown"
    assert load_4d(cube, center=(4, 5)).calibration.center == (4.0, 5.0)
    assert main(["info", str(cube), "--center", "4,5"]) == 0
    assert "centre:      (4, 5) px (row, col)  [command line]" in capsys.readouterr().out
    inf = tmp_path / "inf.h5"
    with h5py.File(inf, "w") as f:
        f.create_dataset("data", data=np.zeros((2, 2, 4, 4), np.float32))
        f["data"].attrs.update({"q_pixel_size": 0.02, "center_row": np.inf, "center_col": 2.0})
    assert main(["info", str(inf)]) == 2
    assert "center row must be finite, got inf" in capsys.readouterr().err


def test_info_of_a_map_says_calibration_options_do_not_apply(tmp_path, capsys):
    """`info results.h5 --q-pixel-size 0.03` ignored the option without a word."""
    from orix.crystal_map import CrystalMap, PhaseList
    from orix.quaternion import Rotation

    from stemgrains.io import write_orientation_map

    xmap = CrystalMap(Rotation.identity((4,)), x=np.arange(4.0), y=np.zeros(4), phase_list=PhaseList(names="au",
                                                                                                     point_groups="m-3m"))
    path = tmp_path / "m.h5"
    write_orientation_map(path, xmap)
    assert main(["info", str(path)]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["info", str(path), "--q-pixel-size", "0.03"]) == 0
    assert "is an orientation map: the calibration options apply to 4D-STEM data" in capsys.readouterr().err


def test_info_warns_of_a_pixel_size_index_would_refuse(tmp_path, capsys):
    """A file stating 5 1/Å per px was shown without a word (an off-detector centre gets a warning)."""
    from stemgrains.data import Calibration
    from stemgrains.io import write_4d

    path = write_4d(tmp_path / "p5.h5", np.zeros((2, 2, 32, 32), np.float32), Calibration(q_pixel_size=5.0))
    assert main(["info", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {path}: q_pixel_size 5: expected a detector pixel size") and "refuse it" in err
    assert main(["info", str(path), "--q-pixel-size", "0.02"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_info_of_a_folder_or_a_json_says_what_it_reads(tmp_path, capsys):
    """`info run_folder/` said 'not a regular file', `info summary.json` 'unsupported 4D-STEM file type .json'."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.h5").write_bytes(b"")
    (tmp_path / "summary.json").write_text("{}")
    assert main(["info", str(tmp_path / "run")]) == 2
    assert "is a folder; info reads a 4D-STEM data file or an orientation map" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "summary.json")]) == 2
    assert "a JSON file (a run's summary, a calibration): read it as text" in capsys.readouterr().err
