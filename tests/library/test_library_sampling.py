"""Beam-direction and orientation sampling: completeness over the sphere / SO(3) for every Laue class.

Symmetry is always applied with orix (``Symmetry.outer``), independently of the module's own group matrices.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from orix.quaternion import Orientation, Rotation
from orix.quaternion import symmetry as S
from orix.sampling import sample_S2
from orix.vector import Vector3d
from scipy.spatial import SphericalVoronoi, cKDTree

from stemgrains.config import TOL_FLOAT
from stemgrains.errors import ParameterError
from stemgrains.library import sampling as sm

LAUE = {
    "m-3m": S.Oh,
    "m-3": S.Th,
    "6/mmm": S.D6h,
    "6/m": S.C6h,
    "-3m": S.D3d,
    "-3": S.S6,
    "4/mmm": S.D4h,
    "4/m": S.C4h,
    "mmm": S.D2h,
    "2/m": S.C2h,
    "-1": S.Ci,
}
ZHAT = Vector3d.zvector()


def _acting_group(pg, proper: bool):
    return pg.laue_proper_subgroup if proper else pg.laue


@functools.lru_cache(maxsize=None)
def _directions(name: str, step: float, proper: bool) -> tuple[np.ndarray, cKDTree]:
    d = sm.beam_directions(LAUE[name], step, proper=proper)
    return d, cKDTree(d)


def _chord_to_deg(chord: np.ndarray) -> np.ndarray:
    return np.rad2deg(2 * np.arcsin(np.clip(chord / 2, 0, 1)))


def _nearest_after_symmetry_deg(name: str, step: float, proper: bool, u: np.ndarray) -> np.ndarray:
    """Angle (deg) from each direction u to the nearest symmetry image of a sampled direction (orix symmetry)."""
    _, tree = _directions(name, step, proper)
    images = _acting_group(LAUE[name], proper).outer(Vector3d(u)).data  # (|G|, n, 3)
    chord, _ = tree.query(images.reshape(-1, 3))
    return _chord_to_deg(chord.reshape(images.shape[:2]).min(axis=0))


def _dedupe(points: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    pairs = cKDTree(points).query_pairs(tol, output_type="ndarray")
    drop = np.unique(pairs.max(axis=1)) if len(pairs) else np.zeros(0, dtype=int)
    return np.delete(points, drop, axis=0)


def _covering_radius_deg(points: np.ndarray) -> float:
    """Exact covering radius (deg) of a point set on S2: farthest Voronoi vertex from its generators."""
    pts = _dedupe(points)
    sv = SphericalVoronoi(pts)
    chord, _ = cKDTree(pts).query(sv.vertices)
    return float(_chord_to_deg(chord).max())


def _random_rotations(n: int, seed: int) -> Rotation:
    q = np.random.default_rng(seed).normal(size=(n, 4))  # isotropic in R^4: uniform (Haar) rotations
    return Rotation(q / np.linalg.norm(q, axis=1, keepdims=True))


# --------------------------------------------------------------------------------------- the S2 mesh bound


@pytest.mark.parametrize("resolution", [0.97, 1.29, 1.94, 2.58, 3.9, 6.5])
def test_icosahedral_mesh_covering_ratio_below_documented_bound(resolution):
    mesh = sample_S2(resolution, method="icosahedral").data.reshape(-1, 3)
    assert _covering_radius_deg(mesh) <= sm._ICOSAHEDRAL_COVER_RATIO * resolution


# --------------------------------------------------------------------------------------- beam directions


@pytest.mark.parametrize("proper", [True, False])
@pytest.mark.parametrize("name", list(LAUE))
def test_directions_exact_covering_radius_3deg(name, proper):
    """All symmetry images of the sampled directions cover the sphere within 0.75 × step (exact, via Voronoi)."""
    step = 3.0
    d, _ = _directions(name, step, proper)
    assert d.shape[1] == 3 and d.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=TOL_FLOAT)
    images = _acting_group(LAUE[name], proper).outer(Vector3d(d)).data.reshape(-1, 3)
    assert _covering_radius_deg(images) <= sm.direction_covering_radius_deg(step)


@pytest.mark.parametrize("name", ["-3m", "m-3m"])
def test_directions_exact_covering_radius_1deg(name):
    step = 1.0
    d, _ = _directions(name, step, True)
    images = LAUE[name].laue_proper_subgroup.outer(Vector3d(d)).data.reshape(-1, 3)
    assert _covering_radius_deg(images) <= sm.direction_covering_radius_deg(step)


@pytest.mark.parametrize("step", [3.0, 2.0])
@pytest.mark.parametrize("proper", [True, False])
@pytest.mark.parametrize("name", list(LAUE))
def test_random_directions_within_bound(name, proper, step):
    u = np.random.default_rng(7).normal(size=(3000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    assert _nearest_after_symmetry_deg(name, step, proper, u).max() <= sm.direction_covering_radius_deg(step)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(list(LAUE)),
    step=st.sampled_from([3.0, 2.0]),
    proper=st.booleans(),
    xyz=st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3).filter(lambda t: np.linalg.norm(t) > 1e-3),
)
def test_any_direction_within_bound(name, step, proper, xyz):
    u = np.asarray(xyz, dtype=np.float64)[None, :]
    u /= np.linalg.norm(u)
    assert _nearest_after_symmetry_deg(name, step, proper, u)[0] <= sm.direction_covering_radius_deg(step)


@pytest.mark.parametrize("name", ["-3m", "m-3m"])
def test_random_directions_within_bound_1deg(name):
    u = np.random.default_rng(3).normal(size=(5000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    assert _nearest_after_symmetry_deg(name, 1.0, True, u).max() <= sm.direction_covering_radius_deg(1.0)


@pytest.mark.parametrize("name", list(LAUE))
def test_domain_is_fundamental(name):
    """Exactly one symmetry image of a generic direction lies in the Dirichlet domain D (orix group action)."""
    for proper in (True, False):
        group = _acting_group(LAUE[name], proper)
        normals = sm._domain_normals(sm._group_matrices(group))
        u = np.random.default_rng(11).normal(size=(2000, 3))
        images = group.outer(Vector3d(u)).data  # (|G|, n, 3); orix may list a rotation twice: dedupe per point
        inside = np.all(images @ normals.T >= 0, axis=-1)  # (|G|, n)
        n_distinct = np.array([len(_dedupe(images[:, i])) for i in range(u.shape[0])])
        assert np.all(n_distinct == group.size)
        assert np.all(inside.sum(axis=0) == 1)


@pytest.mark.parametrize("step", [3.0, 1.0])
@pytest.mark.parametrize("name", list(LAUE))
def test_direction_count_close_to_sector_share(name, step):
    """At most the sector's share of the full-sphere mesh plus the boundary margin (report: overhead)."""
    group = LAUE[name].laue_proper_subgroup
    d, _ = _directions(name, step, True)
    resolution = sm.direction_covering_radius_deg(step) / sm._ICOSAHEDRAL_COVER_RATIO
    share = sample_S2(resolution, method="icosahedral").size / group.size
    overhead = len(d) / share - 1
    assert 0 <= overhead <= (0.3 if step >= 3 else 0.15)
    ideal = 4 * np.pi / group.size / np.deg2rad(step) ** 2  # sector area / step²
    assert 0.7 * ideal <= len(d) <= 1.2 * ideal


@pytest.mark.parametrize("name", list(LAUE))
def test_full_laue_sector_is_about_half(name):
    """proper=False samples the Laue-group sector: the Laue group is the proper group × {1, −1}."""
    n_proper = len(_directions(name, 2.0, True)[0])
    n_laue = len(_directions(name, 2.0, False)[0])
    assert 0.45 <= n_laue / n_proper <= 0.6


def test_only_laue_class_matters():
    ref = sm.beam_directions(S.D3d, 3.0)
    for pg in (S.D3, S.C3v, S.D3d.laue_proper_subgroup):
        np.testing.assert_array_equal(sm.beam_directions(pg, 3.0), ref)
    np.testing.assert_array_equal(sm.beam_directions(S.Oh, 3.0), sm.beam_directions(S.O, 3.0))


def test_mirrored_template_is_x_mirror_of_direct_template():
    """O·Rx(π) has beam −v and puts reflection −g where O puts g, mirrored x → −x (Friedel pair, same s)."""
    rot = _random_rotations(20, seed=5)
    g = np.random.default_rng(6).normal(size=(30, 3))
    mirror = rot * Rotation.from_axes_angles([1.0, 0.0, 0.0], np.pi)
    v = (rot * ZHAT).data
    np.testing.assert_allclose((mirror * ZHAT).data, -v, atol=1e-12)
    pos = (~rot).outer(Vector3d(g)).data  # sample-frame positions of g: O⁻¹ g, (20, 30, 3)
    pos_m = (~mirror).outer(Vector3d(-g)).data
    np.testing.assert_allclose(pos_m, pos * np.array([-1.0, 1.0, 1.0]), atol=1e-12)


# --------------------------------------------------------------------------------------- base rotations, γ


def test_composition_order_beam_fixed_for_every_gamma():
    """orix ``A * B`` applies B first: O = O0 * Rz(γ) rotates sample vectors by γ about z, then by O0."""
    d, _ = _directions("-3m", 3.0, True)
    o0 = sm.base_rotations(d)
    gam = sm.in_plane_angles(3.0)
    rz = Rotation.from_axes_angles([0.0, 0.0, 1.0], gam)
    grid = o0.outer(rz)
    beam = (grid * ZHAT).data  # (n_dir, n_gamma, 3)
    np.testing.assert_allclose(beam, np.broadcast_to(d[:, None, :], beam.shape), atol=1e-12)
    x_img = (grid * Vector3d.xvector()).data
    expected = (o0.outer(Vector3d(np.stack([np.cos(gam), np.sin(gam), 0 * gam], axis=1)))).data
    np.testing.assert_allclose(x_img, expected, atol=1e-12)


def test_orientation_grid_layout_and_symmetry():
    d, _ = _directions("6/mmm", 5.0, True)
    gam = sm.in_plane_angles(5.0)
    grid = sm.orientation_grid(S.D6h, 5.0)
    assert isinstance(grid, Orientation) and grid.shape == (len(d) * len(gam),)
    assert grid.symmetry.name == "6/mmm"
    beam = (Rotation(grid.data) * ZHAT).data.reshape(len(d), len(gam), 3)
    np.testing.assert_allclose(beam, np.broadcast_to(d[:, None, :], beam.shape), atol=1e-12)
    o = Rotation(grid.data[len(gam) + 3])  # direction 1, angle 3
    ref = sm.base_rotations(d[1:2]) * Rotation.from_axes_angles([0.0, 0.0, 1.0], gam[3])
    assert np.degrees(o.angle_with(ref))[0] < 1e-6


@settings(max_examples=100, deadline=None)
@given(
    xyz=st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3).filter(lambda t: np.linalg.norm(t) > 1e-3),
    scale=st.floats(0.5, 2.0),
)
def test_base_rotation_maps_z_to_v_and_is_smallest(xyz, scale):
    v = np.asarray(xyz) / np.linalg.norm(xyz)
    o0 = sm.base_rotations(scale * v[None, :])
    np.testing.assert_allclose((o0 * ZHAT).data[0], v, atol=1e-12)
    if 1 + v[2] >= sm._ANTIPODE_SWITCH:
        np.testing.assert_allclose(o0.angle[0], np.arccos(np.clip(v[2], -1, 1)), atol=1e-7)
    assert abs(np.linalg.norm(o0.data[0]) - 1) < 1e-12


@pytest.mark.parametrize("eps", [0.0, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 2e-3])
def test_base_rotation_stable_near_minus_z(eps):
    for phi in np.linspace(0, 2 * np.pi, 7):
        v = np.array([np.sin(eps) * np.cos(phi), np.sin(eps) * np.sin(phi), -np.cos(eps)])
        o0 = sm.base_rotations(v[None, :])
        assert np.all(np.isfinite(o0.data))
        np.testing.assert_allclose((o0 * ZHAT).data[0], v, atol=1e-12)
        assert np.degrees(o0.angle[0]) >= 180 - np.degrees(eps) - 1e-6  # still a (near-)smallest rotation
    exact = sm.base_rotations(np.array([[0.0, 0.0, -1.0]]))
    assert np.degrees(exact.angle_with(Rotation.from_axes_angles([1.0, 0.0, 0.0], np.pi)))[0] < 1e-9


def test_base_rotations_accepts_vector3d_and_is_deterministic():
    d, _ = _directions("4/mmm", 3.0, True)
    a = sm.base_rotations(Vector3d(d)).data
    b = sm.base_rotations(d).data
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sm.base_rotations(np.array([[0.0, 0.0, 2.0]])).data, [[1, 0, 0, 0]], atol=1e-15)


@pytest.mark.parametrize("step", [0.7, 1.0, 2.0, 3.0, 7.0, 45.0])
def test_in_plane_angles(step):
    gam = sm.in_plane_angles(step)
    assert gam.dtype == np.float64 and gam[0] == 0.0 and gam[-1] < 2 * np.pi
    gaps = np.diff(np.append(gam, 2 * np.pi))
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-12)
    assert gaps[0] <= np.deg2rad(step) * (1 + 1e-12)
    assert len(gam) == int(np.ceil(360 / step - 1e-9))


# --------------------------------------------------------------------------------------- orientations


def _nearest_grid_disorientation_deg(name: str, step: float, rot: Rotation) -> np.ndarray:
    """Disorientation (deg, orix, Laue symmetry) from each rotation to a grid orientation found by nearest
    beam direction (after proper Laue symmetry) then nearest in-plane angle (checking the two neighbours too).
    An upper bound of the distance to the whole grid."""
    pg = LAUE[name]
    d, tree = _directions(name, step, True)
    gam = sm.in_plane_angles(step)
    proper = pg.laue_proper_subgroup
    equiv = proper.outer(rot)  # (|P|, n): g * O, all describing the same crystal orientation
    beams = (equiv * ZHAT).data
    chord, idx = tree.query(beams.reshape(-1, 3))
    chord, idx = chord.reshape(beams.shape[:2]), idx.reshape(beams.shape[:2])
    best_g = np.argmin(chord, axis=0)
    cols = np.arange(rot.size)
    j = idx[best_g, cols]
    r_best = Rotation(equiv.data[best_g, cols])
    o0 = sm.base_rotations(d[j])
    x = ((~o0) * r_best) * Vector3d.xvector()  # ≈ Rz(γ0) x̂
    gamma0 = np.arctan2(x.data[:, 1], x.data[:, 0])
    k0 = np.round(gamma0 / (2 * np.pi / len(gam))).astype(int)
    target = Orientation(rot.data, symmetry=pg)
    best = np.full(rot.size, np.inf)
    for dk in (-1, 0, 1):
        cand = o0 * Rotation.from_axes_angles([0.0, 0.0, 1.0], gam[(k0 + dk) % len(gam)])
        best = np.minimum(best, target.angle_with(Orientation(cand.data, symmetry=pg), degrees=True))
    return best


@pytest.mark.parametrize("step", [3.0, 2.0])
@pytest.mark.parametrize("name", list(LAUE))
def test_random_orientations_within_bound(name, step):
    rot = _random_rotations(300, seed=int(step * 100) + len(name))
    dis = _nearest_grid_disorientation_deg(name, step, rot)
    assert dis.max() <= sm.orientation_covering_radius_deg(step) + 1e-9


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(list(LAUE)), step=st.sampled_from([3.0, 2.0]))
def test_orix_random_orientations_within_bound(name, step):
    # hypothesis seeds numpy's global generator per example, so orix's Orientation.random is reproducible here
    ori = Orientation.random(20, symmetry=LAUE[name])
    dis = _nearest_grid_disorientation_deg(name, step, Rotation(ori.data))
    assert dis.max() <= sm.orientation_covering_radius_deg(step) + 1e-9


def _brute_disorientation_deg(a: Rotation, b: Rotation, proper_group) -> np.ndarray:
    """(len(a), len(b)) disorientation angles: min over g of angle(g · a · b⁻¹) (the proper group suffices)."""
    qa, qb = a.data, b.data
    # Q = a * conj(b): scalar and vector parts for every pair
    w1, v1 = qa[:, None, 0], qa[:, None, 1:]
    w2, v2 = qb[None, :, 0], -qb[None, :, 1:]
    w = w1 * w2 - np.sum(v1 * v2, axis=-1)
    v = w1[..., None] * v2 + w2[..., None] * v1 + np.cross(v1, v2)
    g = proper_group.data  # scalar part of g * Q = g0·w − gv·v
    cos_half = np.max(np.abs(g[:, 0, None, None] * w[None] - np.einsum("gk,abk->gab", g[:, 1:], v)), axis=0)
    return np.rad2deg(2 * np.arccos(np.clip(cos_half, 0, 1)))


@pytest.mark.parametrize("name", ["-3m", "m-3m", "-1"])
def test_brute_force_grid_distance_within_bound(name):
    """Independent of the nearest-direction shortcut: distance to the whole grid, brute force."""
    pg = LAUE[name]
    step = 8.0 if name == "-1" else 5.0
    grid = sm.orientation_grid(pg, step)
    rot = _random_rotations(25, seed=9)
    # the brute-force helper agrees with orix's disorientation
    pairs = _brute_disorientation_deg(rot[:5], Rotation(grid.data[:7]), pg.laue_proper_subgroup)
    o1 = Orientation(np.repeat(rot.data[:5], 7, axis=0), symmetry=pg)
    o2 = Orientation(np.tile(grid.data[:7], (5, 1)), symmetry=pg)
    np.testing.assert_allclose(pairs.ravel(), o1.angle_with(o2, degrees=True), atol=1e-6)
    dis = _brute_disorientation_deg(rot, Rotation(grid.data), pg.laue_proper_subgroup).min(axis=1)
    assert dis.max() <= sm.orientation_covering_radius_deg(step) + 1e-9


@pytest.mark.parametrize("name", ["-3m", "m-3"])
def test_laue_sector_plus_mirrored_templates_cover_orientations(name):
    """proper=False directions need the mirrored orientations O0(v)·Rz(γ)·Rx(π) (beam −v) to cover SO(3)."""
    pg, step = LAUE[name], 5.0
    d = sm.beam_directions(pg, step, proper=False)
    rz = Rotation.from_axes_angles([0.0, 0.0, 1.0], sm.in_plane_angles(step))
    direct = sm.base_rotations(d).outer(rz).flatten()
    mirrored = direct * Rotation.from_axes_angles([1.0, 0.0, 0.0], np.pi)
    rot = _random_rotations(150, seed=12)
    proper = pg.laue_proper_subgroup
    d_direct = _brute_disorientation_deg(rot, direct, proper).min(axis=1)
    d_mirror = _brute_disorientation_deg(rot, mirrored, proper).min(axis=1)
    bound = sm.orientation_covering_radius_deg(step)
    assert d_direct.max() > bound  # the Laue sector alone misses orientations ...
    assert np.minimum(d_direct, d_mirror).max() <= bound + 1e-9  # ... which its mirrored templates supply


def test_covering_radius_formulas():
    assert sm.direction_covering_radius_deg(2.0) == pytest.approx(1.5)
    r = sm.orientation_covering_radius_deg(2.0)
    assert np.hypot(1.5, 1.0) - 0.01 < r < np.hypot(1.5, 1.0)  # small-angle limit sqrt(δ² + Δ²), from below
    assert sm.orientation_covering_radius_deg(1.0) < 0.91


# --------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("step", [0, -1, np.nan, np.inf, 46, "x", None])
def test_bad_step_raises(step):
    with pytest.raises(ParameterError, match="step_deg"):
        sm.beam_directions(S.D3d, step)
    with pytest.raises(ParameterError, match="step_deg"):
        sm.in_plane_angles(step)


def test_bad_group_and_directions_raise():
    with pytest.raises(ParameterError, match="point_group"):
        sm.beam_directions("-3m", 3.0)
    with pytest.raises(ParameterError, match="directions"):
        sm.base_rotations(np.zeros((2, 3)))
    with pytest.raises(ParameterError, match="directions"):
        sm.base_rotations(np.ones((2, 2)))
    with pytest.raises(ParameterError, match="directions"):
        sm.base_rotations(np.array([[np.nan, 0, 1]]))
