"""`vdf-grains -o OUTDIR` replaces only its own outputs for the same input (issue: a user's vdf_labels.npy,
vdf_grains.json or figures there, and another input's outputs, were overwritten silently): refused before any work,
one line naming -o and the file, exit 2, unless --force; a rerun on the same input works. vdf_grains.json records
the input and the files written with it (a .npy cannot carry our tag)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from file_helpers import file_tree

from stemgrains.cli import main


def _argv(inp, out, *extra):
    return ["vdf-grains", str(inp), "-o", str(out), "--no-progress", *extra]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("name, mine, what", [
    ("vdf_labels.npy", None, "a .npy file not written by stemgrains"),
    ("vdf_grains.json", '{"my": "notes"}', "a JSON file not written by stemgrains"),
    ("vdf_grains.png", b"\x89PNG not really", "a .png image not written by stemgrains"),
])
def test_a_users_file_is_refused_before_any_work(au_scan_4x3, tmp_path, capsys, name, mine, what):
    out = tmp_path / "v"
    out.mkdir()
    if mine is None:
        np.save(out / name, np.arange(5))
    else:
        (out / name).write_bytes(mine if isinstance(mine, bytes) else mine.encode())
    before = file_tree(out)
    assert main(_argv(au_scan_4x3, out)) == 2
    assert _one_line(capsys) == (f"stemgrains vdf-grains: error: -o {out}: {name} there is {what}, which this command "
                                 "would replace; choose another folder, or give --force to replace it")
    assert file_tree(out) == before  # nothing written, the user's file untouched
    assert main(_argv(au_scan_4x3, out, "--force")) == 0
    assert file_tree(out) != before


def test_rerun_same_input_other_input_and_changed_files(au_scan_4x3, tmp_path, capsys):
    out = tmp_path / "v"
    assert main(_argv(au_scan_4x3, out)) == 0
    doc = json.loads((out / "vdf_grains.json").read_text())
    assert doc["input"] == str(au_scan_4x3.resolve())
    assert sorted(doc["files_written"]) == ["bragg_vector_map.png", "vdf_grains.png", "vdf_labels.npy"]
    assert main(_argv(au_scan_4x3, out)) == 0  # the same input again: replaced
    other = tmp_path / "other.h5"
    shutil.copyfile(au_scan_4x3, other)
    capsys.readouterr()
    before = file_tree(out)
    assert main(_argv(other, out)) == 2
    assert _one_line(capsys).startswith(f"stemgrains vdf-grains: error: -o {out}: vdf_labels.npy there is a file "
                                        f"beside the vdf_grains.json of another input ({au_scan_4x3.resolve()})")
    assert file_tree(out) == before
    np.save(out / "vdf_labels.npy", np.zeros((3, 3), np.int32))  # changed since
    assert main(_argv(au_scan_4x3, out)) == 2
    assert "vdf_labels.npy there is a file that the vdf_grains.json there does not list as written with it" \
        in _one_line(capsys)
    assert main(_argv(au_scan_4x3, out, "--force")) == 0
    assert main(_argv(au_scan_4x3, out)) == 0


def test_output_folder_that_is_a_file(au_scan_4x3, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(_argv(au_scan_4x3, afile)) == 2
    assert _one_line(capsys) == (f"stemgrains vdf-grains: error: -o {afile}: is a file (an extension-less file not written by "
                                 "stemgrains), not a folder; give an output folder")
    assert main(_argv(au_scan_4x3, au_scan_4x3)) == 2
    assert _one_line(capsys) == (f"stemgrains vdf-grains: error: -o {au_scan_4x3}: is the input file {au_scan_4x3}, "
                                 "not an output folder; give an output folder")



def test_a_copy_of_the_folder_counts_as_unchanged(tmp_path):
    """`cp -r` gives the files new modification times: a byte-identical copy counts as unchanged (content, the
    SHA-256 of files_written); a file edited in it (same size) is still refused."""
    import os

    from stemgrains.errors import ParameterError
    from stemgrains.io.outputs import FILES_WRITTEN_KEY, files_written_record, refuse_foreign_recorded_outputs

    out, inp = tmp_path / "v", tmp_path / "scan.h5"
    out.mkdir()
    inp.write_bytes(b"scan")
    np.save(out / "vdf_labels.npy", np.arange(6, dtype=np.int32))
    doc = {"software": "stemgrains test", "input": str(inp.resolve()),
           FILES_WRITTEN_KEY: files_written_record(out, ["vdf_labels.npy"])}
    (out / "vdf_grains.json").write_text(json.dumps(doc))
    copy = tmp_path / "v_copy"
    shutil.copytree(out, copy, copy_function=shutil.copyfile)
    for p in copy.iterdir():
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))
    names = ["vdf_labels.npy", "vdf_grains.json"]
    refuse_foreign_recorded_outputs(copy, names, inp, record="vdf_grains.json")  # the copy: ours, unchanged
    np.save(copy / "vdf_labels.npy", np.arange(1, 7, dtype=np.int32))  # same size, other content
    with pytest.raises(ParameterError, match="vdf_labels.npy there is a file that the vdf_grains.json there does "
                                             "not list as written with it"):
        refuse_foreign_recorded_outputs(copy, names, inp, record="vdf_grains.json")


def _results_of(path, input_path, shape=(3, 3)):
    """A results file with grains and boundaries of two grains on a ``shape`` scan, recording ``input_path``."""
    from orix.crystal_map import CrystalMap, Phase, PhaseList
    from orix.quaternion import Rotation

    from stemgrains.boundaries import extract_boundaries, write_boundaries
    from stemgrains.grains import segment_grains, write_grains
    from stemgrains.io.results import atomic_h5, write_provenance

    ny, nx = shape
    rr, cc = np.indices(shape)
    rot = Rotation.from_euler(np.radians([[0, 0, 0], [0, 45, 0]]))[(cc.ravel() >= nx // 2).astype(int)]
    xmap = CrystalMap(rotations=rot, phase_id=np.zeros(ny * nx, int), x=cc.ravel() * 1.0, y=rr.ravel() * 1.0,
                      phase_list=PhaseList(phases=[Phase(name="au", point_group="m-3m")], ids=[0]), scan_unit="nm")
    gm = segment_grains(xmap, min_grain_size=1, threshold_deg=5)
    with atomic_h5(path) as f:
        write_provenance(f, input_path=input_path)
        write_grains(f, gm)
        write_boundaries(f, extract_boundaries(gm, xmap))
    return path


def test_results_of_another_input_are_refused(au_scan_4x3, tmp_path, capsys):
    """--results recording another input (issue: accepted silently, an adjusted Rand index against unrelated
    grains) is refused before any work unless --force; the results of this input, or of a copy of it (the same
    SHA-256), are taken."""
    from stemgrains.errors import ParameterError
    from stemgrains.io.outputs import refuse_results_of_other_data

    other = tmp_path / "other.h5"
    other.write_bytes(b"another scan")  # another file, another checksum
    res = _results_of(tmp_path / "r_other.h5", other)
    out = tmp_path / "v"
    assert main(_argv(au_scan_4x3, out, "--results", str(res))) == 2
    assert _one_line(capsys) == (f"stemgrains vdf-grains: error: --results {res}: holds the results of another input "
                                 f"({other.resolve()}), not of {au_scan_4x3}; give the results of {au_scan_4x3}, or "
                                 "--force to use these")
    assert not out.exists()
    refuse_results_of_other_data(res, au_scan_4x3, replace=True)  # --force
    mine = _results_of(tmp_path / "r_mine.h5", au_scan_4x3)
    refuse_results_of_other_data(mine, au_scan_4x3)  # this input's (the CLI: tests/virtual/test_vdf_grains.py)
    moved = tmp_path / "moved.h5"
    shutil.copyfile(au_scan_4x3, moved)  # the data copied since: the recorded checksum matches
    refuse_results_of_other_data(mine, moved)
    with pytest.raises(ParameterError, match="holds the results of another input"):
        refuse_results_of_other_data(mine, other)


def test_a_scan_of_nans_gets_one_line(tmp_path, capsys):
    """Patterns of NaN only: numpy's "invalid value encountered in cast" warning (the spots' positions of a pattern
    without a beam centre) came before the error line."""
    import numpy as np

    from stemgrains.data import Calibration
    from stemgrains.io import create_4d

    src = tmp_path / "nan.h5"
    with create_4d(src, (4, 4, 32, 32), np.float32, Calibration(q_pixel_size=0.05, accelerating_voltage_kV=300.0)) as d:
        d[...] = np.nan
    assert main(["vdf-grains", str(src), "-o", str(tmp_path / "v"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no reflection found" in err[0], err
