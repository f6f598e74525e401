"""Similarity-gated neighbour pattern summation (:mod:`stemgrains.preprocess.averaging`): kernels against their
references on random inputs, chunking independence, boundaries kept, bad parameters, and what it is for."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.errors import ParameterError
from stemgrains.preprocess import _kernels as K
from stemgrains.preprocess import _reference as ref
from stemgrains.preprocess.averaging import NeighborSummedData, sum_similar_neighbors


def grains_scan(rng, shape, n_grains=3, dose=3.0):
    """Poisson scan whose pixels belong to ``n_grains`` sparse 'patterns' with spots at disjoint random places of a
    4-px grid (a bright beam in the middle)."""
    ny, nx, ky, kx = shape
    base = np.zeros((n_grains, ky, kx))
    grid = [(r, c) for r in range(2, ky - 1, 4) for c in range(2, kx - 1, 4)]
    places = rng.permutation(len(grid))
    per = max(1, min(6, len(grid) // n_grains))
    for g in range(n_grains):
        for k in places[g * per:(g + 1) * per]:
            base[g][grid[k]] = dose * 20
    base[:, ky // 2, kx // 2] = 500.0
    labels = rng.integers(0, n_grains, (ny, nx))
    return rng.poisson(base[labels] + 0.5).astype(np.uint16), labels


@pytest.mark.parametrize("shape", [(1, 1, 9, 7), (3, 4, 20, 17), (5, 6, 32, 32), (2, 9, 16, 24)])
@pytest.mark.parametrize("seed", [0, 1])
def test_kernels_match_references(shape, seed):
    rng = np.random.default_rng(seed)
    data, _ = grains_scan(rng, shape)
    ny, nx, ky, kx = shape
    before = data.copy()
    feats = K.similarity_features(data.reshape(-1, ky, kx), 3.0)
    want = np.array([ref.similarity_feature(p, 3.0) for p in data.reshape(-1, ky, kx)])
    np.testing.assert_allclose(feats, want, atol=1e-6)
    for radius, lo, hi in ((1, 0, ny), (2, 0, ny), (1, ny // 2, ny)):
        s, c = K.neighbor_sum(data, feats.reshape(ny, nx, -1), lo, hi, radius, 0.1, 0.7)
        s_ref, c_ref = ref.neighbor_sum(data, feats.reshape(ny, nx, -1), lo, hi, radius, 0.1, 0.7)
        np.testing.assert_array_equal(c, c_ref)
        np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(data, before)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
def test_bin_sum_matches_reference(dtype):
    rng = np.random.default_rng(11)
    for shape, f in (((3, 16, 16), 2), ((2, 17, 13), 2), ((4, 20, 24), 4), ((1, 9, 9), 3), ((2, 8, 8), 1)):
        block = (rng.random(shape) * 3000).astype(dtype)
        got = K.bin_sum(block, f)
        want = ref.bin_sum(block, f)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # integer counts sum exactly
    block = rng.integers(0, 65535, (2, 16, 16)).astype(np.uint16)
    np.testing.assert_array_equal(K.bin_sum(block, 4), ref.bin_sum(block, 4))


def test_box_mean_matches_a_direct_mean():
    rng = np.random.default_rng(3)
    img = rng.random((13, 9))
    out = K.box_mean(img, 2)
    for i, j in ((0, 0), (6, 4), (12, 8), (3, 7)):
        np.testing.assert_allclose(out[i, j], img[max(0, i - 2):i + 3, max(0, j - 2):j + 3].mean())


def test_rows_read_in_any_chunks_are_the_same():
    rng = np.random.default_rng(5)
    data, _ = grains_scan(rng, (7, 5, 16, 16))
    full, counts = sum_similar_neighbors(data, 1, mask_radius_px=3.0)
    assert counts.min() >= 1 and counts.max() <= 9
    view = NeighborSummedData(data, 1, mask_radius_px=3.0)
    for step in (1, 2, 3, 7):
        got = np.concatenate([view[r:r + step] for r in range(0, 7, step)])
        np.testing.assert_array_equal(got, full)
    np.testing.assert_array_equal(view[4], full[4])
    np.testing.assert_array_equal(view[2, 3], full[2, 3])
    assert view.shape == data.shape and view.dtype == np.float32


def test_counts_of_the_rows_read_are_kept():
    """NeighborSummedData.counts: the patterns summed per position of the rows read (as the indexing reads them),
    equal to sum_similar_neighbors' counts; computed on demand for rows not read (a fresh or unpickled view)."""
    import pickle

    rng = np.random.default_rng(6)
    data, _ = grains_scan(rng, (7, 5, 16, 16))
    _, counts = sum_similar_neighbors(data, 1, mask_radius_px=3.0)
    assert counts.min() == 1 and counts.max() > 1  # a test set where the summation does something
    view = NeighborSummedData(data, 1, mask_radius_px=3.0)
    for r0, r1 in ((0, 3), (3, 6), (6, 7)):
        view[r0:r1]
    assert sorted(view._counts) == [(0, 3), (3, 6), (6, 7)]
    np.testing.assert_array_equal(np.concatenate([view.counts(a, b) for a, b in ((0, 3), (3, 6), (6, 7))]), counts)
    fresh = NeighborSummedData(data, 1, mask_radius_px=3.0)
    np.testing.assert_array_equal(fresh.counts(2, 5), counts[2:5])
    copy = pickle.loads(pickle.dumps(view))
    assert copy._counts == {}
    np.testing.assert_array_equal(copy.counts(0, 7), counts)
    assert view.counts(0, 7).dtype == np.int64


def test_sums_stay_inside_their_grain():
    """Patterns of other grains share no spots: never summed in. Counts of the sum are the sum of the counts."""
    rng = np.random.default_rng(7)
    data, labels = grains_scan(rng, (10, 10, 24, 24), dose=5.0)
    sums, counts = sum_similar_neighbors(data, 1, mask_radius_px=3.0)
    ny, nx = labels.shape
    for i in range(ny):
        for j in range(nx):
            same = [(a, b) for a in range(max(0, i - 1), min(ny, i + 2)) for b in range(max(0, j - 1), min(nx, j + 2))
                    if labels[a, b] == labels[i, j]]
            assert counts[i, j] == len(same), (i, j)
            np.testing.assert_array_equal(sums[i, j], np.sum([data[a, b] for a, b in same], axis=0))


def test_features_of_large_detectors_are_binned_and_sums_stay_inside_their_grain():
    from stemgrains.preprocess.averaging import feature_bin

    assert [feature_bin((k, k)) for k in (24, 64, 127, 128, 256, 512)] == [1, 1, 1, 2, 4, 8]
    assert feature_bin((256, 128)) == 2
    rng = np.random.default_rng(11)
    data, labels = grains_scan(rng, (6, 6, 128, 128), dose=5.0)
    sums, counts = sum_similar_neighbors(data, 1, mask_radius_px=6.0)
    for i in range(6):
        for j in range(6):
            same = [(a, b) for a in range(max(0, i - 1), min(6, i + 2)) for b in range(max(0, j - 1), min(6, j + 2))
                    if labels[a, b] == labels[i, j]]
            assert counts[i, j] == len(same), (i, j)


def test_radius_zero_is_the_data():
    rng = np.random.default_rng(8)
    data, _ = grains_scan(rng, (3, 3, 8, 8))
    sums, counts = sum_similar_neighbors(data, 0)
    np.testing.assert_array_equal(sums, data)
    assert np.all(counts == 1)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"radius": -1}, "radius"), ({"radius": 1.5}, "radius"), ({"min_similarity": 2.0}, "min_similarity"),
    ({"relative_similarity": float("nan")}, "relative_similarity"), ({"mask_radius_px": -2.0}, "mask_radius_px"),
])
def test_bad_parameters_are_one_line_errors(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        sum_similar_neighbors(np.zeros((2, 2, 4, 4)), **kwargs)
    with pytest.raises(ParameterError, match="shape"):
        sum_similar_neighbors(np.zeros((4, 4)))


def test_index_params_check_the_new_fields():
    from stemgrains.index.api import IndexParams

    assert IndexParams().neighbor_average_radius == 1
    for bad in ({"neighbor_average_radius": -1}, {"neighbor_average_radius": 0.5},
                {"neighbor_min_similarity": 3.0}, {"neighbor_relative_similarity": -0.1}):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            IndexParams(**bad)



def test_auto_calibration_reads_the_patterns_as_the_indexing_does(monkeypatch):
    """--auto-calibrate passes the summation settings (and the spot settings) of the indexing on to calibrate."""
    import importlib

    cal_mod = importlib.import_module("stemgrains.preprocess.calibrate")  # the package exports the function too

    seen = {}

    def fake(dataset, phases, index_params=None, **kw):
        seen.update(index_params)
        raise RuntimeError("stop")

    monkeypatch.setattr(cal_mod, "calibrate", fake)
    params = {"neighbor_average_radius": 0, "neighbor_min_similarity": 0.2, "neighbor_relative_similarity": 0.5,
              "step_deg": 2.0, "chunk_rows": 4, "spots": {"n_sigma": 6.0}}
    with pytest.raises(RuntimeError):
        cal_mod.run_auto_calibration(None, [], params)
    assert seen == {k: v for k, v in params.items() if k != "chunk_rows"}
