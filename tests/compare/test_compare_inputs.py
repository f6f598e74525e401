"""`stemgrains compare` on inputs a new user gives: scans of different areas, tiny maps, run folders, raw 4D data
(issues found by a new user; fast, synthetic maps written with the project's writers)."""

from __future__ import annotations

import numpy as np
import pytest

from compare_helpers import crystal_map, field, two_scans, write_results
from stemgrains.cli import main
from stemgrains.compare import compare_results
from stemgrains.compare.api import scan_names
from stemgrains.compare.register import min_overlap_px
from stemgrains.crystal import load_phase
from stemgrains.data import Calibration
from stemgrains.errors import InputError
from stemgrains.io import write_4d


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _two_areas(tmp_path, nba):
    lab, gq = field((30, 30), 8, seed=2)
    lab2, gq2 = field((30, 30), 8, seed=7)
    p1 = write_results(tmp_path / "a.h5", crystal_map(gq[lab - 1], nba))
    p2 = write_results(tmp_path / "b.h5", crystal_map(gq2[lab2 - 1], nba))
    return p1, p2


def test_scans_of_different_areas_are_refused_by_agreement(tmp_path, nba, capsys):
    p1, p2 = _two_areas(tmp_path, nba)
    with pytest.raises(InputError, match="do not show the same area"):
        compare_results([p1, p2])
    assert main(["compare", str(p1), str(p2), "-o", str(tmp_path / "c"), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert "agree in orientation" in err and "\n" not in err
    assert not (tmp_path / "c" / "compare.h5").exists()
    # a lower --min-agreement lets the user compare anyway
    comp = compare_results([p1, p2], min_agreement=0.0)
    assert comp.registrations[1].agreement < 0.1 and not comp.warnings


def test_given_shift_on_different_areas_warns(tmp_path, nba, capsys):
    p1, p2 = _two_areas(tmp_path, nba)
    comp = compare_results([p1, p2], shifts=[(0, 0)], rotation="none")
    assert len(comp.warnings) == 1 and "may not show the same area" in comp.warnings[0]
    assert main(["compare", str(p1), str(p2), "-o", str(tmp_path / "c"), "--no-figures", "--shift=0,0"]) == 0
    assert "warning:" in capsys.readouterr().err


def test_same_area_with_a_turned_grain_passes_the_agreement_check(tmp_path, nba):
    p1, p2, *_ = two_scans(tmp_path, nba, offset=(3, -2), turn_deg=3.0)
    comp = compare_results([p1, p2])
    assert comp.registrations[1].agreement > 0.9 and not comp.warnings


def test_min_overlap_never_exceeds_the_map():
    assert min_overlap_px(12, 12, 0.25) == 12
    assert min_overlap_px(1, 5, 0.25) == 1
    assert min_overlap_px(1000, 400, 0.25) == 100
    assert min_overlap_px(40, 400, 0.25) == 16


@pytest.mark.parametrize("shape", [(1, 12), (1, 1), (3, 3)])
def test_identical_tiny_maps_compare_as_unchanged(tmp_path, nba, shape, capsys):
    lab, gq = field((1, 12), 2, seed=3, min_sep=1.0)
    lab = np.resize(lab, shape)  # 1 × 12 as is; 1 × 1 and 3 × 3 from its labels
    folder = tmp_path / "tiny"
    folder.mkdir()
    p = write_results(folder / "results.h5", crystal_map(gq[lab - 1], nba))
    comp = compare_results([p, p])
    reg = comp.registrations[1]
    assert reg.shift == (0, 0) and reg.op.name == "none" and reg.agreement == 1.0
    assert reg.overlap_px == lab.size
    status = set(np.asarray(comp.grains["status"]).tolist())
    assert status <= {"matched"}
    assert set(np.asarray(comp.boundaries["status"]).tolist()) <= {"unchanged"}
    assert main(["compare", str(folder), str(folder), "-o", str(tmp_path / "c"), "--no-figures"]) == 0
    assert "shift (0, 0) px" in capsys.readouterr().out


def test_run_folders_are_named_by_folder(tmp_path, nba, capsys):
    p1, p2, *_ = two_scans(tmp_path, nba, offset=(3, -2))
    for name, p in (("before", p1), ("after", p2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.h5").write_bytes(p.read_bytes())
    out = tmp_path / "c"
    assert main(["compare", str(tmp_path / "before"), str(tmp_path / "after"), "-o", str(out), "--no-figures"]) == 0
    text = capsys.readouterr().out
    assert "scan 2 (after) on scan 1 (before)" in text and "results.h5" not in text
    assert scan_names([tmp_path / "x" / "run" / "results.h5", tmp_path / "y" / "run"]) == ["x/run", "y/run"]
    assert scan_names([tmp_path / "a.h5", tmp_path / "r" / "results.h5"]) == ["a.h5", "r"]
    assert scan_names([tmp_path / "p" / "s.ang", tmp_path / "q" / "s.ang"]) == ["p/s.ang", "q/s.ang"]


def test_raw_4d_data_is_named_as_such(tmp_path, nba, capsys):
    p1, *_ = two_scans(tmp_path, nba)
    raw = write_4d(tmp_path / "raw.h5", np.zeros((4, 4, 16, 16), np.uint16),
                   Calibration(q_pixel_size=0.05, accelerating_voltage_kV=200.0, scan_step_nm=2.0))
    assert main(["compare", str(p1), str(raw), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "4D diffraction data, not a results file" in err and "NoneType" not in err and "\n" not in err


def test_hdf5_without_orientation_says_so(tmp_path, nba, capsys):
    import h5py

    p1, *_ = two_scans(tmp_path, nba)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    assert main(["compare", str(p1), str(other), "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no /orientation group" in err and "\n" not in err
