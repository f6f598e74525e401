"""`stemgrains run INPUT -o DIR` given again: a finished run of the same content and parameters is recognised
(one line, exit 0, nothing recomputed), as a batch skips its done inputs; other content or parameters still need
--overwrite, --force redoes it, an interrupted run resumes."""

from __future__ import annotations

import json
import shutil
import time

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.errors import ParameterError
from stemgrains.io.outputs import RUN_MANIFEST, completed_run, finish_run_folder, prepare_run_folder
from stemgrains.simulate import sample_cif, simulate_polycrystal

AU = str(sample_cif("au"))
RUN = ["--phase", AU, "--step", "4", "--field", "1,0", "--min-size", "1", "--no-figures", "--no-progress"]


def _cube(path, value=0.0):
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=np.full((2, 3, 8, 8), value, np.float32))
        d.attrs["q_pixel_size"] = 0.02
    return path


def test_completed_run_follows_content_parameters_and_files(tmp_path):
    a = _cube(tmp_path / "a.h5")
    out = tmp_path / "out"
    rec = {"checksum": "sha256:1", "fingerprint": "f1"}
    m = prepare_run_folder(out, a, record=rec)
    assert completed_run(out, rec) is None  # not finished
    (out / "results.h5").write_text("r")
    finish_run_folder(out, m, [out / "results.h5"])
    done = completed_run(out, rec)
    assert done is not None and done["input"] == str(a.resolve()) and done["checksum"] == "sha256:1"
    assert completed_run(out, {**rec, "fingerprint": "f2"}) is None
    assert completed_run(out, {**rec, "checksum": "sha256:2"}) is None
    with pytest.raises(ParameterError, match="same dataset with other parameters.*--overwrite"):
        prepare_run_folder(out, a, record={**rec, "fingerprint": "f2"})
    with pytest.raises(ParameterError, match="same dataset whose content has changed.*--overwrite"):
        prepare_run_folder(out, a, record={**rec, "checksum": "sha256:2"})
    with pytest.raises(ParameterError, match="same dataset; .*--overwrite"):
        prepare_run_folder(out, a)  # without a record (the Python API): never taken for the same run
    (out / "results.h5").unlink()
    assert completed_run(out, rec) is None  # a file of it deleted: not complete any more
    prepare_run_folder(out, a, record=rec)  # the same run: redone without --overwrite
    assert json.loads((out / RUN_MANIFEST).read_text())["complete"] is False


def test_a_file_edited_since_is_kept_before_the_run_is_redone(tmp_path, capsys):
    """A finished run whose boundaries.csv a user annotated is redone (the folder is no longer that run's output),
    but the edited file is first copied beside it, with one line naming both; unchanged files get no copy."""
    a = _cube(tmp_path / "a.h5")
    out = tmp_path / "out"
    rec = {"checksum": "sha256:1", "fingerprint": "f1"}
    m = prepare_run_folder(out, a, record=rec)
    (out / "results.h5").write_text("r")
    (out / "boundaries.csv").write_text("boundary_id\n0\n")
    finish_run_folder(out, m, [out / "results.h5", out / "boundaries.csv"])
    capsys.readouterr()
    with open(out / "boundaries.csv", "a") as f:
        f.write("my note: grain 3 looks twinned\n")
    assert completed_run(out, rec) is None
    prepare_run_folder(out, a, record=rec)
    copies = list(out.glob("boundaries.edited-*.csv"))
    assert len(copies) == 1 and copies[0].read_text().endswith("my note: grain 3 looks twinned\n")
    assert not list(out.glob("results.edited-*"))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "boundaries.csv was changed since the run wrote it" in err[0] and copies[0].name in err[0]
    # replaced by a run with other parameters (--overwrite): kept too
    (out / "results.h5").write_text("r")
    (out / "boundaries.csv").write_text("boundary_id\n0\n")
    finish_run_folder(out, m, [out / "results.h5", out / "boundaries.csv"])
    (out / "boundaries.csv").write_text("boundary_id\n0\nanother note\n")
    for c in copies:
        c.unlink()
    prepare_run_folder(out, a, record={**rec, "fingerprint": "f2"}, overwrite=True)
    copies = list(out.glob("boundaries.edited-*.csv"))
    assert len(copies) == 1 and copies[0].read_text().endswith("another note\n")
    # a file of the finished run deleted: the rerun says so
    (out / "results.h5").write_text("r")
    (out / "boundaries.csv").write_text("boundary_id\n0\n")
    finish_run_folder(out, m, [out / "results.h5", out / "boundaries.csv"])
    (out / "boundaries.csv").unlink()
    capsys.readouterr()
    prepare_run_folder(out, a, record=rec)
    err = capsys.readouterr().err
    assert err == (f"stemgrains: {out}: boundaries.csv is gone since the run finished; this run writes it again\n")


def test_cli_run_again_is_recognised(tmp_path, capsys):
    src = tmp_path / "scan.h5"
    simulate_polycrystal(src, phases=[AU], scan_shape=(3, 4), detector_shape=(64, 64), n_grains=2, seed=1,
                         dose=1e4, progress=False)
    out = tmp_path / "out"
    assert main(["run", str(src), *RUN, "-o", str(out)]) == 0
    capsys.readouterr()
    results = out / "results.h5"
    mtime = results.stat().st_mtime_ns
    man = json.loads((out / RUN_MANIFEST).read_text())
    assert man["complete"] and man["checksum"].startswith("sha256:") and len(man["fingerprint"]) == 16

    t0 = time.perf_counter()
    assert main(["run", str(src), *RUN, "-o", str(out)]) == 0
    again = time.perf_counter() - t0
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert len(lines) == 1 and "already complete" in lines[0] and str(out) in lines[0] and printed.err == ""
    assert results.stat().st_mtime_ns == mtime
    # --overwrite alone (as a batch's) is no reason to redo the same run
    assert main(["run", str(src), *RUN, "--overwrite", "-o", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out and results.stat().st_mtime_ns == mtime

    # other parameters: refused, one line naming the folder, --overwrite
    assert main(["run", str(src), *RUN, "--threshold", "3", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other parameters" in err[0] and "--overwrite" in err[0] and str(out) in err[0]
    assert results.stat().st_mtime_ns == mtime
    # changed content: refused the same way
    changed = tmp_path / "changed.h5"
    shutil.copy(src, changed)
    with h5py.File(changed, "a") as f:
        f["data"][0, 0, 0, 0] += 1
    shutil.copy(changed, src)
    assert main(["run", str(src), *RUN, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "content has changed" in err[0] and "--overwrite" in err[0]
    assert main(["run", str(src), *RUN, "--overwrite", "-o", str(out)]) == 0
    mtime = results.stat().st_mtime_ns
    capsys.readouterr()

    # --force redoes the finished run
    assert main(["run", str(src), *RUN, "--force", "-o", str(out)]) == 0
    assert "grains" in capsys.readouterr().out and results.stat().st_mtime_ns != mtime

    # an interrupted run (manifest not complete) resumes without any flag
    man = json.loads((out / RUN_MANIFEST).read_text())
    (out / RUN_MANIFEST).write_text(json.dumps(dict(man, complete=False)))
    assert main(["run", str(src), *RUN, "-o", str(out)]) == 0
    assert "grains" in capsys.readouterr().out and json.loads((out / RUN_MANIFEST).read_text())["complete"]
    print(f"run again: {again:.2f} s")


def test_index_never_replaces_the_results_of_another_input(data_samples, tmp_path, capsys):
    """`index -o OUT.h5` onto the results of another input (or onto a file that is not a results file) is refused
    in one line before any work; the same input again replaces its own results; --force replaces the other's."""
    from stemgrains.io import load_4d, write_4d

    cif = str(data_samples / "na_beta2_alumina.cif")
    ds = load_4d(data_samples / "nba_sample.h5")
    other = write_4d(tmp_path / "other.h5", np.asarray(ds.data[:3, :3]), ds.calibration)
    # the second input: another file (the guard compares the recorded input path), as small as the first, so that
    # the run --force lets through is a 3 × 3 one and not the whole 40 × 40 sample
    data = write_4d(tmp_path / "data.h5", np.asarray(ds.data[3:6, 3:6]), ds.calibration)
    out = tmp_path / "a.h5"
    common = ["--phase", cif, "-o", str(out), "--no-progress", "--step", "3"]
    assert main(["index", str(other), *common]) == 0
    assert main(["index", str(other), *common]) == 0  # the same input: its own results are replaced
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["index", str(data), *common]) == 2
    err = capsys.readouterr().err
    assert "holds the results of another input" in err and str(other) in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before
    notes = tmp_path / "notes.h5"
    notes.write_bytes(b"my notes")
    assert main(["index", str(other), "--phase", cif, "-o", str(notes), "--no-progress"]) == 2
    assert notes.read_bytes() == b"my notes"
    assert main(["index", str(data), *common, "--force"]) == 0
    assert out.read_bytes() != before
    capsys.readouterr()
    (tmp_path / "folder").mkdir()
    assert main(["index", str(other), "--phase", cif, "-o", str(tmp_path / "folder"), "--force"]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("as_batch", [False, True], ids=["run", "batch"])
def test_a_run_interrupted_after_its_indexing_does_not_index_again(au_scan_3x3, tmp_path, capsys, monkeypatch,
                                                                   as_batch):
    """Ctrl-C while the figures were drawn (after the orientation map was written) used to index the scan again on
    the rerun: the indexing checkpoint was deleted as soon as results.h5 held the map. It now stays until the run
    is complete, so the rerun takes every chunk from it; the results equal an uninterrupted run's."""
    from stemgrains import _chunks, pipeline

    run = ["--phase", AU, "--step", "4", "--field", "1,0", "--min-size", "1", "--no-progress"]
    out = tmp_path / "out"
    if as_batch:
        (tmp_path / "in").mkdir()
        shutil.copy(au_scan_3x3, tmp_path / "in" / "a.h5")
        argv, folder = ["run", str(tmp_path / "in"), *run, "-o", str(out)], out / "a"
    else:
        argv, folder = ["run", str(au_scan_3x3), *run, "-o", str(out)], out
    draw = pipeline._run_figures

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_run_figures", interrupted)
    assert main(argv) == 130
    assert (folder / "results.h5").is_file() and (folder / ".checkpoint").is_dir()
    saved = []
    save = _chunks.ChunkCheckpoint.save
    monkeypatch.setattr(_chunks.ChunkCheckpoint, "save", lambda self, *a: (saved.append(a[:2]), save(self, *a)))
    monkeypatch.setattr(pipeline, "_run_figures", draw)
    assert main(argv) == 0
    assert saved == [] and not (folder / ".checkpoint").exists()  # every chunk from the checkpoint
    assert (folder / "orientation_ipf_z.png").is_file() and json.loads((folder / RUN_MANIFEST).read_text())["complete"]
    capsys.readouterr()
    ref = tmp_path / "ref"
    assert main(["run", str(au_scan_3x3), *run, "-o", str(ref), "--no-figures"]) == 0
    with h5py.File(ref / "results.h5") as a, h5py.File(folder / "results.h5") as b:
        for key in ("orientation/quaternions", "orientation/reliability", "grains/labels"):
            np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)
