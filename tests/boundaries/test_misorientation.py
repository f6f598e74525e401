"""Boundary misorientation against orix; Miller(-Bravais) axes; special misorientations; random distribution."""

from __future__ import annotations

import numpy as np
import pytest
from boundary_maps import grain_map_from_labels
from diffpy.structure import Lattice, Structure
from orix.crystal_map import Phase
from orix.quaternion import Orientation, Rotation, symmetry
from orix.vector import Miller

from stemgrains.boundaries._kernels import misorientation_distance, misorientation_distance_reference
from stemgrains.boundaries.extract import extract_boundaries
from stemgrains.boundaries.misorientation import (
    axis_indices,
    disorientation,
    parse_special,
    random_disorientation_angles,
    special_quaternion,
)
from stemgrains.errors import ParameterError

PHASES = {
    "m-3m": Phase(point_group="m-3m", structure=Structure(lattice=Lattice(4, 4, 4, 90, 90, 90))),
    "6/mmm": Phase(point_group="6/mmm", structure=Structure(lattice=Lattice(3.21, 3.21, 5.21, 90, 90, 120))),
    "-3m": Phase(point_group="-3m", structure=Structure(lattice=Lattice(5.63, 5.63, 33.45, 90, 90, 120))),
    "4/mmm": Phase(point_group="4/mmm", structure=Structure(lattice=Lattice(3, 3, 5, 90, 90, 90))),
    "mmm": Phase(point_group="mmm", structure=Structure(lattice=Lattice(3, 4, 5, 90, 90, 90))),
    "2/m": Phase(point_group="2/m", structure=Structure(lattice=Lattice(3, 4, 5, 90, 100, 90))),
}


@pytest.mark.parametrize("pg", list(PHASES))
def test_disorientation_matches_orix(pg):
    phase = PHASES[pg]
    qa, qb = Rotation.random(300).data, Rotation.random(300).data
    ang, axis, mq = disorientation(qa, qb, phase)
    laue = phase.point_group.laue
    oa, ob = Orientation(qa, laue), Orientation(qb, laue)
    np.testing.assert_allclose(ang, ob.angle_with(oa, degrees=True), atol=1e-5)
    m = ob - oa  # orix's own reduced misorientation
    np.testing.assert_allclose(ang, np.degrees(m.angle), atol=1e-5)
    # the reduced misorientation is symmetry-equivalent to O_b O_a^-1 and its axis is a unit vector
    sym = laue.proper_subgroup.data
    raw = (Rotation(qb) * ~Rotation(qa)).data
    assert misorientation_distance(mq[:20], raw[:20], sym).diagonal().max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(axis, axis=1), 1.0)
    # swapping A and B leaves the angle unchanged
    np.testing.assert_allclose(disorientation(qb, qa, phase)[0], ang, atol=1e-5)


@pytest.mark.parametrize("pg", ["m-3m", "6/mmm", "mmm"])
def test_misorientation_distance_kernel_matches_reference(pg):
    sym = PHASES[pg].point_group.laue.proper_subgroup.data
    m, r = Rotation.random(7).data, Rotation.random(5).data
    np.testing.assert_allclose(misorientation_distance(m, r, sym), misorientation_distance_reference(m, r, sym), atol=1e-7)
    # distance to itself (or any symmetry equivalent) is 0
    eq = (Rotation(sym[3]) * Rotation(m) * Rotation(sym[-1])).data
    np.testing.assert_allclose(misorientation_distance(m, eq, sym).diagonal(), 0, atol=1e-6)


def test_axis_indices_cubic_and_hexagonal():
    cub = PHASES["m-3m"]
    np.testing.assert_array_equal(axis_indices([[1, 1, 1], [0, 0, 2], [1, 2, 0.0]], cub), [[1, 1, 1], [0, 0, 1], [1, 2, 0]])
    hexa = PHASES["6/mmm"]
    axes = Miller(UVTW=[[2, -1, -1, 0], [1, 0, -1, 0], [0, 0, 0, 1]], phase=hexa).unit.data
    got = axis_indices(axes, hexa)
    np.testing.assert_array_equal(got, [[2, -1, -1, 0], [1, 0, -1, 0], [0, 0, 0, 1]])
    assert np.all(got[:, :3].sum(axis=1) == 0)


def test_boundary_columns_on_a_bicrystal():
    labels = np.ones((10, 20), np.int32)
    labels[:, 10:] = 2
    q_a = Rotation.from_axes_angles([1, 2, 3], 0.3).data
    q_b = (Rotation.from_axes_angles([1, 1, 1], np.radians(60)) * Rotation(q_a)).data  # Σ3 twin
    gm, xmap = grain_map_from_labels(labels, np.concatenate([q_a, q_b]))
    b = extract_boundaries(gm, xmap, special=[("twin", 60, (1, 1, 1), 2), ("other", 45, (0, 0, 1), 2)]).boundaries
    assert b["misorientation_deg"][0] == pytest.approx(60.0, abs=1e-6)
    ax = np.abs(b["misorientation_axis"][0])
    np.testing.assert_allclose(ax, np.full(3, 1 / np.sqrt(3)), atol=1e-6)
    assert b["csl_sigma"][0] == 3 and b["special"][0] == "twin" and not b["low_angle"][0]
    np.testing.assert_array_equal(np.abs(b["axis_uvw"][0]), [1, 1, 1])
    # a small rotation is low-angle and Σ1
    q_c = (Rotation.from_axes_angles([0, 0, 1], np.radians(7)) * Rotation(q_a)).data
    gm, _ = grain_map_from_labels(labels, np.concatenate([q_a, q_c]))
    b = extract_boundaries(gm).boundaries
    assert b["low_angle"][0] and b["csl_sigma"][0] == 1 and b["special"][0] == ""
    assert not extract_boundaries(gm, low_angle_deg=5).boundaries["low_angle"][0]


def test_phase_boundaries_have_no_misorientation():
    labels = np.ones((6, 8), np.int32)
    labels[:, 4:] = 2
    phases = [PHASES["m-3m"], PHASES["6/mmm"]]
    gm, _ = grain_map_from_labels(labels, Rotation.random(2).data, phase_of_grain=np.array([0, 1]), phases=phases)
    b = extract_boundaries(gm).boundaries
    assert (b["phase_a"][0], b["phase_b"][0]) == (0, 1)
    assert np.isnan(b["misorientation_deg"][0]) and np.all(np.isnan(b["misorientation_axis"][0]))
    assert b["csl_sigma"][0] == 0 and not b["low_angle"][0]


@pytest.mark.parametrize("spec, part", [
    ("a:60:1,1:5", "axis '1,1' has 2 indices, not 3 or 4"),
    ("twin", "no ':' between its parts"),
    ("t:60:1,1,1:5:3", "5 parts separated by ':', not 3 or 4"),
    (":60:1,1,1", "NAME is empty"),
    ("t:abc:1,1,1", "ANGLE 'abc' is not a number"),
    ("t:60:1,x,1", "axis '1,x,1': index 'x' is not a number"),
    ("t:60:[1,1,1]", "axis '[1,1,1]': index '[1' is not a number"),
    ("t:60:0,0,0", "axis '0,0,0' is all zeros"),
    ("t:60:1,1,1:five", "TOL 'five' is not a number"),
    ("t:200:1,1,1", "ANGLE must be in [0, 180] degrees, got 200"),
    ("t:60:1,1,1:0", "TOL must be a finite number > 0 degrees, got 0"),
    ("t:60:1,1,1,1", "Miller–Bravais axis needs U + V + T = 0, got 1 + 1 + 1 = 3"),
])
def test_malformed_special_names_the_part_and_the_grammar(spec, part):
    """Every malformed spec: the spec as typed, the part that is wrong and the grammar, one line."""
    with pytest.raises(ParameterError) as err:
        parse_special(spec)
    msg = str(err.value)
    assert msg.startswith(f"special misorientation {spec!r}: {part}; expected NAME:ANGLE:U,V,W[:TOL] ("), msg
    assert "\n" not in msg


def test_special_parsing_and_mg_twin_rotation():
    s = parse_special("twin:86.3:1,1,-2,0:5")
    assert s.name == "twin" and s.axis == (1.0, 1.0, -2.0, 0.0) and s.tolerance_deg == 5.0
    assert parse_special("x:10:0,0,1").tolerance_deg == 5.0
    for bad in ("twin:86.3", "t:a:1,1,1:2", "t:10:1,1,1,1:2", "t:10:0,0,0:2", "t:10:1,0,0:0"):
        with pytest.raises(ParameterError):
            parse_special(bad)
    hexa = PHASES["6/mmm"]
    q = special_quaternion(s, hexa)
    axis = Miller(UVTW=[1, 1, -2, 0], phase=hexa).unit.data[0]
    np.testing.assert_allclose(Rotation(q).axis.data[0], axis, atol=1e-9)
    assert np.degrees(Rotation(q).angle[0]) == pytest.approx(86.3)
    assert special_quaternion(s, PHASES["m-3m"]) is None  # 4-index axis does not fit a cubic phase


def test_random_disorientation_distribution_matches_mackenzie():
    ang = random_disorientation_angles(PHASES["m-3m"], 40_000, seed=1)
    assert ang.max() <= 62.81  # cubic maximum disorientation
    assert ang.max() > 60
    # Mackenzie (1958): the mean disorientation of randomly oriented cubic grains is 40.74°
    assert ang.mean() == pytest.approx(40.74, abs=0.3)
    assert np.histogram(ang, bins=np.arange(0, 65, 5))[0].argmax() == 9  # the peak is at 45-50°
    assert random_disorientation_angles(PHASES["6/mmm"], 20_000).max() == pytest.approx(93.8, abs=1.0)


@pytest.mark.parametrize("pg", ["m-3m", "6/mmm", "-3m", "2/m"])
def test_min_angle_kernel_matches_reference_and_orix_reduce(pg):
    from orix.quaternion import Misorientation

    from stemgrains.boundaries._kernels import min_angle_equivalent, min_angle_equivalent_reference

    phase = PHASES[pg]
    sym = phase.point_group.laue.proper_subgroup
    m = Rotation.random(50).data
    fast = min_angle_equivalent(m, sym.data)
    np.testing.assert_allclose(fast, min_angle_equivalent_reference(m, sym.data), atol=1e-9)
    mo = Misorientation(m)
    mo.symmetry = (sym, sym)
    np.testing.assert_allclose(2 * np.arccos(fast[:, 0]), mo.reduce().angle, atol=1e-6)
    # our disorientation is equivalent to orix's reduced misorientation
    _, axis, q = disorientation(np.tile([1.0, 0, 0, 0], (50, 1)), m, phase)
    assert misorientation_distance(q, mo.reduce().data, sym.data).diagonal().max() < 1e-5
