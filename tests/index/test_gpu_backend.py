"""GPU backend (numba.cuda, :mod:`stemgrains.index._gpu`) against slow references and the CPU kernels.

Tests marked ``gpu`` need CUDA: a device, or numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set before numba
is imported). Without either they are skipped here, and ``test_gpu_kernels_under_cuda_simulator`` reruns them in a
subprocess under the simulator, so CPU-only CI still executes every GPU kernel. The simulator says nothing about
GPU speed.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stemgrains.errors import StemgrainsError
from stemgrains.index import _cpu

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


def _cuda_ready() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # numba without CUDA support
        return False


CUDA = _cuda_ready()  # a device, or the simulator
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device (the simulator run covers these tests)")
BACKENDS = ["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, needs_cuda])]
TOL_SCORE = 1e-9  # scores: only the order of floating-point sums differs
TOL_DEG = 0.1  # orientations after refinement
TOL_REFINED = 1e-6  # relative, scores after refinement


def _gpu():
    from stemgrains.index import _gpu

    return _gpu


# ----------------------------------------------------------------------------------------------------------------
# random inputs
# ----------------------------------------------------------------------------------------------------------------
def _random_peaks(rng, n, max_peaks, q_max=1.2):
    peaks = np.zeros((n, max_peaks, 3))
    counts = rng.integers(3, max_peaks + 1, size=n)
    for i in range(n):
        c = counts[i]
        r = rng.uniform(0.2, q_max, c)
        t = rng.uniform(-np.pi, np.pi, c)
        peaks[i, :c, 0] = r * np.cos(t)
        peaks[i, :c, 1] = r * np.sin(t)
        peaks[i, :c, 2] = rng.uniform(0.2, 1.0, c)
    return peaks, counts


def _random_templates(rng, n_templates, max_spots, q_max=1.2):
    offsets = [0]
    rs, ts, ws = [], [], []
    for _ in range(n_templates):
        m = int(rng.integers(0, max_spots + 1))
        r = np.sort(rng.uniform(0.2, q_max, m))
        rs.append(r)
        ts.append(rng.uniform(-np.pi, np.pi, m))
        ws.append(rng.uniform(0.1, 1.0, m))
        offsets.append(offsets[-1] + m)
    w = np.concatenate(ws)
    norms = np.array([np.sqrt(np.sum(x**2)) for x in ws])
    return np.array(offsets), np.concatenate(rs), np.concatenate(ts), w, norms


# ----------------------------------------------------------------------------------------------------------------
# slow, obvious references
# ----------------------------------------------------------------------------------------------------------------
def _ref_histogram(pr, pt, pa, sr, st, sw, sigma_q, n_bins):
    """Σ_p Σ_j a_p w_j k(dr) k(arc) over the 7 bins nearest γ = θ_j − θ_p, k(d) = (1 − d²/c²)² for d < c = 3.5σ."""
    hist = np.zeros(n_bins)
    bw = 2 * np.pi / n_bins
    c2 = (3.5 * sigma_q) ** 2
    for p in range(len(pr)):
        for j in range(len(sr)):
            dr = pr[p] - sr[j]
            if dr * dr > c2:
                continue
            x = ((st[j] - pt[p]) % (2 * np.pi)) / bw
            c = int(x + 0.5)
            for k in range(c - 3, c + 4):
                arc = 0.5 * (pr[p] + sr[j]) * (k - x) * bw
                if arc * arc < c2:
                    hist[k % n_bins] += pa[p] * sw[j] * (1 - dr * dr / c2) ** 2 * (1 - arc * arc / c2) ** 2
    return hist


def _ref_coarse(px, py, pa, cand, offsets, sp_r, sp_t, sp_w, sp_norm, sigma_q, n_bins, per_template, min_sep):
    r = np.hypot(px, py)
    t = np.arctan2(py, px)
    a_norm = np.linalg.norm(pa)
    out = []  # (template, bin, γ, score) per kept angle
    for tpl in cand:
        s0, s1 = offsets[tpl], offsets[tpl + 1]
        if s1 == s0:
            continue
        h = _ref_histogram(r, t, pa, sp_r[s0:s1], sp_t[s0:s1], sp_w[s0:s1], sigma_q, n_bins)
        kept = []
        for k in np.argsort(-h, kind="stable"):
            if all(min(abs(k - q), n_bins - abs(k - q)) >= min_sep for q in kept):
                kept.append(k)
            if len(kept) == per_template:
                break
        for k in kept:
            a, b, c = h[(k - 1) % n_bins], h[k], h[(k + 1) % n_bins]
            den = a - 2 * b + c
            off = 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
            out.append((tpl, k, (k + off) * 2 * np.pi / n_bins, h[k] / (a_norm * sp_norm[tpl])))
    return out


def _ref_image_score(q, g_c, F2, lam, sigma_s, q_min, q_max, power, img, center, affine):
    """Σ_j b_j · bilinear(img, x_j) / ‖b‖ over the reflections in the annulus within 5σ_s of the Ewald sphere."""
    g = g_c @ _cpu.qmatrix(np.asarray(q, float))  # sample frame: g_s = Rᵀ g_c
    r2 = g[:, 0] ** 2 + g[:, 1] ** 2
    s = -g[:, 2] - 0.5 * lam * (r2 + g[:, 2] ** 2)
    e = s**2 / (2 * sigma_s**2)
    keep = (r2 >= q_min**2) & (r2 <= q_max**2) & (e <= 12.5)
    b = (F2[keep] * np.exp(-e[keep])) ** power
    if not np.sum(b**2) > 0:
        return 0.0
    col = center[1] + affine[0, 0] * g[keep, 0] + affine[0, 1] * g[keep, 1]
    row = center[0] + affine[1, 0] * g[keep, 0] + affine[1, 1] * g[keep, 1]
    ky, kx = img.shape
    inside = (row >= 0) & (col >= 0) & (row <= ky - 1) & (col <= kx - 1)
    from scipy.ndimage import map_coordinates

    v = map_coordinates(img.astype(float), [row[inside], col[inside]], order=1, mode="nearest")
    return float(np.sum(b[inside] * v) / np.sqrt(np.sum(b**2)))


def _angle_deg(q1, q2, sym=None):
    sym = np.array([[1.0, 0, 0, 0]]) if sym is None else sym
    return math.degrees(_cpu.sym_distance(np.asarray(q1, float), np.asarray(q2, float), sym))


# ----------------------------------------------------------------------------------------------------------------
# kernels vs references, both backends
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_coarse_search_matches_reference(backend):
    rng = np.random.default_rng(11)
    n, n_bins, per_template, min_sep, sigma = 3, 90, 2, 5, 0.03
    peaks, counts = _random_peaks(rng, n, 6)
    offsets, sp_r, sp_t, sp_w, sp_norm = _random_templates(rng, 7, 8)
    cands = np.stack([rng.choice(7, size=4, replace=False) for _ in range(n)])
    if backend == "cpu":
        got = [
            _cpu.coarse_search(*_sorted_polar(peaks[i, : counts[i]]), cands[i], offsets, sp_r, sp_t, sp_w, sp_norm,
                               sigma, n_bins, per_template, min_sep)
            for i in range(n)
        ]
    else:
        ts, gs, ss = _gpu().coarse_search_gpu(peaks, counts, cands, offsets, sp_r, sp_t, sp_w, sp_norm, sigma, n_bins,
                                               per_template, min_sep)
        got = [(ts[i], gs[i], ss[i]) for i in range(n)]
    n_checked = 0
    for i in range(n):
        c = counts[i]
        ref = _ref_coarse(peaks[i, :c, 0], peaks[i, :c, 1], peaks[i, :c, 2], cands[i], offsets, sp_r, sp_t, sp_w,
                          sp_norm, sigma, n_bins, per_template, min_sep)
        ts, gs, ss = got[i]
        kept = ts >= 0
        assert kept.sum() == len(ref)
        for (tpl, _, gamma, score), t, g, s in zip(ref, ts[kept], gs[kept], ss[kept]):
            assert t == tpl
            assert s == pytest.approx(score, abs=TOL_SCORE)
            if score > 1e-6:  # the angle of an empty histogram is arbitrary
                assert g == pytest.approx(gamma, abs=1e-9)
                n_checked += 1
    assert n_checked >= 6


def _sorted_polar(pk):
    r = np.sqrt(pk[:, 0] ** 2 + pk[:, 1] ** 2)
    o = np.argsort(r, kind="stable")
    return r[o], np.arctan2(pk[o, 1], pk[o, 0]), pk[o, 2].copy()


def _model(seed=5, n_refl=60):
    rng = np.random.default_rng(seed)
    g_c = rng.normal(size=(n_refl, 3))
    g_c *= rng.uniform(0.3, 1.3, (n_refl, 1)) / np.linalg.norm(g_c, axis=1, keepdims=True)
    F2 = rng.uniform(0.5, 4.0, n_refl)
    return g_c, F2


MODEL = dict(lam=0.0197, sigma_s=0.05, q_min=0.1, q_max=1.4, power=0.5)
DET = 64
AFFINE = np.eye(2) * (DET / 2 - 2) / MODEL["q_max"]  # sample q → detector (dcol, drow), px per 1/Å


def _image_of(q, g_c, F2, rng, center, noise=0.2):
    """A processed image: Gaussian spots (σ = 1 px) at the kinematic spots of orientation q, plus noise."""
    g = g_c @ _cpu.qmatrix(np.asarray(q, float))
    r2 = g[:, 0] ** 2 + g[:, 1] ** 2
    s = -g[:, 2] - 0.5 * MODEL["lam"] * (r2 + g[:, 2] ** 2)
    inten = F2 * np.exp(-(s**2) / (2 * MODEL["sigma_s"] ** 2))
    keep = (inten > 0.05 * inten.max()) & (r2 > MODEL["q_min"] ** 2) & (r2 < MODEL["q_max"] ** 2)
    rr, cc = np.mgrid[:DET, :DET]
    img = rng.uniform(0, noise, (DET, DET))
    peaks = []
    for (x, y), a in zip(g[keep, :2], np.sqrt(inten[keep])):
        col = center[1] + AFFINE[0, 0] * x + AFFINE[0, 1] * y
        row = center[0] + AFFINE[1, 0] * x + AFFINE[1, 1] * y
        img += a * np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / 2.0)
        peaks.append((x, y, a))
    return img.astype(np.float32), np.array(peaks).reshape(-1, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_score_matches_reference(backend):
    rng = np.random.default_rng(2)
    g_c, F2 = _model()
    qs = rng.normal(size=(6, 4))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    centers = np.array([[32.0, 31.5], [31.2, 32.7], [33.0, 30.0]])
    imgs = np.stack([_image_of(q, g_c, F2, rng, c)[0] for q, c in zip(qs[:3], centers)])
    which = np.array([0, 1, 2, 0, 1, 2])  # the true orientation for 0..2, unrelated ones for 3..5
    args = (g_c, F2, MODEL["lam"], MODEL["sigma_s"], MODEL["q_min"], MODEL["q_max"], MODEL["power"])
    if backend == "cpu":
        got = [_cpu.image_score(q, *args, imgs[i], centers[i, 0], centers[i, 1], AFFINE) for q, i in zip(qs, which)]
    else:
        got = _gpu().image_score_gpu(qs, which, imgs, centers, AFFINE, *args)
    want = [_ref_image_score(q, *args, imgs[i], centers[i], AFFINE) for q, i in zip(qs, which)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)  # images are float32
    assert min(want[:3]) > 2 * max(want[3:])  # the test data discriminate


# ----------------------------------------------------------------------------------------------------------------
# GPU vs CPU: refinement and a whole chunk
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@needs_cuda
def test_refinement_matches_cpu():
    rng = np.random.default_rng(8)
    g_c, F2 = _model(seed=9, n_refl=80)
    truth = rng.normal(size=(3, 4))
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    centers = np.array([[32.0, 32.0], [31.5, 32.5], [32.2, 31.1]])
    imgs = np.stack([_image_of(q, g_c, F2, rng, c, noise=0.05)[0] for q, c in zip(truth, centers)])
    # start about 1° away from the truth
    q0 = np.stack([_cpu.qmul(q, _cpu.qexp(rng.normal(size=3) * np.deg2rad(0.6))) for q in truth])
    args = (g_c, F2, MODEL["lam"], MODEL["sigma_s"], MODEL["q_min"], MODEL["q_max"], MODEL["power"])
    step, max_eval, xtol = np.deg2rad(1.5), 120, np.deg2rad(0.01)
    gq, gs = _gpu().refine_gpu(q0, imgs, centers, AFFINE, *args, step, max_eval, xtol)
    for i in range(3):
        cq, cs, _ = _cpu.refine_orientation(q0[i], *args, imgs[i], centers[i, 0], centers[i, 1], AFFINE, step,
                                            max_eval, xtol)
        assert _angle_deg(gq[i], cq) < TOL_DEG
        assert gs[i] == pytest.approx(cs, rel=1e-9)
        assert cs >= _cpu.image_score(q0[i], *args, imgs[i], centers[i, 0], centers[i, 1], AFFINE)  # it improved


def _au_chunk_arrays() -> dict:
    """Au library (5°), processed images and peak lists of random orientations from its own kinematic model (plus
    one empty pattern), and the prefilter's candidates: the arguments of index_chunk, by name."""
    from stemgrains.crystal import load_phase
    from stemgrains.data import electron_wavelength
    from stemgrains.index.api import IndexParams
    from stemgrains.library.templates import HARMONICS, build_library

    repo = Path(__file__).resolve().parents[2]
    prm = IndexParams(step_deg=5.0, k_max=1.2, excitation_error_sigma=0.015)
    lib = build_library(load_phase(repo / "data_samples" / "au.cif"), step_deg=5.0, k_max=1.2)
    lam = electron_wavelength(300.0)
    rng = np.random.default_rng(4)
    n = 3
    truth = rng.normal(size=(n, 4))
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    g_c = np.ascontiguousarray(lib.refl.g)
    F2 = np.ascontiguousarray(lib.refl.intensity)
    peaks = np.zeros((n + 1, 48, 3))
    counts = np.zeros(n + 1, np.int64)  # the last pattern is empty (vacuum): not indexed
    centers = np.full((n + 1, 2), DET / 2) + rng.uniform(-1, 1, (n + 1, 2))
    affine = np.eye(2) * (DET / 2 - 2) / 1.2
    rr, cc = np.mgrid[:DET, :DET]
    imgs = np.zeros((n + 1, DET, DET), np.float32)
    for i, q in enumerate(truth):
        g = g_c @ _cpu.qmatrix(q)
        r2 = g[:, 0] ** 2 + g[:, 1] ** 2
        s = -g[:, 2] - 0.5 * lam * (r2 + g[:, 2] ** 2)
        inten = F2 * np.exp(-(s**2) / (2 * 0.015**2))
        keep = np.flatnonzero((inten > 0.02 * inten.max()) & (r2 > 0.2**2) & (r2 < 1.2**2))[:48]
        counts[i] = len(keep)
        xy = g[keep, :2] + rng.normal(scale=0.003, size=(len(keep), 2))
        peaks[i, : len(keep), :2] = xy
        peaks[i, : len(keep), 2] = np.sqrt(inten[keep])
        for (x, y), a in zip(xy, np.sqrt(inten[keep])):
            col, row = centers[i, 1] + affine[0, 0] * x, centers[i, 0] + affine[1, 1] * y
            imgs[i] += a * np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / 2.0)
    harmonics = np.asarray(HARMONICS, dtype=np.float64)
    desc = _cpu.peak_radial_descriptors(peaks, counts, float(lib.params["radial_bin_width"]),
                                        lib.radial.shape[1] // len(harmonics), harmonics)
    cands = np.argsort(-(desc @ lib.radial.T), axis=1, kind="stable")[:, :6]
    return dict(
        peaks=peaks, counts=counts, imgs=imgs, centers=centers, affine=affine,
        cands=np.ascontiguousarray(cands, dtype=np.int64), base_q=lib.base_quaternions, offsets=lib.offsets,
        sp_r=lib.spot_r, sp_t=lib.spot_theta, sp_w=lib.spot_w, sp_norm=lib.spot_norm, sym=lib.symmetry_quaternions,
        g_c=g_c, F2=F2, lam=lam, sigma_s=prm.excitation_error_sigma, sigma_coarse=prm.sigma_coarse, q_min=0.2,
        q_max=1.2, power=float(lib.params["intensity_power"]), n_bins=180, per_template=2, n_keep=6, n_refine=2,
        n_best=3, rel_dist=np.deg2rad(prm.reliability_distance_deg), distinct_dist=np.deg2rad(2.5),
        init_step=np.deg2rad(2.5), max_eval=80, xtol=np.deg2rad(0.01), min_peaks=4, truth=truth,
    )


INDEX_CHUNK_ARGS = (
    "peaks", "counts", "imgs", "centers", "affine", "cands", "base_q", "offsets", "sp_r", "sp_t", "sp_w", "sp_norm",
    "sym", "g_c", "F2", "lam", "sigma_s", "sigma_coarse", "q_min", "q_max", "power", "n_bins", "per_template",
    "n_keep", "n_refine", "n_best", "rel_dist", "distinct_dist", "init_step", "max_eval", "xtol", "min_peaks",
)


#: where test_gpu_kernels_under_cuda_simulator saves _au_chunk_arrays for the simulator run it starts
AU_CHUNK_ENV = "STEMGRAINS_TEST_AU_CHUNK"


@pytest.fixture(scope="module")
def au_chunk(tmp_path_factory):
    if SIMULATOR and os.environ.get(AU_CHUNK_ENV):
        with np.load(os.environ[AU_CHUNK_ENV]) as z:  # built by the (plain) process that started this one
            d = {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    elif SIMULATOR:
        # building a library reads py4DSTEM's scattering-factor table, and importing py4DSTEM fails under the
        # simulator (pylops defines CUDA kernels with options the simulator lacks): build it in a plain subprocess
        path = tmp_path_factory.mktemp("au") / "chunk.npz"
        code = (f"import sys, numpy as np; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import test_gpu_backend as t; np.savez({str(path)!r}, **t._au_chunk_arrays())")
        proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NUMBA_ENABLE_CUDASIM="0"),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with np.load(path) as z:
            d = {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    else:
        d = _au_chunk_arrays()
    return tuple(d[k] for k in INDEX_CHUNK_ARGS), d["truth"], d["sym"]


@pytest.mark.gpu
@needs_cuda
def test_index_chunk_matches_cpu(au_chunk):
    args, truth, sym = au_chunk
    cpu = _cpu.index_chunk(*args)
    gpu = _gpu().index_chunk_gpu(*args)
    assert [a.shape for a in gpu] == [a.shape for a in cpu]
    n = len(truth)
    for i in range(n):
        assert _angle_deg(gpu[0][i], cpu[0][i], sym) < TOL_DEG
        # refined scores: Nelder-Mead's steps follow the last bits of each score (FMA contraction differs between
        # LLVM's CPU code, the device code and the simulator's Python), so they agree to TOL_REFINED, not to 1e-12
        assert gpu[1][i] == pytest.approx(cpu[1][i], rel=TOL_REFINED, abs=1e-9)
        assert gpu[2][i] == pytest.approx(cpu[2][i], abs=1e-6)
        for k in range(cpu[4].shape[1]):
            assert gpu[4][i, k] == pytest.approx(cpu[4][i, k], rel=TOL_REFINED, abs=1e-9)
            if cpu[4][i, k] > 0:
                assert _angle_deg(gpu[3][i, k], cpu[3][i, k], sym) < TOL_DEG
    # the vacuum pattern: identity, zero scores, on both
    np.testing.assert_array_equal(gpu[0][n], [1, 0, 0, 0])
    assert gpu[1][n] == 0 and cpu[1][n] == 0
    # and the chunk is indexed right, not just alike (the CPU path's own accuracy on this data)
    assert sum(_angle_deg(cpu[0][i], truth[i], sym) < 2.0 for i in range(n)) >= 2


# ----------------------------------------------------------------------------------------------------------------
# no device
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(CUDA, reason="a CUDA device (or the simulator) is present")
def test_gpu_backend_without_device_is_a_clear_error():
    from stemgrains.data import Calibration, Dataset4D
    from stemgrains.index.api import index_orientations

    ds = Dataset4D(np.zeros((2, 2, 16, 16), np.uint16), Calibration(q_pixel_size=0.02))
    with pytest.raises(StemgrainsError, match=r"no CUDA device.*use the 'cpu' backend"):
        index_orientations(ds, [], backend="gpu")
    with pytest.raises(StemgrainsError, match="no CUDA device"):
        import stemgrains.index._gpu  # noqa: F401


@pytest.mark.slow
@pytest.mark.skipif(CUDA or SIMULATOR, reason="the GPU tests run directly here")
def test_gpu_kernels_under_cuda_simulator(tmp_path):
    """Run the tests marked ``gpu`` of this file in a subprocess under numba's CUDA simulator. Their Au chunk is
    built here (the simulator process cannot import py4DSTEM; it would start a third interpreter to build it)."""
    chunk = tmp_path / "chunk.npz"
    np.savez(chunk, **_au_chunk_arrays())
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", **{AU_CHUNK_ENV: str(chunk)})
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-m", "gpu", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    summary = out.strip().splitlines()[-1]
    n_gpu = 4  # coarse[gpu], image_score[gpu], refinement, index_chunk
    assert re.search(rf"\b{n_gpu} passed", summary), summary
    assert "skipped" not in summary and "failed" not in summary, summary
