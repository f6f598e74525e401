"""The patterns summed per position by the neighbour summation are stored with the orientations
(``n_summed``): in the CrystalMap, the results file and run's summary.json; 1 everywhere without summation; the
same whether the chunks were indexed here or resumed from a checkpoint."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.index import index_orientations
from stemgrains.index.api import IndexParams, read_as_indexed
from stemgrains.io import load_4d, load_orientation_map
from stemgrains.preprocess.averaging import sum_similar_neighbors
from stemgrains.simulate import sample_cif, simulate_polycrystal

AU = str(sample_cif("au"))
FAST = {"step_deg": 4.0, "chunk_rows": 2}


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("n_summed") / "scan.h5"
    simulate_polycrystal(path, phases=[AU], scan_shape=(5, 4), detector_shape=(64, 64), n_grains=3, seed=2,
                         dose=1e4, progress=False)
    return path


def _expected_counts(path, **params):
    """Counts of the summation over the whole scan at once (one block, no chunks), with the indexing's settings."""
    ds = load_4d(path)
    prm = IndexParams(**params).resolved(ds.calibration, ds.detector_shape)
    view = read_as_indexed(ds, prm).data
    _, counts = sum_similar_neighbors(np.asarray(ds.data), prm.neighbor_average_radius,
                                      mask_radius_px=view.mask_radius_px, min_similarity=prm.neighbor_min_similarity,
                                      relative_similarity=prm.neighbor_relative_similarity)
    return counts


def test_index_stores_the_patterns_summed_per_position(scan, tmp_path, capsys, monkeypatch):
    want = _expected_counts(scan, **FAST)
    assert want.max() > 1  # neighbours are summed on this scan
    ckpt = tmp_path / "ckpt"
    xmap = index_orientations(load_4d(scan), [AU], checkpoint_dir=ckpt, progress=False, **FAST)
    assert "resuming" not in capsys.readouterr().err
    assert xmap.prop["n_summed"].dtype == np.int64
    np.testing.assert_array_equal(xmap.prop["n_summed"].reshape(5, 4), want)
    # every chunk resumed from the checkpoint: the counts are recomputed, the same; nothing else changes
    again = index_orientations(load_4d(scan), [AU], checkpoint_dir=ckpt, progress=False, **FAST)
    # and the run says it resumed (once, whatever progress says)
    resumed = [ln for ln in capsys.readouterr().err.splitlines() if "resuming" in ln]
    assert resumed == [f"stemgrains: resuming: 5 of 5 scan rows were indexed before (checkpoint {ckpt}); nothing left to index"]
    assert sorted(again.prop) == sorted(xmap.prop)
    # a batch's patterns/s counts only what this call indexed (a resumed 3 x 3 scan read 21.7 patterns/s for none)
    from stemgrains.pipeline import indexed_here

    assert (xmap.resumed_rows, indexed_here(xmap)) == (0, 20) and (again.resumed_rows, indexed_here(again)) == (5, 0)
    for name in xmap.prop:
        np.testing.assert_array_equal(again.prop[name], xmap.prop[name], err_msg=name)
    # chunks made by other stemgrains sources are not resumed, and the run says so in one line
    import stemgrains.index.api as api

    monkeypatch.setattr(api, "code_digest", lambda: "another version")
    index_orientations(load_4d(scan), [AU], checkpoint_dir=ckpt, progress=False, **FAST)
    err = capsys.readouterr().err.splitlines()
    assert not [ln for ln in err if ln.startswith("stemgrains: resuming:")]
    assert [ln for ln in err if ln.startswith("stemgrains: not resuming: ")] == [
        f"stemgrains: not resuming: the 1 finished chunk in {ckpt} was made with other input, parameters or "
        "stemgrains sources (an upgrade or an edit); indexing from the start"]
    # without summation: 1 everywhere
    alone = index_orientations(load_4d(scan), [AU], progress=False, neighbor_average_radius=0, **FAST)
    assert np.all(alone.prop["n_summed"] == 1)


def test_results_file_and_run_summary_carry_n_summed(scan, tmp_path, capsys):
    want = _expected_counts(scan, **FAST)
    out = tmp_path / "r.h5"
    assert main(["index", str(scan), "--phase", AU, "--step", "4", "--chunk-rows", "2", "--no-progress",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"median {np.median(want):g} patterns summed per position" in printed
    with h5py.File(out, "r") as f:
        stored = f["orientation/n_summed"]
        assert stored.shape == (5, 4) and stored.dtype.kind == "i"
        np.testing.assert_array_equal(stored[()], want)
    np.testing.assert_array_equal(load_orientation_map(out).prop["n_summed"].reshape(5, 4), want)
    run = tmp_path / "run"
    assert main(["run", str(scan), "--phase", AU, "--step", "4", "--field", "1,0", "--min-size", "1",
                 "--no-figures", "--no-progress", "-o", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["median_n_summed"] == float(np.median(want))


def test_a_resumed_bar_does_not_count_the_checkpoint_as_speed(capsys):
    """A fully indexed resume showed "1024/1024 [00:00, 83442 pattern/s]": the rows of the checkpoint were an update
    of the bar, so its rate counted them as indexed in no time."""
    import io

    from tqdm import tqdm

    from stemgrains.index.api import _resumed

    stream = io.StringIO()
    bar = tqdm(total=32 * 32, unit="pattern", file=stream, mininterval=0)
    _resumed(bar, 32, (32, 32), "ckpt")
    assert bar.n == 1024 and bar.format_dict["initial"] == 1024
    assert "pattern/s" not in bar.__str__() or "?pattern/s" in bar.__str__(), bar.__str__()
    bar.close()
    assert "stemgrains: resuming: 32 of 32 scan rows" in capsys.readouterr().err + stream.getvalue()
