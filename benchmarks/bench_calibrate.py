"""Benchmark: calibration from the data (`stemgrains.preprocess.calibrate`) on a 64 × 64 Na-β″ scan.

The scan (48 grains, 128² detector, dose 1e4) has a 5 % area-preserving elliptical distortion at 37° and its file
states a pixel size 4 % off the true mean pixel size (the issue-12 case). Measured, after a warm-up call that
compiles the numba kernels and loads the template library into the cache: the wall time of ``calibrate`` with
``method="rings"``, ``"orientations"`` and ``"auto"`` (median of ``--repeat``), and the errors of the fitted pixel
size, ellipticity ratio and axis against the truth. With ``--index``, the whole scan is also indexed with the
stated, the fitted and the true calibration and the fraction within 2° of the truth reported. A second, few-grain case
(2 grains, 4 × 4 patterns, a known symmetric affine) reports the joint fit's per-element error.

    python benchmarks/bench_calibrate.py [--repeat 3] [--index] [--out benchmarks/results/calibrate.json]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, orientation_accuracy, timed, versions, write_json  # noqa: E402

RATIO, ANGLE, PIXEL_ERROR = 1.05, 37.0, 0.04
DATA = Path(__file__).resolve().parent / "data"


def elliptic_dataset(path: Path):
    """Write (once) the distorted scan; the file states q_pixel_size = (1 + PIXEL_ERROR) × the true mean."""
    import h5py

    from stemgrains.simulate import default_q_pixel_size, sample_cif, simulate_polycrystal

    p = default_q_pixel_size(1.5, (128, 128))
    if not path.is_file():
        simulate_polycrystal(path, phases=[sample_cif("na_beta2_alumina")], scan_shape=(64, 64), n_grains=48, seed=12,
                             dose=1e4, q_pixel_size=p * math.sqrt(RATIO), ellipticity=(RATIO, ANGLE), progress=False,
                             compression="gzip")
        with h5py.File(path, "r+") as f:
            a = f["data"].attrs
            a["q_pixel_size"] = p * (1 + PIXEL_ERROR)
            del a["ellipticity_ratio"], a["ellipticity_angle_deg"]
    return path, p * math.sqrt(RATIO)


def fit_errors(fit, true_pixel: float) -> dict:
    if not fit.ok:
        return {"status": fit.status, "reason": fit.reason}
    c = fit.calibration
    return {
        "status": fit.status,
        "method": fit.method,
        "q_pixel_size_rel_error": c.q_pixel_size / true_pixel - 1,
        "ellipticity_ratio": c.ellipticity[0],
        "ellipticity_ratio_rel_error": c.ellipticity[0] / RATIO - 1,
        "ellipticity_angle_deg": c.ellipticity[1],
        "axis_error_deg": abs((c.ellipticity[1] - ANGLE + 90) % 180 - 90),
        "uncertainty": fit.uncertainty,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--index", action="store_true", help="also index the whole scan with the stated and fitted calibration")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "calibrate.json"))
    args = ap.parse_args()

    from dataclasses import replace

    from stemgrains.crystal import load_phase
    from stemgrains.data import Calibration, Dataset4D
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d, load_truth
    from stemgrains.preprocess import calibrate
    from stemgrains.simulate import sample_cif, simulate_patterns

    DATA.mkdir(exist_ok=True)
    path, true_pixel = elliptic_dataset(DATA / "nba-64-ellipse.h5")
    phase = load_phase(sample_cif("na_beta2_alumina"))
    ds = load_4d(path)
    t_warm, _ = timed(lambda: calibrate(ds, [phase]))
    out: dict = {"machine": machine_info(), "versions": versions(), "dataset": {
        "path": str(path.name), "scan": list(ds.scan_shape), "detector": list(ds.detector_shape), "grains": 48,
        "ellipticity": [RATIO, ANGLE], "stated_pixel_error": PIXEL_ERROR, "true_q_pixel_size": true_pixel,
        "stated_q_pixel_size": ds.calibration.q_pixel_size}, "warmup_s": t_warm, "methods": {}}
    fits = {}
    for method in ("rings", "orientations", "auto"):
        times = []
        for _ in range(args.repeat):
            t, fit = timed(lambda: calibrate(ds, [phase], method=method))
            times.append(t)
        fits[method] = fit
        out["methods"][method] = {"seconds": times, "median_s": statistics.median(times), **fit_errors(fit, true_pixel)}
        print(method, out["methods"][method]["median_s"], fit_errors(fit, true_pixel))

    if args.index:
        truth = load_truth(path)
        acc = {}
        true_cal = replace(ds.calibration, q_pixel_size=true_pixel, ellipticity=(RATIO, ANGLE))
        for name, cal in (("stated", ds.calibration), ("fitted", fits["auto"].calibration), ("true", true_cal)):
            t0 = time.perf_counter()
            xmap = index_orientations(replace(ds, calibration=cal), [phase], progress=False)
            sec = time.perf_counter() - t0
            from orix.crystal_map import PhaseList

            a = orientation_accuracy(xmap.rotations.data.reshape(-1, 4), np.asarray(xmap.phase_id), truth["quaternions"].reshape(-1, 4),
                                     truth["phase_id"].ravel(), PhaseList(phases=[phase], ids=[0]), xmap.prop["reliability"])
            acc[name] = {"index_seconds": sec, **a}
            print(name, {k: v for k, v in a.items() if not isinstance(v, (list, dict))})
        out["indexing"] = acc

    # few grains: 2 Na-β″ grains, 16 patterns, a known symmetric affine
    a_true = np.array([[1.03, 0.02], [0.02, 0.98]])
    sim = simulate_patterns([phase], scan_shape=(4, 4), n_grains=2, seed=1, dose=1e4, affine=tuple(a_true.ravel()))
    stated = Calibration(q_pixel_size=sim.calibration.q_pixel_size)
    t, fit = timed(lambda: calibrate(Dataset4D(sim.data, stated), [phase]))
    few = {"seconds": t, "status": fit.status, "reason": fit.reason, "method": fit.method}
    if fit.ok:
        a = np.array([[fit.values[k] for k in ("A11", "A12")], [fit.values[k] for k in ("A21", "A22")]])
        few.update(affine_true=a_true.tolist(), affine_fitted=a.tolist(), max_abs_element_error=float(np.max(np.abs(a - a_true))),
                   uncertainty={k: fit.uncertainty[k] for k in ("A11", "A12", "A21", "A22")})
    out["few_grains"] = few
    print("few grains", few)
    write_json(args.out, out)
    print("→", args.out)


if __name__ == "__main__":
    main()
