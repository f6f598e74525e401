"""`stemgrains compare` on a scan and a crop of it: boundaries cut by the border of the common field of view are
`partly-outside`, never a label or behaviour change (a new user's report), while a real change of a boundary
inside the overlap is still found."""

from __future__ import annotations

import numpy as np
import pytest

from compare_helpers import crystal_map, field, write_results
from stemgrains.compare import compare_results
from stemgrains.crystal import load_phase


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _scan_and_crop(tmp_path, nba, crop_field_xy=(1.0, 0.0)):
    # seed 0: before partly-outside existed, one boundary cut by the crop came out "label-changed;behaviour-changed"
    # and one of a grain the crop cut to a sliver "vanished"
    lab, gq = field((40, 40), 16, seed=0, min_sep=6)
    q = gq[lab - 1]
    p1 = write_results(tmp_path / "whole.h5", crystal_map(q, nba))
    p2 = write_results(tmp_path / "crop.h5", crystal_map(np.ascontiguousarray(q[6:30, 8:34]), nba),
                       field_xy=crop_field_xy)
    return compare_results([p1, p2])


def test_boundaries_cut_by_the_crop_are_partly_outside_not_changed(tmp_path, nba):
    comp = _scan_and_crop(tmp_path, nba)
    assert comp.registrations[1].shift == (-6, -8)
    b = comp.boundaries
    st = np.asarray(b["status"])
    cut = np.asarray(b["partly_outside"])
    assert cut.sum() >= 5 and np.all(st[cut] == "partly-outside")
    # nothing changed between the two scans: every boundary in the overlap is unchanged, partly-outside or outside
    assert set(st.tolist()) <= {"unchanged", "partly-outside", "outside"}, sorted(set(st.tolist()))
    assert not np.asarray(b["behaviour_changed"]).any() and not np.asarray(b["label_changed"]).any()
    # the cut ones have a part outside the overlap in the whole scan; the unchanged ones lie inside it
    inside = st == "unchanged"
    assert inside.sum() >= 5
    assert np.all(np.asarray(b["n_pairs_from"])[inside] == np.asarray(b["n_pairs_to"])[inside])
    assert comp.summary()["comparisons"][0]["boundary_changes"]["partly_outside"] == int(cut.sum())


def test_a_real_behaviour_change_inside_the_overlap_is_still_reported(tmp_path, nba):
    # the crop classified under a field turned by 90°: boundaries inside the overlap change behaviour
    comp = _scan_and_crop(tmp_path, nba, crop_field_xy=(0.0, 1.0))
    b = comp.boundaries
    cut = np.asarray(b["partly_outside"])
    changed = np.asarray(b["behaviour_changed"])
    assert changed.any()
    assert not (changed & cut).any()


def test_cli_refuses_an_output_in_a_run_or_batch_folder(tmp_path, nba, capsys):
    from compare_helpers import two_scans
    from stemgrains.cli import main
    from stemgrains.io.outputs import BATCH_PARAMETERS, RUN_MANIFEST, finish_run_folder, prepare_run_folder

    p1, p2, *_ = two_scans(tmp_path, nba)
    run_dir = tmp_path / "run"
    m = prepare_run_folder(run_dir, p1)
    (run_dir / "results.h5").write_bytes(b"the run's results")
    finish_run_folder(run_dir, m, [run_dir / "results.h5"])
    batch_dir = tmp_path / "batch"
    batch_dir.mkdir()
    (batch_dir / BATCH_PARAMETERS).write_text('{"inputs": [], "outputs": []}\n')
    for out, record in ((run_dir, RUN_MANIFEST), (run_dir / "cmp", RUN_MANIFEST), (batch_dir, BATCH_PARAMETERS),
                        (batch_dir / "a" / "cmp", BATCH_PARAMETERS)):
        assert main(["compare", str(p1), str(p2), "-o", str(out), "--no-figures"]) == 2, out
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(out) in err and record in err, err
    # nothing written
    assert sorted(p.name for p in run_dir.iterdir()) == ["results.h5", RUN_MANIFEST]
    assert sorted(p.name for p in batch_dir.iterdir()) == [BATCH_PARAMETERS]
    # beside them it works
    assert main(["compare", str(p1), str(p2), "-o", str(tmp_path / "cmp"), "--no-figures"]) == 0
    assert (tmp_path / "cmp" / "compare.h5").is_file()
