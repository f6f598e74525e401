"""The phase-fit check: spot fit per pattern, the one-line warning when a phase does not explain the patterns, its
record in the results file and figure; and a correlation index that separates right from wrong solutions."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.crystal import load_phase
from stemgrains.data import Dataset4D
from stemgrains.index import index_orientations
from stemgrains.index.quality import phase_fit_check
from stemgrains.plot.orientation import plot_phase_fit
from stemgrains.simulate import sample_cif, simulate_patterns

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data_samples" / "nba_sample.h5"


@pytest.fixture(scope="module")
def nba_scan():
    phase = load_phase(sample_cif("na_beta2_alumina"))
    sim = simulate_patterns([phase], scan_shape=(10, 10), n_grains=4, seed=21, dose=1e4)
    return phase, Dataset4D(sim.data, sim.calibration)


@pytest.fixture(scope="module")
def nba_right(nba_scan):
    """nba_scan indexed with its own phase (step 2°), once for the tests that need it; a test that changes the
    map's properties works on a deep copy."""
    phase, ds = nba_scan
    return index_orientations(ds, [phase], progress=False, step_deg=2.0)


def test_right_phase_explains_its_patterns(nba_right):
    xmap = nba_right
    rep = phase_fit_check(xmap)
    assert rep.ok and not rep.warnings
    (pf,) = rep.phases
    assert pf.median_fit_fraction >= 0.85 and pf.poor_fraction <= 0.05
    assert 0 < pf.median_residual < 0.03  # 1/Å
    ci = xmap.prop["correlation_index"]
    assert np.all((ci >= 0) & (ci <= 1))
    assert np.median(ci) < 0.99, "the correlation index must not saturate at 1 on right data"
    fig = plot_phase_fit(xmap)
    assert "OK" in fig.axes[1].get_title()


def test_wrong_phase_is_reported(nba_scan, nba_right):
    _, ds = nba_scan
    right = nba_right
    wrong = index_orientations(ds, [load_phase(sample_cif("au"))], progress=False, step_deg=2.0)
    rep = phase_fit_check(wrong)
    assert not rep.ok and len(rep.warnings) == 1
    assert "does not explain the patterns" in rep.warnings[0] and "\n" not in rep.warnings[0]
    assert rep.phases[0].median_fit_fraction < 0.5
    # the correlation index discriminates: the wrong phase's best solutions correlate clearly worse
    assert np.median(wrong.prop["correlation_index"]) < 0.8 * np.median(right.prop["correlation_index"])
    fig = plot_phase_fit(wrong)
    assert "FAILED" in fig.axes[1].get_title()


def test_a_larger_cell_that_explains_every_spot_but_no_orientation_is_reported():
    """Au patterns indexed with the Na-β″ CIF: its dense reciprocal lattice explains nearly every Au spot (the median
    test passes it) but in many orientations alike, so almost no pattern is reliable; the right CIF is not reported."""
    au = load_phase(sample_cif("au"))
    sim = simulate_patterns([au], scan_shape=(6, 6), n_grains=3, seed=5, dose=1e4, detector_shape=(64, 64))
    ds = Dataset4D(sim.data, sim.calibration)
    wrong = phase_fit_check(index_orientations(ds, [load_phase(sample_cif("na_beta2_alumina"))], progress=False, step_deg=3.0))
    (pf,) = wrong.phases
    assert pf.median_fit_fraction >= 0.5, "the spot-position median alone passes this phase"
    assert not wrong.ok and len(wrong.warnings) == 1 and "fixes no orientation" in wrong.warnings[0]
    assert pf.reliable_fraction < 0.15 and pf.n_judged >= 20
    right = phase_fit_check(index_orientations(ds, [au], progress=False, step_deg=3.0))
    assert right.ok and right.phases[0].reliable_fraction >= 0.15


def test_report_of_a_map_without_spot_fit_is_empty():
    from orix.crystal_map import CrystalMap

    xmap = CrystalMap.empty((3, 4))
    rep = phase_fit_check(xmap)
    assert rep.ok and rep.phases == [] and rep.as_dict()["warnings"] == []


def test_patterns_with_too_few_spots_above_threshold_are_not_judged(nba_right):
    """A poorly explained region made only of patterns with fewer than PHASE_FIT_MIN_SPOTS spots above the detection
    threshold (sparse patterns that took weaker spots for the search) raises no warning: 1–3 spots cannot show a
    misfit. The same region with enough spots does."""
    from stemgrains import config

    xmap = nba_right.deepcopy()  # its properties are changed below
    assert "spot_fit_n_peaks" in xmap.prop and np.all(xmap.prop["spot_fit_n_peaks"] <= xmap.prop["n_peaks"])
    region = np.zeros(xmap.shape, bool)
    region[:5, :5] = True  # a quarter of the map
    xmap.prop["spot_fit_fraction"] = np.where(region.ravel(), 0.0, xmap.prop["spot_fit_fraction"])
    assert len(phase_fit_check(xmap).warnings) == 1
    xmap.prop["spot_fit_n_peaks"] = np.where(region.ravel(), config.PHASE_FIT_MIN_SPOTS - 1, xmap.prop["spot_fit_n_peaks"])
    rep = phase_fit_check(xmap)
    assert rep.ok and not rep.warnings and rep.phases[0].n_judged == int((~region).sum())
    assert rep.phases[0].n_indexed == int((np.asarray(xmap.phase_id) == 0).sum())  # all indexed, judged or not
    crop = xmap[5:, 5:]  # a cropped map: its own props only
    assert phase_fit_check(crop).phases[0].n_judged == crop.size
    assert "nothing" not in plot_phase_fit(crop).axes[1].get_title()
    fig = plot_phase_fit(xmap[:5, :5])
    assert fig.axes[1].get_title() == "phase fit: no pattern to judge"
    assert any(f"none with at least\n{config.PHASE_FIT_MIN_SPOTS} spots" in t.get_text() for t in fig.axes[1].texts)


def _index_cli(tmp_path, cif, *extra):
    out = tmp_path / f"{Path(cif).stem}.h5"
    rc = main(["index", str(SAMPLE), "--phase", str(cif), "-o", str(out), "--no-progress", *extra])
    assert rc == 0
    with h5py.File(out) as f:
        return json.loads(f["orientation"].attrs["phase_fit"])


@pytest.mark.slow
@pytest.mark.parametrize("cif", ["au", "zro2_baddeleyite"])
def test_data_samples_with_a_wrong_cif_warns_and_records(tmp_path, capsys, cif):
    rec = _index_cli(tmp_path, REPO / "data_samples" / f"{cif}.cif", "--step", "2")
    err = capsys.readouterr().err
    assert err.count("warning: phase") == 1, err
    assert rec["ok"] is False and rec["warnings"]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "known limitation: with the neighbour summation (42 spots per pattern instead of 16) the search finds, for the "
    "one grain of data_samples that Na-β did not explain (54 % of its spots), a Na-β orientation 39° away that "
    "explains all of them (chance level 0.20); spot positions at the fit tolerance cannot tell Na-β from Na-β″ "
    "here, so the earlier warning came from a search miss. Needs an intensity-based phase test."))
def test_data_samples_with_the_na_beta_cif_warns(tmp_path, capsys, shared_data):
    """Na-β (P6₃/mmc, c = 22.5 Å) is the closest wrong phase: its 00l row spacing matches Na-β″'s within 1 % and
    a grain with c along the beam looks the same in both; the grains with inclined c do not."""
    rec = _index_cli(tmp_path, shared_data / "cif" / "na_beta_alumina.cif")
    assert "warning: phase" in capsys.readouterr().err
    assert rec["ok"] is False


@pytest.mark.slow
def test_data_samples_with_the_right_cif_gives_no_warning(nba_sample_run):
    """The `stemgrains run` of tests/conftest.py (defaults, the right CIF): its indexing (the code of `index`) prints
    no warning and records the phase fit as right."""
    out, err = nba_sample_run
    assert "warning" not in err
    with h5py.File(out / "results.h5") as f:
        rec = json.loads(f["orientation"].attrs["phase_fit"])
    assert rec["ok"] is True and rec["phases"][0]["median_fit_fraction"] > 0.85
    assert "warning" not in json.loads((out / "summary.json").read_text())["classification"]
