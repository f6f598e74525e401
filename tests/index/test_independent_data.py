"""Accuracy and quality numbers on data from simulators that are not ours (tests/data, see its README): py4DSTEM's
kinematic simulator and abTEM multislice. These files were not used to choose any default (the held-out ones not
at all); the thresholds below are regression guards at what the engine achieves today, and the reliability tests
state what R must mean: pixels at or above the usual cut are right."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from orix.quaternion import Orientation

from stemgrains.crystal import load_phase
from stemgrains.index import index_orientations
from stemgrains.index.quality import phase_fit_check
from stemgrains.io import load_4d

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
CIF = {"nba": REPO / "data_samples" / "na_beta2_alumina.cif", "au": REPO / "data_samples" / "au.cif"}


def run(name):
    path = DATA / f"{name}.h5"
    phase = load_phase(CIF["au" if "-au-" in name else "nba"])
    xmap = index_orientations(load_4d(path), [phase], progress=False)
    with h5py.File(path) as f:
        truth = f["truth/quaternions"][()].reshape(-1, 4)
        classes = json.loads(f["truth"].attrs["parameters"]).get("metadata", {}).get("grain_classes")
    laue = phase.point_group.laue
    err = np.rad2deg(Orientation(xmap.rotations.data, laue).angle_with(Orientation(truth, laue)))
    err[xmap.phase_id < 0] = 180.0
    return xmap, err, classes


@pytest.mark.parametrize(("name", "min_right", "min_kept"), [
    ("ci-nba-py4dstem", 0.93, 0.5), ("heldout-nba-py4dstem", 0.93, 0.5),
    ("ci-au-py4dstem", 0.92, 0.4), ("heldout-au-py4dstem", 0.92, 0.4),
])
def test_kinematic_data_of_another_simulator(name, min_right, min_kept):
    xmap, err, _ = run(name)
    right = err < 2
    kept = xmap.prop["reliability"] >= 5
    assert right.mean() >= min_right, f"within 2°: {right.mean():.3f}"
    assert right[kept].mean() >= 0.98, f"right among R ≥ 5: {right[kept].mean():.3f}"
    assert kept[right].mean() >= min_kept, f"right pixels kept: {kept[right].mean():.3f}"
    assert phase_fit_check(xmap).ok


def test_pseudo_symmetric_na_beta2_grains_are_flagged():
    """Na-β″ grains with c ⟂ the beam: O and R_c(60°)∘O give the same kinematic pattern; whichever the engine
    picks, the pixels it gets wrong must not pass the reliability cut."""
    xmap, err, classes = run("ci-nba-py4dstem")
    wrong = err >= 2
    assert wrong.any()
    assert np.all(xmap.prop["reliability"][wrong] < 5)


@pytest.mark.parametrize("name", ["ci-au-abtem", "heldout-au-abtem"])
def test_multislice_au_right_phase_is_not_reported(name):
    xmap, err, _ = run(name)
    assert phase_fit_check(xmap).ok
    assert np.mean(err < 5) >= 0.5


@pytest.mark.parametrize(("name", "min_right"), [
    ("ci-au-abtem", 0.75), ("heldout-au-abtem", 0.72), ("ci-nba-abtem", 0.67), ("heldout-nba-abtem", 0.62),
])
def test_multislice_accuracy_with_neighbour_summation(name, min_right):
    """Regression guards on dynamical data (still short of the issue's 95 %: see README, "What it does on data it
    did not make"). Summing each pattern with its similar neighbours lifted these from 42 / 26 / 22 / 13 % to
    74 / 49 / 49 / 34 %; the spot-pair hypotheses and the spot fit in the final choice to 78 / 76 / 71 / 66 %."""
    _, err, _ = run(name)
    assert np.mean(err < 2) >= min_right, f"within 2°: {np.mean(err < 2):.3f}"


@pytest.mark.parametrize(("name", "min_precision"), [
    ("ci-au-abtem", 0.97), ("ci-nba-abtem", 0.98), ("heldout-au-abtem", 0.97), ("heldout-nba-abtem", 0.95),
])
def test_multislice_reliability_cut_keeps_mostly_right_pixels(name, min_precision):
    """The reliability is scaled by the spot fit beyond chance (reliability_fit_range): on multislice data the
    confidently wrong pixels leave detected spots unexplained. Without the scaling the cut kept 71 % (ci Na-β″) and
    59 % (held-out Au) right pixels."""
    xmap, err, _ = run(name)
    kept = xmap.prop["reliability"] >= 5
    assert kept.sum() >= 20
    assert np.mean(err[kept] < 2) >= min_precision, f"right among R ≥ 5: {np.mean(err[kept] < 2):.3f}"
