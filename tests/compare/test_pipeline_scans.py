"""Acceptance of `stemgrains compare` through the real pipeline (issue #17 part 3): two simulated 4D-STEM scans of
one area — the second window moved by (3, −2) scan pixels and one grain turned by 3° — each through
`stemgrains run` (index, segment, boundaries, classify), then compared: every grain matched, the turned grain at
3° ± 0.3°, the others below 0.5°, the shift recovered exactly."""

from __future__ import annotations

import numpy as np
import pytest

from compare_helpers import field, rotate_about
from stemgrains.cli import main
from stemgrains.compare import PixelOp, compare_results
from stemgrains.simulate import sample_cif, simulate_polycrystal

pytestmark = pytest.mark.slow


def test_two_simulated_scans_through_the_pipeline(tmp_path, capsys):
    cif = sample_cif("na_beta2_alumina")
    ny = nx = 24
    lab, gq = field((ny + 12, nx + 12), 6, seed=9, min_sep=9.0)
    r0 = c0 = 6
    offset = (3, -2)
    w1 = lab[r0:r0 + ny, c0:c0 + nx]
    w2 = lab[r0 + offset[0]:r0 + offset[0] + ny, c0 + offset[1]:c0 + offset[1] + nx]
    turned = int(lab[r0 + ny // 2, c0 + nx // 2])
    gq2 = gq.copy()
    gq2[turned - 1] = rotate_about(gq[turned - 1:turned], (1.0, 2.0, 0.5), 3.0)[0]
    runs = []
    for name, w, q in (("a", w1, gq), ("b", w2, gq2)):
        n = int(w.max())
        path = simulate_polycrystal(tmp_path / f"{name}.h5", phases=[cif], labels=w, orientations=q[:n],
                                    detector_shape=(64, 64), seed=3, progress=False, n_threads=1)
        out = tmp_path / f"run_{name}"
        assert main(["run", str(path), "--phase", str(cif), "--field", "1,0", "-o", str(out), "--step", "2",
                     "--no-figures", "--no-progress"]) == 0
        runs.append(out)
    capsys.readouterr()
    comp = compare_results(runs)
    reg = comp.registrations[1]
    assert reg.op == PixelOp() and reg.shift == (-offset[0], -offset[1])
    g = comp.grains
    status = np.asarray(g["status"])
    assert np.all(status[~np.isin(status, ["outside", "edge"])] == "matched"), status
    m = status == "matched"
    # every grain of scan 1 in the common field is matched, and every grain of the field larger than 10 px is one
    assert m.sum() == np.sum((np.asarray(g["grain_from"]) > 0) & ~np.isin(status, ["outside", "edge"]))
    assert m.sum() >= np.sum(np.bincount(w1.ravel())[1:] > 10)
    # the turned grain: the series id of the pixels where the field has it
    both = comp.covered[0] & comp.covered[1]
    sid = np.bincount(comp.series_labels[0][both & (w1 == turned)]).argmax()
    is_t = np.asarray(g["series_id"])[m] == sid
    dis = np.asarray(g["disorientation_deg"])[m]
    print("\ncompare through the pipeline: shift", reg.shift, "turned grain", dis[is_t], "others", np.sort(dis[~is_t]))
    assert dis[is_t][0] == pytest.approx(3.0, abs=0.3)
    assert np.all(dis[~is_t] < 0.5)
