"""Per-grain conductivities: tensor (gb-classification §1) and the published resistor formula."""

from __future__ import annotations

import numpy as np
import pytest
from orix.crystal_map import Phase, PhaseList
from transport_helpers import make_grain_map, random_c_axes

from stemgrains._table import Table
from stemgrains.errors import ParameterError
from stemgrains.transport import conductivity_tensor, grain_conductivities, resistor_conductivity


def test_tensor_is_the_xy_block_of_the_uniaxial_tensor():
    c = random_c_axes(10, seed=1)
    t = conductivity_tensor(c, 2.0, 0.01)
    for ci, ti in zip(c, t):
        full = 2.0 * (np.eye(3) - np.outer(ci, ci)) + 0.01 * np.outer(ci, ci)
        np.testing.assert_allclose(ti, full[:2, :2], atol=1e-14)


@pytest.mark.parametrize(
    "c, expected",
    [((0, 1, 0), (1.0, 1e-3)), ((1, 0, 0), (1e-3, 1.0)), ((0, 0, 1), (1.0, 1.0)), ((0, 0, -1), (1.0, 1.0))],
)
def test_resistor_formula_limits_equal_the_tensor(c, expected):
    """α = our alpha, θ = our trace angle: edge-on planes with the trace along x conduct along x."""
    table = make_grain_map(np.ones((1, 1)), [c]).table
    s_res = grain_conductivities(table, model="resistor")[0]
    s_ten = grain_conductivities(table, model="tensor")[0]
    np.testing.assert_allclose(s_res, [expected[0], 0.0, expected[1]], atol=1e-15)
    np.testing.assert_allclose(s_ten, s_res, atol=1e-15)


def test_resistor_formula_direct_values():
    sx, sy = resistor_conductivity(90.0, 0.0, 1.0, 1e-3)
    assert (sx, sy) == pytest.approx((1.0, 1e-3))
    sx, sy = resistor_conductivity(30.0, 0.0, 1.0, 1e-3)  # trace along x, inclined planes
    assert sx == pytest.approx(1.0)
    assert sy == pytest.approx(np.cos(np.radians(30)) + 1e-3 * 0.5)
    sx, sy = resistor_conductivity(60.0, np.nan, 1.0, 1e-3)  # undefined trace → θ = 0
    assert sx == pytest.approx(1.0)
    # only |sin θ|, |cos θ| enter
    assert resistor_conductivity(70.0, 25.0) == pytest.approx(resistor_conductivity(70.0, -25.0))


def test_resistor_from_table_angles_matches_from_c_axis():
    c = random_c_axes(12, seed=2)
    gm = make_grain_map(np.ones((1, 1)), c)
    by_c = grain_conductivities(gm.table, model="resistor")
    t = gm.table
    angles_only = Table({k: t[k] for k in ("id", "phase_id", "alpha_deg", "trace_angle_deg")})
    by_angles = grain_conductivities(angles_only, model="resistor")
    np.testing.assert_allclose(by_c, by_angles, atol=1e-12)
    sx, sy = resistor_conductivity(t["alpha_deg"], t["trace_angle_deg"], 1.0, 1e-3)
    np.testing.assert_allclose(by_c[:, 0], sx, atol=1e-12)
    np.testing.assert_allclose(by_c[:, 2], sy, atol=1e-12)
    # rebuilt c-axes give the same tensors (up to the sign of c)
    np.testing.assert_allclose(grain_conductivities(angles_only), grain_conductivities(gm.table), atol=1e-12)


def test_blocking_phases_overrides_and_non_uniaxial_grains():
    phases = PhaseList(phases=[Phase("na_beta2_alumina", point_group="-3m"), Phase("ZrO2", point_group="2/m"),
                               Phase("NaAlO2", point_group="mmm")], ids=[0, 1, 2])
    c = np.array([[0, 1, 0], [np.nan] * 3, [np.nan] * 3, [np.nan] * 3])
    gm = make_grain_map(np.ones((1, 1)), c, phase_ids=[0, 1, 2, 5], phases=phases)
    s = grain_conductivities(gm.table, phases)
    np.testing.assert_allclose(s[0], [1, 0, 1e-3])
    np.testing.assert_allclose(s[1], 0.0)  # zirconia blocks by default
    np.testing.assert_allclose(s[2], [1, 0, 1])  # no c-axis: isotropic σ_ip
    np.testing.assert_allclose(s[3], [1, 0, 1])
    s = grain_conductivities(gm.table, phases, blocking_phases=(), phase_conductivity={"naalo2": 0.1, 0: 0.5})
    np.testing.assert_allclose(s[:3], [[0.5, 0, 0.5], [1, 0, 1], [0.1, 0, 0.1]])
    with pytest.raises(ParameterError):
        grain_conductivities(gm.table, phases, model="nope")
