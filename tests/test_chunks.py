"""The task-agnostic checkpointed chunk runner (stemgrains._chunks) with a toy task: a virtual bright field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stemgrains._chunks import ChunkCheckpoint, row_chunks, run_chunks, run_key, with_kernel_lock
from stemgrains.data import Calibration, Dataset4D


def _sum_task(block, calibration, shared):
    """Toy task: total counts of each pattern times a shared factor, as a dict of arrays."""
    return {"total": block.sum(axis=(2, 3)).astype(np.float64) * shared}


@pytest.fixture
def dataset():
    data = np.arange(5 * 3 * 4 * 4, dtype=np.uint16).reshape(5, 3, 4, 4)
    return Dataset4D(data, Calibration(q_pixel_size=0.01), source="toy")


def test_row_chunks_cover_the_rows():
    assert row_chunks(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert row_chunks(4, 8) == [(0, 4)]


def test_run_key_is_a_content_hash():
    assert run_key({"a": 1, "b": [2, 3]}) == run_key({"b": [2, 3], "a": 1})
    assert run_key({"a": 1}) != run_key({"a": 2})
    assert len(run_key({})) == 20


def test_serial_run_checkpoints_and_resumes(dataset, tmp_path):
    chunks = row_chunks(5, 2)
    expected = dataset.data.sum(axis=(2, 3)) * 2.0
    ckpt = ChunkCheckpoint(tmp_path, "k1", {"shape": list(dataset.shape)})
    seen: list[tuple[int, int]] = []
    res = run_chunks(dataset, chunks, _sum_task, 2.0, checkpoint=ckpt, fields=("total",),
                     from_arrays=dict, on_chunk=lambda a, b: seen.append((a, b)))
    assert seen == chunks
    np.testing.assert_array_equal(np.concatenate([res[c]["total"] for c in chunks]), expected)
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"key": "k1", "shape": [5, 3, 4, 4]}
    assert sorted(p.name for p in tmp_path.glob("rows_*.npz")) == [
        "rows_000000_000002.npz", "rows_000002_000004.npz", "rows_000004_000005.npz"]

    # a rerun of the same job loads every chunk; a corrupt chunk is recomputed, not trusted
    (tmp_path / "rows_000002_000004.npz").write_bytes(b"not a chunk")
    seen.clear()
    loaded = []
    res2 = run_chunks(dataset, chunks, _sum_task, 2.0, checkpoint=ChunkCheckpoint(tmp_path, "k1"), fields=("total",),
                      from_arrays=dict, on_start=loaded.append, on_chunk=lambda a, b: seen.append((a, b)))
    assert seen == [(2, 4)] and loaded == [3]  # rows 0:2 and 4:5 came from the checkpoint
    np.testing.assert_array_equal(np.concatenate([res2[c]["total"] for c in chunks]), expected)

    # another job (key) empties the folder first
    ChunkCheckpoint(tmp_path, "k2")
    assert list(tmp_path.glob("rows_*.npz")) == []


def test_incomplete_checkpoint_chunks_are_recomputed(dataset, tmp_path):
    ckpt = ChunkCheckpoint(tmp_path, "k")
    ckpt.save(0, 5, {"total": np.zeros(3)})  # too short for 5 rows x 3 columns
    seen = []
    res = run_chunks(dataset, [(0, 5)], _sum_task, 1.0, checkpoint=ckpt, fields=("total",), from_arrays=dict,
                     is_complete=lambda r, a, b: len(r["total"].ravel()) == (b - a) * 3,
                     on_chunk=lambda a, b: seen.append((a, b)))
    assert seen == [(0, 5)]
    np.testing.assert_array_equal(res[(0, 5)]["total"], dataset.data.sum(axis=(2, 3)))


def test_with_kernel_lock_calls_through():
    assert with_kernel_lock(max, 2, 5) == 5
    assert with_kernel_lock(max, 2, 5, needed=False) == 5


@pytest.mark.parametrize("min_cpus", [1, 10**6])  # reader thread on / off
def test_read_ahead_gives_the_same_results_and_errors(dataset, monkeypatch, min_cpus):
    import stemgrains._chunks as ch

    monkeypatch.setattr(ch, "PREFETCH_MIN_CPUS", min_cpus)
    fetched: list[tuple[int, int]] = []
    real_fetch = Dataset4D.fetch_rows
    monkeypatch.setattr(Dataset4D, "fetch_rows", lambda self, a, b: (fetched.append((a, b)), real_fetch(self, a, b))[1])
    chunks = row_chunks(5, 2)
    res = run_chunks(dataset, chunks, _sum_task, 3.0)
    np.testing.assert_array_equal(np.concatenate([res[c]["total"] for c in chunks]), dataset.data.sum(axis=(2, 3)) * 3.0)
    assert sorted(fetched) == chunks  # each chunk read once, ahead or not

    def failing(block, calibration, shared):
        if block.shape[0] == 1:
            raise RuntimeError("chunk failed")
        return _sum_task(block, calibration, shared)

    with pytest.raises(RuntimeError, match="chunk failed"):
        run_chunks(dataset, chunks, failing, 1.0)


def test_fetch_then_finish_equals_rows_for_summed_data():
    from stemgrains.preprocess.averaging import NeighborSummedData

    rng = np.random.default_rng(0)
    raw = rng.poisson(2.0, (6, 4, 16, 16)).astype(np.uint16)
    ds = Dataset4D(NeighborSummedData(raw, 1, mask_radius_px=2.0), Calibration(q_pixel_size=0.01), source="toy")
    for a, b in ((0, 2), (2, 5), (5, 6), (0, 6)):
        np.testing.assert_array_equal(ds.finish_rows(ds.fetch_rows(a, b), a, b), ds.rows(a, b))
        np.testing.assert_array_equal(ds.rows(a, b), NeighborSummedData(raw, 1, mask_radius_px=2.0)[a:b])


def test_index_run_key_holds_the_code(monkeypatch):
    """A checkpoint of the indexing is keyed by the package's sources too: chunks computed by another version of
    the method (same version number) are not resumed beside new ones."""
    from stemgrains.index import api

    digest = api.code_digest()
    assert len(digest) == 64 and digest == api.code_digest()
    phases = []  # the phases' CIF hashes are a part of the key of their own

    class _Data:  # what _run_key reads of a dataset
        calibration = type("C", (), {"to_attrs": lambda self: {"q_pixel_size": 0.02}})()

        def describe(self):
            return {"shape": [2, 2, 8, 8]}

    key = api._run_key(_Data(), phases, api.IndexParams())
    monkeypatch.setattr(api, "code_digest", lambda: "0" * 64)
    assert api._run_key(_Data(), phases, api.IndexParams()) != key
