"""A placement that is not unique (a new user's 3 × 3 crop inside one grain was put at a wrong shift and reported
as a success): compare must say so, and keep quiet for scans whose placement is unique (fast, synthetic maps)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from orix.quaternion import Rotation

from compare_helpers import crystal_map, field, write_results
from stemgrains.cli import main
from stemgrains.compare import compare_results
from stemgrains.compare.register import tied_shifts
from stemgrains.crystal import load_phase


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _noisy_field(shape=(40, 40), noise_deg=0.3):
    """Six large Voronoi grains, every pixel's orientation turned by ``noise_deg`` about a random axis (as measured
    maps are: the IPF colours vary a little within a grain, so the correlation has peaks there)."""
    lab, gq = field(shape, 6, seed=11, min_sep=12.0)
    rng = np.random.default_rng(0)
    q = gq[lab - 1].reshape(-1, 4)
    noise = Rotation.from_axes_angles(rng.normal(size=(len(q), 3)), np.full(len(q), np.radians(noise_deg)))
    return lab, (Rotation(q) * ~noise).data.reshape(shape + (4,))


def test_small_scan_inside_one_grain_is_flagged_not_unique(tmp_path, nba, capsys):
    lab, q = _noisy_field()
    w = (slice(18, 21), slice(18, 21))
    assert np.all(lab[w] == lab[18, 18])  # the crop lies inside one grain: any shift within it fits
    p1 = write_results(tmp_path / "ref.h5", crystal_map(q, nba))
    p2 = write_results(tmp_path / "crop.h5", crystal_map(np.ascontiguousarray(q[w]), nba))
    comp = compare_results([p1, p2])
    reg = comp.registrations[1]
    assert reg.agreement == 1.0
    assert not reg.unique and reg.n_tied > 10
    r0, r1, c0, c1 = reg.tied_range
    assert r0 <= -18 <= r1 and c0 <= -18 <= c1  # the true shift is among the equally good ones
    assert len(comp.warnings) == 1 and "is not unique" in comp.warnings[0] and "--shift ROW,COL" in comp.warnings[0]
    # the command line says so, and records it in compare.json and compare.h5
    out = tmp_path / "c"
    assert main(["compare", str(p1), str(p2), "-o", str(out), "--no-figures"]) == 0
    text = capsys.readouterr()
    warning = [line for line in text.err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "not unique" in warning[0]
    assert f"NOT UNIQUE: {reg.n_tied} other shifts agree as well" in text.out
    assert "best rival" not in text.out  # it read "best rival 0 %" beside NOT UNIQUE
    rec = json.loads((out / "compare.json").read_text())["registrations"][1]
    assert rec["placement_unique"] is False and rec["n_tied_shifts"] == reg.n_tied
    assert rec["tied_shift_range_row_col_px"] == [[r0, r1], [c0, c1]]
    with h5py.File(out / "compare.h5") as f:
        assert json.loads(f["compare"].attrs["placement_unique"]) == [True, False]
    # a given shift is the user's: no such warning
    given = compare_results([p1, p2], shifts=[(-18, -18)], rotation="none")
    assert given.registrations[1].unique and not given.warnings


def test_crop_across_grains_stays_unique(tmp_path, nba, capsys):
    lab, q = _noisy_field()
    w = (slice(10, 18), slice(0, 40))
    assert len(np.unique(lab[w])) >= 3
    p1 = write_results(tmp_path / "ref.h5", crystal_map(q, nba))
    p2 = write_results(tmp_path / "crop.h5", crystal_map(np.ascontiguousarray(q[w]), nba))
    comp = compare_results([p1, p2])
    reg = comp.registrations[1]
    assert reg.shift == (-10, 0) and reg.unique and reg.n_tied == 0 and not comp.warnings
    assert main(["compare", str(p1), str(p2), "-o", str(tmp_path / "c"), "--no-figures"]) == 0
    text = capsys.readouterr()
    assert "warning" not in text.err and "NOT UNIQUE" not in text.out
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["registrations"][1]["placement_unique"] is True


def test_tied_shifts_follows_the_plateau_only():
    ref_ok = np.ones((12, 12), bool)
    mov_ok = np.ones((2, 2), bool)
    # shifts -10..0 share all 4 pixels; 6 × 2 of them agree fully, the rest less
    plateau = {(r, c) for r in range(-7, -1) for c in range(-4, -2)}

    def agreeing(t):
        return 4 if t in plateau else 2

    tied, capped = tied_shifts(agreeing, ref_ok, mov_ok, (-2, -3), 4)
    assert set(tied) == plateau and not capped and tied[(-2, -3)] == 4
    alone, _ = tied_shifts(lambda t: 4 if t == (-5, -5) else 1, ref_ok, mov_ok, (-5, -5), 4)
    assert list(alone) == [(-5, -5)]


def test_a_scan_compared_with_itself_gets_a_note(tmp_path, nba, capsys):
    """`compare results results` ran without a word (every grain 'matched')."""
    lab, q = _noisy_field()
    p1 = write_results(tmp_path / "ref.h5", crystal_map(q, nba))
    assert main(["compare", str(p1), str(tmp_path / "." / "ref.h5"), "-o", str(tmp_path / "c"), "--no-figures"]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: scan 2 ({tmp_path / '.' / 'ref.h5'}) is the same file as scan 1: its grains match by "
                     "construction"]


def test_a_better_shift_of_the_plateau_is_taken(tmp_path, nba, monkeypatch):
    """The registration keeps a correlation peak; where a shift of its plateau makes more pixels agree (here the
    peak leaves a quarter of the crop off the map), that shift is kept and the warning says so (it was named only)."""
    import stemgrains.compare.api as api

    lab, q = _noisy_field()
    w = (slice(2, 10), slice(18, 26))
    assert np.all(lab[0:12, 18:26] == lab[2, 18])  # inside one grain that reaches the top edge
    p1 = write_results(tmp_path / "ref.h5", crystal_map(q, nba))
    p2 = write_results(tmp_path / "crop.h5", crystal_map(np.ascontiguousarray(q[w]), nba))
    real = api.register_maps

    def peak_off_the_map(*args, **kw):
        op, shift, score, runner = real(*args, **kw)
        return op, (2, -18), score, runner  # crop rows 2..7 on map rows 0..5: 48 of 64 pixels overlap

    monkeypatch.setattr(api, "register_maps", peak_off_the_map)
    comp = compare_results([p1, p2], rotation="none")
    reg = comp.registrations[1]
    assert reg.shift[0] <= 0 and reg.overlap_px == 64 and reg.agreement == 1.0
    assert not reg.unique
    assert len(comp.warnings) == 1 and "not the correlation peak (2, -18)" in comp.warnings[0]


def test_best_tied_shift_climbs_the_plateau():
    ref_ok = np.ones((12, 12), bool)
    mov_ok = np.ones((2, 2), bool)
    counts = {(r, c): 100 - abs(r + 5) - abs(c + 4) for r in range(-11, 12) for c in range(-11, 12)}  # best (-5, -4)
    from stemgrains.compare.register import best_tied_shift

    best, tied, capped = best_tied_shift(lambda t: counts[t], ref_ok, mov_ok, (-2, -3), 4)
    assert best == (-5, -4) and tied[best] == 100 and not capped
    # a plateau of equal counts keeps the shift it started from
    flat, _, _ = best_tied_shift(lambda t: 4, ref_ok, mov_ok, (-2, -3), 4)
    assert flat == (-2, -3)
