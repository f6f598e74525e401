"""Bloch-wave intensities (stemgrains.index.dynamical): the fast propagators against the dense matrix exponential,
against py4DSTEM's independent Bloch-wave code, conservation of intensity, and the score and its refinement on a
pattern with a known orientation."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.crystal import load_phase
from stemgrains.crystal.spots import rotation_matrices
from stemgrains.crystal.symmetry import disorientation_angle, quaternion_multiply
from stemgrains.errors import ParameterError
from stemgrains.index import _cpu
from stemgrains.index.dynamical import (GrainPatterns, bloch_intensities, bloch_intensities_reference, bloch_model,
                                        grain_score, refine_grain, spot_image_score)
from stemgrains.library.templates import build_library
from stemgrains.simulate import sample_cif

WAVELENGTH_300KV = 0.019687  # Å


@pytest.fixture(scope="module")
def au():
    return load_phase(sample_cif("au"))


@pytest.fixture(scope="module")
def au_model(au):
    return bloch_model(au, 300.0, 1.2, WAVELENGTH_300KV)


def _random_quaternions(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q * np.sign(q[:, :1])


def _R(q: np.ndarray) -> np.ndarray:
    return rotation_matrices(np.asarray(q, dtype=np.float64).reshape(4)).reshape(3, 3)


@pytest.mark.parametrize("cif,k_max", [("au", 1.2), ("na_beta2_alumina", 0.8)])
def test_fast_propagators_match_the_dense_exponential(cif, k_max):
    model = bloch_model(load_phase(sample_cif(cif)), 300.0, k_max, WAVELENGTH_300KV)
    for q in _random_quaternions(3, seed=7):
        thick = np.array([50.0, 170.0, 400.0])
        qxy, I = bloch_intensities(model, _R(q), thick, s_max=0.04)  # thickness series: eigen-decomposition
        qxy_r, I_r = bloch_intensities_reference(model, _R(q), thick, s_max=0.04)
        np.testing.assert_allclose(qxy, qxy_r)
        np.testing.assert_allclose(I, I_r, atol=1e-9)
        assert I.shape == (3, len(qxy))
        for j, tt in enumerate(thick):  # one thickness: the propagator on e₀
            np.testing.assert_allclose(bloch_intensities(model, _R(q), tt, s_max=0.04)[1][0], I_r[j], atol=1e-9)


def test_intensity_conserved_without_absorption(au):
    model = bloch_model(au, 300.0, 1.2, WAVELENGTH_300KV, absorption=0.0)
    hkl_all = np.vstack([[0, 0, 0], model.hkl])
    for q in _random_quaternions(2, seed=3):
        hkl = hkl_all[:40]
        from scipy.linalg import expm

        from stemgrains.index import dynamical as D

        hkl_b, _, s = D._beams(model, _R(q), 0.0, hkl)
        psi = expm(D._structure_matrix(model, hkl_b, s) * (2j * np.pi * 200.0 * model.wavelength / 2.0))[:, 0]
        assert np.sum(np.abs(psi) ** 2) == pytest.approx(1.0, abs=1e-9)  # unitary without absorption
        _, I = bloch_intensities(model, _R(q), [200.0], hkl=hkl)
        assert I.sum() == pytest.approx(1.0 - abs(psi[0]) ** 2, abs=1e-9)
    absorbing = bloch_model(au, 300.0, 1.2, WAVELENGTH_300KV, absorption=0.1)
    q = _random_quaternions(1, seed=5)[0]
    _, I0 = bloch_intensities(model, _R(q), [300.0])
    _, I1 = bloch_intensities(absorbing, _R(q), [300.0])
    assert I1.sum() < I0.sum()  # absorption removes intensity from the diffracted beams


def test_matches_py4dstem_bloch_wave(au):
    """The same beams through py4DSTEM's independent Bloch-wave code (Lobato factors with 0.1 absorption)."""
    pytest.importorskip("py4DSTEM")
    from stemgrains.simulate._py4dstem import py4dstem_crystal, py4dstem_orientation_matrix

    import warnings

    xt = py4dstem_crystal(au)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xt.calculate_structure_factors(1.5)
        xt.setup_diffraction(300e3)
        xt.calculate_dynamical_structure_factors(300e3, method="Lobato-absorptive", k_max=3.0, tol_structure_factor=0.0)
    model = bloch_model(au, 300.0, 1.5, xt.wavelength)
    for q in _random_quaternions(2, seed=11):
        M = py4dstem_orientation_matrix(q)
        beams = xt.generate_diffraction_pattern(orientation_matrix=M, sigma_excitation_error=0.02, k_max=1.5, tol_intensity=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = xt.generate_dynamical_diffraction_pattern(beams, thickness=200.0, zone_axis_cartesian=M[:, 2]).data
        hkl = np.column_stack([d["h"], d["k"], d["l"]]).astype(np.int64)
        order = np.argsort(np.any(hkl != 0, axis=1), kind="stable")  # 000 first
        hkl, I_p, qxy_p = hkl[order], np.asarray(d["intensity"])[order], np.column_stack([d["qy"], d["qx"]])[order]
        qxy, I = bloch_intensities(model, _R(q), [200.0], hkl=hkl)
        np.testing.assert_allclose(qxy, qxy_p[1:], atol=1e-9)  # py4DSTEM's qx is our qy (rows)
        # our structure factors carry the CIF's Debye–Waller factors, py4DSTEM's Lobato ones do not: ~1 % apart
        np.testing.assert_allclose(I[0], I_p[1:], atol=2e-2 * I_p[1:].max())
        assert np.corrcoef(I[0], I_p[1:])[0, 1] > 0.999


def test_bad_inputs_refused(au, au_model):
    with pytest.raises(ParameterError, match="thickness"):
        bloch_intensities(au_model, np.eye(3), [-1.0])
    with pytest.raises(ParameterError, match="rotation matrix"):
        bloch_intensities(au_model, np.ones((3, 3)), 100.0)
    with pytest.raises(ParameterError, match="rotation matrix"):
        bloch_intensities_reference(au_model, np.eye(4), 100.0)
    with pytest.raises(ParameterError, match="k_max must be a positive"):
        bloch_model(au, 300.0, 0.0, WAVELENGTH_300KV)
    with pytest.raises(ParameterError, match="below the first reflection"):
        bloch_model(au, 300.0, 0.1)
    with pytest.raises(ParameterError, match="1–3000 kV"):
        bloch_model(au, 300000.0, 1.2)
    with pytest.raises(ParameterError, match="does not match"):
        bloch_model(au, 200.0, 1.2, WAVELENGTH_300KV)
    with pytest.raises(ParameterError, match="absorption"):
        bloch_model(au, 300.0, 1.2, absorption=-0.5)
    with pytest.raises(ParameterError, match="orix Phase"):
        bloch_model(str(sample_cif("au")), 300.0, 1.2)
    assert bloch_model(au, 300.0, 1.2).wavelength == pytest.approx(WAVELENGTH_300KV, rel=1e-4)
    for bad_R in (np.eye(2), np.ones(4), np.stack([np.eye(3)] * 5), 2 * np.eye(3), np.full((3, 3), np.nan)):
        with pytest.raises(ParameterError, match="rotation matrix"):
            bloch_intensities(au_model, bad_R, 200.0)
    with pytest.raises(ParameterError, match="s_max"):
        bloch_intensities(au_model, np.eye(3), 200.0, s_max=-1.0)
    for bad_t in ([], np.full((2, 2), 100.0)):
        with pytest.raises(ParameterError, match="1-D list"):
            bloch_intensities(au_model, np.eye(3), bad_t)
    with pytest.raises(ParameterError, match="000"):
        bloch_intensities(au_model, np.eye(3), 100.0, hkl=[[1, 1, 1]])


def test_spot_image_score_is_the_kinematic_image_score(au):
    """With the kinematic weights b = (F² e^{−s²/2σ²})^p, the score of given spots is _cpu.image_score."""
    lib = build_library(au, step_deg=5.0, k_max=1.2, accelerating_voltage_kV=300.0, excitation_error_sigma=0.02)
    rng = np.random.default_rng(2)
    img = rng.random((96, 96))
    affine = np.array([[30.0, 2.0], [-1.0, 31.0]])
    center = np.array([47.3, 48.1])
    for q in _random_quaternions(3, seed=1):
        R = _R(q)
        g = lib.refl.g @ R
        s = -g[:, 2] - 0.5 * WAVELENGTH_300KV * np.sum(g * g, axis=1)
        keep = s * s / (2 * 0.02**2) <= 12.5
        b = (lib.refl.intensity[keep] * np.exp(-s[keep] ** 2 / (2 * 0.02**2))) ** 0.5
        ours = spot_image_score(g[keep, :2], b[None], img, center, affine, 0.1, 1.2)[0]
        ref = _cpu.image_score(q, np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity),
                               WAVELENGTH_300KV, 0.02, 0.1, 1.2, 0.5, img, center[0], center[1], affine)
        assert ours == pytest.approx(ref, rel=1e-9)


def _rendered(model, q, thickness, shape=(128, 128), px_per_inv_A=50.0):
    """Gaussian spots of the Bloch intensities of q (amplitudes) on a blank image: a pattern with known truth."""
    qxy, I = bloch_intensities(model, _R(q), [thickness])
    img = np.zeros(shape)
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    c = np.array([shape[0] / 2, shape[1] / 2])
    for (x, y), v in zip(qxy, np.sqrt(I[0])):
        r, cc = c[0] + px_per_inv_A * y, c[1] + px_per_inv_A * x
        if 0 <= r < shape[0] and 0 <= cc < shape[1]:
            img += v * np.exp(-((rows - r) ** 2 + (cols - cc) ** 2) / (2 * 1.2**2))
    return img, c, np.array([[px_per_inv_A, 0.0], [0.0, px_per_inv_A]])


def test_refinement_reaches_the_truth_and_thickness_is_scored(au, au_model):
    """From 0.6° off, Nelder–Mead on the Bloch-wave score of a pattern rendered from the truth ends within 1° of it
    (one pattern fixes the tilt to ~1°: intensities only, positions hardly move), scoring at least as well; the
    rendered thickness scores better than thicknesses far from it; the beam twin and a random orientation score less."""
    lib = build_library(au, step_deg=5.0, k_max=1.2, accelerating_voltage_kV=300.0, excitation_error_sigma=0.02)
    sym = lib.symmetry_quaternions
    truth = _random_quaternions(1, seed=21)[0]
    img, c, affine = _rendered(au_model, truth, 250.0)
    at_250 = GrainPatterns(img[None], c[None], affine, 0.1, 1.2, 0.5, np.array([250.0]))
    series = GrainPatterns(img[None], c[None], affine, 0.1, 1.2, 0.5, np.array([50.0, 250.0, 800.0]))
    assert grain_score(au_model, truth, series, 0.06)[1] == 250.0
    off = quaternion_multiply(truth[None], np.array([[np.cos(np.deg2rad(0.3)), np.sin(np.deg2rad(0.3)), 0, 0]]))[0]
    q, score, t = refine_grain(au_model, off, at_250, 0.06, 0.2, 200)
    assert np.degrees(disorientation_angle(q[None], truth[None], sym))[0] < 1.0
    assert score >= grain_score(au_model, truth, at_250, 0.06)[0] - 1e-3 and t == 250.0
    assert score > grain_score(au_model, off, at_250, 0.06)[0]
    twin = quaternion_multiply(truth[None], np.array([[0.0, 0.0, 0.0, 1.0]]))[0]
    assert grain_score(au_model, twin, at_250, 0.06)[0] < 0.95 * score
    assert grain_score(au_model, _random_quaternions(1, seed=22)[0], at_250, 0.06)[0] < 0.5 * score
