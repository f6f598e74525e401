"""Ctrl-C during `stemgrains index`: one line, exit status 130, finished chunks kept, the rerun resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import h5py
import pytest

from stemgrains.cli import main
from stemgrains.simulate import sample_cif, simulate_polycrystal


@pytest.mark.slow
def test_sigint_leaves_one_line_and_a_resumable_checkpoint(tmp_path, capsys):
    scan = tmp_path / "scan.h5"
    simulate_polycrystal(scan, phases=[sample_cif("au")], scan_shape=(48, 8), detector_shape=(64, 64), n_grains=3,
                         seed=5, dose=1e4, progress=False)
    out = tmp_path / "out.h5"
    partial = tmp_path / "out.h5.partial"
    cmd = [sys.executable, "-m", "stemgrains.cli", "index", str(scan), "--phase", str(sample_cif("au")), "--step", "3",
           "--chunk-rows", "2", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and not list(partial.glob("rows_*.npz")) and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.replace("\r", "\n").splitlines()
             if ln.strip() and not ln.startswith(("indexing", "relrod width", "final refinement", "stemgrains: loading",
                                                  "building the template library"))]
    # (progress, the σ_s and final-refinement choices, the first-use line and the library-building notice of a fresh
    # library cache are information, not errors)
    assert proc.returncode == 130, err
    assert lines == ["stemgrains index: interrupted; rerun the same command to resume"], err
    kept = sorted(partial.glob("rows_*.npz"))
    assert kept and not out.exists()

    # the rerun needs no process of its own (only the Ctrl-C does): the same command through the CLI in this process
    capsys.readouterr()
    assert main(cmd[3:] + ["--no-progress"]) == 0
    resumed = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("stemgrains: resuming: ")]
    assert len(resumed) == 1 and " of 48 scan rows were indexed before (checkpoint " in resumed[0], resumed
    with h5py.File(out) as f:
        assert f["orientation/phase_id"].shape == (48, 8)
    assert not partial.exists()
