"""Validation of the transport model against analytic solutions (issue 6, item 4)."""

from __future__ import annotations

import numpy as np
import pytest
from transport_helpers import C_X, C_Y, C_Z, make_grain_map, random_c_axes, voronoi_labels

from stemgrains.transport import conductivity_tensor, solve_transport

SIG_OP = 1e-3
LR = {"left": 1.0, "right": 0.0}


def tensor_of(c, ratio=1000.0):
    return conductivity_tensor(c, 1.0, 1.0 / ratio)


@pytest.mark.parametrize("model", ["tensor", "resistor"])
@pytest.mark.parametrize("step", [1.0, 3.5])
def test_homogeneous_isotropic_slab_is_exact(model, step):
    ny, nx = 12, 30
    r = solve_transport(make_grain_map(np.ones((ny, nx)), [C_Z], step), electrodes={"left": 2.0, "right": -1.0}, model=model)
    x = (np.arange(nx) + 0.5) * step
    expected = 2.0 - 3.0 * x / (nx * step)
    np.testing.assert_allclose(r.potential, np.broadcast_to(expected, (ny, nx)), atol=1e-8)
    np.testing.assert_allclose(r.current_density[..., 0], 3.0 / (nx * step), rtol=1e-8)
    np.testing.assert_allclose(r.current_density[..., 1], 0.0, atol=1e-8)
    np.testing.assert_allclose(r.field[..., 0], 3.0 / (nx * step), rtol=1e-8)
    assert r.conductance == pytest.approx(ny / nx, rel=1e-8)
    assert r.electrode_current("left") == pytest.approx(3.0 * ny / nx, rel=1e-8)
    assert r.current_imbalance < 1e-8
    if model == "tensor":
        xn = np.arange(nx + 1) * step
        np.testing.assert_allclose(r.node_potential, np.broadcast_to(2.0 - 3.0 * xn / (nx * step), (ny + 1, nx + 1)), atol=1e-8)


def test_top_bottom_electrodes_give_current_along_y():
    r = solve_transport(make_grain_map(np.ones((20, 10)), [C_Z]), electrodes={"top": 1.0, "bottom": 0.0})
    np.testing.assert_allclose(r.current_density[..., 1], 1.0 / 20, rtol=1e-8)
    np.testing.assert_allclose(r.current_density[..., 0], 0.0, atol=1e-10)


def test_rotated_tensor_is_exact_with_periodic_lateral_boundaries():
    c = np.array([np.cos(0.4), np.sin(0.4), 0.3])
    s = tensor_of(c)
    ny, nx = 8, 24
    r = solve_transport(make_grain_map(np.ones((ny, nx)), [c]), electrodes=LR, periodic="y")
    # φ = V(1 − x/L) solves the problem exactly: J = Σ E, J_x = σ_xx V/L, J_y = σ_xy V/L
    np.testing.assert_allclose(r.current_density[..., 0], s[0, 0] / nx, rtol=1e-9)
    np.testing.assert_allclose(r.current_density[..., 1], s[0, 1] / nx, rtol=1e-9)
    assert r.conductance == pytest.approx(s[0, 0] * ny / nx, rel=1e-9)


@pytest.mark.parametrize("theta", [0.3, 0.8, 1.2])
def test_rotated_tensor_with_insulating_sides_lies_within_voigt_reuss_bounds(theta):
    c = np.array([np.cos(theta), np.sin(theta), 0.0])
    s = tensor_of(c, ratio=50.0)
    voigt = s[0, 0]
    reuss = 1.0 / np.linalg.inv(s)[0, 0]  # = σ_xx − σ_xy²/σ_yy
    assert reuss == pytest.approx(s[0, 0] - s[0, 1] ** 2 / s[1, 1])
    effective = {}
    for shape in ((16, 16), (64, 8), (8, 64)):  # square, wide (W ≫ L), long (L ≫ W)
        ny, nx = shape
        r = solve_transport(make_grain_map(np.ones(shape), [c]), electrodes=LR, conductivity_ratio=50.0)
        effective[shape] = r.conductance * nx / ny
        assert reuss * (1 - 1e-9) <= effective[shape] <= voigt * (1 + 1e-9)
    # wide slabs approach the Voigt value (uniform field), long strips the Reuss value (J_y = 0)
    assert abs(effective[(64, 8)] - voigt) < abs(effective[(16, 16)] - voigt)
    assert abs(effective[(8, 64)] - reuss) < abs(effective[(16, 16)] - reuss)
    assert abs(effective[(64, 8)] - voigt) < 0.35 * (voigt - reuss)
    assert abs(effective[(8, 64)] - reuss) < 0.35 * (voigt - reuss)


@pytest.mark.parametrize("model", ["tensor", "resistor"])
@pytest.mark.parametrize("step", [0.5, 2.0, 5.0])
def test_series_bicrystal_matches_analytic_including_boundary(model, step):
    ny, nx, na = 6, 20, 8
    lab = np.ones((ny, nx))
    lab[:, na:] = 2
    sig_gb, t_gb = 0.05, 1.0
    r = solve_transport(make_grain_map(lab, [C_Y, C_Z], step), electrodes=LR, model=model,
                        gb_conductivity=sig_gb, gb_thickness_nm=t_gb)
    # per unit width: ρ L_A/σ_A + L_B/σ_B + t/σ_GB (σ_xx of A = σ_ip = 1, of B = 1)
    resistance = (na * step / 1.0 + (nx - na) * step / 1.0 + t_gb / sig_gb) / (ny * step)
    assert r.conductance == pytest.approx(1.0 / resistance, rel=1e-9)
    assert len(r.boundaries) == 1
    row = r.boundaries.row(0)
    assert (row["grain_a"], row["grain_b"], row["n_faces"]) == (1, 2, ny)
    assert row["current"] == pytest.approx(r.total_current, rel=1e-9)
    assert row["mismatch_abs_mean"] < 1e-9
    # the potential jump at the boundary is I_per_width · t/σ_GB
    jx = r.total_current / (ny * step)
    assert row["field"][0] == pytest.approx(jx, rel=1e-9)


def test_series_bicrystal_anisotropic_and_thickness_scaling():
    ny, nx = 5, 12
    lab = np.ones((ny, nx))
    lab[:, 6:] = 2
    g = {}
    for t in (0.0, 1.0, 2.0):
        r = solve_transport(make_grain_map(lab, [C_Y, C_X], 2.0), electrodes=LR, gb_thickness_nm=t)
        g[t] = 1.0 / r.conductance
    rb = 6 * 2.0 / 1.0 + 6 * 2.0 / SIG_OP
    assert g[0.0] == pytest.approx(rb / (ny * 2.0), rel=1e-9)
    # each nm of layer adds t/σ_GB = 20 (per unit width)
    assert g[1.0] - g[0.0] == pytest.approx(20.0 / (ny * 2.0), rel=1e-8)
    assert g[2.0] - g[0.0] == pytest.approx(40.0 / (ny * 2.0), rel=1e-8)


def test_series_bicrystal_with_full_tensors_is_exact_when_periodic():
    ca = np.array([np.cos(0.5), np.sin(0.5), 0.2])
    cb = np.array([np.cos(2.0), np.sin(2.0), -0.6])
    sa, sb = tensor_of(ca), tensor_of(cb)
    ny, nx, na, step = 6, 16, 7, 1.5
    lab = np.ones((ny, nx))
    lab[:, na:] = 2
    r = solve_transport(make_grain_map(lab, [ca, cb], step), electrodes=LR, periodic="y")
    resistance = (na * step / sa[0, 0] + (nx - na) * step / sb[0, 0] + 1.0 / 0.05) / (ny * step)
    assert r.conductance == pytest.approx(1.0 / resistance, rel=1e-9)


@pytest.mark.parametrize("model", ["tensor", "resistor"])
def test_parallel_bicrystal_matches_analytic_and_no_current_crosses(model):
    ny, nx, wa = 10, 14, 4
    lab = np.ones((ny, nx))
    lab[wa:, :] = 2
    r = solve_transport(make_grain_map(lab, [C_Y, C_X]), electrodes=LR, model=model)
    expected = (1.0 * wa + SIG_OP * (ny - wa)) / nx
    assert r.conductance == pytest.approx(expected, rel=1e-9)
    assert abs(r.boundaries["current"][0]) < 1e-10
    np.testing.assert_allclose(r.boundaries["field"][0], [1.0 / nx, 0.0], atol=1e-10)


def test_resistor_and_tensor_models_agree_for_axis_aligned_grains():
    lab = np.ones((6, 18))
    lab[:, 6:12] = 2
    lab[:, 12:] = 3
    gm = make_grain_map(lab, [C_Y, C_X, C_Z], 2.0)
    g = [solve_transport(gm, electrodes=LR, model=m).conductance for m in ("tensor", "resistor")]
    assert g[0] == pytest.approx(g[1], rel=1e-9)


def test_convergence_under_grid_refinement():
    """Bicrystal of rotated anisotropic grains with insulating sides: differences shrink ~ h."""
    ca = np.array([np.cos(0.5), np.sin(0.5), 0.0])
    cb = np.array([np.cos(2.2), np.sin(2.2), 0.3])
    size_nm = 24.0
    values = []
    for n in (6, 12, 24, 48):
        lab = np.ones((n, n))
        lab[:, n // 2:] = 2
        r = solve_transport(make_grain_map(lab, [ca, cb], size_nm / n), electrodes=LR, conductivity_ratio=20.0)
        values.append(r.conductance)
    d = np.abs(np.diff(values))
    assert d[1] < d[0] and d[2] < d[1]
    assert d[2] / d[1] < 0.75
    assert d[2] / values[-1] < 0.02


def test_non_facing_electrodes_give_a_current_gradient():
    ny, nx = 30, 30
    left = np.zeros((ny, nx), bool)
    left[:6, 0] = True
    right = np.zeros((ny, nx), bool)
    right[-6:, -1] = True
    r = solve_transport(make_grain_map(np.ones((ny, nx)), [C_Z]), electrodes=[(left, 1.0), (right, 0.0)])
    mag = r.current_magnitude
    assert r.current_imbalance < 1e-9
    # strong near the electrodes, weak in the corners away from them
    assert mag[2, 2] > 5 * mag[-3, 2]
    assert mag[-3, -3] > 5 * mag[2, -3]
    # the current runs diagonally (down the map) in the middle
    assert r.current_density[ny // 2, nx // 2, 1] > 0.3 * r.current_density[ny // 2, nx // 2, 0]
    assert r.electrode_current("electrode_0") == pytest.approx(-r.electrode_current("electrode_1"), rel=1e-9)


@pytest.mark.parametrize("model", ["tensor", "resistor"])
def test_current_conservation_on_random_polycrystal(model):
    lab = voronoi_labels((40, 50), 15, seed=3)
    gm = make_grain_map(lab, random_c_axes(15, seed=4), 2.0)
    r = solve_transport(gm, electrodes=LR, model=model, frame=3)
    assert r.current_imbalance < 1e-8
    assert r.total_current > 0
    assert np.all(np.isfinite(r.crop(r.potential)))
    assert np.isfinite(r.boundaries["current"]).all()
    assert r.potential.shape == (46, 56) and r.crop(r.potential).shape == (40, 50)
    assert r.region[0, 0] == 2 and r.region[20, 20] == 1
    # the flux through every vertical cut equals the electrode current (pixel-centre J, exact for the network)
    if model == "resistor":
        cut = np.nansum(r.current_density[:, 10:40, 0], axis=0) * r.scan_step_nm
        np.testing.assert_allclose(cut, r.total_current, rtol=1e-8)


def test_boundary_fields_follow_the_applied_field():
    lab = voronoi_labels((30, 40), 8, seed=1)
    gm = make_grain_map(lab, np.tile(C_Z, (8, 1)), 1.0)
    r = solve_transport(gm, electrodes=LR, gb_thickness_nm=0.0)  # isotropic, no GB: uniform field
    for (a, b), f in r.boundary_field.items():
        np.testing.assert_allclose(f, [1.0 / 40, 0.0], atol=1e-9)
        assert a < b
    np.testing.assert_allclose(r.boundaries["mismatch_abs_mean"], 0.0, atol=1e-9)
