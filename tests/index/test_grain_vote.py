"""The grain-level decision among near-tied hypotheses (stemgrains.index._vote): kernel against its slow reference
on random maps, and the rule on constructed ones."""

from __future__ import annotations

import numpy as np
import pytest
from orix.quaternion import Rotation
from orix.quaternion.symmetry import D3d, Oh

from stemgrains.index import _reference as ref
from stemgrains.index import _vote

TOL = np.deg2rad(3.0)
DECIDED: list[int] = []  # pixels given a decision strength, per compared map


def _sym(group):
    return np.ascontiguousarray(Rotation(group).data)


def _near(q, deg, rng):
    """``q`` turned by ``deg`` degrees about a random axis."""
    axis = rng.normal(size=3)
    r = Rotation.from_axes_angles(axis / np.linalg.norm(axis), np.deg2rad(deg))
    return (r * Rotation(q)).data.reshape(4)


def _map(ny, nx, rng, n_grains=3, n_hyp=4):
    """A random map: grains (bands of columns, random orientation A_g) whose pixels hold A_g or one of two random
    alternatives B_g, C_g, each a little perturbed, with hypothesis lists mixing the pixel's grain's solutions and
    random ones, scores near-tied or not, and random reliabilities."""
    n = ny * nx
    base = Rotation.random(n_grains * 3).data.reshape(n_grains, 3, 4)
    grain = (np.arange(n) % nx) * n_grains // nx
    which = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    q = np.array([_near(base[g, w], rng.uniform(0, 1), rng) for g, w in zip(grain, which)])
    hyp_q = np.zeros((n, n_hyp, 4))
    hyp_s = np.zeros((n, n_hyp))
    for i in range(n):
        hyp_q[i, 0], hyp_s[i, 0] = q[i], 10.0
        others = [w for w in range(3) if w != which[i]]
        for j in range(1, n_hyp):
            if j <= 2 and rng.random() < 0.8:
                hyp_q[i, j] = _near(base[grain[i], others[j - 1]], rng.uniform(0, 2), rng)
            elif rng.random() < 0.7:
                hyp_q[i, j] = Rotation.random().data.reshape(4)
            else:
                continue  # an unused (all-zero) row
            hyp_s[i, j] = 10.0 * (rng.uniform(0.95, 1.0) if rng.random() < 0.8 else rng.uniform(0.5, 0.95))
    mask = rng.random(n) > 0.1
    rel = rng.choice([0.0, 2.0, 4.99, 5.0, 30.0], size=n)
    return q, mask, hyp_q, hyp_s, rel


def _compare(seed, group):
    """Kernel and reference on one random map; returns the number of pixels switched."""
    rng = np.random.default_rng(seed)
    ny, nx = 7, 8
    q, mask, hyp_q, hyp_s, rel = _map(ny, nx, rng)
    sym = _sym(group)
    n_summed = rng.integers(1, 3, size=ny * nx).astype(np.float64)
    args = (q, mask, hyp_q, hyp_s, rel, ny, nx, sym, TOL, 0.95, 5.0, 3, 0.5 + 0.1 * (seed % 2), n_summed, (0.25, 0.5, 1.0, 2.0)[seed])
    q_k, sw_k, lab_k, st_k = _vote.grain_vote(*args)
    q_r, sw_r, lab_r, st_r = ref.grain_vote(*args)
    np.testing.assert_array_equal(lab_k, lab_r)
    np.testing.assert_array_equal(sw_k, sw_r)
    np.testing.assert_allclose(q_k, q_r)
    np.testing.assert_allclose(st_k, st_r)
    DECIDED.append(int(np.sum(st_k > 0)))
    assert np.all(q_k[~sw_k] == q[~sw_k])  # only switched pixels change, inputs untouched
    assert not np.any(sw_k & (rel >= 5.0))
    return int(sw_k.sum())


@pytest.mark.parametrize("group", [Oh, D3d], ids=["m-3m", "-3m"])
def test_grain_vote_matches_reference(group):
    DECIDED.clear()
    switched = [_compare(seed, group) for seed in range(4)]
    assert sum(switched) >= 4, switched  # the comparison is not between two no-ops
    assert sum(DECIDED) >= 4 and min(DECIDED) < 56, DECIDED  # decisions' strengths compared, not all or none


def _two_solution_grain(n_a, n_b, rel_b=0.0, tie_b=0.99, ny=4):
    """One grain of ny × (n_a + n_b)/ny pixels: the first n_a (raster order) hold solution A with B near-tied
    (0.99), the others B with A scored ``tie_b`` of their best; reliabilities 0 (A) and ``rel_b`` (B)."""
    rng = np.random.default_rng(7)
    n = n_a + n_b
    a, b = Rotation.random(2).data
    q = np.array([a] * n_a + [b] * n_b)
    hyp_q = np.zeros((n, 3, 4))
    hyp_s = np.zeros((n, 3))
    for i in range(n):
        other = b if i < n_a else a
        hyp_q[i, 0], hyp_q[i, 1], hyp_q[i, 2] = q[i], other, Rotation.random().data.reshape(4)
        hyp_s[i] = [10.0, 10.0 * (0.99 if i < n_a else tie_b), 3.0]
    rel = np.where(np.arange(n) < n_a, 0.0, rel_b)
    assert n % ny == 0 and rng is not None
    return q, np.ones(n, bool), hyp_q, hyp_s, rel, ny, n // ny


def _vote_on(case, tie=0.95, n_summed=1.0, z=2.0, strength=False):
    q, mask, hyp_q, hyp_s, rel, ny, nx = case
    out = _vote.grain_vote(q, mask, hyp_q, hyp_s, rel, ny, nx, _sym(Oh), TOL, tie, 5.0, 3, 0.6,
                           np.full(len(q), float(n_summed)), z)
    return out if strength else out[:3]


def test_minority_pixels_that_cannot_decide_take_the_majority():
    case = _two_solution_grain(14, 6)
    q_new, switched, labels = _vote_on(case)
    assert len(np.unique(labels)) == 1
    assert switched.sum() == 6 and np.all(switched[14:])
    np.testing.assert_array_equal(q_new[14:], case[2][14:, 1])  # their own hypothesis at A


@pytest.mark.parametrize(("n_a", "n_b"), [(10, 10), (12, 8)])
def test_no_clear_majority_no_decision(n_a, n_b):
    """Even and 60 : 40 splits are left as they are (more than 60 % is needed)."""
    _, switched, _ = _vote_on(_two_solution_grain(n_a, n_b))
    assert not switched.any()


def test_reliable_pixels_keep_their_solution():
    _, switched, _ = _vote_on(_two_solution_grain(14, 6, rel_b=5.0))
    assert not switched.any()


def test_pixels_whose_pattern_prefers_their_solution_clearly_keep_it():
    """B pixels score A at 0.8 of their best: they are linked to the A pixels (whose patterns cannot tell A from
    B) but are not switched: a neighbouring grain whose orientation is merely among the hypotheses stays."""
    _, switched, labels = _vote_on(_two_solution_grain(14, 6, tie_b=0.8))
    assert not switched.any()
    assert len(np.unique(labels)) == 1


def test_one_sided_ties_link_a_patch_to_its_grain():
    """The A pixels prefer A clearly (B at 0.8), the B patch cannot tell B from A (0.99): the patch joins the grain
    and takes A."""
    q, mask, hyp_q, hyp_s, rel, ny, nx = _two_solution_grain(14, 6)
    hyp_s = hyp_s.copy()
    hyp_s[:14, 1] = 8.0
    q_new, switched, labels = _vote_on((q, mask, hyp_q, hyp_s, rel, ny, nx))
    assert len(np.unique(labels)) == 1
    assert np.all(switched[14:]) and not switched[:14].any()


def test_decision_strength_of_a_clear_majority():
    """16 : 4 with every pattern its own (n̄ = 1): b − a = 12 > 2√20 ≈ 8.9, so every pixel that holds A after the
    vote (all 20: the B patch took A) gets 100 (b − a)/(a + b) = 60; the vote's switches are unchanged by it."""
    q_new, switched, _, strength = _vote_on(_two_solution_grain(16, 4), strength=True)
    assert switched.sum() == 4
    np.testing.assert_allclose(strength, 60.0)


def test_decision_strength_counts_summed_patterns_once():
    """The same grain with each pattern a sum of 9 neighbours' (n̄ = 9): 12 < 2√(9·20) ≈ 26.8, not significant,
    strength 0 though the vote still switches the patch (its rule has no significance test)."""
    _, switched, _, strength = _vote_on(_two_solution_grain(16, 4), n_summed=9.0, strength=True)
    assert switched.sum() == 4
    assert not strength.any()


def test_decision_strength_of_a_group_that_agrees():
    """A group whose pixels all hold A (B near-tied in every pattern, held by none) decides with strength 100 once it
    is large enough for the sign test at n̄ = 9: 40 pixels (40 > 2√(9·40) ≈ 37.9) do, 36 (36 = 2√(9·36)) do not."""
    for n, expected in ((40, 100.0), (36, 0.0)):
        q, mask, hyp_q, hyp_s, rel, ny, nx = _two_solution_grain(n, 0)
        _, switched, _, strength = _vote_on((q, mask, hyp_q, hyp_s, rel, ny, nx), n_summed=9.0, strength=True)
        assert not switched.any()
        np.testing.assert_allclose(strength, expected)


def test_no_clear_majority_no_strength():
    """A 55 : 45 split of 800 pixels passes the sign test at n̄ = 1 (b − a = 80 > 2√800 ≈ 56.6), but the vote's
    majority (more than 60 %) is required as well: a group the vote leaves alone gives no strength."""
    _, switched, _, strength = _vote_on(_two_solution_grain(440, 360, ny=8), strength=True)
    assert not switched.any() and not strength.any()


def test_decision_held_needs_a_clear_majority_of_the_pixels_with_a_rival():
    """A decision holds at another relrod width where more than 60 % of the sampled pixels still score the decided
    solution above their rival; pixels without a listed rival (NaN) do not count, and with none it holds."""
    from stemgrains.index.api import decision_held

    own = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    assert decision_held(own, np.array([0.9, 0.9, 0.9, 0.9, 1.1]))  # 4 of 5
    assert not decision_held(own, np.array([0.9, 0.9, 0.9, 1.1, 1.1]))  # 3 of 5 = 60 %: not more
    assert not decision_held(own, np.array([1.0, 1.0, 1.0, 1.0, 0.9]))  # a tie is no vote for the decision
    assert decision_held(own, np.array([0.9, 0.9, np.nan, np.nan, np.nan]))  # 2 of 2 that have a rival
    assert decision_held(own, np.full(5, np.nan))


def test_rival_is_the_best_listed_hypothesis_beyond_the_distance():
    """The rival a decision is tested against: the first listed hypothesis more than the distance away (under the
    Laue group), skipping the solution's own refinements and the unused (zero) rows."""
    from stemgrains.index.api import _rival_of

    rng = np.random.default_rng(7)
    sym = _sym(Oh)
    q = Rotation.random().data.reshape(4)
    far1, far2 = Rotation.random(2).data
    twin = (Rotation(sym[5]) * Rotation(q)).data.reshape(4)  # q under a symmetry operation: the same orientation
    hyp = np.stack([_near(q, 1.0, rng), twin, np.zeros(4), far1, far2])
    assert np.allclose(_rival_of(q, hyp, sym, np.deg2rad(5.0)), far1)
    assert _rival_of(q, hyp[:3], sym, np.deg2rad(5.0)) is None
    assert _rival_of(q, np.zeros((4, 4)), sym, np.deg2rad(5.0)) is None
