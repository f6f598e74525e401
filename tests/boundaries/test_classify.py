"""classify_pair: worked examples of gb-classification.md §6, symmetries, and the naive reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemgrains import config
from stemgrains.boundaries.classify import LABELS, PairClassification, classify_pair
from stemgrains.errors import InputError, ParameterError

try:
    from . import naive_classify as naive
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    import naive_classify as naive

ANGLE_TOL = 1e-5  # degrees; arccos near 0° turns a 1e-16 rounding difference into ~1e-6°
COS_TOL = 1e-12  # the same angles compared as cosines, where rounding is not amplified
FLUX_TOL = 1e-9


def c_of_trace(trace_deg: float) -> list[float]:
    """In-plane c-axis (alpha = 90) whose conduction-plane trace makes ``trace_deg`` with +x (toward +y)."""
    t = math.radians(trace_deg)
    return [math.sin(t), -math.cos(t), 0.0]


RIGHT, DOWN = (1.0, 0.0), (0.0, 1.0)
# §6: A trace, B trace, E, label, J_A, J_B, r, behaviour
WORKED = [
    (90, 90, RIGHT, "I a1", 0.001, 0.001, 0.00, "parallel"),
    (0, 0, RIGHT, "I b1", 1.000, 1.000, 0.00, "transmitting"),
    (0, 0, DOWN, "I b2", 0.000, 0.000, 0.00, "parallel"),
    (0, 90, RIGHT, "II b1", 1.000, 0.001, 1.00, "blocking"),
    (0, 90, DOWN, "II b2", 0.000, 0.000, 0.00, "parallel"),
    (45, -45, RIGHT, "II a1", 0.501, 0.501, 0.00, "transmitting"),
    (30, -30, RIGHT, "III a1", 0.750, 0.750, 0.00, "transmitting"),
    (30, -30, DOWN, "III a2", 0.433, -0.433, 2.00, "blocking"),
    (-30, 30, DOWN, "III b2", -0.433, 0.433, -2.00, "depleting"),
    (0, 45, RIGHT, "III b1", 1.000, 0.501, 0.50, "transmitting"),
]


def rounds_to(x: float, expected: float, decimals: int) -> bool:
    """``x`` shown to ``decimals`` decimals reads ``expected`` (half-way values accepted either way)."""
    return abs(x - expected) <= 0.5 * 10.0**-decimals + 1e-12


@pytest.mark.parametrize("a, b, e, label, j_a, j_b, r, behaviour", WORKED,
                         ids=[w[3] + f" {w[0]}/{w[1]}" for w in WORKED])
def test_worked_examples(a, b, e, label, j_a, j_b, r, behaviour):
    rec = classify_pair(c_of_trace(a), c_of_trace(b), [1.0, 0.0], e)
    assert rec.label == label
    assert rec.behaviour == behaviour
    assert rounds_to(rec.j_a, j_a, 3), rec.j_a
    assert rounds_to(rec.j_b, j_b, 3), rec.j_b
    assert rounds_to(rec.r, r, 2), rec.r
    assert rec.label == f"{rec.type} {rec.letter}{rec.field_index}"
    assert rec.alpha_a == pytest.approx(90.0) and not rec.flat_a


def test_worked_examples_vectorised_match_single():
    ca = np.array([c_of_trace(w[0]) for w in WORKED])
    cb = np.array([c_of_trace(w[1]) for w in WORKED])
    e = np.array([w[2] for w in WORKED])
    rec = classify_pair(ca, cb, [1, 0], e)  # single normal broadcast over 10 boundaries
    assert isinstance(rec.label, np.ndarray) and rec.label.shape == (10,)
    assert rec.label.tolist() == [w[3] for w in WORKED]
    assert rec.behaviour.tolist() == [w[7] for w in WORKED]
    for i, w in enumerate(WORKED):
        single = classify_pair(ca[i], cb[i], [1, 0], e[i])
        for k, v in single.as_dict().items():
            col = getattr(rec, k)
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(col[i])
            else:
                assert col[i] == v, k
    table = rec.to_table()
    assert len(table) == 10 and table["label"][7] == "III a2"


def test_single_record_holds_python_scalars():
    rec = classify_pair([0, 0.3, 1], [1, 0, 0], [1, 1], [0, 2])
    assert isinstance(rec, PairClassification) and len(rec) == 1
    assert isinstance(rec.label, str) and isinstance(rec.r, float) and isinstance(rec.field_index, int)
    assert isinstance(rec.flat_a, bool)


def test_lengths_and_signs_do_not_matter():
    base = classify_pair(c_of_trace(30), c_of_trace(-30), [1, 0], [0, 1])
    scaled = classify_pair(-7.0 * np.array(c_of_trace(30)), 0.01 * np.array(c_of_trace(-30)), [3, 0], [0, 1e-3])
    assert scaled.label == base.label and scaled.behaviour == base.behaviour
    assert scaled.r == pytest.approx(base.r, abs=FLUX_TOL) and scaled.j_a == pytest.approx(base.j_a, abs=FLUX_TOL)


def test_flat_grain_has_no_trace():
    flat = [0.05, 0.02, 1.0]  # alpha ≈ 3°
    rec = classify_pair(flat, c_of_trace(0), [1, 0], [1, 0])
    assert rec.flat_a and not rec.flat_b
    assert math.isnan(rec.theta_2d)
    assert rec.phi_a == 90.0
    assert rec.phi_b == pytest.approx(90.0)  # trace 0 meets the vertical boundary at 90°
    assert rec.theta_3d == pytest.approx(90.0, abs=3.5)
    assert rec.type == "II"  # θ falls back to theta_3d ≈ 87°
    assert rec.letter == "a"  # both phi = 90: |phi_A − phi_B| < 45
    # flat tolerance 2° makes the grain non-flat: trace basis, theta_2d defined
    rec2 = classify_pair(flat, c_of_trace(0), [1, 0], [1, 0], flat_tolerance_deg=2.0)
    assert not rec2.flat_a and math.isfinite(rec2.theta_2d)


def test_basis_3d_uses_theta_3d():
    # both traces along x (theta_2d = 0), but c-axes tilted apart out of the plane by 60°
    ca = [0.0, math.cos(math.radians(30)), math.sin(math.radians(30))]
    cb = [0.0, math.cos(math.radians(30)), -math.sin(math.radians(30))]
    trace = classify_pair(ca, cb, [1, 0], [1, 0])
    three = classify_pair(ca, cb, [1, 0], [1, 0], basis="3d")
    assert trace.theta_2d == pytest.approx(0.0, abs=ANGLE_TOL) and trace.type == "I"
    assert three.theta_3d == pytest.approx(60.0) and three.type == "III"
    assert three.theta_2d == trace.theta_2d


def test_180_degree_ambiguity_leaves_trace_basis_unchanged():
    ca = np.array([0.3, -0.6, 0.5])
    cb = np.array([-0.2, 0.7, 0.4])
    flipped = cb * np.array([1, 1, -1])  # spot-pattern 180° ambiguity flips c_z
    r1 = classify_pair(ca, cb, [0.6, 0.8], [1, 0.2])
    r2 = classify_pair(ca, flipped, [0.6, 0.8], [1, 0.2])
    assert r1.theta_2d == pytest.approx(r2.theta_2d, abs=ANGLE_TOL)
    assert r1.label == r2.label
    assert r1.theta_3d != pytest.approx(r2.theta_3d, abs=1.0)  # theta_3d is not immune: reported separately


def test_type_iii_field_exactly_across_orients_t_down():
    # n = +x, field exactly across: t⁺ = (0, 1) (down), so the letter is that of a downward field
    ca, cb = c_of_trace(30), c_of_trace(-30)
    across = classify_pair(ca, cb, [1, 0], [1, 0])
    down = classify_pair(ca, cb, [1, 0], [0, 1])
    assert across.letter == down.letter == "a"
    assert across.acc == pytest.approx(down.acc)
    # horizontal boundary (n = +y): t = (−1, 0) has t_y = 0 → t⁺ = +x
    hz = classify_pair(c_of_trace(60), c_of_trace(120), [0, 1], [0, 1])
    right = classify_pair(c_of_trace(60), c_of_trace(120), [0, 1], [1, 0])
    assert hz.type == "III" and hz.letter == right.letter
    # a field 1e-7 off "across" still counts as across; 1e-3 off follows the field's component
    up_tilt = classify_pair(ca, cb, [1, 0], [1, -1e-7])
    assert up_tilt.letter == "a"
    up_more = classify_pair(ca, cb, [1, 0], [1, -1e-3])
    assert up_more.letter == "b"


def test_field_reversal_along_type_iii_swaps_a2_b2():
    ca, cb = c_of_trace(30), c_of_trace(-30)
    assert classify_pair(ca, cb, [1, 0], [0, 1]).label == "III a2"
    assert classify_pair(ca, cb, [1, 0], [0, -1]).label == "III b2"


# ------------------------------------------------------------------------------------------------
# hypothesis
# ------------------------------------------------------------------------------------------------
unit_float = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)


def vec(k: int, min_norm: float = 1e-3):
    return st.tuples(*(unit_float,) * k).filter(lambda v: math.sqrt(sum(x * x for x in v)) > min_norm)


# c-axes: general, in-plane, near the beam (flat), exactly along the beam
c_axes = st.one_of(
    vec(3),
    st.tuples(unit_float, unit_float, st.just(0.0)).filter(lambda v: math.hypot(v[0], v[1]) > 1e-3),
    st.tuples(st.floats(-0.15, 0.15), st.floats(-0.15, 0.15), st.sampled_from([1.0, -1.0])),
    st.just((0.0, 0.0, 1.0)),
)


@st.composite
def normal_and_field(draw):
    n = draw(st.one_of(vec(2), st.sampled_from([(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)])))
    kind = draw(st.sampled_from(["random", "across", "nearly-across", "along"]))
    if kind == "random":
        e = draw(vec(2))
    elif kind == "across":  # E ∥ ±n: E·t = 0 exactly
        s = draw(st.sampled_from([1.0, -1.0, 2.5]))
        e = (s * n[0], s * n[1])
    elif kind == "nearly-across":  # 0 < |E·t| < 1e-6
        eps = draw(st.floats(-5e-7, 5e-7))
        norm = math.hypot(*n)
        e = (n[0] / norm - eps * n[1] / norm, n[1] / norm + eps * n[0] / norm)
    else:
        e = (-n[1], n[0])
    return n, e


params_st = st.fixed_dictionaries({
    "conductivity_ratio": st.sampled_from([1000.0, 10.0, 1.0e6, 1.0]),
    "type_tolerance_deg": st.sampled_from([15.0, 5.0, 30.0, 45.0]),
    "flat_tolerance_deg": st.sampled_from([10.0, 3.0, 30.0]),
    "basis": st.sampled_from(["trace", "3d"]),
    "tau_flow": st.sampled_from([0.2, 0.05, 0.9]),
    "r_block": st.sampled_from([0.8, 0.3, 1.5]),
})


def _naive(ca, cb, n, e, p):
    return naive.naive_classify(ca, cb, n, e, ratio=p["conductivity_ratio"], delta=p["type_tolerance_deg"],
                                flat_tol=p["flat_tolerance_deg"], basis=p["basis"], tau_flow=p["tau_flow"],
                                r_block=p["r_block"])


def _margin(q, p):
    return naive.decision_margin(q, delta=p["type_tolerance_deg"], flat_tol=p["flat_tolerance_deg"],
                                 tau_flow=p["tau_flow"], r_block=p["r_block"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(c_axes, c_axes, normal_and_field()), min_size=1, max_size=12), params_st)
def test_vectorised_matches_naive(items, p):
    ca = np.array([it[0] for it in items], dtype=float)
    cb = np.array([it[1] for it in items], dtype=float)
    n = np.array([it[2][0] for it in items], dtype=float)
    e = np.array([it[2][1] for it in items], dtype=float)
    rec = classify_pair(ca, cb, n, e, **p)
    for i in range(len(items)):
        q = _naive(ca[i], cb[i], n[i], e[i], p)
        for k in ("theta_3d", "theta_2d", "alpha_a", "alpha_b", "phi_a", "phi_b", "psi"):
            got = getattr(rec, k)[i]
            if math.isnan(q[k]):
                assert math.isnan(got), k
            else:
                assert got == pytest.approx(q[k], abs=ANGLE_TOL), k
                assert math.cos(math.radians(got)) == pytest.approx(math.cos(math.radians(q[k])), abs=COS_TOL), k
        for k in ("j_a", "j_b", "r", "acc"):
            assert getattr(rec, k)[i] == pytest.approx(q[k], abs=FLUX_TOL), k
        if _margin(q, p) > 1e-5:  # decisions closer than rounding error to a threshold may differ
            for k in ("flat_a", "flat_b", "type", "letter", "field_index", "label", "behaviour"):
                assert getattr(rec, k)[i] == q[k], k
    assert set(rec.label.tolist()) <= set(LABELS)


@settings(max_examples=80, deadline=None)
@given(c_axes, c_axes, normal_and_field(), params_st)
def test_swapping_a_and_b_keeps_label_behaviour_and_r(ca, cb, ne, p):
    n, e = ne
    ab = classify_pair(ca, cb, n, e, **p)
    ba = classify_pair(cb, ca, (-n[0], -n[1]), e, **p)
    for k in ("type", "letter", "field_index", "label", "behaviour"):
        assert getattr(ab, k) == getattr(ba, k), k
    assert ab.r == pytest.approx(ba.r, abs=1e-12)
    assert ab.j_a == pytest.approx(-ba.j_b, abs=1e-12) and ab.j_b == pytest.approx(-ba.j_a, abs=1e-12)
    assert ab.phi_a == ba.phi_b and ab.psi == ba.psi


@settings(max_examples=80, deadline=None)
@given(c_axes, c_axes, vec(2), vec(2))
def test_reversing_the_field_along_type_iii_swaps_a2_and_b2(ca, cb, n, e):
    rec = classify_pair(ca, cb, n, e)
    rev = classify_pair(ca, cb, n, (-e[0], -e[1]))
    assert rec.type == rev.type and rec.field_index == rev.field_index
    if rec.type == "III" and rec.field_index == 2 and abs(rec.acc) > 1e-12:
        assert {rec.label, rev.label} == {"III a2", "III b2"}
        assert rec.letter != rev.letter
    # J and r change sign, behaviour mirrors (blocking ↔ depleting)
    assert rev.r == pytest.approx(-rec.r, abs=1e-12)
    mirror = {"blocking": "depleting", "depleting": "blocking"}
    assert rev.behaviour == mirror.get(rec.behaviour, rec.behaviour)


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (([1, 0], [0, 1, 0], [1, 0], [1, 0]), "c_axis_a must have shape"),
        (([1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0]), "normal must have shape"),
        (([1, 0, 0], [0, 1, 0], [1, 0], [[1, 0, 0]]), "field must have shape"),
        (([1, 0, 0], [0, np.nan, 0], [1, 0], [1, 0]), "c_axis_b has non-finite"),
        (([1, 0, 0], [0, 1, 0], [0, 0], [1, 0]), "normal has a zero vector"),
        (([1, 0, 0], [0, 1, 0], [1, 0], [0.0, 0.0]), "field has a zero vector"),
        (([[1, 0, 0]] * 3, [[0, 1, 0]] * 2, [1, 0], [1, 0]), "1 or the same number of rows"),
        ((["x", 0, 0], [0, 1, 0], [1, 0], [1, 0]), "c_axis_a must be numeric"),
    ],
)
def test_bad_inputs_raise_one_line_input_errors(args, message):
    with pytest.raises(InputError, match=message) as info:
        classify_pair(*args)
    assert "\n" not in str(info.value)


def test_zero_row_message_names_the_row():
    with pytest.raises(InputError, match=r"row 1"):
        classify_pair([[1, 0, 0], [0, 0, 0]], [0, 1, 0], [1, 0], [1, 0])


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"basis": "2d"}, "basis"),
        ({"conductivity_ratio": 0}, "conductivity_ratio"),
        ({"conductivity_ratio": np.inf}, "conductivity_ratio"),
        ({"type_tolerance_deg": 50}, "type_tolerance_deg"),
        ({"type_tolerance_deg": -1}, "type_tolerance_deg"),
        ({"flat_tolerance_deg": 0}, "flat_tolerance_deg"),
        ({"flat_tolerance_deg": "ten"}, "flat_tolerance_deg"),
        ({"tau_flow": 0}, "tau_flow"),
        ({"r_block": np.nan}, "r_block"),
        ({"r_block": True}, "r_block"),
        ({"r_block": 2.5}, "r_block"),  # r lies in [−2, 2]: such a cut would never label a boundary blocking
    ],
)
def test_bad_parameters_raise_parameter_error(kw, name):
    with pytest.raises(ParameterError, match=name):
        classify_pair([1, 0, 0], [0, 1, 0], [1, 0], [1, 0], **kw)


def test_r_lies_within_the_r_block_range_and_two_is_accepted():
    # r_block is refused above 2 because r never exceeds it: |j_a − j_b| ≤ 2 max(|j_a|, |j_b|)
    rng = np.random.default_rng(5)
    n = rng.normal(size=(500, 2))
    c = classify_pair(rng.normal(size=(500, 3)), rng.normal(size=(500, 3)), n, rng.normal(size=(500, 2)),
                      r_block=2.0, conductivity_ratio=1e4)
    assert np.all(np.abs(c.r) <= 2.0) and np.abs(c.r).max() > 1.0


def test_defaults_come_from_config():
    import inspect

    sig = inspect.signature(classify_pair).parameters
    assert sig["conductivity_ratio"].default == config.CONDUCTIVITY_RATIO
    assert sig["type_tolerance_deg"].default == config.TYPE_TOLERANCE_DEG
    assert sig["flat_tolerance_deg"].default == config.FLAT_TOLERANCE_DEG
    assert sig["tau_flow"].default == config.TAU_FLOW
    assert sig["r_block"].default == config.R_BLOCK
    assert sig["basis"].default == "trace"


def test_a_pixel_diagonal_boundary_at_45_degrees_to_the_field_is_index_1_whatever_the_field():
    """A staircase boundary along a pixel diagonal has normal (±0.7071, 0.7071): at exactly 45° to a field along x
    or y, computed as 45 ± 3e-8. Its index was 1 or 2 by rounding (12 of 16 such segments of a 30-grain scan took
    2, and a field along y flipped the split); the spec's ψ ≤ 45 gives 1."""
    s = np.sqrt(0.5)
    normals = np.array([[s, s], [-s, s], [s, -s], [0.7071067811865476, 0.7071067811865475],
                        [0.7071067811865475, 0.7071067811865476]])
    ca, cb = c_of_trace(0), c_of_trace(90)
    for e in ([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]):
        rec = classify_pair(np.repeat([ca], 5, 0), np.repeat([cb], 5, 0), normals, e)
        assert np.allclose(rec.psi, 45.0, atol=1e-6)
        assert rec.field_index.tolist() == [1] * 5, (e, rec.psi - 45.0)
