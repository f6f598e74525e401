"""Grain segmentation: synthetic polycrystals with known grains, validity, small grains, grain table."""

from __future__ import annotations

import numpy as np
import pytest
from orix.crystal_map import Phase
from orix.quaternion import Orientation, Rotation
from orix.vector import Vector3d

from stemgrains import config
from stemgrains.errors import InputError, ParameterError
from stemgrains.grains import segment_grains
from stemgrains.grains.segment import c_axis_geometry

from synthetic_grains import make_xmap, noisy_rotations, synthetic_polycrystal, voronoi_labels


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985)."""
    a = np.unique(np.asarray(a).ravel(), return_inverse=True)[1]
    b = np.unique(np.asarray(b).ravel(), return_inverse=True)[1]
    n = len(a)
    cont = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(cont, (a, b), 1)

    def comb2(x):
        return np.sum(x * (x - 1) / 2.0)

    sum_ij = comb2(cont)
    sa, sb = comb2(cont.sum(1)), comb2(cont.sum(0))
    expected = sa * sb / (n * (n - 1) / 2.0)
    return float((sum_ij - expected) / (0.5 * (sa + sb) - expected))


def test_ari_helper():
    assert adjusted_rand_index([1, 1, 2, 2], [5, 5, 3, 3]) == pytest.approx(1.0)
    assert adjusted_rand_index([1, 1, 2, 2], [1, 2, 1, 2]) < 0


@pytest.mark.parametrize("point_group", ["m-3m", "6/mmm", "-3m", "mmm"])
def test_voronoi_polycrystal_recovered(point_group):
    xmap, true, _ = synthetic_polycrystal(point_group=point_group, seed=3)
    gm = segment_grains(xmap, small_grains="merge")
    assert adjusted_rand_index(gm.labels, true) >= 0.98
    gm2 = segment_grains(xmap)  # unassign: still almost all pixels in the right grains
    assigned = gm2.labels > 0
    assert assigned.mean() > 0.99
    assert adjusted_rand_index(gm2.labels[assigned], true[assigned]) >= 0.98


def test_mean_orientation_and_spread_match_truth(polycrystal):
    xmap, true, grain_q = polycrystal
    gm = segment_grains(xmap)
    t = gm.table
    assert len(t) == len(grain_q)
    sym = xmap.phases[0].point_group
    for i in range(len(t)):
        rows = gm.labels == t["id"][i]
        true_id = np.bincount(true[rows]).argmax()
        err = Orientation(t["mean_quaternion"][i], sym).angle_with(Orientation(grain_q[true_id - 1], sym), degrees=True)
        assert err[0] < 0.3
    # |N(0, 1°)| noise has a mean of sqrt(2/pi) ≈ 0.80°
    assert np.median(t["orientation_spread_deg"]) == pytest.approx(np.sqrt(2 / np.pi), abs=0.1)
    np.testing.assert_array_equal(t["id"], np.arange(1, len(t) + 1))
    assert t["area_px"].sum() == (gm.labels > 0).sum() >= gm.labels.size - 5
    np.testing.assert_allclose(t["area_nm2"], t["area_px"] * 4.0)  # 2 nm step
    r, c = np.indices(gm.shape)
    k = 4
    np.testing.assert_allclose(t["centroid_row"][k], r[gm.labels == k + 1].mean())
    np.testing.assert_allclose(t["centroid_col"][k], c[gm.labels == k + 1].mean())
    np.testing.assert_allclose(t["equivalent_diameter_nm"], 2 * np.sqrt(t["area_nm2"] / np.pi))
    assert np.all(np.isnan(t["c_axis"]))  # cubic: no c-axis


def test_labels_deterministic_raster_order_and_symmetry_invariant(polycrystal):
    xmap, _, _ = polycrystal
    gm = segment_grains(xmap)
    flat = gm.labels.ravel()
    firsts = [flat[np.argmax(flat == k)] for k in range(1, gm.n_grains + 1)]
    assert firsts == list(range(1, gm.n_grains + 1))
    assert np.all(np.diff([np.argmax(flat == k) for k in range(1, gm.n_grains + 1)]) > 0)
    # symmetry-equivalent pixel orientations (and q -> -q) give identical grains
    rng = np.random.default_rng(5)
    sym = xmap.phases[0].point_group.laue.proper_subgroup
    s = sym.data[rng.integers(0, sym.size, xmap.size)]
    q_eq = (Rotation(s) * xmap.rotations).data * rng.choice([-1.0, 1.0], (xmap.size, 1))
    x2 = make_xmap(q_eq, np.zeros(xmap.shape, int), [xmap.phases[0]])
    gm2 = segment_grains(x2)
    np.testing.assert_array_equal(gm2.labels, gm.labels)
    ang = Orientation(gm2.table["mean_quaternion"], sym).angle_with(Orientation(gm.table["mean_quaternion"], sym))
    assert np.degrees(ang).max() < 1e-5


def test_threshold_merges_or_splits_a_low_angle_boundary():
    ny, nx = 20, 30
    q = np.zeros((ny, nx, 4))
    q[:, :15] = Rotation.identity().data
    q[:, 15:] = Rotation.from_axes_angles([0, 0, 1], np.radians(4.0)).data
    xmap = make_xmap(q, np.zeros((ny, nx), int), [Phase(point_group="m-3m")])
    assert segment_grains(xmap, threshold_deg=5).n_grains == 1
    gm = segment_grains(xmap, threshold_deg=3)
    assert gm.n_grains == 2
    assert np.all(gm.labels[:, :15] == 1) and np.all(gm.labels[:, 15:] == 2)
    # a 4° rotation is 86° in a cubic crystal → same grain by symmetry
    q[:, 15:] = Rotation.from_axes_angles([0, 0, 1], np.radians(86.0)).data
    xmap = make_xmap(q, np.zeros((ny, nx), int), [Phase(point_group="m-3m")])
    assert segment_grains(xmap, threshold_deg=5).n_grains == 1


def test_phases_separate_grains_and_not_indexed_pixels():
    ny, nx = 12, 12
    q = np.tile(Rotation.identity().data, (ny, nx, 1))
    pid = np.zeros((ny, nx), int)
    pid[:, 6:] = 1
    pid[0, 0] = -1
    phases = [Phase("a", point_group="m-3m"), Phase("b", point_group="m-3m")]
    xmap = make_xmap(q, pid, phases + [Phase("n", point_group="1")])  # ids 0, 1, 2 (−1 set below)
    gm = segment_grains(xmap)
    assert gm.n_grains == 2
    assert gm.labels[0, 0] == 0
    np.testing.assert_array_equal(gm.table["phase_id"], [0, 1])
    gm = segment_grains(xmap, small_grains="merge")
    assert gm.labels[0, 0] == 1 and (gm.labels > 0).all()
    assert gm.table["area_px"][0] == 72 and gm.table["n_valid_px"][0] == 71


def test_validity_thresholds_from_props():
    xmap, true, _ = synthetic_polycrystal(shape=(40, 50), n_grains=8, seed=1)
    rng = np.random.default_rng(0)
    rel = rng.uniform(0, 100, xmap.shape)
    ci = rng.uniform(0, 1, xmap.shape)
    x2 = make_xmap(xmap.rotations.data, np.zeros(xmap.shape, int), [xmap.phases[0]],
                   prop={"reliability": rel, "correlation_index": ci})
    gm = segment_grains(x2, min_reliability=5, min_correlation=0.1, min_grain_size=1)
    bad = (rel < 5) | (ci < 0.1)
    assert np.all(gm.labels[bad] == 0) and np.all(gm.labels[~bad] > 0)
    assert gm.parameters["reliability_prop"] == "reliability"
    x3 = make_xmap(xmap.rotations.data, np.zeros(xmap.shape, int), [xmap.phases[0]], prop={"rel": rel})
    gm3 = segment_grains(x3, min_reliability=5, min_grain_size=1)
    np.testing.assert_array_equal(gm3.labels == 0, rel < 5)
    with pytest.raises(ParameterError, match="min_correlation"):
        segment_grains(x3, min_correlation=0.1)
    with pytest.raises(ParameterError, match="nope"):
        segment_grains(x3, min_reliability=1, reliability_prop="nope")
    with pytest.raises(ParameterError, match="must name a reliability.*model_spread_deg"):  # lower is better: refused
        segment_grains(x3, min_reliability=1, reliability_prop="model_spread_deg")
    for kw, match in ((dict(reliability_prop="rel"), r"reliability_prop 'rel' was given without min_reliability \(--min-reliability"),
                      (dict(correlation_prop="ci"), "correlation_prop 'ci' was given without min_correlation")):
        with pytest.raises(ParameterError, match=match):  # alone it would change nothing: said, not ignored
            segment_grains(x3, **kw)
    x4 = make_xmap(xmap.rotations.data, np.zeros(xmap.shape, int), [xmap.phases[0]],
                   prop={"c_axis_reliability": np.full(xmap.shape, np.nan)})  # a cubic map's c-axis reliability
    with pytest.raises(ParameterError, match="undefined \\(NaN\\) at every indexed pixel"):
        segment_grains(x4, min_reliability=5, reliability_prop="c_axis_reliability")


def test_small_grains_unassign_and_merge():
    ny, nx = 30, 30
    q = np.tile(Rotation.identity().data, (ny, nx, 1))
    q[10:12, 10:12] = Rotation.from_axes_angles([1, 0, 0], np.radians(30)).data  # 4-px grain
    q[20, 20] = Rotation.from_axes_angles([0, 1, 0], np.radians(30)).data  # 1-px grain
    xmap = make_xmap(q, np.zeros((ny, nx), int), [Phase(point_group="m-3m")])
    gm = segment_grains(xmap, min_grain_size=5)
    assert gm.n_grains == 1
    assert (gm.labels == 0).sum() == 5
    gm = segment_grains(xmap, min_grain_size=5, small_grains="merge")
    assert gm.n_grains == 1 and np.all(gm.labels == 1)
    assert gm.table["n_valid_px"][0] == ny * nx - 5
    assert gm.table["orientation_spread_deg"][0] < 1e-5  # only the grain's own pixels count
    gm = segment_grains(xmap, min_grain_size=4)
    assert gm.n_grains == 2 and (gm.labels == 0).sum() == 1


def test_merge_prefers_majority_then_best_match():
    # a 2-px invalid strip between two grains: each pixel goes to the grain on its side
    ny, nx = 10, 12
    q = np.tile(Rotation.identity().data, (ny, nx, 1))
    q[:, 6:] = Rotation.from_axes_angles([1, 0, 0], np.radians(40)).data
    pid = np.zeros((ny, nx), int)
    pid[:, 5:7] = -1
    xmap = make_xmap(q, pid, [Phase(point_group="m-3m")])
    gm = segment_grains(xmap, small_grains="merge")
    assert np.all(gm.labels[:, :6] == 1) and np.all(gm.labels[:, 6:] == 2)
    # a 3-px small grain (column 5, rows 3-5) on the boundary: its end pixels have 2 left-grain neighbours
    # (majority), its middle pixel one of each: the best-matching grain (right, 7° vs 33°) wins
    q2 = q.copy()
    q2[3:6, 5] = Rotation.from_axes_angles([1, 0, 0], np.radians(33)).data
    xmap2 = make_xmap(q2, np.zeros((ny, nx), int), [Phase(point_group="m-3m")])
    gm2 = segment_grains(xmap2, small_grains="merge", min_grain_size=4)
    assert gm2.labels[3, 5] == gm2.labels[5, 5] == gm2.labels[0, 0]
    assert gm2.labels[4, 5] == gm2.labels[0, 11] != gm2.labels[0, 0]
    q2[3:6, 5] = Rotation.from_axes_angles([1, 0, 0], np.radians(8)).data  # now closer to the left grain
    xmap3 = make_xmap(q2, np.zeros((ny, nx), int), [Phase(point_group="m-3m")])
    gm3 = segment_grains(xmap3, small_grains="merge", min_grain_size=4, threshold_deg=2)
    assert gm3.labels[4, 5] == gm3.labels[0, 0]


def test_scan_step_units_and_override():
    xmap, _, _ = synthetic_polycrystal(shape=(20, 20), n_grains=3)
    assert segment_grains(xmap).scan_step_nm == pytest.approx(2.0)
    um = make_xmap(xmap.rotations.data, np.zeros((20, 20), int), [xmap.phases[0]], step=0.3, unit="um")
    gm = segment_grains(um)
    assert gm.scan_step_nm == pytest.approx(300.0)
    assert "um" in gm.parameters["scan_step_source"]
    gm = segment_grains(um, scan_step_nm=5.0)
    assert gm.scan_step_nm == 5.0 and gm.parameters["scan_step_nm"] == 5.0
    np.testing.assert_allclose(gm.table["area_nm2"], gm.table["area_px"] * 25.0)


def test_bad_parameters():
    xmap, _, _ = synthetic_polycrystal(shape=(10, 10), n_grains=2)
    with pytest.raises(ParameterError, match="small_grains"):
        segment_grains(xmap, small_grains="drop")
    with pytest.raises(ParameterError, match="threshold_deg"):
        segment_grains(xmap, threshold_deg=-1)
    with pytest.raises(ParameterError, match="min_grain_size"):
        segment_grains(xmap, min_grain_size=0)
    with pytest.raises(ParameterError, match="scan_step_nm"):
        segment_grains(xmap, scan_step_nm=0)
    with pytest.raises(InputError, match="CrystalMap"):
        segment_grains(np.zeros((3, 3, 4)))


def test_c_axis_alpha_trace_definition():
    ori = Orientation.random(50)
    c, alpha, trace = c_axis_geometry(ori.data, np.ones(50, bool), flat_tolerance_deg=10)
    expect = ((~ori) * Vector3d.zvector()).unit.data
    expect *= np.where(expect[:, 2:] < 0, -1, 1)
    np.testing.assert_allclose(c, expect, atol=1e-12)
    np.testing.assert_allclose(alpha, np.degrees(np.arccos(np.abs(expect[:, 2]))))
    ok = ~np.isnan(trace)
    np.testing.assert_array_equal(ok, alpha >= 10)
    d = np.stack([np.cos(np.radians(trace)), np.sin(np.radians(trace))], 1)[ok]
    dd = np.stack([-c[:, 1], c[:, 0]], 1)[ok]
    dd /= np.linalg.norm(dd, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs(np.sum(d * dd, 1)), 1.0, atol=1e-12)
    assert np.all((trace[ok] > -90) & (trace[ok] <= 90))
    # worked cases: c along +x -> trace 90 (d = (0, 1)); c along y -> trace 0 (d = (-1, 0) ≡ 180 ≡ 0); c ∥ z flat
    rot = Orientation.from_axes_angles([[0, 1, 0], [1, 0, 0], [1, 0, 0]], np.radians([90, 90, 0]))
    c, alpha, trace = c_axis_geometry(rot.data, np.ones(3, bool))
    np.testing.assert_allclose(alpha, [90, 90, 0], atol=1e-9)
    np.testing.assert_allclose(trace[:2], [90, 0], atol=1e-9)
    assert np.isnan(trace[2])
    c, alpha, trace = c_axis_geometry(rot.data, np.zeros(3, bool))
    assert np.all(np.isnan(c)) and np.all(np.isnan(alpha))


def test_hexagonal_grain_table_c_axis():
    rng = np.random.default_rng(4)
    labels = voronoi_labels((30, 40), 5, rng)
    gq = Rotation.random(5).data
    q = noisy_rotations(gq[labels.ravel() - 1], 0.5, rng).reshape(30, 40, 4)
    xmap = make_xmap(q, np.zeros((30, 40), int), [Phase(point_group="6/mmm")])
    gm = segment_grains(xmap)
    t = gm.table
    for i in range(len(t)):
        true_id = np.bincount(labels[gm.labels == t["id"][i]]).argmax()
        c_true = ((~Rotation(gq[true_id - 1])) * Vector3d.zvector()).data[0]
        assert abs(abs(np.dot(t["c_axis"][i], c_true)) - 1) < 1e-3
    assert np.all(t["c_axis"][:, 2] >= 0)
    np.testing.assert_allclose(t["alpha_deg"], np.degrees(np.arccos(t["c_axis"][:, 2])))
    assert config.FLAT_TOLERANCE_DEG == gm.parameters["flat_tolerance_deg"]


def test_merge_joins_a_grain_split_by_a_quality_cut():
    """A band of low-reliability pixels across one grain splits it in two when the cut removes them; with
    small_grains="merge" the band is given back and the two halves, whose mean orientations agree, are joined.
    Two grains of different orientation that touch stay apart."""
    rng = np.random.default_rng(2)
    phase = Phase(point_group="m-3m")
    labels = np.ones((12, 20), np.int32)
    labels[:, 14:] = 2
    true_q = Rotation.from_axes_angles([[1, 2, 3], [3, -1, 2]], np.radians([40.0, 70.0])).data
    q = noisy_rotations(true_q[labels.ravel() - 1], 0.5, rng).reshape(12, 20, 4)
    rel = np.full((12, 20), 30.0)
    rel[:, 6:8] = 1.0  # the band
    xmap = make_xmap(q, np.zeros((12, 20), int), [phase], prop={"reliability": rel})
    split = segment_grains(xmap, min_reliability=5, small_grains="unassign")
    assert split.n_grains == 3
    gm = segment_grains(xmap, min_reliability=5, small_grains="merge")
    assert gm.n_grains == 2 and gm.parameters["joined_grains"] == 1
    assert len(np.unique(gm.labels[:, :14])) == 1 and len(np.unique(gm.labels[:, 14:])) == 1


def test_grain_medians_match_a_loop_over_grains():
    """grain_medians (the grain table's median_reliability / median_c_axis_reliability) against np.nanmedian per
    grain on random labels with NaN values and empty grains."""
    from stemgrains.grains.segment import grain_medians

    rng = np.random.default_rng(3)
    for _ in range(20):
        core = rng.integers(0, 7, size=(9, 11))
        values = rng.random((9, 11)) * 100
        values[rng.random((9, 11)) < 0.2] = np.nan
        n = int(core.max())
        expect = np.array([np.nanmedian(values[core == k]) if np.isfinite(values[core == k]).any() else np.nan
                           for k in range(1, n + 1)])
        np.testing.assert_allclose(grain_medians(core, values), expect, equal_nan=True)


def test_segment_summarises_the_reliabilities_per_grain():
    """An indexed map's reliability and c-axis reliability become per-grain medians over the valid pixels."""
    labels = np.zeros((10, 12), int)
    labels[:, 6:] = 1
    q = np.where(labels[..., None] == 0, Rotation.from_axes_angles([0, 0, 1], 0.0).data[0],
                 Rotation.from_axes_angles([1, 0, 0], np.radians(40)).data[0])
    rel = np.where(labels == 0, 2.0, 30.0)
    rel_c = np.where(labels == 0, 50.0, np.nan)
    rel_g = np.where(labels == 0, 60.0, 30.0)
    xmap = make_xmap(q, np.zeros((10, 12), int), [Phase("beta2", point_group="-3m")],
                     prop={"reliability": rel, "c_axis_reliability": rel_c, "grain_reliability": rel_g})
    gm = segment_grains(xmap)
    first = gm.table["id"] == gm.labels[0, 0]
    np.testing.assert_allclose(gm.table["median_reliability"], np.where(first, 2.0, 30.0))
    np.testing.assert_allclose(gm.table["median_c_axis_reliability"], np.where(first, 50.0, np.nan))
    np.testing.assert_allclose(gm.table["median_grain_reliability"], np.where(first, 60.0, 30.0))
    gm_cut = segment_grains(xmap, min_reliability=5)  # the valid pixels only: grain 0 is gone
    assert gm_cut.n_grains == 1 and gm_cut.table["median_reliability"][0] == 30.0
