"""Side outputs never replace someone else's file: the calibration ``--auto-calibrate`` writes beside ``-o``
(``index``) or into the run folder (``run``) is refused, before any work, when the file there is not a
calibration of ours for the same input (unless ``--force`` / ``--overwrite``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.errors import ParameterError
from stemgrains.io.calibration import read_calibration_json, write_calibration_json
from stemgrains.io.outputs import describe_file, recorded_input, refuse_foreign_calibration
from stemgrains.data import Calibration
from file_helpers import cube_file, file_tree
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


def _cube(path):
    return cube_file(path, det=32, q=0.05)  # a q-range that holds spots: index/run reach their output checks
_tree = file_tree


@pytest.mark.parametrize("name", ["m.calibration.json", "m.calibration.png"])
def test_index_auto_calibrate_refuses_a_file_not_ours(tmp_path, capsys, name):
    a = _cube(tmp_path / "a.h5")
    (tmp_path / name).write_text('{"my": "notes"}')
    before = _tree(tmp_path)
    rc = main(["index", str(a), "--phase", AU, "-o", str(tmp_path / "m.h5"), "--auto-calibrate", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"--auto-calibrate {tmp_path / name}" in err[0] and "not written by stemgrains" in err[0]
    assert "--force" in err[0]
    assert _tree(tmp_path) == before  # nothing written, nothing replaced


def test_index_auto_calibrate_refuses_the_calibration_of_another_input(tmp_path, capsys):
    a, b = _cube(tmp_path / "a.h5"), _cube(tmp_path / "b.h5")
    write_calibration_json(tmp_path / "m.calibration.json", Calibration(q_pixel_size=0.02), input_path=b)
    before = _tree(tmp_path)
    rc = main(["index", str(a), "--phase", AU, "-o", str(tmp_path / "m.h5"), "--auto-calibrate", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert f"is a calibration of {b.resolve()}" in err[0]
    assert _tree(tmp_path) == before


def test_run_auto_calibrate_refuses_a_calibration_not_ours(tmp_path, capsys):
    a = _cube(tmp_path / "a.h5")
    out = tmp_path / "out"
    out.mkdir()
    (out / "calibration.json").write_text('{"calibration": {"q_pixel_size": 0.03}}')  # hand-written
    before = _tree(tmp_path)
    rc = main(["run", str(a), "--phase", AU, "--field", "1,0", "-o", str(out), "--auto-calibrate", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"--auto-calibrate {out / 'calibration.json'}" in err[0] and "--overwrite" in err[0]
    assert _tree(tmp_path) == before


def test_calibration_records_its_input(tmp_path):
    a, b = _cube(tmp_path / "a.h5"), _cube(tmp_path / "b.h5")
    p = write_calibration_json(tmp_path / "c.json", Calibration(q_pixel_size=0.02), input_path=a)
    assert recorded_input(p) == str(a.resolve())
    assert describe_file(p) == f"a calibration of {a.resolve()}"
    assert read_calibration_json(p)["q_pixel_size"] == 0.02  # still reads as a calibration
    refuse_foreign_calibration([p, tmp_path / "missing.png"], a)  # ours, same input: replaced
    with pytest.raises(ParameterError, match="is a calibration of .*b.h5|is a calibration of"):
        refuse_foreign_calibration([p], b)
    refuse_foreign_calibration([p], b, replace=True)
    old = write_calibration_json(tmp_path / "old.json", Calibration(q_pixel_size=0.02))  # records no input
    with pytest.raises(ParameterError, match="records no input"):
        refuse_foreign_calibration([old], a)
    refuse_foreign_calibration([old], a, managed=[old])  # a file a run manifest governs is left to it


# ------------------------------------------------------------------------------------------ --csv of another input
def _results(path: Path, scan: Path, seed: int) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grains"))
    from synthetic_grains import synthetic_polycrystal

    from stemgrains.io import write_orientation_map
    from stemgrains.io.results import atomic_h5, write_provenance

    scan.write_bytes(b"scan " + scan.name.encode())
    xmap, _, _ = synthetic_polycrystal(shape=(12, 14), n_grains=3, seed=seed)
    with atomic_h5(path) as f:
        write_provenance(f, input_path=scan)
        write_orientation_map(f, xmap)
    return path


def test_csv_of_another_input_is_refused(tmp_path, capsys):
    """A table of ours records no input; the results file written with it does (csv_tables), so the same command
    again replaces it while another input's run onto the same name is refused, naming the option and table."""
    res_a = _results(tmp_path / "res_a.h5", tmp_path / "scan_a.h5", 0)
    res_b = _results(tmp_path / "res_b.h5", tmp_path / "scan_b.h5", 1)
    table = tmp_path / "t.csv"
    argv = ["segment", str(res_a), "-o", str(tmp_path / "seg_a.h5"), "--csv", str(table), "--min-size", "1"]
    assert main(argv) == 0
    assert main(argv) == 0  # the same input again: its own tables are replaced
    assert table.read_text().startswith("boundary_id,")  # plain CSV: no comment line for pandas/spreadsheets
    before = _tree(tmp_path)
    capsys.readouterr()
    rc = main(["segment", str(res_b), "-o", str(tmp_path / "seg_b.h5"), "--csv", str(table), "--min-size", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"--csv {table}: is a boundary table (segment --csv) that no results file of this input" in err[0]
    assert _tree(tmp_path) == before  # refused before any work
    # classify: in place, twice (the file records its tables), then another input's results onto the same table
    seg_a = tmp_path / "seg_a.h5"
    ctable = tmp_path / "c.csv"
    assert main(["classify", str(seg_a), "--field", "1,0", "--csv", str(ctable)]) == 0
    assert main(["classify", str(seg_a), "--field", "0,1", "--csv", str(ctable)]) == 0
    assert main(["segment", str(res_b), "-o", str(tmp_path / "seg_b.h5"), "--csv", str(tmp_path / "tb.csv"),
                 "--min-size", "1"]) == 0
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "seg_b.h5"), "--field", "1,0", "--csv", str(ctable)]) == 2
    assert "--csv" in capsys.readouterr().err
    # a table edited since (or written by hand with our header) is not taken for this input's either
    text = table.read_text()
    table.write_text(text + text.splitlines()[-1] + "\n")
    assert main(argv) == 2
    assert main([*argv, "--force"]) == 0


def test_figures_folder_replaces_only_figures_of_ours(au_scan_3x3, tmp_path, capsys):
    """index --figures DIR: a user's image named like one of the figures is refused before any work (one line, exit
    2, the image unchanged); figures of ours are replaced; --force replaces anything."""
    import matplotlib.pyplot as plt

    folder = tmp_path / "figs"
    folder.mkdir()
    mine = folder / "reliability.png"
    plt.imsave(mine, np.arange(64.0).reshape(8, 8))
    before = mine.read_bytes()
    base = ["index", str(au_scan_3x3), "--phase", AU, "--step", "3", "--no-progress", "--figures", str(folder)]
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err
    assert "--figures" in err and "reliability.png" in err and "not written by stemgrains" in err and err.count("\n") == 1
    assert mine.read_bytes() == before and not (tmp_path / "a.h5").exists()
    assert main([*base, "-o", str(tmp_path / "a.h5"), "--force"]) == 0
    assert mine.read_bytes() != before
    from stemgrains.io.outputs import is_figure_of_ours

    assert is_figure_of_ours(mine) and is_figure_of_ours(folder / "orientation_ipf_z.png")
    assert main([*base, "-o", str(tmp_path / "b.h5")]) == 0  # our own figures again: replaced
