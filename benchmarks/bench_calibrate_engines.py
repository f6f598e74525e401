"""Benchmark: calibration from the data on scans from simulators other than ours (issue 12, the dynamical case).

Per engine (py4DSTEM's kinematic ``Crystal``, abTEM multislice) and phase (Au, Na-β″): a 24 × 24 scan of 30 grains,
128² detector, 300 kV, dose 1e4, whose patterns carry a 5 % area-preserving elliptical distortion at 37° and whose
stated pixel size is 4 % above the true mean (abTEM: 20 nm, 2 frozen phonons). Reported: the ``calibrate`` fit
(pixel size, ellipticity ratio and axis errors against the truth, method, seconds) and the fraction of pixels within
2° of the truth when the scan is indexed with the stated, the fitted and the true calibration.

Datasets are simulated once into ``benchmarks/data/`` (abTEM Na-β″ takes ~6 min on 2 cores).

    python benchmarks/bench_calibrate_engines.py [--engines py4dstem,abtem] [--phases au,na_beta2_alumina]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, orientation_accuracy, versions, write_json  # noqa: E402

RATIO, ANGLE, PIXEL_ERROR, P_MEAN = 1.05, 37.0, 0.04, 0.025
DATA = Path(__file__).resolve().parent / "data"
SEEDS = {"au": 91, "na_beta2_alumina": 92}


def dataset(engine: str, phase_name: str) -> Path:
    """The distorted scan (written once); its file states q_pixel_size = (1 + PIXEL_ERROR) × the true mean."""
    import h5py

    from stemgrains.simulate import sample_cif, simulate_polycrystal

    path = DATA / f"calib-{engine}-{phase_name}.h5"
    if not path.is_file():
        extra = dict(thickness_nm=20.0, frozen_phonons=2) if engine == "abtem" else {}
        simulate_polycrystal(path, phases=[sample_cif(phase_name)], scan_shape=(24, 24), detector_shape=(128, 128),
                             n_grains=30, seed=SEEDS[phase_name], dose=1e4, engine=engine, q_pixel_size=P_MEAN * math.sqrt(RATIO),
                             ellipticity=(RATIO, ANGLE), progress=False, compression="gzip", **extra)
        with h5py.File(path, "r+") as f:
            a = f["data"].attrs
            a["q_pixel_size"] = P_MEAN * (1 + PIXEL_ERROR)
            del a["ellipticity_ratio"], a["ellipticity_angle_deg"]
    return path


def z_scores(fit) -> dict:
    """Error / stated one-sigma uncertainty of the fitted mean pixel size, axis ratio and axis angle (signed): do the
    uncertainties mean what they say (|z| mostly below 2, RMS about 1)?"""
    u, c = fit.uncertainty or {}, fit.calibration
    out = {"pixel_mean": (fit.values["q_pixel_size_mean"] - P_MEAN) / u["q_pixel_size_mean"]
           if u.get("q_pixel_size_mean") else None}
    if c.ellipticity:
        out["ellipticity_ratio"] = (c.ellipticity[0] - RATIO) / u["ellipticity_ratio"] if u.get("ellipticity_ratio") else None
        out["axis_deg"] = ((c.ellipticity[1] - ANGLE + 90) % 180 - 90) / u["ellipticity_angle_deg"] \
            if u.get("ellipticity_angle_deg") else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="py4dstem,abtem")
    ap.add_argument("--phases", default="au,na_beta2_alumina")
    ap.add_argument("--no-index", action="store_true", help="the fits and their z-scores only (no indexing)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "calibrate_engines.json"))
    args = ap.parse_args()

    from orix.crystal_map import PhaseList

    from stemgrains.crystal import load_phase
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d, load_truth
    from stemgrains.preprocess import calibrate
    from stemgrains.simulate import sample_cif

    DATA.mkdir(exist_ok=True)
    out: dict = {"machine": machine_info(), "versions": versions(), "distortion": {
        "ellipticity": [RATIO, ANGLE], "stated_pixel_error": PIXEL_ERROR, "true_mean_q_pixel_size": P_MEAN}, "cases": []}
    for engine in args.engines.split(","):
        for name in args.phases.split(","):
            path = dataset(engine, name)
            phase = load_phase(sample_cif(name))
            ds = load_4d(path)
            t0 = time.perf_counter()
            fit = calibrate(ds, [phase])
            case: dict = {"engine": engine, "phase": name, "file": path.name, "calibrate_seconds": time.perf_counter() - t0,
                          "status": fit.status, "method": fit.method, "reason": fit.reason}
            if fit.ok:
                c = fit.calibration
                case.update(pixel_mean_rel_error=fit.values["q_pixel_size_mean"] / P_MEAN - 1,
                            ellipticity_ratio_rel_error=c.ellipticity[0] / RATIO - 1 if c.ellipticity else None,
                            axis_error_deg=abs((c.ellipticity[1] - ANGLE + 90) % 180 - 90) if c.ellipticity else None)
                case["z_scores"] = z_scores(fit)
            if args.no_index:
                print({k: v for k, v in case.items() if k != "reason" or v}, flush=True)
                out["cases"].append(case)
                continue
            truth = load_truth(path)
            true_cal = replace(ds.calibration, q_pixel_size=P_MEAN * math.sqrt(RATIO), ellipticity=(RATIO, ANGLE))
            case["within_2deg"] = {}
            for label, cal in (("stated", ds.calibration), ("fitted", fit.calibration), ("true", true_cal)):
                xmap = index_orientations(replace(ds, calibration=cal), [phase], progress=False)
                a = orientation_accuracy(xmap.rotations.data, np.asarray(xmap.phase_id), truth["quaternions"].reshape(-1, 4),
                                         truth["phase_id"].ravel(), PhaseList(phases=[phase], ids=[0]), xmap.prop["reliability"])
                case["within_2deg"][label] = a["within_2deg"]
            print({k: v for k, v in case.items() if k != "reason" or v}, flush=True)
            out["cases"].append(case)
    write_json(args.out, out)
    print("→", args.out)


if __name__ == "__main__":
    main()
