"""Accuracy and quality numbers on data from simulators that are not ours (tests/data, see its README): py4DSTEM's
kinematic simulator and abTEM multislice. These files were not used to choose any default (the held-out ones not
at all); the thresholds below are regression guards at what the engine achieves today, and the reliability tests
state what R must mean: pixels at or above the usual cut are right."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from orix.quaternion import Orientation, Rotation
from orix.vector import Vector3d

from stemgrains.crystal import load_phase
from stemgrains.index import index_orientations
from stemgrains.index.quality import phase_fit_check
from stemgrains.io import load_4d

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
CIF = {"nba": REPO / "data_samples" / "na_beta2_alumina.cif", "au": REPO / "data_samples" / "au.cif"}


@functools.lru_cache(maxsize=None)
def run(name, sigma=None, grain_vote=True):
    path = DATA / f"{name}.h5"
    phase = load_phase(CIF["au" if "-au-" in name else "nba"])
    xmap = index_orientations(load_4d(path), [phase], progress=False, excitation_error_sigma=sigma, grain_vote=grain_vote)
    with h5py.File(path) as f:
        truth = f["truth/quaternions"][()].reshape(-1, 4)
        classes = json.loads(f["truth"].attrs["parameters"]).get("metadata", {}).get("grain_classes")
    laue = phase.point_group.laue
    err = np.rad2deg(Orientation(xmap.rotations.data, laue).angle_with(Orientation(truth, laue)))
    err[xmap.phase_id < 0] = 180.0
    return xmap, err, classes


@pytest.mark.parametrize(("name", "min_right", "min_kept"), [
    ("ci-nba-py4dstem", 0.98, 0.5), ("heldout-nba-py4dstem", 0.98, 0.5),
    ("ci-au-py4dstem", 0.98, 0.4), ("heldout-au-py4dstem", 0.98, 0.4),
])
def test_kinematic_data_of_another_simulator(name, min_right, min_kept):
    """The issue's target (≥ 98 % within 2°). Reached with the grain-level decision among near-tied hypotheses
    (index grain_vote): without it 94.8 / 98.8 / 93.8 / 96.5 % (beam twins and 60° variants pixel by pixel at R ≈ 0);
    with it 100 / 98.8 / 99.8 / 100 %."""
    xmap, err, _ = run(name)
    right = err < 2
    kept = xmap.prop["reliability"] >= 5
    assert right.mean() >= min_right, f"within 2°: {right.mean():.3f}"
    assert right[kept].mean() >= 0.98, f"right among R ≥ 5: {right[kept].mean():.3f}"
    assert kept[right].mean() >= min_kept, f"right pixels kept: {kept[right].mean():.3f}"
    assert phase_fit_check(xmap).ok


def test_pseudo_symmetric_na_beta2_grains_are_flagged():
    """Na-β″ grains with c ⟂ the beam: O and R_c(60°)∘O give the same kinematic pattern; whichever the engine
    picks pixel by pixel (without the grain-level decision, which then resolves them: see above), the pixels it gets
    wrong must not pass the reliability cut."""
    xmap, err, classes = run("ci-nba-py4dstem", grain_vote=False)
    wrong = err >= 2
    assert wrong.any()
    assert np.all(xmap.prop["reliability"][wrong] < 5)


@pytest.mark.parametrize("name", ["ci-au-abtem", "heldout-au-abtem"])
def test_multislice_au_right_phase_is_not_reported(name):
    xmap, err, _ = run(name)
    assert phase_fit_check(xmap).ok
    assert np.mean(err < 5) >= 0.5


@pytest.mark.parametrize(("name", "min_right"), [
    ("ci-au-abtem", 0.84), ("heldout-au-abtem", 0.94), ("ci-nba-abtem", 0.79), ("heldout-nba-abtem", 0.87),
])
def test_multislice_accuracy_with_neighbour_summation(name, min_right):
    """Regression guards on dynamical data (still short of the issue's 95 %: see README, "What it does on data it
    did not make"). Summing each pattern with its similar neighbours lifted these from 42 / 26 / 22 / 13 % to
    74 / 49 / 49 / 34 %; the spot-pair hypotheses and the spot fit in the final choice to 78 / 76 / 71 / 66 %; the
    relrod width chosen from the data (0.010 1/Å on the first three) to 78 / 90 / 75 / 66 %; the weaker spots of
    sparse patterns in the search (SpotParams.min_spots) to 82 / 94 / 78 / 81 %; the grain-level decision among
    near-tied hypotheses (index grain_vote) to 86 / 95 / 81 / 89 %."""
    _, err, _ = run(name)
    assert np.mean(err < 2) >= min_right, f"within 2°: {np.mean(err < 2):.3f}"


@pytest.mark.parametrize(("name", "min_precision"), [
    ("ci-au-abtem", 0.97), ("ci-nba-abtem", 0.95), ("heldout-au-abtem", 0.97), ("heldout-nba-abtem", 0.95),
])
def test_multislice_reliability_cut_keeps_mostly_right_pixels(name, min_precision):
    """The reliability is scaled by the spot fit beyond chance (reliability_fit_range): on multislice data the
    confidently wrong pixels leave detected spots unexplained. Without the scaling the cut kept 71 % (ci Na-β″) and
    59 % (held-out Au) right pixels. With the relrod width chosen from the data (0.010 1/Å) ci Na-β″ keeps 7 wrong
    pixels of 157 (95.5 %; 100 % with 0.015): 6 are the grain with c 4° from the beam taken with c on the beam and
    turned 60° about it (c-axis 5° off), one a grain 12.5° off."""
    xmap, err, _ = run(name)
    kept = xmap.prop["reliability"] >= 5
    assert kept.sum() >= 20
    assert np.mean(err[kept] < 2) >= min_precision, f"right among R ≥ 5: {np.mean(err[kept] < 2):.3f}"


@pytest.mark.parametrize(("name", "chosen"), [("ci-au-abtem", 0.01), ("ci-nba-abtem", 0.01), ("ci-au-py4dstem", 0.015),
                                              ("ci-nba-py4dstem", 0.015)])
def test_relrod_width_is_chosen_from_the_data(name, chosen):
    """Multislice patterns of 20–25 nm lamellae are described best by a relrod width of 0.010 1/Å, kinematic
    patterns from py4DSTEM by the default 0.015. Read from the maps the other tests index (``run``, cached), which
    record the width index_orientations chose from the data (the choice of estimate_excitation_error_sigma: see the
    next test)."""
    prm = run(name)[0].parameters
    assert prm["excitation_error_sigma_source"] == "chosen from the data", prm
    assert prm["excitation_error_sigma"] == chosen, prm["excitation_error_sigma_confident"]
    assert set(prm["excitation_error_sigma_confident"]) == {"0.015", "0.01"}


@pytest.mark.parametrize(("name", "chosen"), [("ci-nba-abtem", 0.007), ("ci-au-abtem", 0.01), ("ci-au-py4dstem", 0.015),
                                              ("ci-nba-py4dstem", 0.015), ("heldout-au-py4dstem", 0.01)])
def test_final_refinement_width_is_chosen_from_the_data(name, chosen):
    """Multislice Na-β″ patterns are refined at last with a narrower relrod (0.007 1/Å: 92 of 130 subsample
    patterns fitted best there, 38 at the search's 0.010); multislice Au (76 : 56, not beyond chance) keeps the
    search's width; py4DSTEM patterns simulated with a 0.015 1/Å relrod keep it (every pattern votes for it), those
    simulated with 0.010 (held-out Au) are refined at 0.010 (every pattern votes for it)
    (index.api.choose_refine_sigma, refine_vote)."""
    prm = run(name)[0].parameters
    assert prm["refine_excitation_error_sigma_source"] == "chosen from the data", prm
    assert prm["refine_excitation_error_sigma"] == chosen, prm["refine_excitation_error_sigma_votes"]


@pytest.mark.parametrize(("name", "min_right", "min_precision"), [
    ("validation-nba-abtem", 0.45, 0.95), ("validation2-au-abtem", 0.95, 0.99),
])
def test_final_refinement_places_the_beam_tilt_of_multislice_patterns(name, min_right, min_precision):
    """Refined at the search's relrod width, the beam tilt of most multislice grains settles 1–3° from the truth;
    at the narrower width chosen from the data (0.007 1/Å) within 1°. validation-nba-abtem (28 nm; the file this
    was designed on, stop 26: a near-[100] edge-on grain 2.6° off with R ≥ 5): without the final refinement 28 %
    within 2°, 35 % right among R ≥ 5. validation2-au-abtem (30 nm, seed 6104: made afterwards, not tuned on):
    without it 82.0 % and 70 %."""
    xmap, err, _ = run(name)
    kept = xmap.prop["reliability"] >= 5
    assert xmap.parameters["refine_excitation_error_sigma"] < xmap.parameters["excitation_error_sigma"]
    assert np.mean(err < 2) >= min_right, f"within 2°: {np.mean(err < 2):.3f}"
    assert np.mean(err[kept] < 2) >= min_precision, f"right among R ≥ 5: {np.mean(err[kept] < 2):.3f}"


@pytest.mark.parametrize(("name", "min_right"), [("validation3-au-py4dstem", 0.95), ("validation4-au-py4dstem", 0.88),
                                               ("validation4-nba-py4dstem", 0.92)])
def test_final_refinement_takes_the_width_py4dstem_simulated(name, min_right):
    """py4DSTEM patterns simulated with a 0.010 1/Å relrod and searched at 0.015: every subsample pattern fits
    0.010 better (votes ≥ 117 of 132), so the solutions are refined there; grains 3–4° off come within 1°. Before
    the votes (a 5 % mean-square margin, which a 1–2 % gain missed) 80.5, 82.4 and 76.6 % within 2° and 76, 91 and
    80 % right among grain reliability ≥ 5; now ≥ 96.5, 89.8, 93.4 % and 100 % (validation3 set the 5° move limit;
    validation4 was made afterwards, not tuned on)."""
    xmap, err, _ = run(name)
    assert xmap.parameters["refine_excitation_error_sigma"] == 0.01 < xmap.parameters["excitation_error_sigma"]
    assert np.mean(err < 2) >= min_right, f"within 2°: {np.mean(err < 2):.3f}"
    kept = xmap.prop["grain_reliability"] >= 5
    assert np.mean(err[kept] < 2) == 1.0, f"right among grain reliability ≥ 5: {np.mean(err[kept] < 2):.3f}"


def test_estimated_relrod_width_is_the_one_the_indexing_chose():
    """estimate_excitation_error_sigma (the public function) gives the width, and the confident shares, that
    index_orientations chose and recorded for the same data (on one of the files above: the choice is the same
    code)."""
    from stemgrains.index.api import estimate_excitation_error_sigma

    name = "ci-au-abtem"  # chooses 0.010, not the default
    sigma, confident = estimate_excitation_error_sigma(load_4d(DATA / f"{name}.h5"), [load_phase(CIF["au"])])
    prm = run(name)[0].parameters
    assert sigma == prm["excitation_error_sigma"] == 0.01, confident
    assert {f"{c:g}": v for c, v in confident.items()} == prm["excitation_error_sigma_confident"]


@pytest.mark.parametrize("name", ["validation-au-abtem", "validation-nba-abtem", "validation-au-py4dstem",
                                  "validation-nba-py4dstem"])
def test_relrod_choice_never_worse_on_untuned_data(name):
    """On data made after the choice was designed (tests/data/README.md, validation-*), indexing with the relrod
    width chosen from the data is within 1 % of the default's accuracy and keeps at least as many right pixels
    at R ≥ 5 (minus 1 %)."""
    xmap_a, err_auto, _ = run(name)
    xmap_d, err_def, _ = run(name, 0.015)
    assert np.mean(err_auto < 2) >= np.mean(err_def < 2) - 0.01
    kept_a = np.sum((err_auto < 2) & (xmap_a.prop["reliability"] >= 5))
    kept_d = np.sum((err_def < 2) & (xmap_d.prop["reliability"] >= 5))
    assert kept_a >= 0.99 * kept_d


def test_solutions_on_fewer_spots_above_threshold_are_not_reliable():
    """A sparse pattern indexed with the weaker spots it took for the search (SpotParams.min_spots) but with fewer
    than min_peaks spots above the detection threshold gets R = 0: its solution rests on spots that are partly
    noise (at low dose such pixels were 2–5° off with R up to 20)."""
    xmap, err, _ = run("heldout-au-abtem")
    few = (xmap.prop["spot_fit_n_peaks"] < 4) & (xmap.phase_id >= 0)
    assert few.sum() >= 5  # indexed only thanks to the weak spots
    assert np.all(xmap.prop["reliability"][few] == 0)
    assert np.mean(err[few] < 2) >= 0.5  # and still mostly right


def _c_axis_error(xmap, name):
    """Per pixel, the angle (degrees) between the found and the true c axis as lines, up to the sign of their beam
    components (what the beam twin changes): the basal planes' trace and inclination."""
    with h5py.File(DATA / f"{name}.h5") as f:
        truth = f["truth/quaternions"][()].reshape(-1, 4)
    zv = Vector3d.zvector()
    c_t, c_f = ((~Rotation(q)) * zv for q in (truth, xmap.rotations.data))
    a = np.rad2deg(c_f.angle_with(c_t))
    b = np.rad2deg(c_f.angle_with(Vector3d(c_t.data * [1, 1, -1])))
    return np.minimum(np.minimum(a, 180 - a), np.minimum(b, 180 - b))


@pytest.mark.parametrize(("name", "min_precision", "min_recall", "min_gain"), [
    ("ci-nba-py4dstem", 1.0, 0.8, 1.2), ("heldout-nba-py4dstem", 1.0, 0.95, 1.0),
    ("ci-nba-abtem", 0.98, 0.5, 1.5), ("heldout-nba-abtem", 0.98, 0.35, 1.5),
])
def test_c_axis_reliability_keeps_the_right_conduction_planes(name, min_precision, min_recall, min_gain):
    """The c-axis reliability R_c (reliability over the hypotheses with another c axis) on Na-β″: among pixels with
    R_c ≥ 5 the c axis is right (within 5°; 2° on the kinematic sets), and R_c keeps more of the pixels whose c axis
    is right than R does (which also needs the beam twin and the 60° turn about c decided: kept 27 % and 22 % of
    them on the multislice sets). Measured when added (stop 30): kinematic precision 1.00, recall 0.93 / 0.98 (R:
    0.61 / 0.88); multislice precision within 5° 1.00 / 1.00 (within 2° 0.94 / 0.99), recall 0.56 / 0.41 (R 0.27 /
    0.22). On validation-nba-abtem (not asserted) 0.87 within 5°: grains whose search found none of the truth's
    hypotheses keep a wrong c axis at any reliability. Since stop 35 the pixels settled from searched neighbours
    see the rival those neighbours' R_c was measured against, and ci-nba-py4dstem keeps 0.86 (0.84 with every
    pixel searched, ``search_stride=1``): its 0.93 was partly their R_c missing that rival."""
    xmap, _, _ = run(name)
    err = _c_axis_error(xmap, name)
    tol = 2.0 if "py4dstem" in name else 5.0
    right = err < 2.0
    rc = np.asarray(xmap.prop["c_axis_reliability"])
    kept, kept_r = rc >= 5, np.asarray(xmap.prop["reliability"]) >= 5
    assert np.isfinite(rc).all()
    assert np.mean(err[kept] < tol) >= min_precision, f"c axis within {tol}° among R_c ≥ 5: {np.mean(err[kept] < tol):.3f}"
    assert kept[right].mean() >= min_recall, f"right c axes kept: {kept[right].mean():.3f}"
    assert kept[right].mean() >= min_gain * kept_r[right].mean(), (kept[right].mean(), kept_r[right].mean())


def test_c_axis_reliability_is_not_defined_for_cubic_phases():
    xmap, _, _ = run("ci-au-py4dstem")
    assert np.isnan(np.asarray(xmap.prop["c_axis_reliability"])).all()


@pytest.mark.parametrize(("name", "min_precision", "min_recall"), [
    ("ci-au-py4dstem", 1.0, 0.85), ("heldout-au-py4dstem", 1.0, 0.6), ("ci-nba-py4dstem", 1.0, 0.7),
    ("heldout-nba-py4dstem", 1.0, 0.9), ("ci-au-abtem", 1.0, 0.8), ("heldout-au-abtem", 1.0, 0.8),
    ("ci-nba-abtem", 0.95, 0.65), ("heldout-nba-abtem", 0.98, 0.35),
])
def test_grain_reliability_keeps_the_pixels_their_grain_decided(name, min_precision, min_recall):
    """The grain reliability (R, or the strength of the grain vote's significant decision where the pixel holds
    its solution): right among grain_reliability ≥ 5 as for R ≥ 5 (the thresholds are R's own), and the share of
    the right pixels kept well above R's, which drops every pixel of a tie its own pattern cannot break. Measured when added
    (stop 31), right among kept / right kept, R → grain reliability: py4DSTEM Au 100 / 45 → 100 / 89 %, 100 / 50 →
    100 / 90 %, Na-β″ 100 / 61 → 100 / 77 %, 100 / 89 → 100 / 95 %; multislice Au 100 / 70 → 100 / 84 %, 100 / 55 →
    100 / 87 %, Na-β″ 95.4 / 31 → 95.5 / 72 %, 98.1 / 23 → 98.9 / 40 %. Held-out py4DSTEM Au keeps 65.6 % (89.8 %
    before stop 36): one right grain's decision rests on the search's relrod width (at 0.015 every pixel prefers its
    solution by ~1 %, at the 0.010 the data chose for the final refinement half of them), the same tie that put two
    grains of validation5 py4DSTEM Au on a variant, so it is withdrawn (api._robust_decisions)."""
    xmap, err, _ = run(name)
    right = err < 2
    kept_g = np.asarray(xmap.prop["grain_reliability"]) >= 5
    kept_r = np.asarray(xmap.prop["reliability"]) >= 5
    assert not np.any(kept_r & ~kept_g)  # max(R, strength): every pixel R keeps
    assert right[kept_g].mean() >= min_precision, (right[kept_g].mean(), right[kept_r].mean())
    assert kept_g[right].mean() >= min_recall, f"right pixels kept: {kept_g[right].mean():.3f}"
    assert kept_g[right].mean() >= kept_r[right].mean() + 0.05, (kept_g[right].mean(), kept_r[right].mean())


def test_grain_decisions_that_rest_on_the_search_width_are_withdrawn():
    """validation5 py4DSTEM Au (made after the grain reliability, not tuned on): simulated with a 0.010 1/Å relrod,
    searched at 0.015. Two grains (90 px) come out on a variant of the truth (a Σ3 twin, 60° off, and 37° off): at
    0.015 every pixel prefers it by 0.01–2 %, at 0.010 (the width the final refinement takes) half the pixels prefer
    the truth. Before the decisions were tested at that width, those grains had grain reliability 95–100 and right
    among grain_reliability ≥ 5 was 64.8 %; now ≥ 97 %, all right pixels still kept (the wrong ones left are R's
    own: 94.5 % right among R ≥ 5)."""
    xmap, err, _ = run("validation5-au-py4dstem")
    right = err < 2
    kept_g = np.asarray(xmap.prop["grain_reliability"]) >= 5
    assert xmap.parameters["refine_excitation_error_sigma"] == 0.01 < xmap.parameters["excitation_error_sigma"]
    assert right[kept_g].mean() >= 0.97, f"right among grain reliability ≥ 5: {right[kept_g].mean():.3f}"
    assert kept_g[right].mean() >= 0.95, f"right pixels kept: {kept_g[right].mean():.3f}"
    assert xmap.parameters["grain_decisions_withdrawn"] >= 1
    xmap_same, _, _ = run("ci-au-py4dstem")  # the final refinement keeps σ_s: nothing to test, nothing withdrawn
    assert xmap_same.parameters["refine_excitation_error_sigma"] == xmap_same.parameters["excitation_error_sigma"]
    assert xmap_same.parameters["grain_decisions_withdrawn"] == 0


def test_sigma3_twins_are_among_the_hypotheses_of_cubic_phases():
    """validation4 multislice Au (made at stop 32, not tuned on): a grain 4.9° from a zone axis came out half on
    its Σ3 twin (60° about ⟨111⟩), 5 pixels at R 11–15, because the truth stood among their hypotheses only as a
    neighbour's solution refined on the neighbour's pattern. With the four Σ3 twins listed and refined as every
    solution's (stop 36): 72.3 → 87.5 % within 2°, right among R ≥ 5 93.3 → 100 %."""
    xmap, err, _ = run("validation4-au-abtem")
    kept = np.asarray(xmap.prop["reliability"]) >= 5
    assert np.mean(err < 2) >= 0.85, f"within 2°: {np.mean(err < 2):.3f}"
    assert np.mean(err[kept] < 2) == 1.0, f"right among R ≥ 5: {np.mean(err[kept] < 2):.3f}"


def test_no_grain_reliability_without_the_grain_vote():
    """grain_reliability is the vote's: a map indexed without it has no such prop (not a copy of R)."""
    xmap, _, _ = run("ci-nba-py4dstem", grain_vote=False)
    assert "grain_reliability" not in xmap.prop and "grain_vote" in xmap.prop


@pytest.mark.parametrize(("name", "right_below", "wrong_above"), [("ci-au-abtem", 1.5, 4.0), ("ci-nba-py4dstem", 1.2, None)])
def test_model_spread_is_small_where_the_spots_fix_the_orientation(name, right_below, wrong_above):
    """model_spread_deg (the largest move of a solution refined again at the other relrod widths): a fraction of a
    degree on most right pixels, degrees on the wrong ones of multislice Au (a grain 6.7° off: the tilt its few
    spots leave open). Measured when added (stop 31): medians right / wrong 1.08 / 8.46° (ci-au-abtem), 0.79° /
    none wrong (ci-nba-py4dstem). Not indexed: NaN."""
    xmap, err, _ = run(name)
    spread = np.asarray(xmap.prop["model_spread_deg"])
    indexed = np.asarray(xmap.phase_id) >= 0
    assert np.isfinite(spread[indexed]).all() and np.isnan(spread[~indexed]).all()
    assert np.all(spread[indexed] >= 0)
    right = err < 2
    assert np.median(spread[right]) < right_below, np.median(spread[right])
    if wrong_above is not None:
        assert np.median(spread[~right & indexed]) > wrong_above, np.median(spread[~right & indexed])
