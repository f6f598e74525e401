"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STEMGRAINS_SHARED", REPO.parent / "shared")) / "data"
DATA_SAMPLES = REPO / "data_samples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (third-party files); skips the test when it is not there."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared/data not present at {SHARED} (third-party test files live only there)")
    return SHARED


@pytest.fixture(scope="session")
def data_samples() -> Path:
    return DATA_SAMPLES


@pytest.fixture(scope="session")
def au_scan_3x3(tmp_path_factory) -> Path:
    """A 3 × 3 kinematic Au scan (64² detector, 2 grains, seed 7, dose 1e4): the smallest input of the CLI tests."""
    from stemgrains.simulate import sample_cif, simulate_polycrystal

    path = tmp_path_factory.mktemp("au3x3") / "au.h5"
    simulate_polycrystal(path, phases=[str(sample_cif("au"))], scan_shape=(3, 3), detector_shape=(64, 64), n_grains=2,
                         seed=7, dose=1e4, progress=False)
    return path


@pytest.fixture(scope="session")
def au_scan_4x3(tmp_path_factory) -> Path:
    """A 4 × 3 kinematic Au scan as :func:`au_scan_3x3`: the smallest that ``vdf-grains`` takes (at least
    2 × min_grain_px = 10 positions to correlate the images over)."""
    from stemgrains.simulate import sample_cif, simulate_polycrystal

    path = tmp_path_factory.mktemp("au4x3") / "au.h5"
    simulate_polycrystal(path, phases=[str(sample_cif("au"))], scan_shape=(4, 3), detector_shape=(64, 64), n_grains=2,
                         seed=7, dose=1e4, progress=False)
    return path


@pytest.fixture(scope="session")
def nba_24x24_indexed():
    """A 24 × 24 kinematic Na-β″ scan (6 grains, seed 3, dose 1e4; our simulator) indexed with the defaults:
    ``(phase, sim, xmap)``, built once for the accuracy tests of the indexing and the grains acceptance test, which
    check the same map. Read-only: a test that changes it works on ``xmap.deepcopy()``."""
    from stemgrains.crystal import load_phase
    from stemgrains.data import Dataset4D
    from stemgrains.index import index_orientations
    from stemgrains.simulate import sample_cif, simulate_patterns

    phase = load_phase(sample_cif("na_beta2_alumina"))
    sim = simulate_patterns([phase], scan_shape=(24, 24), n_grains=6, seed=3, dose=1e4)
    xmap = index_orientations(Dataset4D(sim.data, sim.calibration), [phase], progress=False)
    return phase, sim, xmap


@pytest.fixture(scope="session")
def nba_py4dstem_30_grains():
    """py4DSTEM's kinematic Na-β″ patterns: 30 grains in 24 × 24 pixels (seed 77, dose 1e4), q pixel size
    0.025·√1.05 1/Å with a 5 % area-preserving ellipticity at 37°, and their map indexed with the true calibration
    and the defaults (the grain-coherent search, search_stride 3): ``(phase, sim, xmap)``. Built once for the
    coherent-search test of test_accuracy and the calibration test of test_calibrate, which made and indexed the
    same scan. Read-only."""
    import math

    from stemgrains.crystal import load_phase
    from stemgrains.data import Dataset4D
    from stemgrains.index import index_orientations
    from stemgrains.simulate import sample_cif, simulate_patterns

    phase = load_phase(sample_cif("na_beta2_alumina"))
    sim = simulate_patterns([phase], scan_shape=(24, 24), n_grains=30, seed=77, dose=1e4, engine="py4dstem",
                            q_pixel_size=0.025 * math.sqrt(1.05), ellipticity=(1.05, 37.0))
    xmap = index_orientations(Dataset4D(sim.data, sim.calibration), [phase], progress=False)
    return phase, sim, xmap


@pytest.fixture(scope="session")
def nba_sample_run(tmp_path_factory):
    """``stemgrains run`` on data_samples/nba_sample.h5 with its right CIF and the defaults (--field 1,0,
    --no-figures): ``(run folder, what it wrote to stderr)``. Built once for the VDF acceptance test, which compares
    with its grains, and the phase-fit test of the right CIF, which reads its phase-fit record and warnings (each
    indexed the same 40 × 40 scan, ~13 s). Read-only."""
    import contextlib
    import io

    from stemgrains.cli import main

    out = tmp_path_factory.mktemp("nba_sample_run") / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", str(DATA_SAMPLES / "nba_sample.h5"), "--phase", str(DATA_SAMPLES / "na_beta2_alumina.cif"),
                   "--field", "1,0", "-o", str(out), "--no-figures", "--no-progress"])
    assert rc == 0, err.getvalue()
    return out, err.getvalue()
