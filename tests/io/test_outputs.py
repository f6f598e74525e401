"""Outputs never destroy inputs; a run folder holding another run's results is refused unless --overwrite."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.errors import ParameterError
from stemgrains.io.outputs import (
    REPLACED, RUN_MANIFEST, abandon_run_folder, check_outputs, finish_run_folder, prepare_run_folder,
)


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _cube_file(path: Path, q: float | None = 0.02, det: int = 8) -> Path:
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=np.arange(2 * 3 * det * det, dtype=np.float32).reshape(2, 3, det, det))
        if q is not None:
            d.attrs["q_pixel_size"] = q
    return path


def test_output_that_is_the_input_is_refused(tmp_path):
    scan = _cube_file(tmp_path / "scan.h5")
    link = tmp_path / "link.h5"
    link.symlink_to(scan)
    hard = tmp_path / "hard.h5"
    os.link(scan, hard)
    for out in (scan, link, hard, tmp_path / "." / "scan.h5"):
        with pytest.raises(ParameterError, match="input file") as err:
            check_outputs({"-o": out}, [scan])
        assert "\n" not in str(err.value) and "-o" in str(err.value)
    with pytest.raises(ParameterError, match="inside the input"):
        check_outputs({"-o": scan / "out.h5"}, [scan])
    with pytest.raises(ParameterError, match="also given as"):
        check_outputs({"-o": tmp_path / "a.h5", "--export-ang": tmp_path / "a.h5"}, [scan])
    check_outputs({"-o": tmp_path / "other.h5", "--export-ang": None}, [scan])  # fine


def test_companion_files_count_as_inputs(tmp_path):
    mib = tmp_path / "scan.mib"
    mib.write_bytes(b"x")
    hdr = tmp_path / "scan.hdr"
    hdr.write_text("header")
    with pytest.raises(ParameterError, match="scan.hdr"):
        check_outputs({"-o": hdr}, [mib])


@pytest.mark.parametrize("flag", ["-o", "--export-ang", "--export-ctf"])
def test_index_cli_refuses_to_overwrite_its_input(tmp_path, capsys, flag):
    scan = _cube_file(tmp_path / "scan.h5")
    before = _digest(scan)
    cif = Path(__file__).resolve().parents[2] / "data_samples" / "au.cif"
    args = ["index", str(scan), "--phase", str(cif), "-o", str(tmp_path / "map.h5")]
    if flag == "-o":
        args[-1] = str(scan)
    else:
        args += [flag, str(scan)]
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "scan.h5" in err[0] and "overwritten" in err[0]
    assert _digest(scan) == before
    rc = main(["index", str(scan), "--phase", str(cif), "-o", str(cif)])
    assert rc == 2 and "au.cif" in capsys.readouterr().err


def test_segment_cli_refuses_csv_over_input(tmp_path, capsys):
    ang = tmp_path / "m.ang"
    ang.write_text("# header\n")
    rc = main(["segment", str(ang), "-o", str(tmp_path / "o.h5"), "--csv", str(ang)])
    assert rc == 2
    # the empty map is reported first, or the csv clash: either way one line and the input untouched
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert ang.read_text() == "# header\n"


def test_run_folder_of_another_dataset_is_refused_then_replaced(tmp_path):
    a = _cube_file(tmp_path / "a.h5")
    b = _cube_file(tmp_path / "b.h5")
    out = tmp_path / "out"
    m = prepare_run_folder(out, a)
    for name in ("results.h5", "summary.json", "transport_current.png", "extra_by_a.png"):
        (out / name).write_text(name)
    (out / "notes.txt").write_text("mine")  # not written by a run: never touched
    finish_run_folder(out, m, [out / n for n in ("results.h5", "summary.json", "transport_current.png", "extra_by_a.png")])
    assert json.loads((out / RUN_MANIFEST).read_text())["complete"] is True

    with pytest.raises(ParameterError, match=r"another dataset \(.*a\.h5\).*--overwrite") as err:
        prepare_run_folder(out, b)
    assert "\n" not in str(err.value)
    with pytest.raises(ParameterError, match="same dataset"):
        prepare_run_folder(out, a)  # a finished run is not silently redone either
    assert (out / "transport_current.png").exists()

    m = prepare_run_folder(out, b, overwrite=True)
    left = sorted(p.name for p in out.iterdir())
    assert left == [REPLACED, "notes.txt", RUN_MANIFEST]  # a's results kept aside until b's run finishes
    assert sorted(p.name for p in (out / REPLACED).iterdir()) == sorted(
        ["results.h5", "summary.json", "transport_current.png", "extra_by_a.png", RUN_MANIFEST])
    man = json.loads((out / RUN_MANIFEST).read_text())
    assert man["complete"] is False and man["input"] == str(b.resolve())
    (out / "results.h5").write_text("b")
    finish_run_folder(out, m, [out / "results.h5"])
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.h5", RUN_MANIFEST]


def test_overwrite_keeps_the_replaced_results_until_the_new_run_finishes(tmp_path):
    """--overwrite never loses the earlier results to a run that does not finish: refused before writing anything,
    they are put back; interrupted, they stay kept (also through a second replacement) until a run finishes."""
    a = _cube_file(tmp_path / "a.h5")
    b = _cube_file(tmp_path / "b.h5")
    c = _cube_file(tmp_path / "c.h5")
    out = tmp_path / "out"
    m = prepare_run_folder(out, a)
    for name in ("results.h5", "summary.json"):
        (out / name).write_text(f"{name} of a")
    finish_run_folder(out, m, [out / "results.h5", out / "summary.json"])
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    prepare_run_folder(out, b, overwrite=True)  # refused on its data before it wrote anything
    abandon_run_folder(out, created=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # a's run exactly as it was

    prepare_run_folder(out, b, overwrite=True)
    (out / "results.h5").write_text("half of b")  # then killed
    assert (out / REPLACED / "results.h5").read_text() == "results.h5 of a"
    prepare_run_folder(out, c, overwrite=True)  # b's unfinished files go, a's finished results stay kept
    assert not (out / "results.h5").exists()
    assert (out / REPLACED / "results.h5").read_text() == "results.h5 of a"
    m = prepare_run_folder(out, c)  # c's interrupted run resumes; a's results still kept
    assert (out / REPLACED / "summary.json").read_text() == "summary.json of a"
    (out / "results.h5").write_text("c")
    finish_run_folder(out, m, [out / "results.h5"])
    assert sorted(p.name for p in out.iterdir()) == ["results.h5", RUN_MANIFEST]


def test_overwrite_of_files_of_ours_no_run_made_keeps_them_until_the_run_finishes(tmp_path):
    a = _cube_file(tmp_path / "a.h5")
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("the user's")
    with pytest.raises(ParameterError, match="no stemgrains run made"):
        prepare_run_folder(out, a)
    prepare_run_folder(out, a, overwrite=True)
    assert (out / REPLACED / "summary.json").read_text() == "the user's" and not (out / "summary.json").exists()
    abandon_run_folder(out, created=False)
    assert (out / "summary.json").read_text() == "the user's" and not (out / REPLACED).exists()


def test_interrupted_run_of_the_same_input_resumes(tmp_path):
    a = _cube_file(tmp_path / "a.h5")
    out = tmp_path / "out"
    prepare_run_folder(out, a)
    (out / ".checkpoint").mkdir()
    (out / ".checkpoint" / "rows_000000_000008.npz").write_bytes(b"chunk")
    prepare_run_folder(out, a)  # no --overwrite needed, checkpoint kept
    assert (out / ".checkpoint" / "rows_000000_000008.npz").exists()
    b = _cube_file(tmp_path / "b.h5")
    with pytest.raises(ParameterError, match="another dataset"):
        prepare_run_folder(out, b)
    prepare_run_folder(out, b, overwrite=True)
    assert not (out / ".checkpoint").exists()  # another dataset's chunks are gone


def test_run_folder_without_manifest_but_with_results(tmp_path):
    a = _cube_file(tmp_path / "a.h5")
    out = tmp_path / "out"
    out.mkdir()
    with h5py.File(out / "results.h5", "w") as f:
        f.create_group("input").attrs["path"] = "/data/other_scan.h5"
    with pytest.raises(ParameterError, match="other_scan.h5"):
        prepare_run_folder(out, a)
    with pytest.raises(ParameterError, match="results.h5 of that folder"):
        prepare_run_folder(out, out / "results.h5")


def test_run_cli_refuses_before_any_work(tmp_path, capsys):
    a = _cube_file(tmp_path / "a.h5")
    b = _cube_file(tmp_path / "b.h5", q=0.05, det=32)  # a detector whose q-range holds spots (checked before any work too)
    out = tmp_path / "out"
    m = prepare_run_folder(out, a)
    (out / "results.h5").write_bytes(b"a's results")
    finish_run_folder(out, m, [out / "results.h5"])
    cif = Path(__file__).resolve().parents[2] / "data_samples" / "au.cif"
    rc = main(["run", str(b), "--phase", str(cif), "--field", "1,0", "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert (out / "results.h5").read_bytes() == b"a's results"


def test_run_cli_uncalibrated_input_claims_nothing(tmp_path, capsys):
    a = _cube_file(tmp_path / "a.h5", q=None)
    out = tmp_path / "out"
    cif = Path(__file__).resolve().parents[2] / "data_samples" / "au.cif"
    rc = main(["run", str(a), "--phase", str(cif), "--field", "1,0", "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--q-pixel-size" in err[0]
    assert not (out / RUN_MANIFEST).exists()


def test_classify_csv_over_results_is_refused(tmp_path, capsys):
    res = tmp_path / "r.h5"
    with h5py.File(res, "w") as f:
        f.create_group("grains")
    before = _digest(res)
    rc = main(["classify", str(res), "--field", "1,0", "--csv", str(res)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--csv" in err[0]
    assert _digest(res) == before


def test_simulate_over_its_cif_is_refused(tmp_path, capsys):
    cif = tmp_path / "au.cif"
    src = Path(__file__).resolve().parents[2] / "data_samples" / "au.cif"
    cif.write_text(src.read_text())
    rc = main(["simulate", "-o", str(cif), "--phase", str(cif)])
    assert rc == 2 and "au.cif" in capsys.readouterr().err
    assert cif.read_text() == src.read_text()


def test_record_folder_of_compare_and_series(tmp_path):
    """`-o DIR/compare.h5` (or series.h5) names DIR when that file is missing or one of ours; a user's file of
    that name, an existing folder of that name and any other name stay as given."""
    import json

    import h5py

    from stemgrains.io.outputs import record_folder

    d = tmp_path / "d"
    d.mkdir()
    assert record_folder(d / "compare.h5", "compare.h5", "compare", "scans") == d  # missing
    with h5py.File(d / "compare.h5", "w") as f:
        f.create_group("compare").attrs["scans"] = json.dumps(["/a.h5", "/b.h5"])
    assert record_folder(d / "compare.h5", "compare.h5", "compare", "scans") == d  # ours
    assert record_folder(d / "series.h5", "series.h5", "series") == d
    (d / "series.h5").write_text("my notes")
    assert record_folder(d / "series.h5", "series.h5", "series") == d / "series.h5"  # a user's file
    (d / "x" / "compare.h5").mkdir(parents=True)
    assert record_folder(d / "x" / "compare.h5", "compare.h5", "compare", "scans") == d / "x" / "compare.h5"
    assert record_folder(d / "other.h5", "compare.h5", "compare", "scans") == d / "other.h5"


def test_a_missing_output_folder_named_like_a_file_is_refused(tmp_path):
    """compare/series/vdf-grains -o out/results.h5 used to create a folder called results.h5 (fresh user)."""
    from stemgrains.errors import ParameterError
    from stemgrains.io.outputs import require_output_folder

    for name in ("results.h5", "events.csv", "x.PNG"):
        with pytest.raises(ParameterError, match=r"names a .* file, but this command writes several files into a folder"):
            require_output_folder(tmp_path / "out" / name)
        assert not (tmp_path / "out").exists()
    require_output_folder(tmp_path / "out.d")  # a folder name with a dot is still a folder
    (tmp_path / "made.h5").mkdir()
    require_output_folder(tmp_path / "made.h5")  # an existing folder of that name is the user's choice


def test_interrupted_run_says_where_the_replaced_results_are(tmp_path):
    import argparse

    from stemgrains.cli import _kept_aside

    out = tmp_path / "out"
    args = argparse.Namespace(command="run", output=str(out))
    assert _kept_aside(args) == ""
    (out / REPLACED).mkdir(parents=True)
    assert _kept_aside(args) == f" (the results it replaces are kept in {out / REPLACED} until it finishes)"
    assert _kept_aside(argparse.Namespace(command="index", output=str(out))) == ""


def _finished_run_of_a(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Inputs a and b, and a run folder holding a's finished run (results.h5 = "a's results")."""
    a = _cube_file(tmp_path / "a.h5")
    b = _cube_file(tmp_path / "b.h5")
    out = tmp_path / "out"
    m = prepare_run_folder(out, a)
    (out / "results.h5").write_text("a's results")
    finish_run_folder(out, m, [out / "results.h5"])
    return a, b, out


def test_a_finished_run_kept_aside_survives_an_interrupted_batch_and_another_overwrite(tmp_path):
    """Second fresh-user round: single run → batch --overwrite (interrupted) → single run --overwrite deleted the
    finished run kept in .stemgrains_replaced and kept the half-done batch instead."""
    import json

    from stemgrains.io.outputs import BATCH_PARAMETERS, claim_batch_folder

    a, b, out = _finished_run_of_a(tmp_path)
    claim_batch_folder(out, [a, b], overwrite=True)  # a's run kept aside; the batch starts, then is interrupted
    (out / "sub").mkdir()
    (out / "sub" / "results.h5").write_text("half a batch")
    (out / BATCH_PARAMETERS).write_text(json.dumps({"inputs": [str(a), str(b)], "outputs": ["sub"]}))
    prepare_run_folder(out, b, overwrite=True)  # the unfinished batch goes; a's finished run stays kept
    assert (out / REPLACED / "results.h5").read_text() == "a's results"
    assert not (out / "sub").exists() and not (out / BATCH_PARAMETERS).exists()
    assert not (out / REPLACED / "sub").exists()


def test_a_refused_run_says_where_the_results_it_replaces_are(tmp_path, capsys, data_samples):
    out = tmp_path / "out"
    (out / REPLACED).mkdir(parents=True)
    rc = main(["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "--field", "1,0", "-o", str(out), "--min-reliability", "1000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].endswith(f"(the results it replaces are kept in {out / REPLACED} "
                                                         "until it finishes)"), err


def test_an_unfinished_run_in_the_folder_is_called_so(tmp_path):
    """After an interrupted --overwrite run on b, the same command on a read 'already holds the results of a run
    on another dataset (b)' though the folder held b's unfinished run and a's results kept aside."""
    import pytest

    a, b, out = _finished_run_of_a(tmp_path)
    prepare_run_folder(out, b, overwrite=True)
    (out / "results.h5").write_text("half of b")  # then interrupted
    with pytest.raises(ParameterError, match=r"already holds an unfinished run on another dataset \(.*b\.h5\) \(the "
                                             r"finished results it was replacing are kept in .*\.stemgrains_replaced\)"):
        prepare_run_folder(out, a)
