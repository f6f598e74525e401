"""Non-finite (NaN/inf) or negative values in the patterns indexed: one warning line naming the input and how many
patterns hold them (found per chunk, as the patterns are read for indexing; no extra read of the file), NaN/inf
read as 0."""

from __future__ import annotations

import numpy as np

from stemgrains.cli import main
from stemgrains.index.api import _finite_counts
from stemgrains.io import load_4d


def test_finite_counts_flags_and_zeroes_non_finite_values():
    p = np.ones((4, 5, 5), np.float32)
    p[1, 2, 2], p[2, 0, 0], p[3, 1, 1], p[3, 4, 4] = np.nan, -3.0, np.inf, -1.0
    got, flags = _finite_counts(p)
    assert flags.tolist() == [0, 1, 2, 3] and np.isfinite(got).all() and got[1, 2, 2] == 0 and got[3, 1, 1] == 0
    assert got[2, 0, 0] == -3.0 and np.isnan(p[1, 2, 2])  # negative values kept; the input is not changed
    u = np.ones((2, 5, 5), np.uint16)
    got, flags = _finite_counts(u)
    assert got is u and flags.tolist() == [0, 0]


def test_index_warns_naming_the_input_and_the_patterns(au_scan_3x3, tmp_path, capsys):
    ds = load_4d(au_scan_3x3)
    data = np.asarray(ds.data, np.float32).copy()
    data[0, 0, 10, 10] = np.nan
    data[1, 1, 20, 20] = data[2, 2, 5, 5] = -100.0
    path = tmp_path / "bad.npy"
    np.save(path, data)
    assert main(["index", str(path), "--phase", "au", "--q-pixel-size", f"{ds.calibration.q_pixel_size:g}",
                 "--neighbor-average-radius", "0", "--step", "3", "--no-progress", "-o", str(tmp_path / "m.h5")]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert err == [f"warning: {path}: 1 of 9 patterns hold non-finite values (NaN or inf; indexed with them read as 0); "
                   "2 of 9 patterns hold negative values (the spot detection expects counts >= 0)"], err
