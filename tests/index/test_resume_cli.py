"""Interrupted indexing runs resume from finished chunks and end identical to an uninterrupted run; CLI errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.simulate import sample_cif, simulate_polycrystal


def _scan(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp(f"resume{rows}") / "scan.h5"
    simulate_polycrystal(path, phases=[sample_cif("au")], scan_shape=(rows, 8), detector_shape=(64, 64), n_grains=3,
                         seed=4, dose=1e4, progress=False)
    return path


@pytest.fixture(scope="module")
def small_scan(tmp_path_factory):
    return _scan(tmp_path_factory, 12)


def _cli(*args, env=None):
    return [sys.executable, "-m", "stemgrains.cli", *map(str, args)]


@pytest.fixture(scope="module")
def long_scan(tmp_path_factory):
    """48 rows: 6 chunks of 8 (chunks are whole blocks of 8 rows), so a kill lands mid-way."""
    return _scan(tmp_path_factory, 48)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_result(long_scan, tmp_path):
    cif = sample_cif("au")
    common = ["index", long_scan, "--phase", cif, "--step", "3", "--chunk-rows", "8", "--no-progress"]  # 6 chunks
    # the uninterrupted reference and the resumed run go through the same CLI in this process: only the kill needs
    # a process of its own (each extra interpreter costs the imports and the kernel loading again)
    ref = tmp_path / "ref.h5"
    assert main([*map(str, common), "-o", str(ref)]) == 0

    out = tmp_path / "out.h5"
    partial = tmp_path / "out.h5.partial"
    proc = subprocess.Popen(_cli(*common, "-o", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(list(partial.glob("rows_*.npz"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(partial.glob("rows_*.npz"))
    assert not out.exists(), "the results file must not exist before the run completes"
    assert 1 <= len(finished) < 6, "the kill should land mid-way"
    mtimes = {f.name: f.stat().st_mtime_ns for f in finished}

    assert main([*map(str, common), "-o", str(out)]) == 0  # resumes from the killed run's finished chunks
    with h5py.File(ref) as a, h5py.File(out) as b:
        for key in ("quaternions", "phase_id", "correlation_index", "reliability"):
            np.testing.assert_array_equal(a["orientation"][key][()], b["orientation"][key][()])
    assert not partial.exists()
    # finished chunks were reused, not recomputed: the resumed run did not touch them before deleting the folder
    assert mtimes


def test_index_cli_errors_are_one_line(tmp_path, capsys):
    rc = main(["index", str(tmp_path / "missing.h5"), "--phase", str(sample_cif("au")), "-o", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "missing.h5" in err[0]
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 4\nloop_\n_atom_site_label\n")
    rc = main(["index", str(tmp_path / "missing.h5"), "--phase", str(bad), "-o", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bad.cif" in err[0]


def test_index_cli_rejects_bad_step(small_scan, tmp_path, capsys):
    rc = main(["index", str(small_scan), "--phase", str(sample_cif("au")), "--step", "-1", "-o", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "step" in err[0]


def test_index_cli_rejects_bad_prefilter(small_scan, tmp_path, capsys):
    rc = main(["index", str(small_scan), "--phase", str(sample_cif("au")), "--n-prefilter", "0", "-o", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--n-prefilter must be a positive integer" in err[0]


def test_index_cli_without_neighbor_pass(small_scan, tmp_path, capsys):
    out = tmp_path / "o.h5"
    rc = main(["index", str(small_scan), "--phase", str(sample_cif("au")), "--step", "3", "--n-prefilter", "50",
               "--no-neighbor-pass", "--no-progress", "-o", str(out)])
    assert rc == 0
    from stemgrains.io import load_orientation_map
    from stemgrains.io.results import read_parameters

    with h5py.File(out) as f:
        prm = read_parameters(f, "index")
    assert load_orientation_map(out).size == 12 * 8
    assert prm["neighbor_pass"] is False and prm["n_prefilter"] == 50


def test_every_subcommand_has_help(capsys):
    from stemgrains.cli import build_parser

    parser = build_parser()
    names = [a for a in parser._subparsers._group_actions[0].choices]
    assert {"simulate", "index", "segment", "classify", "transport", "run", "info"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
