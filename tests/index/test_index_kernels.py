"""Indexing kernels (:mod:`stemgrains.index._cpu`) against their slow references (:mod:`stemgrains.index._reference`).

Every kernel is compared with its reference on random inputs of several sizes (seeded RNG, and hypothesis over
seeds), its ``.py_func`` too where that is cheap, and checked not to modify its inputs. A few physical properties
(the in-plane angle convention, rotation invariance of the descriptors, recovery of a known orientation) are
checked on a small synthetic cubic crystal.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from orix.quaternion import Rotation, symmetry

from stemgrains.crystal.scattering import excitation_error
from stemgrains.data import Calibration, electron_wavelength
from stemgrains.index import _cpu
from stemgrains.index import _reference as ref
from stemgrains.library.templates import HARMONICS, radial_descriptor

# --- tolerances ---------------------------------------------------------------------------------------------------
TOL_Q = 1e-12  # quaternion / matrix algebra: a few roundings
TOL_ANGLE_RAD = 1e-7  # orix computes arccos(2d² − 1), which loses digits near 0 (√eps ≈ 1.5e-8 rad)
TOL_REL = 1e-10  # sums of the same terms in another order (histograms, scores), relative to the largest value
TOL_IMG_REL = 1e-6  # quantities read from float32 images (products formed in float32 by the kernel)
TOL_DESC = 1e-6  # float32 descriptors
TOL_REFINE_DEG = 0.01  # kernel Nelder–Mead vs scipy Nelder–Mead: the same optimum to within refine_xtol
TOL_TRUTH_DEG = 0.15  # refined orientation vs the orientation a synthetic pattern was made from

HYP = settings(max_examples=15, deadline=None)
SYMS = {"C1": symmetry.C1, "C2": symmetry.C2, "D3": symmetry.D3, "D6": symmetry.D6, "O": symmetry.O}


def unit_quaternions(rng, n=None):
    q = rng.normal(size=(4,) if n is None else (n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def call_unmutated(f, *args):
    """Call ``f(*args)`` and assert that no array argument changed."""
    before = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
    out = f(*args)
    for a, b in zip(args, before):
        if b is not None:
            np.testing.assert_array_equal(a, b, err_msg=f"{getattr(f, '__name__', f)} modified an input")
    return out


def sym_data(name):
    return np.ascontiguousarray(SYMS[name].data, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------------------
# quaternion helpers
# --------------------------------------------------------------------------------------------------------------------
@HYP
@given(seed=st.integers(0, 2**32 - 1))
def test_quaternion_helpers_match_orix(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=4), rng.normal(size=4)  # qmul is the Hamilton product, unit or not
    np.testing.assert_allclose(call_unmutated(_cpu.qmul, a, b), ref.qmul(a, b), atol=TOL_Q)
    qa = unit_quaternions(rng)
    np.testing.assert_allclose(call_unmutated(_cpu.qmatrix, qa), ref.qmatrix(qa), atol=TOL_Q)
    v = rng.normal(size=3) * rng.choice([1e-9, 0.01, 1.0, 5.0])
    np.testing.assert_allclose(call_unmutated(_cpu.qexp, v), ref.qexp(v), atol=TOL_Q)
    gamma = rng.uniform(-10, 10)
    np.testing.assert_allclose(call_unmutated(_cpu.template_orientation, qa, gamma), ref.template_orientation(qa, gamma), atol=TOL_Q)


def test_quaternion_helpers_py_func():
    rng = np.random.default_rng(0)
    a, b = unit_quaternions(rng), unit_quaternions(rng)
    v = rng.normal(size=3)
    np.testing.assert_allclose(_cpu.qmul.py_func(a, b), ref.qmul(a, b), atol=TOL_Q)
    np.testing.assert_allclose(_cpu.qexp.py_func(v), ref.qexp(v), atol=TOL_Q)
    np.testing.assert_allclose(_cpu.qexp.py_func(np.zeros(3)), [1, 0, 0, 0], atol=0)
    np.testing.assert_allclose(_cpu.qmatrix.py_func(a), ref.qmatrix(a), atol=TOL_Q)
    np.testing.assert_allclose(_cpu.template_orientation.py_func(a, 0.3), ref.template_orientation(a, 0.3), atol=TOL_Q)
    s = sym_data("D6")
    assert _cpu.sym_distance.py_func(a, b, s) == pytest.approx(ref.sym_distance(a, b, s), abs=TOL_ANGLE_RAD)


@pytest.mark.parametrize("name", sorted(SYMS))
def test_sym_distance_matches_orix(name):
    rng = np.random.default_rng(len(name))
    s = sym_data(name)
    q1, q2 = unit_quaternions(rng, 30), unit_quaternions(rng, 30)
    q2[:5] = q1[:5] * rng.choice([-1, 1], size=(5, 1))  # identical orientations (q ≡ −q)
    # nearly identical orientations: the angle is small and orix's arccos(2d² − 1) still resolves it
    q2[5:10] = [_cpu.qmul(q, _cpu.qexp(rng.normal(size=3) * 1e-3)) for q in q1[5:10]]
    for x, y in zip(q1, q2):
        assert call_unmutated(_cpu.sym_distance, x, y, s) == pytest.approx(ref.sym_distance(x, y, s), abs=TOL_ANGLE_RAD)
    # symmetry-equivalent copies are at distance 0, and the distance is symmetric in its arguments
    for x, y in zip(q1[10:15], q2[10:15]):
        for op in s:
            assert _cpu.sym_distance(x, _cpu.qmul(op, x), s) == pytest.approx(0.0, abs=1e-6)
        assert _cpu.sym_distance(x, y, s) == pytest.approx(_cpu.sym_distance(y, x, s), abs=1e-12)


def test_template_spots_turn_by_minus_gamma():
    """A template spot at polar angle θ (γ = 0) appears at θ − γ for O0 ∘ Rz(γ) (module docstring)."""
    rng = np.random.default_rng(1)
    base = unit_quaternions(rng)
    g_c = rng.normal(size=(10, 3))
    for gamma in (0.3, -1.2, 2.9, 4.0):
        q = _cpu.template_orientation(base, gamma)
        v0 = g_c @ _cpu.qmatrix(base)  # rows: g in the sample frame (v_sample = Rᵀ g)
        v1 = g_c @ _cpu.qmatrix(q)
        dtheta = np.angle(np.exp(1j * (np.arctan2(v1[:, 1], v1[:, 0]) - np.arctan2(v0[:, 1], v0[:, 0]))))
        np.testing.assert_allclose(dtheta, np.angle(np.exp(-1j * gamma)), atol=1e-9)
        np.testing.assert_allclose(np.hypot(v1[:, 0], v1[:, 1]), np.hypot(v0[:, 0], v0[:, 1]), atol=1e-12)
        np.testing.assert_allclose(v1[:, 2], v0[:, 2], atol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# coarse search
# --------------------------------------------------------------------------------------------------------------------
def random_polar(rng, n, q_max=1.5):
    r = np.sort(rng.uniform(0.0, q_max, n))
    return r, rng.uniform(-np.pi, np.pi, n), rng.uniform(0.05, 1.0, n)


@HYP
@given(
    seed=st.integers(0, 2**32 - 1),
    n_p=st.integers(0, 25),
    n_s=st.integers(0, 30),
    n_bins=st.sampled_from([8, 9, 36, 360]),
    sigma=st.sampled_from([0.003, 0.02, 0.1]),
)
def test_angular_correlation_matches_brute_force(seed, n_p, n_s, n_bins, sigma):
    rng = np.random.default_rng(seed)
    pk, sp = random_polar(rng, n_p), random_polar(rng, n_s)
    if n_p and n_s and rng.uniform() < 0.3:  # exact coincidences of radii and angles, and the 0/2π wrap
        sp[0][0], sp[1][0] = pk[0][0], pk[1][0]
        sp[0][:] = np.sort(sp[0])
    fast = call_unmutated(_cpu.angular_correlation, *pk, *sp, sigma, n_bins)
    slow = ref.angular_correlation(*pk, *sp, sigma, n_bins)
    assert fast.shape == (n_bins,)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=TOL_REL * max(1.0, slow.max(initial=0)))


def test_angular_correlation_py_func_and_peak_position():
    rng = np.random.default_rng(2)
    sp_r, sp_t, sp_w = random_polar(rng, 20)
    sp_r += 0.2
    np.testing.assert_allclose(
        _cpu.angular_correlation.py_func(sp_r, sp_t, sp_w, sp_r, sp_t, sp_w, 0.02, 90),
        ref.angular_correlation(sp_r, sp_t, sp_w, sp_r, sp_t, sp_w, 0.02, 90), atol=1e-12,
    )
    # the pattern is the template turned by −γ0: the histogram peaks at γ0
    for k0 in (0, 17, 359):
        gamma0 = k0 * 2 * np.pi / 360 + 0.3 * 2 * np.pi / 360
        h = _cpu.angular_correlation(sp_r, sp_t - gamma0, sp_w, sp_r, sp_t, sp_w, 0.02, 360)
        assert int(np.argmax(h)) == k0
        assert h[k0] == pytest.approx(np.sum(sp_w**2), rel=0.05)  # every spot on its own peak, arc 0.3 bins


@HYP
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 80), n_keep=st.integers(1, 6), min_sep=st.integers(1, 10))
def test_top_peaks_and_parabolic_offset(seed, n, n_keep, min_sep):
    rng = np.random.default_rng(seed)
    hist = rng.uniform(0, 1, n)
    np.testing.assert_array_equal(call_unmutated(_cpu.top_peaks_circular, hist, n_keep, min_sep), ref.top_peaks_circular(hist, n_keep, min_sep))
    for k in (0, n - 1, int(rng.integers(n))):
        assert call_unmutated(_cpu.parabolic_offset, hist, k) == pytest.approx(ref.parabolic_offset(hist, k), abs=1e-12)


def test_top_peaks_and_parabolic_offset_py_func():
    rng = np.random.default_rng(3)
    hist = rng.uniform(0, 1, 50)
    np.testing.assert_array_equal(_cpu.top_peaks_circular.py_func(hist, 4, 5), ref.top_peaks_circular(hist, 4, 5))
    np.testing.assert_array_equal(_cpu.top_peaks_circular(hist, 60, 1)[50:], -1)  # more asked than bins
    # a parabola sampled at k−1, k, k+1 gives its vertex back; a convex one gives 0
    x = np.arange(10.0)
    assert _cpu.parabolic_offset.py_func(-((x - 4.3) ** 2), 4) == pytest.approx(0.3, abs=1e-12)
    wrapped = (x + 0.2 + 5) % 10 - 5  # circular: bin 9 is next to bin 0; the vertex lies at −0.2
    assert _cpu.parabolic_offset(-(wrapped**2), 0) == pytest.approx(-0.2, abs=1e-12)
    assert _cpu.parabolic_offset((x - 4.3) ** 2, 4) == 0.0


# --------------------------------------------------------------------------------------------------------------------
# leaf helpers: scalars in, tuples out; _gpu compiles the same bodies (.py_func) as CUDA device functions
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leaf_helpers_match_numpy(seed):
    rng = np.random.default_rng(seed)
    q = unit_quaternions(rng)
    v = rng.normal(size=3) * rng.choice([1e-9, 0.01, 1.0, 5.0])
    g_c = rng.normal(size=(20, 3))
    lam = 0.0197
    g_s = ref.sample_frame(q, g_c)  # orix: sample-frame vectors of the reflections
    simplex = rng.normal(size=(4, 3))
    a, b, c = rng.uniform(-1, 1, 3)
    rp, tp, ap, rj, tj, wj = rng.uniform(0.2, 1.2), rng.uniform(-4, 4), rng.uniform(0.1, 1), rng.uniform(0.2, 1.2), \
        rng.uniform(-4, 4), rng.uniform(0.1, 1)
    bw, inv_c2 = 2 * np.pi / 90, 1.0 / (3.5 * 0.03) ** 2
    for jit in (True, False):
        f = (lambda fn: fn) if jit else (lambda fn: fn.py_func)
        np.testing.assert_allclose(np.reshape(f(_cpu.qmatrix_components)(*q), (3, 3)), ref.qmatrix(q), atol=TOL_Q)
        np.testing.assert_allclose(f(_cpu.qexp_components)(*v), ref.qexp(v), atol=TOL_Q)
        R = _cpu.qmatrix(q)
        for j in range(len(g_c)):
            s_j, gz, gg = f(_cpu.excitation_error)(g_c, j, R, lam)
            assert s_j == pytest.approx(excitation_error(g_s[j:j + 1], lam)[0], abs=1e-12)
            assert gz == pytest.approx(g_s[j, 2], abs=1e-12)
            assert gg == pytest.approx(np.sum(g_c[j] ** 2), rel=1e-12)
            np.testing.assert_allclose(f(_cpu.in_plane_position)(g_c, j, R), g_s[j, :2], atol=1e-12)
        # the vertex of the parabola through (−1, a), (0, b), (1, c), clipped to ±0.5; 0 unless it opens downward
        curv, slope, _ = np.polyfit([-1.0, 0.0, 1.0], [a, b, c], 2)
        want = 0.0 if curv >= 0 else float(np.clip(-slope / (2 * curv), -0.5, 0.5))
        assert f(_cpu.parabolic_vertex)(a, b, c) == pytest.approx(want, abs=1e-12)
        assert f(_cpu.simplex_size)(simplex) == pytest.approx(np.linalg.norm(simplex[1:] - simplex[0], axis=1).max())
        # one peak's vote for one template spot: radial weight, mean radius, in-plane angle in bins
        wr, rbar, x = f(_cpu.spot_vote)(rp, tp, ap, rj, tj, wj, bw, inv_c2)
        assert wr == pytest.approx(ap * wj * (1 - (rp - rj) ** 2 * inv_c2) ** 2, rel=1e-12)
        assert rbar == pytest.approx((rp + rj) / 2, rel=1e-12)
        assert x == pytest.approx(((tj - tp) % (2 * np.pi)) / bw, abs=1e-9)
        assert f(_cpu.arc_kernel)(rbar, 3, x, bw, inv_c2) == pytest.approx(1 - (rbar * (3 - x) * bw) ** 2 * inv_c2,
                                                                             rel=1e-12, abs=1e-12)


def test_template_sums_fast_powers_equal_the_general_power(crystal):
    """image_score's sqrt/exp forms of the powers 0.5 and 1 equal ``**`` up to rounding; other powers take ``**``."""
    rng = np.random.default_rng(4)
    g_c, F2 = crystal
    img = rng.uniform(0, 1, (64, 64))
    affine = np.eye(2) * 20.0
    R = _cpu.qmatrix(unit_quaternions(rng))
    for power in (0.5, 1.0, 0.7):
        fast = _cpu.template_sums(R, g_c, F2, 0.0197, 0.05, 0.1, 1.4, power, img, 32.0, 31.5, affine, True)
        exact = _cpu.template_sums(R, g_c, F2, 0.0197, 0.05, 0.1, 1.4, power, img, 32.0, 31.5, affine, False)
        assert exact[1] > 0
        np.testing.assert_allclose(fast, exact, rtol=1e-12)
        if power == 0.7:
            assert fast == exact


def random_library(rng, n_templates, max_spots, empty_every=4):
    offsets, rs, ts, ws, norms = [0], [], [], [], []
    for t in range(n_templates):
        m = 0 if t % empty_every == empty_every - 1 else int(rng.integers(1, max_spots + 1))
        r, th, w = random_polar(rng, m)
        rs.append(r), ts.append(th), ws.append(w)
        norms.append(np.linalg.norm(w))
        offsets.append(offsets[-1] + m)
    return np.array(offsets, np.int64), np.concatenate(rs), np.concatenate(ts), np.concatenate(ws), np.array(norms)


@pytest.mark.parametrize("seed, n_p, n_templates, per_template", [(0, 12, 6, 2), (1, 30, 9, 3), (2, 1, 4, 1)])
def test_coarse_search_matches_reference(seed, n_p, n_templates, per_template):
    rng = np.random.default_rng(seed)
    pk = random_polar(rng, n_p)
    lib = random_library(rng, n_templates, 25)
    cand = rng.permutation(n_templates)[: max(1, n_templates - 2)].astype(np.int64)
    args = (*pk, cand, *lib, 0.02, 180, per_template, 5)
    fast = call_unmutated(_cpu.coarse_search, *args)
    slow = ref.coarse_search(*args)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_allclose(fast[2], slow[2], atol=TOL_REL)
    # γ where the template correlates at all (an all-zero histogram has no preferred angle: ties in any order)
    np.testing.assert_allclose(fast[1][slow[2] > 0], slow[1][slow[2] > 0], atol=1e-9)
    py = _cpu.coarse_search.py_func(*args)
    np.testing.assert_array_equal(py[0], slow[0])
    np.testing.assert_allclose(py[2], slow[2], atol=TOL_REL)
    # no amplitude → no candidates
    zero = call_unmutated(_cpu.coarse_search, pk[0], pk[1], np.zeros(n_p), cand, *lib, 0.02, 180, per_template, 5)
    assert np.all(zero[0] == -1) and np.all(zero[2] == -1)


@pytest.mark.parametrize("seed, n, K, n_peaks, n_keep", [(0, 5, 9, 4, 3), (1, 4, 12, 12, 5), (2, 3, 6, 8, 6), (3, 3, 7, 2, 9)])
def test_quick_candidates_match_reference(seed, n, K, n_peaks, n_keep):
    """The quick stage of the coarse search ranks the same templates as its reference (random peaks with repeated
    amplitudes, empty templates, a pattern below min_peaks, n_keep ≥ K)."""
    rng = np.random.default_rng(seed)
    lib = random_library(rng, K + 3, 20)
    max_p = 15
    peaks = np.zeros((n, max_p, 3))
    counts = rng.integers(0, max_p + 1, n).astype(np.int64)
    counts[0] = max_p
    for i in range(n):
        r, t, a = random_polar(rng, int(counts[i]))
        a[: len(a) // 3] = 0.5  # ties among the amplitudes: the strongest peaks are taken in a stable order
        peaks[i, : counts[i]] = np.stack([r * np.cos(t), r * np.sin(t), a], axis=1)
    cands = np.stack([rng.permutation(K + 3)[:K] for _ in range(n)]).astype(np.int64)
    args = (peaks, counts, cands, *lib, 0.02, 180, n_peaks, n_keep, 4)
    fast = call_unmutated(_cpu.quick_candidates, *args)
    slow = ref.quick_candidates(*args)
    assert fast.shape == (n, min(n_keep, K))
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(_cpu.quick_candidates.py_func(*args), slow)
    assert all(set(fast[i]) <= set(cands[i]) for i in range(n))


def test_strongest_spots_subset():
    """Each template's k strongest spots, in the library's (radius) order, with the subset's norm; made once."""
    from types import SimpleNamespace

    from stemgrains.index.api import _strongest_spots

    rng = np.random.default_rng(5)
    off, r, t, w, _ = random_library(rng, 9, 12, empty_every=3)
    lib = SimpleNamespace(offsets=off, spot_r=r, spot_theta=t, spot_w=w)
    o2, r2, t2, w2, n2 = _strongest_spots(lib, 4)
    for k in range(9):
        ws = w[off[k]:off[k + 1]]
        keep = np.sort(np.argsort(-ws, kind="stable")[:4])
        np.testing.assert_array_equal(r2[o2[k]:o2[k + 1]], r[off[k]:off[k + 1]][keep])
        np.testing.assert_array_equal(t2[o2[k]:o2[k + 1]], t[off[k]:off[k + 1]][keep])
        np.testing.assert_allclose(n2[k], np.linalg.norm(ws[keep]))
    assert _strongest_spots(lib, 4)[1] is r2


def test_quick_stage_keeps_the_template_of_a_pattern():
    """A pattern made from one template's spots (rotated in-plane) ranks that template first among decoys."""
    rng = np.random.default_rng(11)
    off, r, t, w, norm = random_library(rng, 40, 30, empty_every=1000)
    k = 17
    s0, s1 = off[k], off[k + 1]
    gamma = 0.7
    peaks = np.zeros((1, 40, 3))
    m = s1 - s0
    peaks[0, :m] = np.stack([r[s0:s1] * np.cos(t[s0:s1] - gamma), r[s0:s1] * np.sin(t[s0:s1] - gamma), w[s0:s1]], axis=1)
    cands = np.arange(40, dtype=np.int64)[None]
    got = _cpu.quick_candidates(peaks, np.array([m]), cands, off, r, t, w, norm, 0.02, 360, 12, 5, 4)
    assert got[0, 0] == k


# --------------------------------------------------------------------------------------------------------------------
# a small synthetic crystal: simple cubic, a = 4 Å, 96 × 96 detector
# --------------------------------------------------------------------------------------------------------------------
LAM = electron_wavelength(300.0)
SIGMA_S = 0.02
Q_MIN, Q_MAX = 0.1, 0.9
DET = 96
CENTER = (47.3, 48.1)
CAL = Calibration(0.02, q_rotation_deg=23.0, q_flip=True, ellipticity=(1.02, 35.0))
AFFINE = np.ascontiguousarray(CAL._affine())
STEP = np.deg2rad(0.5)


@pytest.fixture(scope="module")
def crystal():
    rng = np.random.default_rng(7)
    h = np.array([(i, j, k) for i in range(-4, 5) for j in range(-4, 5) for k in range(-4, 5) if (i, j, k) != (0, 0, 0)], float)
    g = h / 4.0
    g = np.ascontiguousarray(g[np.linalg.norm(g, axis=1) <= Q_MAX])
    F2 = rng.uniform(0.2, 1.0, len(g))
    return g, F2


def kinematic_spots(q, g, F2, n_sigma=3.0):
    """Sample-frame (qx, qy) and intensities of the reflections within n_sigma σ_s of the Ewald sphere."""
    gs = ref.sample_frame(q, g)
    s = excitation_error(gs, LAM)
    r = np.hypot(gs[:, 0], gs[:, 1])
    ok = (np.abs(s) <= n_sigma * SIGMA_S) & (r >= Q_MIN) & (r <= Q_MAX)
    return gs[ok, :2], F2[ok] * np.exp(-s[ok] ** 2 / (2 * SIGMA_S**2))


def render(q, g, F2, blur_px=1.3):
    xy, inten = kinematic_spots(q, g, F2, 5.0)
    d = xy @ AFFINE.T  # (dcol, drow)
    rows, cols = np.indices((DET, DET))
    img = np.zeros((DET, DET))
    for (dc, dr), b in zip(d, np.sqrt(inten)):
        img += b * np.exp(-((rows - CENTER[0] - dr) ** 2 + (cols - CENTER[1] - dc) ** 2) / (2 * blur_px**2))
    return img.astype(np.float32)


def near_zone_axis(rng):
    """A random orientation within 2° of a ⟨001⟩ beam direction (many spots)."""
    tilt = Rotation.from_axes_angles([*rng.normal(size=2), 0.0], np.deg2rad(rng.uniform(0.5, 2.0)))
    return (Rotation.from_axes_angles([0, 0, 1], rng.uniform(0, 2 * np.pi)) * tilt).data.reshape(4)


def score_args(g, F2, img):
    return (g, F2, LAM, SIGMA_S, Q_MIN, Q_MAX, 0.5, img, CENTER[0], CENTER[1], AFFINE)


@pytest.mark.parametrize("seed", [0, 1])
def test_image_score_and_subset_match_reference(crystal, seed):
    g, F2 = crystal
    rng = np.random.default_rng(seed)
    images = [rng.uniform(0, 1, (DET, DET)).astype(np.float32), rng.uniform(0, 1, (DET + 7, DET - 5))]
    for img in images:
        for q in [*unit_quaternions(rng, 4), near_zone_axis(rng)]:
            for power in (0.5, 1.0):
                args = (q, g, F2, LAM, SIGMA_S, Q_MIN, Q_MAX, power, img, CENTER[0], CENTER[1], AFFINE)
                slow = ref.image_score(*args)
                assert call_unmutated(_cpu.image_score, *args) == pytest.approx(slow, rel=TOL_REL, abs=1e-12)
            for margin in (0.0, 0.02):
                np.testing.assert_array_equal(call_unmutated(_cpu.near_sphere_subset, q, g, LAM, SIGMA_S, margin),
                                              ref.near_sphere_subset(q, g, LAM, SIGMA_S, margin))
    q = near_zone_axis(rng)
    assert _cpu.image_score.py_func(q, *score_args(g, F2, images[0])) == pytest.approx(ref.image_score(q, *score_args(g, F2, images[0])), rel=TOL_REL)
    np.testing.assert_array_equal(_cpu.near_sphere_subset.py_func(q, g, LAM, SIGMA_S, 0.01), ref.near_sphere_subset(q, g, LAM, SIGMA_S, 0.01))
    # spots all off the detector count in the norm only: score 0
    far = (q, g, F2, LAM, SIGMA_S, Q_MIN, Q_MAX, 0.5, images[0], -500.0, -500.0, AFFINE)
    assert _cpu.image_score(*far) == 0.0 == ref.image_score(*far)


def test_refine_orientation_matches_scipy_nelder_mead(crystal):
    g, F2 = crystal
    rng = np.random.default_rng(11)
    for _ in range(2):
        q_true = near_zone_axis(rng)
        img = render(q_true, g, F2)
        q0 = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad(rng.uniform(-0.5, 0.5, 3))))
        args = (q0, *score_args(g, F2, img), STEP, 150, np.deg2rad(0.01))
        q_fast, s_fast, n_fast = call_unmutated(_cpu.refine_orientation, *args)
        q_slow, s_slow, _ = ref.refine_orientation(*args)
        sym = sym_data("O")
        assert np.rad2deg(ref.sym_distance(q_fast, q_slow, sym)) < TOL_REFINE_DEG
        assert s_fast == pytest.approx(s_slow, rel=1e-6)
        assert q_fast[0] >= 0 and np.linalg.norm(q_fast) == pytest.approx(1.0, abs=1e-12)
        assert 4 <= n_fast <= 150 + 5  # the last iteration may add up to 5 evaluations
        # the score it returns is the score of the orientation it returns, and better than the start
        assert s_fast == pytest.approx(ref.image_score(q_fast, *score_args(g, F2, img)), rel=1e-9)
        assert s_fast > ref.image_score(q0, *score_args(g, F2, img))
        assert np.rad2deg(ref.sym_distance(q_fast, q_true, sym)) < TOL_TRUTH_DEG


def test_refine_returns_the_score_of_its_orientation_from_poor_starts(crystal):
    g, F2 = crystal
    rng = np.random.default_rng(0)
    img = render(near_zone_axis(rng), g, F2)
    for q0 in unit_quaternions(rng, 4):
        q, s, _ = _cpu.refine_orientation(q0, *score_args(g, F2, img), STEP, 150, np.deg2rad(0.01))
        assert s == pytest.approx(ref.image_score(q, *score_args(g, F2, img)), rel=1e-9)


# --------------------------------------------------------------------------------------------------------------------
# index_one / index_chunk on a small template library around the true orientations
# --------------------------------------------------------------------------------------------------------------------
def template_lists(bases, g, F2):
    offsets, rs, ts, ws, norms = [0], [], [], [], []
    for b in bases:
        xy, inten = kinematic_spots(b, g, F2)
        r = np.hypot(xy[:, 0], xy[:, 1])
        o = np.argsort(r, kind="stable")
        w = np.sqrt(inten[o])
        rs.append(r[o]), ts.append(np.arctan2(xy[o, 1], xy[o, 0])), ws.append(w)
        norms.append(np.linalg.norm(w))
        offsets.append(offsets[-1] + len(r))
    return (np.ascontiguousarray(bases), np.array(offsets, np.int64), np.concatenate(rs), np.concatenate(ts),
            np.concatenate(ws), np.array(norms))


@pytest.fixture(scope="module")
def chunk(crystal):
    """Three patterns near ⟨001⟩, a library holding each one's base orientation (plus distractors), and a fourth
    pattern with too few peaks."""
    g, F2 = crystal
    rng = np.random.default_rng(5)
    truths, gammas, bases = [], [], []
    for _ in range(3):
        q = near_zone_axis(rng)
        gamma = rng.uniform(0, 2 * np.pi)
        truths.append(q)
        gammas.append(gamma)
        # the template is 0.3° off the truth: the refinement has something to do
        bases.append(_cpu.qmul(ref.template_orientation(q, -gamma), _cpu.qexp(np.deg2rad(0.3) * np.array([0.6, 0.8, 0.0]))))
    bases += [near_zone_axis(rng) for _ in range(4)] + list(unit_quaternions(rng, 3))
    lib = template_lists(np.array(bases), g, F2)
    max_peaks = 64
    peaks = np.zeros((4, max_peaks, 3))
    counts = np.zeros(4, np.int64)
    imgs = np.zeros((4, DET, DET), np.float32)
    for i, q in enumerate(truths):
        xy, inten = kinematic_spots(q, g, F2)
        counts[i] = len(xy)
        peaks[i, : len(xy), :2] = xy
        peaks[i, : len(xy), 2] = np.sqrt(inten)
        imgs[i] = render(q, g, F2)
    counts[3] = 2
    peaks[3, :2] = peaks[0, :2]
    centers = np.tile(CENTER, (4, 1))
    cands = np.tile(rng.permutation(len(bases))[:8], (4, 1)).astype(np.int64)
    for i in range(3):
        if i not in cands[i]:
            cands[i, 0] = i
    return dict(truths=np.array(truths), lib=lib, peaks=peaks, counts=counts, imgs=imgs, centers=centers, cands=cands, g=g, F2=F2)


def tail(n_refine):
    # n_bins, per_template, n_keep, n_refine, n_best, rel_dist, distinct_dist, init_step, max_eval, xtol
    return (360, 2, 10, n_refine, 5, np.deg2rad(5.0), np.deg2rad(0.5), STEP, 150, np.deg2rad(0.01))


def one_args(c, i, n_refine):
    k = int(c["counts"][i])
    p = c["peaks"][i, :k]
    base_q, offsets, sp_r, sp_t, sp_w, sp_norm = c["lib"]
    return (p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy(), c["imgs"][i], CENTER[0], CENTER[1], AFFINE, c["cands"][i],
            base_q, offsets, sp_r, sp_t, sp_w, sp_norm, sym_data("O"), c["g"], c["F2"], LAM, SIGMA_S, 0.02, Q_MIN, Q_MAX, 0.5,
            *tail(n_refine))


def assert_same_indexing(fast, slow, sym, tol_deg):
    q, ci, rel, cq, cs = fast
    assert np.rad2deg(ref.sym_distance(q, slow[0], sym)) < tol_deg
    assert ci == pytest.approx(slow[1], rel=TOL_IMG_REL)
    assert rel == pytest.approx(slow[2], abs=1e-3)
    np.testing.assert_allclose(cs, slow[4], rtol=TOL_IMG_REL, atol=1e-12)
    for a, b, s in zip(cq, slow[3], cs):
        if s > 0:
            assert np.rad2deg(ref.sym_distance(a, b, sym)) < tol_deg


def test_index_one_without_refinement_matches_reference(chunk):
    sym = sym_data("O")
    for i in range(3):
        args = one_args(chunk, i, 0)
        fast = call_unmutated(_cpu.index_one, *args)
        slow = ref.index_one(*args)
        assert_same_indexing(fast, slow, sym, 1e-7)
        np.testing.assert_allclose(fast[0], slow[0], atol=1e-12)  # the same candidate, not only an equivalent one
        assert 0 < fast[1] <= 1 and 0 <= fast[2] <= 100
        assert np.all(np.diff(fast[4]) <= 0)  # candidates best first


def test_index_one_with_refinement_matches_reference_and_truth(chunk):
    sym = sym_data("O")
    for i in range(3):
        args = one_args(chunk, i, 2)
        fast = call_unmutated(_cpu.index_one, *args)
        slow = ref.index_one(*args)
        assert_same_indexing(fast, slow, sym, TOL_REFINE_DEG)
        assert np.rad2deg(ref.sym_distance(fast[0], chunk["truths"][i], sym)) < TOL_TRUTH_DEG
    py = _cpu.index_one.py_func(*one_args(chunk, 0, 1))
    assert_same_indexing(py, ref.index_one(*one_args(chunk, 0, 1)), sym, TOL_REFINE_DEG)


def test_index_one_without_candidates_returns_identity(chunk):
    args = list(one_args(chunk, 0, 1))
    args[2] = np.zeros_like(args[2])  # no amplitude: the coarse search has nothing
    q, ci, rel, cq, cs = _cpu.index_one(*args)
    np.testing.assert_array_equal(q, [1, 0, 0, 0])
    assert ci == 0 and rel == 0 and not cq.any() and not cs.any()
    slow = ref.index_one(*args)
    np.testing.assert_array_equal(slow[0], q)
    assert slow[1] == 0 and slow[2] == 0


def test_index_chunk_matches_reference(chunk):
    c = chunk
    base_q, offsets, sp_r, sp_t, sp_w, sp_norm = c["lib"]
    args = (c["peaks"], c["counts"], c["imgs"], c["centers"], AFFINE, c["cands"], base_q, offsets, sp_r, sp_t, sp_w, sp_norm,
            sym_data("O"), c["g"], c["F2"], LAM, SIGMA_S, 0.02, Q_MIN, Q_MAX, 0.5, *tail(1), 4)
    fast = call_unmutated(_cpu.index_chunk, *args)
    slow = ref.index_chunk(*args)
    sym = sym_data("O")
    for i in range(4):
        assert_same_indexing([a[i] for a in fast], [a[i] for a in slow], sym, TOL_REFINE_DEG)
    np.testing.assert_array_equal(fast[0][3], [1, 0, 0, 0])  # too few peaks: not indexed
    assert fast[1][3] == 0 and fast[2][3] == 0
    py = _cpu.index_chunk.py_func(*args)  # the same loop in Python over the compiled index_one
    for a, b in zip(py, fast):
        np.testing.assert_allclose(a, b, atol=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# neighbour pass
# --------------------------------------------------------------------------------------------------------------------
def pass_args(quats, scores, may_change, source, shape, imgs, g, F2, init_step=STEP, max_eval=150, xtol=np.deg2rad(0.01)):
    n = len(quats)
    return (np.ascontiguousarray(quats), np.asarray(scores, float), np.asarray(may_change, bool), np.asarray(source, bool),
            shape[0], shape[1], imgs, np.tile(CENTER, (n, 1)), AFFINE, sym_data("O"), g, F2, LAM, SIGMA_S, Q_MIN, Q_MAX,
            0.5, np.deg2rad(2.0), init_step, max_eval, xtol, shape[0] + shape[1])


@pytest.fixture(scope="module")
def two_grains(crystal):
    """A 2×3 grid: grain A in columns 0–1, grain B in column 2; the start holds the truth (0.2° off) except two
    pixels with a wrong orientation, one per grain."""
    g, F2 = crystal
    rng = np.random.default_rng(27)
    qa, qb = near_zone_axis(rng), near_zone_axis(rng)  # 45° apart
    truth = np.array([qa, qa, qb, qa, qa, qb])
    imgs = np.array([render(q, g, F2) for q in truth])
    start = np.array([_cpu.qmul(q, _cpu.qexp(np.deg2rad(0.2) * np.array([0.0, 0.6, 0.8]))) for q in truth])
    wrong = [0, 5]
    start[wrong] = unit_quaternions(rng, 2)
    scores = np.array([ref.image_score(q, *score_args(g, F2, im)) for q, im in zip(start, imgs)])
    return dict(truth=truth, imgs=imgs, start=start, scores=scores, wrong=wrong, g=g, F2=F2)


def test_neighbor_pass_rescues_wrong_pixels_and_matches_reference(two_grains):
    c = two_grains
    sym = sym_data("O")
    args = pass_args(c["start"], c["scores"], np.ones(6), np.ones(6), (2, 3), c["imgs"], c["g"], c["F2"])
    q, s, changed = call_unmutated(_cpu.neighbor_pass, *args)
    q_ref, s_ref, changed_ref = ref.neighbor_pass(*args)
    np.testing.assert_array_equal(changed, changed_ref)
    for a, b in zip(q, q_ref):
        assert np.rad2deg(ref.sym_distance(a, b, sym)) < TOL_REFINE_DEG
    np.testing.assert_allclose(s, s_ref, rtol=1e-6)
    # the two wrong pixels took their grain's solution, refined on their own image; correct pixels kept theirs
    assert set(np.flatnonzero(changed)) == set(c["wrong"])
    for i in range(6):  # the neighbours' solutions were 0.2° off; refined on the pixel's image, no worse
        assert np.rad2deg(ref.sym_distance(q[i], c["truth"][i], sym)) < 0.2 + 1e-6
        assert s[i] >= c["scores"][i]
        assert s[i] == pytest.approx(ref.image_score(q[i], *score_args(c["g"], c["F2"], c["imgs"][i])), rel=1e-9)


def test_neighbor_pass_respects_may_change_and_source(two_grains):
    c = two_grains
    # pixel 0 may not change; pixel 5's only grain-B neighbour (2) is not a source: both stay wrong
    may = np.ones(6, bool)
    may[0] = False
    src = np.ones(6, bool)
    src[2] = False
    q, s, changed = _cpu.neighbor_pass(*pass_args(c["start"], c["scores"], may, src, (2, 3), c["imgs"], c["g"], c["F2"]))
    assert not changed[0]
    np.testing.assert_array_equal(q[0], c["start"][0])
    # pixel 5 may take grain A's solution (it beats a random one) but never grain B's, which only pixel 2 has
    assert np.rad2deg(ref.sym_distance(q[5], c["truth"][5], sym_data("O"))) > 2.0
    # a pixel that is not a source (another phase) tries neighbours even when they are within same_dist
    src = np.ones(6, bool)
    src[1] = False
    start = c["start"].copy()
    scores = c["scores"].copy()
    scores[1] = 0.0  # its own solution explains nothing (another phase that did not fit)
    q, s, changed = _cpu.neighbor_pass(*pass_args(start, scores, np.ones(6), src, (2, 3), c["imgs"], c["g"], c["F2"]))
    assert changed[1] and s[1] > 0


@pytest.mark.parametrize("seed, shape", [(0, (3, 4)), (1, (1, 7)), (2, (4, 1))])
def test_neighbor_pass_matches_reference_on_random_inputs(crystal, seed, shape):
    """Random images and orientations; a refinement that stops at its first simplex (so that the scipy and kernel
    Nelder–Mead agree exactly), which leaves the sweep logic — who tries whom, who takes what — to compare."""
    g, F2 = crystal
    rng = np.random.default_rng(seed)
    n = shape[0] * shape[1]
    imgs = rng.uniform(0, 1, (n, DET, DET)).astype(np.float32)
    quats = unit_quaternions(rng, n)
    scores = np.array([ref.image_score(q, *score_args(g, F2, im)) for q, im in zip(quats, imgs)]) * rng.uniform(0.9, 1.1, n)
    may, src = rng.uniform(size=n) < 0.8, rng.uniform(size=n) < 0.7
    args = pass_args(quats, scores, may, src, shape, imgs, g, F2, init_step=1e-9, max_eval=10, xtol=1e-6)
    q, s, changed = call_unmutated(_cpu.neighbor_pass, *args)
    q_ref, s_ref, changed_ref = ref.neighbor_pass(*args)
    np.testing.assert_array_equal(changed, changed_ref)
    assert changed.any()
    for a, b in zip(q, q_ref):
        assert np.rad2deg(ref.sym_distance(a, b, sym_data("O"))) < 1e-6
    np.testing.assert_allclose(s, s_ref, rtol=1e-6)
    np.testing.assert_array_equal(q[~changed], quats[~changed])


def test_peak_image_norm_and_image_scores_match_reference(crystal):
    g, F2 = crystal
    rng = np.random.default_rng(3)
    imgs = rng.uniform(0, 1, (5, DET, DET)).astype(np.float32)
    quats = unit_quaternions(rng, 5)
    mask = np.array([1, 0, 1, 1, 0], bool)
    got = call_unmutated(_cpu.image_scores, quats, mask, imgs, np.tile(CENTER, (5, 1)), AFFINE, g, F2, LAM, SIGMA_S, Q_MIN, Q_MAX, 0.5)
    want = [ref.image_score(q, *score_args(g, F2, im)) if m else 0.0 for q, im, m in zip(quats, imgs, mask)]
    np.testing.assert_allclose(got, want, rtol=TOL_REL, atol=1e-12)
    for _ in range(3):
        px, py = rng.uniform(-1.2, 1.2, (2, int(rng.integers(0, 20))))
        got = call_unmutated(_cpu.peak_image_norm, px, py, imgs[0], CENTER[0], CENTER[1], AFFINE)
        assert got == pytest.approx(ref.peak_image_norm(px, py, imgs[0], CENTER[0], CENTER[1], AFFINE), rel=TOL_IMG_REL)
    assert _cpu.peak_image_norm(np.zeros(0), np.zeros(0), imgs[0], 1.0, 1.0, AFFINE) == 1.0


# --------------------------------------------------------------------------------------------------------------------
# prefilter descriptors
# --------------------------------------------------------------------------------------------------------------------
def random_peak_lists(rng, n, max_peaks, q_max=1.6):
    peaks = np.zeros((n, max_peaks, 3))
    counts = rng.integers(0, max_peaks + 1, n)
    counts[0] = 0
    for i, c in enumerate(counts):
        r, t = rng.uniform(0, q_max, c), rng.uniform(-np.pi, np.pi, c)
        peaks[i, :c] = np.c_[r * np.cos(t), r * np.sin(t), rng.uniform(0.05, 1, c)]
        peaks[i, c:] = rng.normal(size=(max_peaks - c, 3))  # rows past the count must be ignored
    return peaks, counts.astype(np.int64)


def test_reference_descriptor_is_the_library_descriptor():
    rng = np.random.default_rng(9)
    for n in (0, 1, 30):
        r, t, w = rng.uniform(0, 1.6, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(0, 1, n)
        np.testing.assert_allclose(ref.radial_descriptor(r, t, w, 0.02, 76, HARMONICS), radial_descriptor(r, t, w, 0.02, 76), atol=1e-12)


@pytest.mark.parametrize("harmonics", [HARMONICS, (0, 2, 4, 6)])
@pytest.mark.parametrize("n, max_peaks, n_bins", [(5, 20, 76), (12, 40, 31)])
def test_peak_radial_descriptors_match_reference(harmonics, n, max_peaks, n_bins):
    rng = np.random.default_rng(n + n_bins)
    peaks, counts = random_peak_lists(rng, n, max_peaks)
    h = np.asarray(harmonics, np.float64)
    fast = call_unmutated(_cpu.peak_radial_descriptors, peaks, counts, 0.02, n_bins, h)
    slow = ref.peak_radial_descriptors(peaks, counts, 0.02, n_bins, h)
    assert fast.dtype == np.float32 and fast.shape == (n, n_bins * len(h))
    np.testing.assert_allclose(fast, slow, atol=TOL_DESC)
    np.testing.assert_allclose(_cpu.peak_radial_descriptors.py_func(peaks[:3], counts[:3], 0.02, n_bins, h), slow[:3], atol=TOL_DESC)
    # rotation invariance: turning every peak list about the beam leaves the descriptors unchanged
    a = rng.uniform(0, 2 * np.pi)
    turned = peaks.copy()
    turned[..., 0] = np.cos(a) * peaks[..., 0] - np.sin(a) * peaks[..., 1]
    turned[..., 1] = np.sin(a) * peaks[..., 0] + np.cos(a) * peaks[..., 1]
    np.testing.assert_allclose(_cpu.peak_radial_descriptors(turned, counts, 0.02, n_bins, h), fast, atol=1e-5)


# --------------------------------------------------------------------------------------------------------------------
# solution quality (correlation index, spot fit)
# --------------------------------------------------------------------------------------------------------------------
S_WIN, TOL_A, TOL_R = 0.05, 0.02, 0.02


def quality_args(q, g, F2, img, px, py, power=0.5, pw=None):
    pw = np.ones(len(px)) if pw is None else pw
    return (q, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX, power, img, CENTER[0], CENTER[1], AFFINE, px, py, pw, TOL_A, TOL_R)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solution_quality_matches_reference_on_random_inputs(crystal, seed):
    g, F2 = crystal
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, (DET, DET)).astype(np.float32)
    for q in [*unit_quaternions(rng, 3), near_zone_axis(rng)]:
        # peaks: some at predicted positions (jittered), some random
        xy, _ = kinematic_spots(q, g, F2, 3.0)
        pk = np.concatenate([xy + rng.normal(0, 0.01, xy.shape), rng.uniform(-1.2, 1.2, (int(rng.integers(0, 8)), 2))])
        px, py = np.ascontiguousarray(pk[:, 0]), np.ascontiguousarray(pk[:, 1])
        pw = rng.uniform(0.5, 3.0, len(px))
        for power, w in ((0.5, None), (1.0, pw)):
            args = quality_args(q, g, F2, img, px, py, power, w)
            ci, n_ok, res = call_unmutated(_cpu.solution_quality, *args)
            ci_r, n_ok_r, res_r = ref.solution_quality(*args)
            assert n_ok == pytest.approx(n_ok_r, rel=1e-12)
            assert ci == pytest.approx(ci_r, rel=TOL_IMG_REL, abs=1e-12)
            assert res == pytest.approx(res_r, rel=1e-9, abs=1e-12)
            assert 0.0 <= ci <= 1.0
    q = near_zone_axis(rng)
    a = quality_args(q, g, F2, img, np.zeros(0), np.zeros(0))
    assert _cpu.solution_quality.py_func(*a) == pytest.approx(ref.solution_quality(*a))


def test_solution_quality_physics(crystal):
    """A pattern rendered from q: every spot explained at ~zero residual and a high correlation index; a rotated
    solution explains few spots; extra unexplained peaks lower both numbers."""
    g, F2 = crystal
    rng = np.random.default_rng(5)
    q = near_zone_axis(rng)
    img = render(q, g, F2)
    xy, _ = kinematic_spots(q, g, F2, 3.0)
    px, py = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    ci, n_ok, res = _cpu.solution_quality(*quality_args(q, g, F2, img, px, py))
    assert n_ok == len(px) and res < 1e-9 and ci > 0.8
    wrong = _cpu.qmul(q, _cpu.qexp(np.array([0.0, 0.0, np.deg2rad(17.0)])))
    ci_w, n_w, _ = _cpu.solution_quality(*quality_args(wrong, g, F2, img, px, py))
    assert ci_w < 0.5 * ci and n_w < 0.5 * len(px)
    extra = rng.uniform(-1.0, 1.0, (len(px), 2))
    img2 = img + render(_cpu.qmul(q, _cpu.qexp(np.array([0.3, 0.2, 0.1]))), g, F2)
    ci2, n2, _ = _cpu.solution_quality(*quality_args(q, g, F2, img2, np.r_[px, extra[:, 0]], np.r_[py, extra[:, 1]]))
    assert n2 < len(px) + len(px) // 4 and ci2 < ci  # a few random peaks fall near predicted spots of this dense lattice


def test_solution_qualities_matches_scalar_kernel(crystal):
    g, F2 = crystal
    rng = np.random.default_rng(9)
    n, mp = 4, 12
    imgs = rng.uniform(0, 1, (n, DET, DET)).astype(np.float32)
    quats = unit_quaternions(rng, n)
    peaks = np.zeros((n, mp, 3))
    counts = np.array([0, 5, 12, 7])
    for i, c in enumerate(counts):
        peaks[i, :c, :2] = rng.uniform(-1.2, 1.2, (c, 2))
        peaks[i, :c, 2] = rng.uniform(0.5, 2.0, c)
    mask = np.array([1, 1, 0, 1], bool)
    ci, n_ok, res = call_unmutated(_cpu.solution_qualities, quats, mask, peaks, counts, imgs, np.tile(CENTER, (n, 1)), AFFINE,
                                   g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX, 0.5, TOL_A, TOL_R)
    for i in range(n):
        if not mask[i]:
            assert ci[i] == 0 and n_ok[i] == 0 and res[i] == 0
            continue
        want = ref.solution_quality(*quality_args(quats[i], g, F2, imgs[i], peaks[i, :counts[i], 0], peaks[i, :counts[i], 1]))
        assert ci[i] == pytest.approx(want[0], rel=TOL_IMG_REL, abs=1e-12) and n_ok[i] == pytest.approx(want[1], rel=1e-12)
        assert res[i] == pytest.approx(want[2], rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------------------------------------------------
# final choice among hypotheses (rescore) and the pseudo-symmetric orientations
# --------------------------------------------------------------------------------------------------------------------
def test_pseudo_symmetric_matches_reference():
    rng = np.random.default_rng(4)
    for q in unit_quaternions(rng, 4):
        for kind in (0, 1, 2):
            got = call_unmutated(_cpu.pseudo_symmetric, q, kind)
            want = ref.pseudo_symmetric(q, kind)
            assert got.shape == want.shape == ((1, 3, 9)[kind], 4)
            for a, b in zip(got, want):  # same rotation (q and −q alike)
                assert abs(abs(np.dot(a, b)) - 1) < 1e-12


@pytest.mark.parametrize("fit_power", [0.0, 1.0])
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_rescore_matches_reference(crystal, kind, fit_power):
    g, F2 = crystal
    rng = np.random.default_rng(13 + kind)
    sym = sym_data("C2")
    q_true = near_zone_axis(rng)
    img = render(q_true, g, F2)
    xy, _ = kinematic_spots(q_true, g, F2, 3.0)
    px, py = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    q0 = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad(rng.uniform(-0.3, 0.3, 3))))
    q0 = _cpu.refine_orientation(q0, *score_args(g, F2, img), STEP, 150, np.deg2rad(0.01))[0]  # the search's, refined
    cands = np.zeros((4, 4))
    cands[0] = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad([0.0, 0.0, 20.0])))
    cands[1] = unit_quaternions(rng)
    cands[2] = q0  # a duplicate of q0: dropped
    args = (q0, cands, px, py, np.ones(len(px)), img, CENTER[0], CENTER[1], AFFINE, sym, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX, 0.5,
            TOL_A, TOL_R, kind, np.deg2rad(5.0), STEP, STEP, 150, np.deg2rad(0.01), 0.0, fit_power)
    fast = call_unmutated(_cpu.rescore_one, *args)
    slow = ref.rescore_one(*args)
    assert np.rad2deg(ref.sym_distance(fast[0], slow[0], sym)) < TOL_REFINE_DEG * 5
    assert np.rad2deg(ref.sym_distance(fast[0], q_true, sym)) < 2 * TOL_TRUTH_DEG  # refined from a start 0.3° off
    assert fast[1] == pytest.approx(slow[1], rel=1e-3)
    # Q1: the best's image score weighted by its spot fit (fit_power 0: the image score alone)
    fit = ref.fit_factor(fast[0], g, LAM, S_WIN, Q_MIN, Q_MAX, px, py, TOL_A, TOL_R, fit_power)
    assert fast[1] == pytest.approx(ref.image_score(fast[0], *score_args(g, F2, img)) * fit, rel=1e-9)
    # q0, 2 candidates and the pseudo-symmetric ones, less those that refine onto one already listed
    assert fast[7].shape[0] == slow[7].shape[0] and 3 <= fast[7].shape[0] <= 3 + (1, 3, 9)[kind]
    for k in (5, 6):  # R, R_twin: from scores of refined hypotheses (two Nelder–Mead implementations)
        assert fast[k] == pytest.approx(slow[k], abs=0.5)
    np.testing.assert_allclose(fast[8], slow[8], rtol=1e-2)  # weak hypotheses: the two Nelder–Meads may stop apart
    assert np.all(np.diff(fast[8]) <= 0)
    # chunk version = scalar version
    n = 3
    out = _cpu.rescore_chunk(np.tile(q0, (n, 1)), np.tile(cands, (n, 1, 1)), np.array([1, 0, 1], bool),
                             np.tile(np.pad(np.stack([px, py, np.ones(len(px))], 1), ((0, 2), (0, 0)))[None], (n, 1, 1)),
                             np.full(n, len(px)), np.tile(img, (n, 1, 1)), np.tile(CENTER, (n, 1)), AFFINE, sym, g, F2, LAM,
                             SIGMA_S, S_WIN, Q_MIN, Q_MAX, 0.5, TOL_A, TOL_R, kind, np.deg2rad(5.0), STEP, STEP, 150,
                             np.deg2rad(0.01), 2, 0.0, fit_power)
    np.testing.assert_allclose(out[0][0], fast[0], atol=1e-12)
    np.testing.assert_allclose(out[0][1], q0)
    assert out[5][0] == pytest.approx(fast[5]) and out[5][1] == 0 and out[7].shape == (n, 2, 4)


def test_rescore_flags_an_undecidable_pattern(crystal):
    """Two hypotheses that explain the image equally (the pattern holds both orientations' spots): R ≈ 0."""
    g, F2 = crystal
    rng = np.random.default_rng(21)
    sym = sym_data("C1")
    qa = near_zone_axis(rng)
    qb = _cpu.qmul(qa, _cpu.qexp(np.deg2rad([0.0, 0.0, 30.0])))
    img = render(qa, g, F2) + render(qb, g, F2)
    xy = np.concatenate([kinematic_spots(q, g, F2, 3.0)[0] for q in (qa, qb)])
    cands = np.zeros((2, 4))
    cands[0] = qb
    args = (qa, cands, np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), np.ones(len(xy)), img, CENTER[0], CENTER[1], AFFINE,
            sym, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX, 0.5, TOL_A, TOL_R, 0, np.deg2rad(5.0), STEP, STEP, 150,
            np.deg2rad(0.01))
    assert _cpu.rescore_one(*args)[5] < 5.0


def test_fit_chance_matches_reference_and_grows_with_lattice_density(crystal):
    g, F2 = crystal
    rng = np.random.default_rng(8)
    for q in [*unit_quaternions(rng, 3), near_zone_axis(rng)]:
        args = (q, g, LAM, S_WIN, Q_MIN, Q_MAX, TOL_A, TOL_R, 400)
        assert call_unmutated(_cpu.fit_chance, *args) == pytest.approx(ref.fit_chance(*args), abs=1e-12)
    q = near_zone_axis(rng)
    sparse = _cpu.fit_chance(q, g, LAM, S_WIN, Q_MIN, Q_MAX, TOL_A, TOL_R, 400)
    dense = _cpu.fit_chance(q, np.ascontiguousarray(np.concatenate([g, g * 0.5])), LAM, S_WIN, Q_MIN, Q_MAX, TOL_A, TOL_R, 400)
    assert 0 <= sparse < dense <= 1
    out = _cpu.fit_chances(np.stack([q, q]), np.array([True, False]), g, LAM, S_WIN, Q_MIN, Q_MAX, TOL_A, TOL_R, 400)
    assert out[0] == pytest.approx(sparse) and out[1] == 0


def test_refine_chunk_matches_reference(crystal):
    """refine_chunk = refine_orientation per masked pattern (two Nelder–Mead implementations agree on the optimum)."""
    g, F2 = crystal
    rng = np.random.default_rng(29)
    sym = sym_data("C2")
    n = 3
    q_true = [near_zone_axis(rng) for _ in range(n)]
    imgs = np.stack([render(q, g, F2) for q in q_true])
    starts = np.stack([_cpu.qmul(q, _cpu.qexp(np.deg2rad(rng.uniform(-0.4, 0.4, 3)))) for q in q_true])
    mask = np.array([True, False, True])
    centers = np.tile(CENTER, (n, 1))
    args = (starts, mask, imgs, centers, AFFINE, g, F2, LAM, SIGMA_S, Q_MIN, Q_MAX, 0.5, STEP, 150, np.deg2rad(0.01))
    fast_q, fast_s = call_unmutated(_cpu.refine_chunk, *args)
    slow_q, slow_s = ref.refine_chunk(*args)
    np.testing.assert_array_equal(fast_q[1], starts[1])
    assert fast_s[1] == 0 and slow_s[1] == 0
    for i in (0, 2):
        assert np.rad2deg(ref.sym_distance(fast_q[i], slow_q[i], sym)) < TOL_REFINE_DEG * 5
        assert np.rad2deg(ref.sym_distance(fast_q[i], q_true[i], sym)) < 2 * TOL_TRUTH_DEG
        assert fast_s[i] == pytest.approx(slow_s[i], rel=1e-3)


def settled_pattern(crystal, seed):
    """A pattern rendered from a random near-zone orientation of the test crystal (C2 symmetry) and the search's
    solution refined on it: ``(g, F2, sym, q_true, img, px, py, q0)``, px/py the kinematic spots (1/Å)."""
    g, F2 = crystal
    q_true = near_zone_axis(np.random.default_rng(seed))
    img = render(q_true, g, F2)
    xy, _ = kinematic_spots(q_true, g, F2, 3.0)
    q0 = _cpu.refine_orientation(q_true, *score_args(g, F2, img), STEP, 150, np.deg2rad(0.01))[0]
    return g, F2, sym_data("C2"), q_true, img, np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), q0


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_rescore_with_listed_alternatives_matches_reference(crystal, kind):
    """listed_dist > 0 (the grain-coherent search): a pseudo-symmetric orientation near a listed hypothesis is not
    refined again; the listed one stands for it, in the kernel as in the reference."""
    g, F2, sym, q_true, img, px, py, q0 = settled_pattern(crystal, 41 + kind)
    twin = _cpu.pseudo_symmetric(q0, kind)[0]
    cands = np.zeros((2, 4))
    cands[0] = _cpu.qmul(twin, _cpu.qexp(np.deg2rad([0.3, -0.2, 0.1])))  # the twin as a neighbour refined it
    base = (q0, cands, px, py, np.ones(len(px)), img, CENTER[0], CENTER[1], AFFINE, sym, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX,
            0.5, TOL_A, TOL_R, kind, np.deg2rad(5.0), STEP, STEP, 150, np.deg2rad(0.01))
    for listed in (0.0, np.deg2rad(2.0)):
        fast = call_unmutated(_cpu.rescore_one, *base, listed)
        slow = ref.rescore_one(*base, listed)
        assert fast[7].shape[0] == slow[7].shape[0]
        assert fast[1] == pytest.approx(slow[1], rel=1e-3)
        for k in (5, 6):
            assert fast[k] == pytest.approx(slow[k], abs=0.5)
    # with the listed twin standing in, the hypotheses hold it as given (not a refined copy next to it)
    fast = _cpu.rescore_one(*base, np.deg2rad(2.0))
    assert min(np.rad2deg(ref.sym_distance(h, cands[0], sym)) for h in fast[7]) < 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_anchor_neighbours_matches_reference(seed):
    """The windowed lookup of each target's anchors (grain-coherent search) against the all-pairs reference."""
    from stemgrains.index.api import _search_grid, anchor_neighbours

    rng = np.random.default_rng(seed)
    ny, nx = int(rng.integers(1, 14)), int(rng.integers(1, 17))
    reach = int(rng.integers(1, 4))
    anchors = _search_grid((ny, nx), reach + 1) | (rng.random(ny * nx) < 0.1)
    anchors &= rng.random(ny * nx) > 0.15  # some anchors dropped (their search failed)
    a_idx = np.flatnonzero(anchors)
    tg = np.flatnonzero(~anchors & (rng.random(ny * nx) < 0.8))
    for block in (None, 1, 2, 5):
        t, nb = anchor_neighbours((ny, nx), tg, a_idx, reach, block_rows=block)
        t_ref, nb_ref = ref.anchor_neighbours((ny, nx), tg, a_idx, reach, block_rows=block)
        np.testing.assert_array_equal(t, t_ref)
        np.testing.assert_array_equal(nb, nb_ref)
    if len(t):
        assert nb.shape[1] >= 1 and np.all(nb[:, 0] >= 0)


def test_anchor_neighbours_with_a_reach_beyond_the_map_and_in_blocks(monkeypatch):
    """A reach larger than the scan (the all-anchors branch) and targets split into blocks give the reference."""
    from stemgrains.index import api

    rng = np.random.default_rng(7)
    ny, nx = 9, 13
    anchors = np.flatnonzero(rng.random(ny * nx) < 0.2)
    tg = np.setdiff1d(np.arange(ny * nx), anchors)
    for reach, block in ((1, None), (2, None), (50, None), (10**6, None), (2, 3), (10**6, 4)):
        t_ref, nb_ref = ref.anchor_neighbours((ny, nx), tg, anchors, reach, block)
        t, nb = api.anchor_neighbours((ny, nx), tg, anchors, reach, block)
        np.testing.assert_array_equal(t, t_ref)
        np.testing.assert_array_equal(nb, nb_ref)
    monkeypatch.setattr(api, "_ANCHOR_BLOCK", 30)  # blocks of a few targets
    for reach in (1, 2, 10**6):
        t_ref, nb_ref = ref.anchor_neighbours((ny, nx), tg, anchors, reach)
        t, nb = api.anchor_neighbours((ny, nx), tg, anchors, reach)
        np.testing.assert_array_equal(t, t_ref)
        np.testing.assert_array_equal(nb, nb_ref)


def test_c_axis_apart_matches_orix_and_ignores_the_pseudo_symmetric_variants():
    """Whether two c axes differ as lines, up to the sign of their beam components: against orix on random
    orientations; the beam twin and the 60° turn about c never differ (the basal planes' trace and inclination
    are theirs too), a 10° tilt of c does."""
    rng = np.random.default_rng(77)
    dist = np.deg2rad(5.0)
    zv = ref.Vector3d.zvector()
    for _ in range(200):
        q1, q2 = unit_quaternions(rng), unit_quaternions(rng)
        if rng.random() < 0.5:  # many pairs near the threshold
            q2 = _cpu.qmul(q1, _cpu.qexp(np.deg2rad(rng.uniform(-6, 6, 3))))
        c1, c2 = (~Rotation(q1)) * zv, (~Rotation(q2)) * zv
        angles = [float(c1.angle_with(v)[0]) for v in (c2, ref.Vector3d(c2.data * [1, 1, -1]))]
        expect = min(min(a, np.pi - a) for a in angles) > dist
        if abs(min(min(a, np.pi - a) for a in angles) - dist) > 1e-9:
            assert bool(_cpu.c_axis_apart(q1, q2, dist)) == expect
    for q in unit_quaternions(rng, 20):
        for variant in _cpu.pseudo_symmetric(q, True):
            assert not _cpu.c_axis_apart(q, variant, dist)
        tilted = (Rotation.from_axes_angles([1, 0, 0], np.deg2rad(10.0)) * Rotation(q)).data[0]  # c turned 10° (crystal x)
        assert _cpu.c_axis_apart(q, tilted, dist)


@pytest.mark.parametrize("fit_power", [0.0, 1.0])
def test_c_axis_reliability_matches_reference(crystal, fit_power):
    """R_c (rescore_one with c_dist > 0) against the reference: the hypotheses whose c axis differs enter it, the
    pseudo-symmetric ones do not; NaN without c_dist; the chunk kernel returns the same."""
    g, F2, sym, q_true, img, px, py, q0 = settled_pattern(crystal, 55)
    cands = np.zeros((3, 4))
    cands[0] = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad([0.0, 0.0, 20.0])))  # turned about the beam
    cands[1] = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad([12.0, 0.0, 0.0])))  # c tilted
    base = (q0, cands, px, py, np.ones(len(px)), img, CENTER[0], CENTER[1], AFFINE, sym, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX,
            0.5, TOL_A, TOL_R, True, np.deg2rad(5.0), STEP, STEP, 150, np.deg2rad(0.01), 0.0, fit_power)
    fast = call_unmutated(_cpu.rescore_one, *base, np.deg2rad(5.0))
    slow = ref.rescore_one(*base, np.deg2rad(5.0))
    assert fast[9] == pytest.approx(slow[9], abs=0.5)
    assert fast[9] >= fast[5] - 1e-9  # fewer competitors than R
    assert np.isnan(_cpu.rescore_one(*base, 0.0)[9]) and np.isnan(ref.rescore_one(*base, 0.0)[9])
    n = 2
    out = _cpu.rescore_chunk(np.tile(q0, (n, 1)), np.tile(cands, (n, 1, 1)), np.array([1, 0], bool),
                             np.tile(np.pad(np.stack([px, py, np.ones(len(px))], 1), ((0, 2), (0, 0)))[None], (n, 1, 1)),
                             np.full(n, len(px)), np.tile(img, (n, 1, 1)), np.tile(CENTER, (n, 1)), AFFINE, sym, g, F2, LAM,
                             SIGMA_S, S_WIN, Q_MIN, Q_MAX, 0.5, TOL_A, TOL_R, True, np.deg2rad(5.0), STEP, STEP, 150,
                             np.deg2rad(0.01), 2, 0.0, fit_power, np.deg2rad(5.0))
    assert out[9][0] == pytest.approx(fast[9], abs=1e-9) and out[9][1] == 0.0


def test_c_rival_past_matches_reference():
    """c_rival_past against the reference on random hypothesis lists, many with c axes near the 5° cut: the first
    row past n_out whose c axis is apart from the solution's, only where none of rows 1 … n_out − 1 is."""
    rng = np.random.default_rng(83)
    dist = np.deg2rad(5.0)
    found = kept = 0
    for _ in range(150):
        q = unit_quaternions(rng)
        h = int(rng.integers(1, 9))
        hq = np.empty((h, 4))
        hq[0] = q
        for j in range(1, h):
            kind = rng.random()
            if kind < 0.4:  # c-same: a pseudo-symmetric variant
                variants = _cpu.pseudo_symmetric(q, True)
                hq[j] = variants[int(rng.integers(len(variants)))]
            elif kind < 0.8:  # near the cut
                hq[j] = _cpu.qmul(q, _cpu.qexp(np.deg2rad(rng.uniform(-7, 7, 3))))
            else:
                hq[j] = unit_quaternions(rng)
        for n_out in (1, 2, 3, 5):
            for c_dist in (0.0, dist):
                fast = int(_cpu.c_rival_past(q, hq, n_out, c_dist))
                assert fast == ref.c_rival_past(q, hq, n_out, c_dist), (n_out, c_dist)
                if c_dist > 0 and n_out >= 2 and h > n_out:
                    found += fast >= 0
                    kept += fast < 0 and any(ref.c_axes_apart(q, x, c_dist) for x in hq[1:n_out])
    assert found >= 10 and kept >= 10  # both branches exercised


@pytest.mark.parametrize("n_out", [2, 4])
def test_rescore_chunk_returns_the_c_axis_rival_the_list_leaves_out(crystal, n_out):
    """Hypotheses turned about c (c-same: like the beam twin and the 60° turn of a real phase, they leave the basal
    planes as they are) rank right after the solution; with few rows kept the c-tilted hypothesis that sets R_c
    falls off the list, and a grain-coherent target settled among these hypotheses would not see it. rescore_chunk
    returns it apart; the list is rescore_one's first rows; with room for it in the list, none is returned."""
    g, F2, sym, q_true, img, px, py, q0 = settled_pattern(crystal, 55)
    cands = np.zeros((4, 4))
    for i, turn in enumerate((-3.0, 3.0, 4.5)):  # turned about c: c-same, near the solution, so scoring high
        cands[i] = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad([0.0, 0.0, turn])))
    cands[3] = _cpu.qmul(q_true, _cpu.qexp(np.deg2rad([25.0, 0.0, 0.0])))  # c tilted
    c_dist = np.deg2rad(5.0)
    args = (sym, g, F2, LAM, SIGMA_S, S_WIN, Q_MIN, Q_MAX, 0.5, TOL_A, TOL_R, True, np.deg2rad(5.0), STEP, STEP, 150,
            np.deg2rad(0.01))
    one = _cpu.rescore_one(q0, cands, px, py, np.ones(len(px)), img, CENTER[0], CENTER[1], AFFINE, *args, 0.0, 0.0, c_dist)
    hq, hQ = one[7], one[8]
    apart = [j for j in range(1, len(hq)) if _cpu.c_axis_apart(hq[0], hq[j], c_dist)]
    assert apart and apart[0] >= n_out  # the case this is about: crowded out by the c-same alternatives

    def chunk(n_keep, dist=c_dist):
        out = _cpu.rescore_chunk(np.stack([q0, q0]), np.stack([cands, cands]), np.array([True, False]),
                                 np.tile(np.pad(np.stack([px, py, np.ones(len(px))], 1), ((0, 2), (0, 0)))[None], (2, 1, 1)),
                                 np.full(2, len(px)), np.stack([img, img]), np.tile(CENTER, (2, 1)), AFFINE, *args, n_keep, 0.0,
                                 0.0, dist)
        assert len(out) == 11 and not out[10][1].any()  # a masked pattern has none
        return out[7][0], out[8][0], out[10][0]

    lq, lQ, rival = chunk(n_out)
    np.testing.assert_array_equal(lq, hq[:n_out])
    np.testing.assert_array_equal(lQ, hQ[:n_out])
    np.testing.assert_array_equal(rival, hq[apart[0]])
    assert not chunk(apart[0] + 1)[2].any()  # listed: not returned apart
    assert not chunk(n_out, 0.0)[2].any()  # no c axis (cubic phases): none
