"""Boundary extraction: pixel pairs, chains, straight segments, normals, lengths, triple junctions, I/O."""

from __future__ import annotations

import numpy as np
import pytest
from boundary_maps import grain_map_from_labels

from stemgrains.boundaries import _chains as C
from stemgrains.boundaries._io import read_boundaries, write_boundaries
from stemgrains.boundaries.extract import extract_boundaries, pixel_pairs, triple_junctions
from stemgrains.errors import FileFormatError, InputError, ParameterError
from stemgrains.grains import GrainMap


def test_straight_vertical_boundary():
    labels = np.ones((20, 30), np.int32)
    labels[:, 12:] = 2
    gm, _ = grain_map_from_labels(labels)
    bt = extract_boundaries(gm)
    s = bt.segments
    assert len(s) == 1 and len(bt.boundaries) == 1
    assert s["grain_a"][0] == 1 and s["grain_b"][0] == 2
    np.testing.assert_allclose(s["normal"][0], [1, 0], atol=1e-9)  # from A (left) into B (right)
    assert s["trace_angle_deg"][0] == pytest.approx(90.0)
    assert s["length_nm"][0] == pytest.approx(20 * 2.0)  # 20 pixel edges, 2 nm step
    np.testing.assert_allclose(sorted([s["start"][0][1], s["end"][0][1]]), [-0.5, 19.5])
    np.testing.assert_allclose([s["start"][0][0], s["end"][0][0]], [11.5, 11.5])
    assert len(bt.pairs) == 20 and np.all(bt.pairs["col_b"] - bt.pairs["col_a"] == 1)
    assert len(bt.triple_junctions) == 0
    # swap which grain is on the left: normal still points from A (label 1) into B
    gm2 = GrainMap(labels=np.where(labels == 1, 2, 1), table=gm.table, phases=gm.phases, scan_step_nm=2.0)
    s2 = extract_boundaries(gm2).segments
    np.testing.assert_allclose(s2["normal"][0], [-1, 0], atol=1e-9)


def test_diagonal_staircase_length_and_direction():
    n = 40
    r, c = np.indices((n, n))
    labels = np.where(c > r, 2, 1).astype(np.int32)  # A below-left of the diagonal
    gm, _ = grain_map_from_labels(labels, step=1.0)
    bt = extract_boundaries(gm)
    s = bt.segments
    assert len(s) == 1
    assert s["trace_angle_deg"][0] == pytest.approx(45.0, abs=0.5)
    np.testing.assert_allclose(s["normal"][0], [np.sqrt(0.5), -np.sqrt(0.5)], atol=1e-2)  # toward +x, -y
    # true length of the diagonal ≈ n·√2 (not the 2n−1 pixel edges)
    assert s["length_nm"][0] == pytest.approx(n * np.sqrt(2), rel=0.03)


def test_kinked_boundary_splits_at_the_kink():
    ny, nx = 40, 40
    r, c = np.indices((ny, nx))
    x_b = np.where(r < 20, 10 + r, 30 - (r - 20))  # a ">"-shaped boundary, kink at row 20
    labels = np.where(c >= x_b, 2, 1).astype(np.int32)
    gm, _ = grain_map_from_labels(labels, step=1.0)
    bt = extract_boundaries(gm, kink_tolerance_px=1.5)
    s = bt.segments
    assert len(s) == 2 and bt.boundaries["n_segments"][0] == 2
    ang = sorted(s["trace_angle_deg"])
    np.testing.assert_allclose(ang, [-45, 45], atol=2)
    assert bt.boundaries["length_nm"][0] == pytest.approx(s["length_nm"].sum())
    # a loose tolerance keeps it as one segment
    assert len(extract_boundaries(gm, kink_tolerance_px=50).segments) == 1
    # pairs carry their segment; every segment's pairs are contiguous along the chain
    seg = bt.pairs["segment_id"]
    assert set(seg) == {0, 1} and np.all(np.diff(seg) >= 0)


def test_enclosed_grain_is_a_closed_loop_and_triple_junctions():
    labels = np.ones((30, 30), np.int32)
    r, c = np.indices(labels.shape)
    labels[(r - 15) ** 2 + (c - 15) ** 2 < 64] = 2
    gm, _ = grain_map_from_labels(labels, step=1.0)
    bt = extract_boundaries(gm)
    assert len(bt.boundaries) == 1
    assert bt.boundaries["n_segments"][0] >= 4  # a circle is not straight
    assert bt.boundaries["length_nm"][0] == pytest.approx(2 * np.pi * 7.7, rel=0.1)
    assert len(bt.triple_junctions) == 0
    # three grains meeting: one triple junction at the corner they share
    labels = np.ones((10, 10), np.int32)
    labels[:, 5:] = 2
    labels[6:, :] = 3
    gm, _ = grain_map_from_labels(labels)
    tj = extract_boundaries(gm).triple_junctions
    assert len(tj) == 1
    assert (tj["row"][0], tj["col"][0]) == (5.5, 4.5)
    np.testing.assert_array_equal(tj["grains"][0], [1, 2, 3, 0])
    # the three boundaries all end at the junction
    bt = extract_boundaries(gm)
    assert len(bt.boundaries) == 3


def test_pixel_pairs_a_is_smaller_label_and_unassigned_ignored():
    labels = np.array([[3, 1, 0], [3, 2, 2]], np.int32)
    pp = pixel_pairs(labels)
    got = sorted(zip(pp["grain_a"], pp["grain_b"], pp["row_a"], pp["col_a"], pp["row_b"], pp["col_b"]))
    assert got == [(1, 2, 0, 1, 1, 1), (1, 3, 0, 1, 0, 0), (2, 3, 1, 1, 1, 0)]
    tj = triple_junctions(labels)
    assert len(tj) == 1 and tj["grains"][0].tolist() == [1, 2, 3, 0]


def test_checkerboard_corner():
    gm0, _ = grain_map_from_labels(np.array([[1, 2]], np.int32))
    gm = GrainMap(labels=np.array([[1, 2], [2, 1]]), table=gm0.table, phases=gm0.phases, scan_step_nm=2.0)
    bt = extract_boundaries(gm, min_segment_px=1)
    assert len(bt.pairs) == 4 and len(bt.boundaries) == 1
    assert bt.boundaries["length_nm"][0] == pytest.approx(4 * 2.0)


def _random_labels(seed, shape=(25, 30), n=6):
    rng = np.random.default_rng(seed)
    seeds = rng.uniform([0, 0], shape, size=(n, 2))
    r, c = np.indices(shape)
    lab = np.argmin((r[..., None] - seeds[:, 0]) ** 2 + (c[..., None] - seeds[:, 1]) ** 2, axis=-1) + 1
    lab[rng.random(shape) < 0.03] = rng.integers(1, n + 1)  # some noise pixels: small loops, checkerboards
    return lab.astype(np.int32)


@pytest.mark.parametrize("seed", range(4))
def test_chain_kernel_matches_reference(seed):
    labels = _random_labels(seed)
    ny, nx = labels.shape
    pp = pixel_pairs(labels)
    key = pp["grain_a"].astype(np.int64) * 100 + pp["grain_b"]
    _, b = np.unique(key, return_inverse=True)
    o = np.argsort(b, kind="stable")
    b, c0, c1 = b[o], pp["c0_id"][o], pp["c1_id"][o]
    partner = C.link_edges(b, c0, c1, (ny + 1) * (nx + 1))
    order, chain, closed = C.trace_chains(partner, c0, c1, np.searchsorted(b, np.arange(b.max() + 2)))
    assert sorted(order) == list(range(len(b)))
    fast = set()
    for k in range(len(closed)):
        fast.add(C._canonical(order[chain == k].tolist(), bool(closed[k])))
    assert fast == C.trace_chains_reference(b, c0, c1)
    py = C._trace_chains.py_func(partner, c0, c1, np.searchsorted(b, np.arange(b.max() + 2)))
    np.testing.assert_array_equal(py[0], order)


@pytest.mark.parametrize("seed", range(6))
def test_split_kernel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 40, 5)
    starts = np.r_[0, np.cumsum(lens)]
    x = np.cumsum(rng.normal(0.7, 0.7, starts[-1]))
    y = np.cumsum(rng.normal(0, 1.0, starts[-1]))
    for tol, mn in ((1.5, 3), (0.5, 1), (3.0, 2)):
        fast = C.split_chains(x, y, starts, tol, mn)
        ref = C.split_chains_reference(x, y, starts, tol, mn)
        np.testing.assert_array_equal(fast, ref)
        np.testing.assert_array_equal(C._split_chains.py_func(x, y, starts, tol, mn), ref)
        counts = np.bincount(fast)
        # no split leaves a piece below min_n unless the chain itself was shorter
        chain_of_seg = np.searchsorted(starts, np.searchsorted(fast, np.arange(len(counts)), "left"), "right") - 1
        assert np.all((counts >= mn) | (lens[chain_of_seg] < 2 * mn))


def test_segments_and_pairs_are_consistent_on_a_polycrystal():
    labels = _random_labels(7, (60, 70), 12)
    gm, xmap = grain_map_from_labels(labels)
    bt = extract_boundaries(gm, xmap)
    s, b, p = bt.segments, bt.boundaries, bt.pairs
    np.testing.assert_array_equal(np.bincount(p["segment_id"], minlength=len(s)), s["n_pixel_pairs"])
    np.testing.assert_allclose(np.bincount(s["boundary_id"], s["length_nm"], len(b)), b["length_nm"])
    np.testing.assert_array_equal(np.bincount(s["boundary_id"], minlength=len(b)), b["n_segments"])
    la = gm.labels[p["row_a"], p["col_a"]]
    lb = gm.labels[p["row_b"], p["col_b"]]
    assert np.all(la < lb)
    np.testing.assert_array_equal(la, s["grain_a"][p["segment_id"]])
    np.testing.assert_allclose(np.linalg.norm(s["normal"], axis=1), 1.0)
    assert np.all((s["trace_angle_deg"] > -90) & (s["trace_angle_deg"] <= 90))
    # each segment's normal agrees in sign with its A→B pixel vectors
    v = np.stack([p["col_b"] - p["col_a"], p["row_b"] - p["row_a"]], 1).astype(float)
    sv = np.stack([np.bincount(p["segment_id"], v[:, k], len(s)) for k in range(2)], 1)
    assert np.all(np.sum(sv * s["normal"], axis=1) >= 0)
    # noise-free map: pixel-pair misorientations equal the grains' misorientation
    np.testing.assert_allclose(b["pixel_misorientation_deg"], b["misorientation_deg"], atol=1e-4)


def test_boundaries_io_roundtrip_and_csv(tmp_path):
    labels = _random_labels(3)
    gm, xmap = grain_map_from_labels(labels)
    bt = extract_boundaries(gm, xmap, special=[("s3", 60, (1, 1, 1), 3)])
    path = tmp_path / "r.h5"
    write_boundaries(path, bt)
    back = read_boundaries(path)
    for part in ("segments", "boundaries", "pairs", "triple_junctions"):
        a, b = getattr(bt, part), getattr(back, part)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert back.parameters["kink_tolerance_px"] == 1.5
    text = bt.boundaries.to_csv()
    assert text.splitlines()[0].startswith("boundary_id,grain_a,grain_b")
    assert len(text.splitlines()) == len(bt.boundaries) + 1
    with pytest.raises(FileFormatError):
        read_boundaries(tmp_path / "missing.h5")


def test_bad_input():
    labels = _random_labels(1)
    gm, _ = grain_map_from_labels(labels)
    with pytest.raises(InputError):
        extract_boundaries(labels)
    with pytest.raises(ParameterError, match="kink_tolerance_px"):
        extract_boundaries(gm, kink_tolerance_px=0)
    with pytest.raises(ParameterError, match="min_segment_px"):
        extract_boundaries(gm, min_segment_px=0)


def test_an_xmap_of_another_shape_is_refused():
    """extract_boundaries(grain_map, xmap) with an xmap of another scan failed with an IndexError from inside the
    misorientation code."""
    from orix.crystal_map import CrystalMap, PhaseList
    from orix.quaternion import Rotation

    from stemgrains.grains import segment_grains

    def xmap(ny, nx):
        y, x = np.divmod(np.arange(ny * nx), nx)
        return CrystalMap(Rotation.random(ny * nx), x=x * 2.0, y=y * 2.0, scan_unit="nm",
                          phase_list=PhaseList(names="au", point_groups="m-3m"))

    own = xmap(6, 6)
    grains = segment_grains(own, min_grain_size=1)
    with pytest.raises(InputError, match=r"xmap: a map of \(4, 4\) pixels, not the 6 x 6 of grain_map"):
        extract_boundaries(grains, xmap(4, 4))
    assert len(extract_boundaries(grains, own).boundaries) > 0
