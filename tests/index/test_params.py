"""IndexParams: defaults from stemgrains.config, validation (bad values → one-line ParameterError), round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains import config
from stemgrains.errors import ParameterError
from stemgrains.index.api import IndexParams
from stemgrains.preprocess.api import SpotParams

POSITIVE_FLOATS = ["k_max", "excitation_error_sigma", "refine_excitation_error_sigma", "sigma_coarse", "reliability_distance_deg", "refine_xtol_deg"]


def test_relrod_width_has_an_upper_bound():
    assert_parameter_error("excitation_error_sigma", excitation_error_sigma=1e9)
    assert_parameter_error("refine_excitation_error_sigma", refine_excitation_error_sigma=1e9)
    assert IndexParams(excitation_error_sigma=config.EXCITATION_ERROR_SIGMA_MAX).excitation_error_sigma == config.EXCITATION_ERROR_SIGMA_MAX
POSITIVE_INTS = ["n_prefilter", "n_angles", "n_candidates", "n_refine", "n_best", "min_peaks", "refine_max_eval", "chunk_rows"]


def assert_parameter_error(name, **kw):
    with pytest.raises(ParameterError) as e:
        IndexParams(**kw)
    msg = str(e.value)
    assert "\n" not in msg and name in msg


def test_defaults_come_from_config_and_are_valid():
    p = IndexParams()
    assert p.step_deg == config.LIBRARY_STEP_DEG
    assert p.n_best == config.N_BEST
    assert p.n_prefilter == config.N_PREFILTER and p.neighbor_pass is True
    assert p.reliability_distance_deg == config.RELIABILITY_MIN_DISTANCE_DEG
    assert isinstance(p.spots, SpotParams) and p.spots == SpotParams()


@pytest.mark.parametrize("name", POSITIVE_FLOATS)
@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf, -np.inf])
def test_positive_floats(name, value):
    assert_parameter_error(name, **{name: value})


@pytest.mark.parametrize("name", POSITIVE_INTS)
@pytest.mark.parametrize("value", [0, -3, 2.5, "5"])
def test_positive_integers(name, value):
    assert_parameter_error(name, **{name: value})


@pytest.mark.parametrize("value", [1.0, 1, -0.1, np.nan])
def test_min_correlation_range(value):
    assert_parameter_error("min_correlation", min_correlation=value)


@pytest.mark.parametrize("value", [0.0, 0.5, 0.999])
def test_min_correlation_accepts_the_unit_interval(value):
    assert IndexParams(min_correlation=value).min_correlation == value


def test_spots_from_dict_are_validated_and_round_trip():
    p = IndexParams(spots={"q_max": 1.2, "n_sigma": 4.5}, n_angles=180, k_max=1.2)
    assert isinstance(p.spots, SpotParams) and p.spots.q_max == 1.2 and p.spots.n_sigma == 4.5
    d = p.as_dict()
    assert isinstance(d["spots"], dict) and d["n_angles"] == 180
    assert IndexParams(**d) == p
    with pytest.raises(ParameterError) as e:
        IndexParams(spots={"q_max": -1.0})
    assert "q_max" in str(e.value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.k_max = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan])
def test_step_deg(value):
    assert_parameter_error("step_deg", step_deg=value)


@pytest.mark.parametrize("kw", [dict(k_max="1.5"), dict(n_angles=None), dict(min_correlation=None),
                                dict(n_angles=np.nan), dict(n_best=np.inf)])
def test_non_numbers(kw):
    assert_parameter_error(next(iter(kw)), **kw)


def test_integer_fields_are_ints():
    assert type(IndexParams(n_angles=180.0).n_angles) is int
    assert_parameter_error("n_angles", n_angles=True)


@pytest.mark.parametrize("spots", [3, {"bogus": 1}])
def test_bad_spots(spots):
    assert_parameter_error("spots", spots=spots)


@pytest.mark.parametrize("value", [0.0, -2.0, np.nan, np.inf])
def test_candidate_separation(value):
    assert_parameter_error("candidate_separation_deg", candidate_separation_deg=value)


@pytest.mark.parametrize("value", [None, 0.3, 2])
def test_candidate_separation_accepts_none_and_positive(value):
    assert IndexParams(candidate_separation_deg=value).candidate_separation_deg == value


@pytest.mark.parametrize("value", [1, "yes", None, 0.0])
def test_neighbor_pass_must_be_a_bool(value):
    assert_parameter_error("neighbor_pass", neighbor_pass=value)


def test_neighbor_pass_accepts_bools():
    assert IndexParams(neighbor_pass=np.bool_(False)).neighbor_pass is False
    assert IndexParams().neighbor_pass is True


def test_a_search_stride_beyond_the_map_is_harmless():
    """search_stride far larger than the chunk: one anchor per chunk, memory and time bounded (the neighbour lookup
    goes over anchors, not over a (2·stride − 1)² window)."""
    import resource

    from stemgrains.crystal import load_phase
    from stemgrains.index.api import index_patterns
    from stemgrains.library import build_library
    from stemgrains.simulate import sample_cif, simulate_patterns

    phase = load_phase(sample_cif("au"))
    sim = simulate_patterns([phase], scan_shape=(4, 6), detector_shape=(64, 64), n_grains=1, seed=3, dose=1e4)
    lib = build_library(phase, step_deg=3.0, k_max=1.5, accelerating_voltage_kV=sim.calibration.accelerating_voltage_kV)
    block = sim.data.reshape(-1, 64, 64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    big = index_patterns(block, sim.calibration, [lib], IndexParams(step_deg=3.0, search_stride=100_000), scan_shape=(4, 6))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200, grown_mib
    ref = index_patterns(block, sim.calibration, [lib], IndexParams(step_deg=3.0, search_stride=1), scan_shape=(4, 6))
    dots = np.abs(np.sum(big.quaternions * ref.quaternions, axis=1)).clip(0, 1)
    assert np.all(np.rad2deg(2 * np.arccos(dots)) < 0.1)  # one grain: the same orientations as every pixel searched


def test_reliability_fit_range_is_checked():
    from stemgrains.index.api import IndexParams

    assert IndexParams().reliability_fit_range == (0.5, 0.9)
    assert IndexParams(reliability_fit_range=None).reliability_fit_range is None
    assert IndexParams(reliability_fit_range=[0.2, 0.4]).reliability_fit_range == (0.2, 0.4)
    for bad in ((0.9, 0.5), (0.5,), "x", (0.1, float("inf"))):
        with pytest.raises(ParameterError, match="reliability_fit_range"):
            IndexParams(reliability_fit_range=bad)


def test_unset_relrod_width_resolves_to_the_configured_default():
    from stemgrains.data import Calibration

    p = IndexParams()
    assert p.excitation_error_sigma is None  # index_orientations chooses it from the data
    r = p.resolved(Calibration(0.025), (64, 64))
    assert r.excitation_error_sigma == config.EXCITATION_ERROR_SIGMA
    assert IndexParams(excitation_error_sigma=0.02).resolved(Calibration(0.025), (64, 64)).excitation_error_sigma == 0.02


def test_relrod_width_estimation_inputs_are_checked(tmp_path):
    from stemgrains.crystal import load_phase
    from stemgrains.data import Calibration
    from stemgrains.index import index_orientations
    from stemgrains.index.api import estimate_excitation_error_sigma
    from stemgrains.io import load_4d, write_4d
    from stemgrains.library.templates import build_library
    from pathlib import Path

    au = load_phase(Path(__file__).resolve().parents[2] / "data_samples" / "au.cif")
    path = write_4d(tmp_path / "s.h5", np.zeros((2, 2, 32, 32), np.uint16), Calibration(0.05, scan_step_nm=1.0))
    ds = load_4d(path)
    with pytest.raises(ParameterError, match="candidates must be positive"):
        estimate_excitation_error_sigma(ds, [au], candidates=(0.01, -1.0))
    libs = [build_library(au, step_deg=5.0, k_max=0.8, cache=False, excitation_error_sigma=w) for w in (0.01, 0.02)]
    with pytest.raises(ParameterError, match="different relrod widths"):
        index_orientations(ds, [au, au], libraries=libs, progress=False)
    # prebuilt libraries: their own width is used
    assert index_orientations(ds, [au], libraries=libs[:1], progress=False, k_max=0.8).parameters["excitation_error_sigma"] == 0.01


def test_chosen_relrod_width_is_recorded(tmp_path):
    """index_orientations records the relrod width it used with the map's parameters (and so in the results file):
    on this 24-pattern scan the default (fewer than config.SIGMA_MIN_PATTERNS to choose from), or the one set."""
    from stemgrains.crystal import load_phase
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d
    from stemgrains.simulate import simulate_polycrystal
    from pathlib import Path

    cif = Path(__file__).resolve().parents[2] / "data_samples" / "au.cif"
    path = simulate_polycrystal(tmp_path / "s.h5", phases=[str(cif)], scan_shape=(4, 6), detector_shape=(48, 48),
                                n_grains=2, seed=3, dose=None, progress=False)
    xmap = index_orientations(load_4d(path), [load_phase(cif)], progress=False, step_deg=3.0)
    assert xmap.parameters["excitation_error_sigma"] == config.EXCITATION_ERROR_SIGMA
    assert xmap.parameters["excitation_error_sigma_source"].startswith("the default: fewer than")
    assert "excitation_error_sigma_confident" not in xmap.parameters
    fixed = index_orientations(load_4d(path), [load_phase(cif)], progress=False, step_deg=3.0, excitation_error_sigma=0.02)
    assert fixed.parameters["excitation_error_sigma"] == 0.02
    assert fixed.parameters["excitation_error_sigma_source"] == "set"


def test_index_cli_says_which_relrod_width_it_used(au_scan_3x3, tmp_path, capsys):
    from stemgrains.cli import main
    from stemgrains.simulate import sample_cif

    base = ["index", str(au_scan_3x3), "--phase", str(sample_cif("au")), "--step", "3", "--no-progress"]
    assert main([*base, "-o", str(tmp_path / "a.h5")]) == 0
    out = capsys.readouterr().out  # 9 patterns: too few to choose from
    assert f"relrod width σ_s {config.EXCITATION_ERROR_SIGMA:g} 1/Å (the default: fewer than" in out
    assert "\n  final refinement: none (the search's: fewer than 64 patterns to choose from)" in out
    heldout = Path(__file__).resolve().parents[1] / "data" / "heldout-au-py4dstem.h5"  # 256 patterns
    assert main(["index", str(heldout), "--phase", str(sample_cif("au")), "--no-progress", "-o", str(tmp_path / "h.h5")]) == 0
    out = capsys.readouterr().out
    assert "1/Å (chosen from the data: R ≥ 5 on 0.015: " in out  # also with --no-progress
    # py4DSTEM patterns simulated with a 0.010 1/Å relrod: every pattern of the subsample is fitted best refined at
    # 0.01, and the line says so with the votes and the sign test
    assert ("\n  final refinement: at 0.01 1/Å (the most voted width: 132 of 132 indexed subsample patterns score higher "
            "refined at a narrower width than at σ_s 0.015; sign test z = 11.5 > 3") in out
    assert "sign test z = " in out
    with h5py.File(tmp_path / "h.h5", "r") as f:
        recorded = json.loads(f["parameters"].attrs["index"])
    assert set(recorded["refine_excitation_error_sigma_votes"]) == {"0.015", "0.01", "0.007"}
    assert recorded["excitation_error_sigma_source"] == "chosen from the data"
    assert set(recorded["excitation_error_sigma_confident"]) == {"0.015", "0.01"}
    cfg = tmp_path / "c.toml"
    cfg.write_text("[index]\nexcitation_error_sigma = 0.02\n", encoding="utf-8")
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "b.h5"), "--config", str(cfg)]) == 0
    assert "relrod width σ_s 0.02 1/Å (set;" in capsys.readouterr().out
