"""`series -o OUTDIR` replaces only its own outputs for the same inputs (issue: events.csv and the other
fixed-name files replaced whatever stood there): refused before any work, one line, exit 2, unless --force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from file_helpers import file_tree
from insitu_helpers import write_lamella

from stemgrains.cli import main
from stemgrains.simulate.series import PlantedEvent, simulate_series


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("series")
    results = write_lamella(d / "results.h5")[0]
    frames, _ = simulate_series([PlantedEvent(59.0, 20.0, 1, amplitude=0.5)], n_frames=3, shape=(96, 96),
                                pixel_size_nm=1.0, offset_nm=(-4.0, -8.0), drift_px=np.zeros((3, 2)), seed=1)
    names = []
    for k, f in enumerate(frames):
        names.append(str(d / f"f{k}.npy"))
        np.save(names[-1], f)
    return [str(results), *names]


def _argv(inputs, out, *extra):
    return ["series", *inputs, "--frame-pixel-size", "1", "--offset=-4,-8", "--no-figures", "-o", str(out), *extra]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_series_refuses_a_users_events_csv(inputs, tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "events.csv").write_text("my,own\n1,2\n")
    before = file_tree(out)
    assert main(_argv(inputs, out)) == 2
    assert _one_line(capsys) == (f"stemgrains series: error: -o {out}: events.csv there is a CSV file not written by "
                                 "stemgrains, which this command would replace; choose another folder, or give "
                                 "--force to replace it")
    assert file_tree(out) == before
    assert main(_argv(inputs, out, "--force")) == 0 and (out / "events.csv").read_text().startswith("event_id,")


def test_series_rerun_and_other_inputs(inputs, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(_argv(inputs, out)) == 0
    assert main(_argv(inputs, out)) == 0  # the same inputs again
    capsys.readouterr()
    before = file_tree(out)
    assert main(_argv(inputs[:-1], out)) == 2  # one frame fewer: other inputs
    assert "events.csv there is a table beside the series.h5 of other inputs (" in _one_line(capsys)
    assert file_tree(out) == before


def test_series_rerun_after_the_folder_was_moved(inputs, tmp_path):
    out = tmp_path / "s"
    assert main(_argv(inputs, out)) == 0
    moved = tmp_path / "s_mv"
    out.rename(moved)
    assert main(_argv(inputs, moved)) == 0  # the tables are recorded by name in the folder


def test_series_rerun_in_a_copy_of_the_folder(inputs, tmp_path, capsys):
    """`cp -r` gives the tables new modification times: a byte-identical copy counts as unchanged (content),
    a table edited in it (same size) is still refused."""
    import os
    import shutil

    out = tmp_path / "s"
    assert main(_argv(inputs, out)) == 0
    copy = tmp_path / "s_copy"
    shutil.copytree(out, copy, copy_function=shutil.copyfile)
    for p in copy.iterdir():  # new times whatever the clock's resolution
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))
    assert main(_argv(inputs, copy)) == 0
    capsys.readouterr()
    text = (copy / "events.csv").read_text()
    (copy / "events.csv").write_text(text.replace("\n0,", "\n9,", 1))  # same size, other content
    assert (copy / "events.csv").read_text() != text
    before = file_tree(copy)
    assert main(_argv(inputs, copy)) == 2
    assert "events.csv there is a table that the series.h5 there does not list as written with it" in \
        _one_line(capsys)
    assert file_tree(copy) == before


def test_series_output_naming_its_series_h5(inputs, tmp_path, capsys):
    """`-o DIR/series.h5` (reaching for a file, as other commands' -o) means DIR: the same command again works
    and our series.h5 is named as ours; a user's file of that name is still refused."""
    from stemgrains.io.outputs import describe_file

    out = tmp_path / "s"
    assert main(_argv(inputs, out / "series.h5")) == 0
    assert (out / "series.h5").is_file() and (out / "events.csv").is_file()
    assert main(_argv(inputs, out / "series.h5")) == 0  # the same command again
    assert main(_argv(inputs, out)) == 0
    assert describe_file(out / "series.h5") == "the in-situ series of " + ", ".join(
        str(Path(p).resolve()) for p in inputs)
    capsys.readouterr()
    before = file_tree(out)
    assert main(_argv(inputs[:-1], out / "series.h5")) == 2  # other inputs: refused by the folder guard
    assert "events.csv there is a table beside the series.h5 of other inputs (" in _one_line(capsys)
    assert file_tree(out) == before
    mine = tmp_path / "u"
    mine.mkdir()
    (mine / "series.h5").write_text("my notes")
    assert main(_argv(inputs, mine / "series.h5")) == 2
    assert _one_line(capsys) == (f"stemgrains series: error: -o {mine / 'series.h5'}: is a file (a .h5 file not "
                                 "written by stemgrains), not a folder; give an output folder")
    assert (mine / "series.h5").read_text() == "my notes"


def test_json_files_of_ours_are_described_as_ours(tmp_path):
    """The summary.json and manifest of a run, a batch's parameters and other JSON records of ours are named as
    such in the refusals, never 'not written by stemgrains'."""
    import json

    from stemgrains.io.outputs import describe_file

    docs = {
        "summary.json": ({"input": "/d/scan.h5", "scan_shape": [2, 3], "n_grains": 1, "classification": {}},
                         "the summary.json of a run on /d/scan.h5"),
        "stemgrains_run.json": ({"input": "/d/scan.h5", "files": [], "complete": True, "software_version": "0"},
                                "the stemgrains_run.json of a run on /d/scan.h5"),
        "batch_parameters.json": ({"inputs": ["/a", "/b"], "outputs": ["a", "b"], "fingerprint": "f"},
                                  "the batch_parameters.json of a batch of 2 input(s)"),
        "vdf_grains.json": ({"software": "stemgrains 0", "input": "/d/scan.h5"},
                            "a JSON record written by stemgrains of /d/scan.h5"),
        "mine.json": ({"input": "/d/scan.h5"}, "a JSON file not written by stemgrains"),
    }
    for name, (doc, what) in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
        assert describe_file(tmp_path / name) == what
