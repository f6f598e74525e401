"""Spot-pair hypotheses (:mod:`stemgrains.index._pairs`) and the spot-fit weighting of the final choice
(:func:`._cpu.explained_count`, :func:`._cpu.fit_factor`, ``rescore_one(fit_power=…)``) against their slow
references (:mod:`stemgrains.index._reference`), and the recovery of known orientations from spot positions alone.

The synthetic crystals, patterns and tolerances are those of ``test_index_kernels.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from orix.quaternion import Rotation
from test_index_kernels import (  # noqa: F401  (crystal: a fixture)
    AFFINE,
    CENTER,
    LAM,
    Q_MAX,
    Q_MIN,
    S_WIN,
    SIGMA_S,
    STEP,
    TOL_A,
    TOL_ANGLE_RAD,
    TOL_Q,
    TOL_R,
    call_unmutated,
    crystal,
    kinematic_spots,
    near_zone_axis,
    render,
    sym_data,
    unit_quaternions,
)

from stemgrains.index import _cpu, _pairs
from stemgrains.index import _reference as ref

SAME = np.deg2rad(2.0)  # same_dist of the pair search (api._pair_search)
N_SIGMA_FIT = S_WIN / SIGMA_S  # spots of a synthetic pattern: all within the fit's excitation window


def fit_args(g):
    return (g, LAM, S_WIN, Q_MIN, Q_MAX)


def pattern(q, g, F2, rng, n_spurious=0):
    """Spot positions of orientation q (|s| ≤ S_WIN), amplitudes random (unrelated to the intensities), plus
    ``n_spurious`` random spots in the annulus given the largest amplitudes (so that the pairs use them)."""
    xy, _ = kinematic_spots(q, g, F2, N_SIGMA_FIT)
    amp = rng.permutation(rng.uniform(0.1, 1.0, len(xy)))
    if n_spurious:
        r, t = rng.uniform(Q_MIN + 0.05, Q_MAX - 0.05, n_spurious), rng.uniform(-np.pi, np.pi, n_spurious)
        xy = np.concatenate([xy, np.c_[r * np.cos(t), r * np.sin(t)]])
        amp = np.concatenate([amp, rng.uniform(1.5, 2.0, n_spurious)])
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), np.ascontiguousarray(amp)


def angle_deg(a, b, sym):
    return float(np.rad2deg(ref.sym_distance(a, b, sym)))


# --------------------------------------------------------------------------------------------------------------------
# explained spots and the fit factor
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_explained_count_and_fit_factor_match_reference(crystal, seed):
    g, F2 = crystal
    rng = np.random.default_rng(seed)
    for q in [*unit_quaternions(rng, 3), near_zone_axis(rng)]:
        xy, _ = kinematic_spots(q, g, F2, N_SIGMA_FIT)
        n_rand = int(rng.integers(0, 10))
        pk = np.concatenate([xy + rng.normal(0, 0.015, xy.shape), rng.uniform(-1.0, 1.0, (n_rand, 2))])
        px, py = np.ascontiguousarray(pk[:, 0]), np.ascontiguousarray(pk[:, 1])
        args = (q, *fit_args(g), px, py, TOL_A, TOL_R)
        n = call_unmutated(_cpu.explained_count, *args)
        assert n == ref.explained_count(*args)
        assert 0 <= n <= len(px)
        for power in (0.0, 0.5, 1.0, 2.0):
            f = call_unmutated(_cpu.fit_factor, *args, power)
            assert f == pytest.approx(ref.fit_factor(*args, power), rel=1e-12)
            assert f == pytest.approx(((n + 1) / (len(px) + 1)) ** power, rel=1e-12)
    # a pattern's own spots are all explained; the same spots turned 10° about the beam mostly not; none → 0
    q = near_zone_axis(rng)
    px, py, _ = pattern(q, g, F2, rng)
    assert _cpu.explained_count(q, *fit_args(g), px, py, TOL_A, TOL_R) == len(px) > 10
    turned = _cpu.qmul(q, _cpu.qexp(np.deg2rad([0.0, 0.0, 10.0])))
    assert _cpu.explained_count(turned, *fit_args(g), px, py, TOL_A, TOL_R) < len(px) // 2
    assert _cpu.fit_factor(turned, *fit_args(g), px, py, TOL_A, TOL_R, 1.0) < 0.5
    assert _cpu.explained_count(q, *fit_args(g), np.zeros(0), np.zeros(0), TOL_A, TOL_R) == 0
    assert _cpu.fit_factor(q, *fit_args(g), np.zeros(0), np.zeros(0), TOL_A, TOL_R, 1.0) == 1.0
    assert _cpu.explained_count.py_func(q, *fit_args(g), px, py, TOL_A, TOL_R) == len(px)


# --------------------------------------------------------------------------------------------------------------------
# rotations: matrix → quaternion, TRIAD, canonical
# --------------------------------------------------------------------------------------------------------------------
def hard_rotations(rng):
    """Random ones, the identity, quarter and half turns about the axes, and turns within 1e-9…1e-3 rad of 180°
    (the scalar part tends to 0: the other branches of Shepperd's method)."""
    qs = list(unit_quaternions(rng, 20)) + [np.array([1.0, 0, 0, 0])]
    for axis in np.eye(3):
        for ang in (np.pi / 2, np.pi, -np.pi / 2):
            qs.append(Rotation.from_axes_angles(axis, ang).data.reshape(4))
    for d in (0.0, 1e-9, 1e-6, 1e-3):
        for _ in range(3):
            qs.append(Rotation.from_axes_angles(rng.normal(size=3), np.pi - d).data.reshape(4))
    return qs


def test_matrix_to_quaternion_round_trip_and_reference():
    rng = np.random.default_rng(3)
    for q in hard_rotations(rng):
        R = ref.qmatrix(q)
        got = call_unmutated(_pairs.matrix_to_quaternion, R)
        want = ref.matrix_to_quaternion(R)
        assert got[0] >= 0 and np.linalg.norm(got) == pytest.approx(1.0, abs=1e-14)
        assert abs(abs(got @ q) - 1.0) < 1e-12  # q or −q
        np.testing.assert_allclose(ref.qmatrix(got), R, atol=TOL_Q)
        np.testing.assert_allclose(ref.qmatrix(want), R, atol=TOL_Q)  # scipy's convention is qmatrix's
        np.testing.assert_allclose(_cpu.qmatrix(got), R, atol=TOL_Q)
        if want[0] > 1e-6:  # away from 180° the sign is fixed by a ≥ 0: the same quaternion
            np.testing.assert_allclose(got, want, atol=1e-12)
    R = ref.qmatrix(unit_quaternions(rng))
    np.testing.assert_allclose(_pairs.matrix_to_quaternion.py_func(R), ref.matrix_to_quaternion(R), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_orientation_matches_reference_and_takes_g_a_onto_v_i(seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):
        g_a, g_b, v_i, v_j = rng.normal(size=(4, 3)) * rng.uniform(0.1, 2.0, (4, 1))
        q = call_unmutated(_pairs.pair_orientation, g_a, g_b, v_i, v_j)
        want = ref.pair_orientation(g_a, g_b, v_i, v_j)
        assert abs(abs(q @ want) - 1.0) < 1e-10
        R = _cpu.qmatrix(q)
        np.testing.assert_allclose(R @ v_i / np.linalg.norm(v_i), g_a / np.linalg.norm(g_a), atol=1e-12)
        n = np.cross(g_a, g_b)
        assert abs((R @ v_j) @ n) < 1e-12 * np.linalg.norm(n) * np.linalg.norm(v_j)  # in the plane of g_a, g_b
        assert np.cross(g_a, R @ v_j) @ n > 0  # on g_b's side of g_a
    # a consistent pair (the same vectors in two frames) gives the rotation between the frames
    q_true = unit_quaternions(rng)
    R = _cpu.qmatrix(q_true)
    g_a, g_b = rng.normal(size=(2, 3))
    q = _pairs.pair_orientation(g_a, g_b, R.T @ g_a, R.T @ g_b)
    assert abs(abs(q @ q_true) - 1.0) < 1e-12
    assert abs(abs(_pairs.pair_orientation.py_func(g_a, g_b, R.T @ g_a, R.T @ g_b) @ q_true) - 1.0) < 1e-12


@pytest.mark.parametrize("name", ["C1", "C2", "D3", "D6", "O"])
def test_canonical_matches_reference_and_is_shared_by_equivalents(name):
    rng = np.random.default_rng(len(name))
    sym = sym_data(name)
    for q in unit_quaternions(rng, 10):
        c = call_unmutated(_pairs.canonical, q, sym)
        np.testing.assert_allclose(c, ref.canonical(q, sym), atol=TOL_Q)
        assert c[0] >= 0 and ref.sym_distance(c, q, sym) < TOL_ANGLE_RAD
        # the largest scalar part = the smallest rotation angle among the equivalents
        assert c[0] == pytest.approx(np.max(np.abs([_cpu.qmul(s, q)[0] for s in sym])), abs=1e-15)
        for s in sym:  # every symmetry-equivalent (and −q) has the same canonical form
            np.testing.assert_allclose(_pairs.canonical(_cpu.qmul(s, q), sym), c, atol=1e-12)
        np.testing.assert_allclose(_pairs.canonical(-q, sym), c, atol=1e-12)
    np.testing.assert_allclose(_pairs.canonical.py_func(q, sym), c, atol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# position fit
# --------------------------------------------------------------------------------------------------------------------
def error_rotvec_deg(q, q_true, sym):
    """Rotation vector (deg, sample frame: z is the beam) taking q_true to the symmetry-equivalent of q nearest it."""
    eq = [_cpu.qmul(s, q) for s in sym]
    best = max(eq, key=lambda p: abs(p @ q_true))
    E = _cpu.qmatrix(q_true).T @ _cpu.qmatrix(best)  # R = R_true E: E acts on sample-frame vectors first
    ang = np.arccos(np.clip((np.trace(E) - 1) / 2, -1, 1))
    axis = np.array([E[2, 1] - E[1, 2], E[0, 2] - E[2, 0], E[1, 0] - E[0, 1]])
    return np.rad2deg(ang) * axis / max(np.linalg.norm(axis), 1e-300)


def on_sphere_crystal(rng, q_true, n_spots, n_other=60):
    """A point set standing in for a crystal: ``n_spots`` reflections exactly on the Ewald sphere for q_true (their
    spots at random positions in the annulus) and ``n_other`` random reflections. Returns (g, px, py)."""
    r, t = np.sqrt(rng.uniform(Q_MIN**2, (0.95 * Q_MAX) ** 2, n_spots)), rng.uniform(-np.pi, np.pi, n_spots)
    px, py = r * np.cos(t), r * np.sin(t)
    v = ref.on_ewald_sphere(px, py, LAM)
    g = np.concatenate([v @ _cpu.qmatrix(q_true).T, rng.uniform(-Q_MAX, Q_MAX, (n_other, 3))])
    return np.ascontiguousarray(g), np.ascontiguousarray(px), np.ascontiguousarray(py)


def turned(q, deg, rng):
    axis = rng.normal(size=3)
    return _cpu.qmul(q, _cpu.qexp(np.deg2rad(deg) * axis / np.linalg.norm(axis)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_refine_positions_matches_reference(crystal, seed):
    g, F2 = crystal
    rng = np.random.default_rng(seed)
    q_true = near_zone_axis(rng) if seed % 2 == 0 else unit_quaternions(rng)
    px, py, _ = pattern(q_true, g, F2, rng, n_spurious=int(rng.integers(0, 4)))
    for start, n_iter in ((turned(q_true, 1.0, rng), 3), (turned(q_true, 0.5, rng), 1), (unit_quaternions(rng), 2)):
        args = (start, *fit_args(g), px, py, TOL_A, TOL_R, n_iter)
        q, n = call_unmutated(_pairs.refine_positions, *args)
        q_r, n_r = ref.refine_positions(*args)
        assert n == n_r
        assert np.rad2deg(ref.sym_distance(q, q_r, sym_data("C1"))) < 1e-6
        assert n >= _cpu.explained_count(start, *fit_args(g), px, py, TOL_A, TOL_R)  # never worse than the start
        assert n == _cpu.explained_count(q, *fit_args(g), px, py, TOL_A, TOL_R)
    # fewer than 3 spots explained: the start comes back unchanged
    far = (start, *fit_args(g), px[:2], py[:2], TOL_A, TOL_R, 3)
    q, n = _pairs.refine_positions(*far)
    if n < 3:
        np.testing.assert_array_equal(q, start)
    q_py, n_py = _pairs.refine_positions.py_func(*args)
    assert n_py == n_r and np.rad2deg(ref.sym_distance(q_py, q_r, sym_data("C1"))) < 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_refine_positions_recovers_the_orientation(crystal, seed):
    """Spots exactly at Bragg condition: the fit from 1° off lands on the truth. Lattice spots within the excitation
    window of a near-⟨001⟩ pattern: the rotation about the beam is recovered; the tilt only to within the pattern's
    own tilt from the zone axis (≤ 2°, positions alone cannot see it: the fit places every spot at s = 0)."""
    rng = np.random.default_rng(seed)
    q_true = unit_quaternions(rng)
    g_s, px, py = on_sphere_crystal(rng, q_true, 15)
    start = turned(q_true, 1.0, rng)
    assert _cpu.explained_count(start, *fit_args(g_s), px, py, TOL_A, TOL_R) == 15
    q, n = _pairs.refine_positions(start, *fit_args(g_s), px, py, TOL_A, TOL_R, 3)
    assert n == 15 and np.rad2deg(ref.sym_distance(q, q_true, sym_data("C1"))) < 1e-4
    g, F2 = crystal
    q_true = near_zone_axis(rng)
    px, py, _ = pattern(q_true, g, F2, rng)
    q, n = _pairs.refine_positions(turned(q_true, 1.0, rng), *fit_args(g), px, py, TOL_A, TOL_R, 3)
    err = error_rotvec_deg(q, q_true, sym_data("O"))
    assert n == len(px)
    assert abs(err[2]) < 0.02 and np.linalg.norm(err) < 2.5


# --------------------------------------------------------------------------------------------------------------------
# spot-pair hypotheses
# --------------------------------------------------------------------------------------------------------------------
def hexagonal_crystal(rng, a=3.0, c=5.0):
    """Reflections of a hexagonal lattice (a1 along x, c along z) with |g| ≤ Q_MAX and random intensities."""
    A = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]])
    B = np.linalg.inv(A).T  # rows: reciprocal basis (1/Å, no 2π)
    h = np.array([(i, j, k) for i in range(-4, 5) for j in range(-4, 5) for k in range(-5, 6) if (i, j, k) != (0, 0, 0)], float)
    g = h @ B
    g = np.ascontiguousarray(g[np.linalg.norm(g, axis=1) <= Q_MAX])
    return g, rng.uniform(0.2, 1.0, len(g))


def pair_args(px, py, amp, g, F2, sym, k_use=8, n_keep=4, n_refine=3, n_vote=16, min_rel=0.01):
    gt, length, rep = _pairs.pair_tables(g, F2, sym, min_rel)
    return (px, py, amp, gt, length, rep, g, LAM, S_WIN, Q_MIN, Q_MAX, TOL_A, TOL_R, k_use, n_keep, sym, SAME, n_refine, n_vote)


def assert_same_hypotheses(fast, slow, sym):
    np.testing.assert_array_equal(fast[1], slow[1])
    for a, b, c in zip(fast[0], slow[0], fast[1]):
        if c < 0:
            assert not a.any() and not b.any()
        else:
            assert np.rad2deg(ref.sym_distance(a, b, sym)) < 1e-6


def test_pair_tables_one_representative_per_family(crystal):
    g, F2 = crystal
    sym = sym_data("O")
    gt, length, rep = _pairs.pair_tables(g, F2, sym, 0.0)
    assert len(gt) == len(g) and np.all(np.diff(length) >= 0)
    np.testing.assert_allclose(length, np.linalg.norm(gt, axis=1), rtol=1e-15)
    # families of the cubic lattice: the sorted |h|; one representative each
    fam = {tuple(np.sort(np.abs(np.round(4 * x)))) for x in gt}
    assert rep.sum() == len(fam)
    assert {tuple(np.sort(np.abs(np.round(4 * x)))) for x in gt[rep]} == fam
    keep = _pairs.pair_tables(g, F2, sym, 0.5)[0]
    assert len(keep) == np.sum(F2 >= 0.5 * F2.max())


@pytest.mark.parametrize("case", ["zone", "zone_spurious", "general", "random", "hex"])
def test_pair_hypotheses_one_matches_brute_force_reference(crystal, case):
    rng = np.random.default_rng(["zone", "zone_spurious", "general", "random", "hex"].index(case))
    g, F2 = crystal
    sym = sym_data("O")
    if case == "hex":
        g, F2 = hexagonal_crystal(rng)
        sym = sym_data("D6")
    if case == "random":  # spots anywhere: chance matches only
        n = 12
        r, t = rng.uniform(Q_MIN, Q_MAX, n), rng.uniform(-np.pi, np.pi, n)
        px, py, amp = r * np.cos(t), r * np.sin(t), rng.uniform(0.1, 1.0, n)
    else:
        q_true = unit_quaternions(rng) if case == "general" else near_zone_axis(rng)
        px, py, amp = pattern(q_true, g, F2, rng, n_spurious=2 if case == "zone_spurious" else 0)
    for k_use, n_keep, n_refine, n_vote in ((8, 4, 3, 16), (5, 2, 0, 4), (10, 6, 1, 64)):
        args = pair_args(px, py, amp, g, F2, sym, k_use, n_keep, n_refine, n_vote)
        fast = call_unmutated(_pairs.pair_hypotheses_one, *args)
        slow = ref.pair_hypotheses_one(*args)
        assert_same_hypotheses(fast, slow, sym)
        seeds, _ = ref.pair_votes(px, py, amp, args[3], args[5], LAM, TOL_A, TOL_R, k_use, sym, SAME)
        assert 0 < len(seeds) < 1024  # within the kernel's vote table: the comparison covers every vote
        if case != "random":
            assert fast[1].max() >= 10


def test_pair_hypotheses_one_edge_cases(crystal):
    g, F2 = crystal
    sym = sym_data("O")
    for n in (0, 1):  # no pair at all
        args = pair_args(np.full(n, 0.3), np.zeros(n), np.ones(n), g, F2, sym)
        q, c = _pairs.pair_hypotheses_one(*args)
        assert not q.any() and np.all(c == -1)
        assert_same_hypotheses((q, c), ref.pair_hypotheses_one(*args), sym)
    # two spots 8.5° apart, 0.25 and 0.5 1/Å long: within the tolerances of (100) with its collinear (200), which
    # spans no plane (this gave NaN quaternions); nothing else matches
    t = np.deg2rad(8.5)
    args = pair_args(np.array([0.25, 0.5 * np.cos(t)]), np.array([0.0, 0.5 * np.sin(t)]), np.array([1.0, 0.9]), g, F2, sym)
    q, c = _pairs.pair_hypotheses_one(*args)
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(c))
    assert_same_hypotheses((q, c), ref.pair_hypotheses_one(*args), sym)


@pytest.mark.parametrize("n_spurious", [0, 2])
def test_pair_hypotheses_recover_the_orientation_without_intensities(crystal, n_spurious):
    """Amplitudes scrambled (and two spurious spots the strongest): the positions alone give the orientation. On the
    lattice the best hypothesis explains every true spot, has the rotation about the beam right and the tilt to within
    the pattern's tilt from the zone axis (≤ 2°: positions cannot see it; the fit places every spot at s = 0).
    Spots exactly at Bragg condition: the truth itself."""
    g, F2 = crystal
    sym = sym_data("O")
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        q_true = near_zone_axis(rng)
        px, py, amp = pattern(q_true, g, F2, rng, n_spurious)
        q, c = _pairs.pair_hypotheses_one(*pair_args(px, py, amp, g, F2, sym))
        n_true = len(px) - n_spurious
        assert c[0] >= n_true and c[0] == c.max()
        err = error_rotvec_deg(q[0], q_true, sym)
        assert abs(err[2]) < 0.05 and np.linalg.norm(err) < 2.5
        others = np.array([error_rotvec_deg(x, q_true, sym) for x in q[1:][c[1:] >= 0]]).reshape(-1, 3)
        assert np.all(np.linalg.norm(others, axis=1) > 5)  # the other hypotheses: distinct orientations
    # spots exactly at Bragg condition (a point set with no symmetry): the truth itself
    rng = np.random.default_rng(7)
    q_true = unit_quaternions(rng)
    g_s, px, py = on_sphere_crystal(rng, q_true, 14)
    amp = rng.uniform(0.1, 1.0, len(px))
    if n_spurious:
        px, py, amp = np.r_[px, 0.3, -0.5], np.r_[py, -0.6, 0.2], np.r_[amp, 2.0, 2.5]
    q, c = _pairs.pair_hypotheses_one(*pair_args(px, py, amp, g_s, np.ones(len(g_s)), sym_data("C1")))
    assert c[0] >= 14 and angle_deg(q[0], q_true, sym_data("C1")) < 1e-3


def test_pair_hypotheses_recover_a_hexagonal_orientation(crystal):
    rng = np.random.default_rng(11)
    g, F2 = hexagonal_crystal(rng)
    sym = sym_data("D6")
    for _ in range(2):
        q_true = near_zone_axis(rng)  # near the c axis
        px, py, amp = pattern(q_true, g, F2, rng, 2)
        q, c = _pairs.pair_hypotheses_one(*pair_args(px, py, amp, g, F2, sym))
        assert c[0] >= len(px) - 2
        err = error_rotvec_deg(q[0], q_true, sym)
        assert abs(err[2]) < 0.25 and np.linalg.norm(err) < 2.5


def test_pair_hypotheses_chunk_is_the_scalar_kernel(crystal):
    g, F2 = crystal
    sym = sym_data("O")
    rng = np.random.default_rng(5)
    pats = [pattern(near_zone_axis(rng), g, F2, rng, 1) for _ in range(3)]
    mp = max(len(p[0]) for p in pats) + 2
    peaks = np.zeros((3, mp, 3))
    counts = np.array([len(p[0]) for p in pats])
    for i, p in enumerate(pats):
        peaks[i, :counts[i]] = np.stack(p, axis=1)
        peaks[i, counts[i]:] = rng.normal(size=(mp - counts[i], 3))  # rows past the count are ignored
    mask = np.array([True, False, True])
    a = pair_args(*pats[0], g, F2, sym)
    oq, oc = call_unmutated(_pairs.pair_hypotheses, mask, peaks, counts, *a[3:])
    assert oq.shape == (3, 4, 4) and not oq[1].any() and np.all(oc[1] == -1)
    for i in (0, 2):
        q, c = _pairs.pair_hypotheses_one(*pair_args(*pats[i], g, F2, sym))
        np.testing.assert_array_equal(oc[i], c)
        np.testing.assert_allclose(oq[i], q, atol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# final choice weighted by the spot fit
# --------------------------------------------------------------------------------------------------------------------
def test_rescore_fit_power_prefers_the_hypothesis_explaining_the_spots(crystal):
    """The image holds q_a brightly and q_b faintly, the detected spots are q_b's: the image score alone picks q_a,
    which leaves most spots unexplained; weighted by the spot fit (fit_power 1) q_b, explaining them all. The two
    criteria disagree, so R is 0 then; by the image alone R is clearly positive. Kernel = reference in both."""
    g, F2 = crystal
    rng = np.random.default_rng(17)
    sym = sym_data("O")
    qa = near_zone_axis(rng)
    qb = _cpu.qmul(qa, _cpu.qexp(np.deg2rad([0.0, 0.0, 30.0])))  # 30° about the beam: few spots in common
    img = render(qa, g, F2) + 0.6 * render(qb, g, F2)
    px, py, _ = pattern(qb, g, F2, rng)
    n_a = _cpu.explained_count(qa, *fit_args(g), px, py, TOL_A, TOL_R)
    assert _cpu.explained_count(qb, *fit_args(g), px, py, TOL_A, TOL_R) == len(px) and n_a < len(px) // 3
    cands = np.zeros((2, 4))
    cands[0] = qb
    base = (qa, cands, px, py, np.ones(len(px)), img, CENTER[0], CENTER[1], AFFINE, sym, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX,
            0.5, TOL_A, TOL_R, 0, np.deg2rad(5.0), STEP, STEP, 150, np.deg2rad(0.01), 0.0)
    for fit_power, want in ((0.0, qa), (1.0, qb)):
        fast = call_unmutated(_cpu.rescore_one, *base, fit_power)
        slow = ref.rescore_one(*base, fit_power)
        assert angle_deg(fast[0], want, sym) < 0.1 and angle_deg(slow[0], want, sym) < 0.1
        assert fast[1] == pytest.approx(slow[1], rel=1e-3)
        assert fast[5] == pytest.approx(slow[5], abs=0.5) and fast[6] == pytest.approx(slow[6], abs=0.5)
        assert fast[7].shape == slow[7].shape
        np.testing.assert_allclose(fast[8], slow[8], rtol=1e-2)
        if fit_power == 0:
            assert fast[5] > 20
            assert fast[3] == pytest.approx(n_a)  # explained spot weight of the chosen solution
        else:
            assert fast[5] == 0.0
            assert fast[3] == len(px)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vote_table_lookup_is_the_first_listed_of_a_linear_scan(seed):
    """The hashed vote table (_first_listed/_list_orientation) finds the same orientation as scanning the whole
    list in order, for clustered orientations, ones with a scalar part near 0 (q ~ −p) and cell edges."""
    rng = np.random.default_rng(seed)
    same = np.deg2rad(2.0)
    cos_same = np.cos(0.5 * same)
    width = np.sqrt(2.0 - 2.0 * cos_same) * (1.0 + 1e-9)
    centres = rng.normal(size=(12, 4))
    centres[:4, 0] = rng.uniform(-0.01, 0.01, 4)  # scalar part ~ 0: both signs must be searched
    qs = []
    for c in centres:
        for _ in range(25):
            q = c / np.linalg.norm(c) + rng.normal(scale=rng.choice([0.002, 0.01, 0.03]), size=4)
            q /= np.linalg.norm(q)
            qs.append(q if q[0] >= 0 else -q)  # canonical: scalar part >= 0
    n_table = len(qs)
    vq = np.zeros((n_table, 4))
    head, tail, nxt = -np.ones(_pairs.VOTE_HASH, np.int64), -np.ones(_pairs.VOTE_HASH, np.int64), -np.ones(n_table, np.int64)
    m = 0
    found_some = 0
    for q in qs:
        linear = next((t for t in range(m) if abs(q @ vq[t]) >= cos_same), -1)
        assert _pairs._first_listed(q, vq, head, nxt, cos_same, width) == linear
        if linear < 0:
            _pairs._list_orientation(q, m, vq, head, tail, nxt, width)
            m += 1
        else:
            found_some += 1
    assert 0 < found_some < len(qs) and m > 12  # both branches exercised
