"""No command writes into the folder of a `run` (stemgrains_run.json) or of a batch (batch_parameters.json) but
that run or batch itself; "already complete" does not trust a run folder whose files were replaced; a batch or
`index` whose --scheduler cannot be reached leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import pytest

from stemgrains.cli import main
from stemgrains.errors import ParameterError, StemgrainsError
from stemgrains.io.outputs import (
    BATCH_PARAMETERS,
    RUN_MANIFEST,
    check_outputs,
    completed_run,
    finish_run_folder,
    prepare_run_folder,
    writing_into,
)
from file_helpers import cube_file, file_tree
from stemgrains.simulate import sample_cif, simulate_polycrystal

AU = str(sample_cif("au"))


def _cube(path):
    return cube_file(path, det=32, q=0.05)  # a q-range that holds spots: index/run reach their output checks
_tree = file_tree


@pytest.fixture
def folders(tmp_path):
    """A finished run folder ``r1`` (of scan ``a.h5``) and a batch folder ``batch`` with one input's subfolder."""
    a = _cube(tmp_path / "a.h5")
    r1 = tmp_path / "r1"
    m = prepare_run_folder(r1, a, record={"checksum": "sha256:a", "fingerprint": "f"})
    names = ["results.h5", "config.toml", "orientation_ipf_z.png", "reliability.png", "correlation_index.png"]
    for n in names:
        (r1 / n).write_bytes(f"the run's {n}".encode())
    finish_run_folder(r1, m, [r1 / n for n in names])
    batch = tmp_path / "batch"
    (batch / "a").mkdir(parents=True)
    (batch / BATCH_PARAMETERS).write_text(json.dumps({"inputs": [str(a)], "outputs": ["a"]}))
    (batch / "a" / "results.h5").write_bytes(b"the batch's results of a")
    return a, r1, batch


def _refused(capsys, argv, option, folder, root):
    before = _tree(root)
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (argv, err)
    assert len(err) == 1 and option in err[0] and str(folder) in err[0], err
    assert RUN_MANIFEST in err[0] or BATCH_PARAMETERS in err[0], err
    assert _tree(root) == before, argv  # nothing written, replaced or created


def test_commands_refuse_outputs_in_a_run_folder(folders, tmp_path, capsys):
    a, r1, _ = folders
    b = _cube(tmp_path / "b.h5")
    cases = [
        (["index", str(b), "--phase", AU, "-o", str(r1 / "results.h5"), "--no-progress"], "-o"),
        (["index", str(b), "--phase", AU, "-o", str(tmp_path / "x.h5"), "--figures", str(r1), "--no-progress"],
         "--figures"),
        (["index", str(b), "--phase", AU, "-o", str(tmp_path / "y.h5"), "--export-ang", str(r1 / "m.ang"),
          "--no-progress"], "--export-ang"),
        (["calibrate", str(b), "--phase", AU, "-o", str(r1 / "orientation_ipf_z.json")], "-o"),
        (["calibrate", str(b), "--phase", AU, "-o", str(tmp_path / "c.json"), "--figure", str(r1 / "c.png")],
         "--figure"),
        (["virtual", str(b), "--bf", "2", "-o", str(r1 / "reliability.png")], "-o"),
        (["config", "--dump", "-o", str(r1 / "config.toml")], "-o"),
        (["config", "--from", str(r1 / "results.h5"), "-o", str(r1 / "sub" / "c.toml")], "-o"),
        (["simulate", "--phase", AU, "--scan", "2,2", "--detector", "16,16", "-o", str(r1 / "sim.h5")], "-o"),
        (["segment", str(r1 / "results.h5"), "-o", str(r1 / "results.h5")], "-o"),
        (["segment", str(r1 / "results.h5"), "-o", str(tmp_path / "s.h5"), "--figures", str(r1 / "figs")],
         "--figures"),
        (["classify", str(r1 / "results.h5"), "--field", "1,0"], "RESULTS"),  # would update it in place
        (["classify", str(tmp_path / "s.h5"), "--field", "1,0", "--csv", str(r1 / "b.csv")], "--csv"),
        (["transport", str(r1 / "results.h5"), "--electrode", "left=1", "--electrode", "right=0"], "RESULTS"),
        (["transport", str(tmp_path / "s.h5"), "-o", str(r1 / "t.h5"), "--electrode", "left=1",
          "--electrode", "right=0"], "-o"),
        (["series", str(r1 / "results.h5"), str(tmp_path / "f0.tif"), str(tmp_path / "f1.tif"), "-o",
          str(r1 / "series")], "-o"),
        (["vdf-grains", str(b), "-o", str(r1)], "-o"),
        # a single run into a subfolder of another run
        (["run", str(b), "--phase", AU, "--field", "1,0", "-o", str(r1 / "sub"), "--no-progress"], "-o"),
        # a batch into a subfolder of a run
        (["index", str(a), str(b), "--phase", AU, "-o", str(r1 / "batch"), "--no-progress"], "-o"),
    ]
    (tmp_path / "s.h5").write_bytes(b"not touched")
    for argv, option in cases:
        _refused(capsys, argv, option, r1, tmp_path)


def test_commands_refuse_outputs_in_a_batch_folder(folders, tmp_path, capsys):
    a, _, batch = folders
    b = _cube(tmp_path / "b.h5")
    for argv, option in [
        (["index", str(b), "--phase", AU, "-o", str(batch / "a" / "results.h5"), "--no-progress"], "-o"),
        (["classify", str(batch / "a" / "results.h5"), "--field", "1,0"], "RESULTS"),
        (["config", "--dump", "-o", str(batch / "config.toml")], "-o"),
        (["run", str(b), "--phase", AU, "--field", "1,0", "-o", str(batch / "a"), "--no-progress"], "-o"),
        (["run", str(a), str(b), "--phase", AU, "--field", "1,0", "-o", str(batch / "a"), "--no-progress"], "-o"),
    ]:
        _refused(capsys, argv, option, batch, tmp_path)


def test_beside_a_run_folder_is_fine(folders, tmp_path, capsys):
    _, r1, _ = folders
    for out in (tmp_path / "r1-copy" / "config.toml", tmp_path / "r1.toml"):  # same prefix, not inside
        assert main(["config", "--dump", "-o", str(out)]) == 0 and out.is_file()
    capsys.readouterr()


def test_the_run_and_batch_themselves_may_write(folders):
    a, r1, batch = folders
    inner = batch / "a" / "results.h5"
    with pytest.raises(ParameterError, match=f"inside the folder {batch}.*{BATCH_PARAMETERS}"):
        check_outputs({"-o": inner}, [a])
    with writing_into(batch):  # a batch's job
        check_outputs({"-o": inner}, [a])
        with pytest.raises(ParameterError, match=RUN_MANIFEST):
            check_outputs({"-o": r1 / "x.png"}, [a])  # only the batch's own folder
    with pytest.raises(ParameterError, match=BATCH_PARAMETERS):
        check_outputs({"-o": inner}, [a])  # the claim ends with the context
    check_outputs({"-o": r1}, [a], own=r1)  # a run claiming its own folder
    check_outputs({"-o": batch, "-o (for a)": batch / "a"}, [a], own=batch)  # a batch claiming its own
    with pytest.raises(ParameterError, match=f"inside the folder {r1}"):
        check_outputs({"-o": r1 / "sub"}, [a], own=r1 / "sub")  # owning a subfolder is not owning the run
    # a run into the batch's subfolder, as the batch's job: its earlier run there is replaced
    with writing_into(batch):
        prepare_run_folder(batch / "a", a, overwrite=True)


def test_completed_run_distrusts_replaced_files(tmp_path):
    a = _cube(tmp_path / "a.h5")
    out = tmp_path / "out"
    rec = {"checksum": "sha256:1", "fingerprint": "f1"}
    m = prepare_run_folder(out, a, record=rec)
    (out / "results.h5").write_bytes(b"results of a")
    (out / "summary.json").write_text("{}")
    finish_run_folder(out, m, [out / "results.h5", out / "summary.json"])
    man = json.loads((out / RUN_MANIFEST).read_text())
    assert sorted(man["file_stats"]) == ["results.h5", "summary.json"]
    assert man["file_stats"]["results.h5"][0] == len(b"results of a")
    assert completed_run(out, rec) is not None
    # replaced by another scan's results of the same size, even with the old modification time's second
    st = (out / "results.h5").stat()
    (out / "results.h5").write_bytes(b"results of b")
    os.utime(out / "results.h5", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))
    assert completed_run(out, rec) is None
    os.utime(out / "results.h5", ns=(st.st_atime_ns, st.st_mtime_ns))  # size and time as recorded again
    assert completed_run(out, rec) is not None
    (out / "summary.json").write_text('{"n_grains": 3}')  # another size
    assert completed_run(out, rec) is None
    # a manifest of an older version, without file stats: not trusted (the run is redone)
    (out / RUN_MANIFEST).write_text(json.dumps({k: v for k, v in man.items() if k != "file_stats"}))
    assert completed_run(out, rec) is None


def test_run_again_after_its_results_were_replaced_recomputes(tmp_path, capsys):
    src = tmp_path / "scan.h5"
    simulate_polycrystal(src, phases=[AU], scan_shape=(3, 4), detector_shape=(64, 64), n_grains=2, seed=1,
                         dose=1e4, progress=False)
    run = ["run", str(src), "--phase", AU, "--step", "4", "--field", "1,0", "--min-size", "1", "--no-figures",
           "--no-progress", "-o", str(tmp_path / "r1")]
    assert main(run) == 0
    results = tmp_path / "r1" / "results.h5"
    # by hand (no command writes there any more): another file in place of results.h5
    other = tmp_path / "other.h5"
    shutil.copy(results, other)
    with h5py.File(other, "a") as f:
        f["input"].attrs["path"] = "/elsewhere/another_scan.h5"
    shutil.copy(other, results)
    capsys.readouterr()
    assert main(run) == 0
    assert "already complete" not in capsys.readouterr().out
    with h5py.File(results, "r") as f:
        assert f["input"].attrs["path"] == str(src.resolve())  # recomputed from this run's input
    assert main(run) == 0
    assert "already complete" in capsys.readouterr().out


def _unreachable(scheduler):
    raise StemgrainsError(f"--scheduler {scheduler}: cannot connect (test)")


@pytest.mark.parametrize("command", ["index", "run"])
def test_unreachable_scheduler_leaves_no_batch_folder(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setattr("stemgrains.pipeline.connect_scheduler", _unreachable)
    scans = tmp_path / "scans"
    scans.mkdir()
    _cube(scans / "a.h5")
    _cube(scans / "b.h5")
    out = tmp_path / "out"
    extra = ["--field", "1,0"] if command == "run" else []
    rc = main([command, str(scans), "--phase", AU, *extra, "-o", str(out), "--scheduler", "tcp://nowhere:8786",
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--scheduler tcp://nowhere:8786" in err[0]
    assert not out.exists()


def test_unreachable_scheduler_index_writes_no_calibration(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("stemgrains.pipeline.connect_scheduler", _unreachable)
    a = _cube(tmp_path / "a.h5")
    before = _tree(tmp_path)
    rc = main(["index", str(a), "--phase", AU, "-o", str(tmp_path / "m.h5"), "--auto-calibrate",
               "--scheduler", "tcp://nowhere:8786", "--no-progress"])
    assert rc == 2 and "--scheduler" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_completed_run_trusts_a_byte_identical_copy(tmp_path):
    """A run folder copied with `cp -r` (new modification times, same bytes) is still complete; a file edited
    in the copy (same size, new time) is not."""
    a = _cube(tmp_path / "a.h5")
    out = tmp_path / "out"
    rec = {"checksum": "sha256:1", "fingerprint": "f1"}
    m = prepare_run_folder(out, a, record=rec)
    (out / "results.h5").write_bytes(b"results of a")
    finish_run_folder(out, m, [out / "results.h5"])
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copyfile)  # as cp -r: contents only, new times
    st = (copy / "results.h5").stat()
    os.utime(copy / "results.h5", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert completed_run(copy, rec) is not None
    (copy / "results.h5").write_bytes(b"results of b")  # edited in the copy: same size, other bytes
    assert completed_run(copy, rec) is None
    # a manifest of the version before the checksums ([size, time]): trusted while size and time are as recorded
    man = json.loads((out / RUN_MANIFEST).read_text())
    man["file_stats"] = {k: v[:2] for k, v in man["file_stats"].items()}
    (out / RUN_MANIFEST).write_text(json.dumps(man))
    assert completed_run(out, rec) is not None and completed_run(copy, rec) is None


@pytest.mark.parametrize("before", ["none", "empty", "own file", "checkpoint"])
def test_a_run_refused_once_the_data_are_read_leaves_no_unfinished_record(tmp_path, capsys, monkeypatch, before):
    """A run refused after it claimed its folder (a ParameterError from what only the data decide) leaves the
    folder as it found it: no unfinished stemgrains_run.json where the run wrote nothing (so other commands may
    still write there), a folder it created removed, a user's file kept, an interrupted run's checkpoint kept."""
    src = tmp_path / "scan.h5"
    simulate_polycrystal(src, phases=[AU], scan_shape=(3, 4), detector_shape=(64, 64), n_grains=2, seed=1,
                         dose=1e4, progress=False)
    out = tmp_path / "r"
    if before != "none":
        out.mkdir()
    if before == "own file":
        (out / "mine.txt").write_text("mine")
    if before == "checkpoint":
        (out / ".checkpoint").mkdir()

    def refused(*args, **kwargs):
        raise ParameterError("refused on the data (test)")

    monkeypatch.setattr("stemgrains.pipeline._pipeline_index", refused)
    run = ["run", str(src), "--phase", AU, "--step", "4", "--field", "1,0", "--no-figures", "--no-progress", "-o", str(out)]
    assert main(run) == 2
    assert capsys.readouterr().err.strip() == "stemgrains run: error: refused on the data (test)"
    if before == "none":
        assert not out.exists()
        return
    assert (out / RUN_MANIFEST).exists() == (before == "checkpoint")  # a resumable run stays one
    assert (out / "mine.txt").exists() == (before == "own file")
    monkeypatch.undo()
    assert main(run) == 0  # the same command then runs there
