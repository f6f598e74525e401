"""GPU (numba.cuda) against CPU on the same data, in the same process: answers and patterns/s.

Run on a machine with a CUDA device (the H200 measurement of the scale issue)::

    NUMBA_NUM_THREADS=16 python benchmarks/bench_gpu.py --out benchmarks/results/gpu_h200.json

For each dataset (``benchmarks/data/nba-64.h5``, ``au-64.h5``, tracked in the repository) and the 1° library:

kernel
    The matching chunk kernel alone (:func:`stemgrains.index._cpu.index_chunk` against
    :func:`stemgrains.index._gpu.index_chunk_gpu`) on every pattern of the scan, with the same spots, images and
    prefilter candidates: patterns/s and agreement (same best template = orientations within 0.1°; the issue's
    criterion is ≥ 99.9 % of patterns).
patterns
    :func:`stemgrains.index.index_patterns` on the whole scan in memory (defaults: grain-coherent search, neighbour
    pass), ``backend="cpu"`` and ``"gpu"``: patterns/s, agreement, accuracy against the simulated truth.
job
    The whole job streamed from disk (:func:`stemgrains.index.index_orientations`: load → neighbour summation →
    spots → match → refine → map) per backend and chunk size: patterns/s, accuracy, agreement; then a cProfile of
    the GPU job (where the time goes) written beside the JSON.
big
    ``--big N``: nba-64 tiled to an N × N scan on disk (uncompressed uint16), whole job per backend, peak RSS.

First-use costs (numba compilation of the CPU and CUDA kernels, the library build) are timed separately. Nothing
here asserts a speed; accuracy is the fraction of pixels within 2° of the truth (Laue group, orix).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import _common as C  # noqa: E402

CIFS = {"nba-64": REPO / "data_samples" / "na_beta2_alumina.cif", "au-64": REPO / "data_samples" / "au.cif"}


def disorientation_deg(qa: np.ndarray, qb: np.ndarray, phase) -> np.ndarray:
    """Per-row disorientation (degrees, Laue group of ``phase``) between two (n, 4) quaternion arrays."""
    from orix.quaternion import Orientation

    sym = phase.point_group.laue
    return np.asarray(Orientation(qa, symmetry=sym).angle_with(Orientation(qb, symmetry=sym), degrees=True))


def accuracy(q: np.ndarray, pid: np.ndarray, truth_q: np.ndarray, phase) -> dict:
    ok = pid >= 0
    ang = np.full(len(q), 180.0)
    if ok.any():
        ang[ok] = disorientation_deg(q[ok], truth_q[ok], phase)
    return {"indexed": float(ok.mean()), "within_2deg": float(np.mean(ang < 2)), "median_deg": float(np.median(ang))}


def agreement(qa, pa, qb, pb, phase) -> dict:
    both = (pa >= 0) & (pb >= 0)
    ang = disorientation_deg(qa[both], qb[both], phase) if both.any() else np.zeros(0)
    return {
        "same_phase_id": float(np.mean(pa == pb)),
        "within_0p1deg": float(np.mean(ang < 0.1)) if len(ang) else None,
        "max_deg": float(ang.max()) if len(ang) else None,
        "n_compared": int(both.sum()),
    }


def timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def kernel_part(block, cal, lib, prm, phase, repeat):
    """The chunk kernel alone, CPU vs GPU, every pattern searched."""
    from stemgrains.index import _cpu, _gpu
    from stemgrains.preprocess.api import detect_spots, processed_images

    sp = replace(prm.spots, q_max=prm.k_max if prm.spots.q_max is None else min(prm.spots.q_max, prm.k_max))
    peaks, counts, centers = detect_spots(block, cal, sp)
    imgs = processed_images(block, cal, centers, sp)
    captured = {}

    def capture(*args):
        captured["args"] = args
        return _cpu.index_chunk(*args)

    # the inputs exactly as index_patterns builds them: run the full search once with a capturing kernel
    from stemgrains.index import api

    ctx = api._SearchInputs(peaks, counts, imgs, centers, np.ascontiguousarray(cal._affine()), cal.wavelength,
                            sp.resolved_q_min(cal))
    api._full_search(np.arange(len(counts)), ctx, [lib], prm, capture)
    args = captured["args"]
    t_cpu, res_c = timed(lambda: _cpu.index_chunk(*args), repeat)
    t0 = time.perf_counter()
    _gpu.index_chunk_gpu(*args)
    first_gpu = time.perf_counter() - t0
    t_gpu, res_g = timed(lambda: _gpu.index_chunk_gpu(*args), repeat)
    ok = counts >= prm.min_peaks
    pid = np.where(ok, 0, -1)
    n = len(counts)
    return {
        "n_patterns": n,
        "cpu_s": t_cpu, "gpu_s": t_gpu, "gpu_first_call_s": first_gpu,
        "cpu_patterns_per_s": n / t_cpu, "gpu_patterns_per_s": n / t_gpu,
        "agreement": agreement(res_c[0], pid, res_g[0], pid, phase),
        "score_max_abs_diff": float(np.max(np.abs(res_c[1] - res_g[1]))),
    }


def patterns_part(block, cal, lib, prm, phase, grid, truth_q, repeat):
    from stemgrains.index import index_patterns

    out = {"n_patterns": len(block)}
    res = {}
    for backend in ("cpu", "gpu"):
        t, r = timed(lambda: index_patterns(block, cal, [lib], prm, backend=backend, scan_shape=grid), repeat)
        res[backend] = r
        out[backend] = {"s": t, "patterns_per_s": len(block) / t,
                        **accuracy(r.quaternions, r.phase_id, truth_q, phase)}
    out["agreement"] = agreement(res["cpu"].quaternions, res["cpu"].phase_id, res["gpu"].quaternions,
                                 res["gpu"].phase_id, phase)
    return out


def job_part(path, phase, lib, prm, truth_q, chunk_rows, profile_to: Path | None):
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d

    out = {}
    maps = {}
    for backend in ("cpu", "gpu"):
        for cr in chunk_rows:
            t0 = time.perf_counter()
            ds = load_4d(path)
            x = index_orientations(ds, [phase], libraries=[lib], progress=False, backend=backend,
                                   **{**prm.as_dict(), "chunk_rows": cr})
            dt = time.perf_counter() - t0
            q = x.rotations.data.reshape(-1, 4)
            pid = np.asarray(x.phase_id).reshape(-1)
            maps[backend, cr] = (q, pid)
            out[f"{backend}_chunk{cr}"] = {"s": dt, "patterns_per_s": len(q) / dt,
                                            **accuracy(q, pid, truth_q, phase)}
    cr = chunk_rows[0]
    out["agreement"] = agreement(*maps["cpu", cr], *maps["gpu", cr], phase)
    if profile_to is not None:
        prof = cProfile.Profile()
        ds = load_4d(path)
        prof.enable()
        index_orientations(ds, [phase], libraries=[lib], progress=False, backend="gpu",
                           **{**prm.as_dict(), "chunk_rows": chunk_rows[-1]})
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(30)
        profile_to.write_text(s.getvalue())
    return out


def big_part(n, src_path, phase, lib, prm, workdir: Path, chunk_rows):
    """nba-64 tiled to n × n on disk; whole job per backend."""
    from stemgrains.index import index_orientations
    from stemgrains.io import create_4d, load_4d, load_truth

    path = workdir / f"nba_tiled_{n}.h5"
    src = load_4d(src_path)
    ny, nx = src.scan_shape
    block = np.asarray(src.data[:])
    truth = load_truth(src_path)
    reps = (-(-n // ny), -(-n // nx))
    tq = np.tile(truth["quaternions"], reps + (1,))[:n, :n]
    t0 = time.perf_counter()
    if not path.is_file():
        with create_4d(path, (n, n) + src.detector_shape, "uint16", src.calibration, phases=[phase],
                       chunks=(1, 8) + src.detector_shape) as dset:
            for r in range(n):
                dset[r] = np.tile(block[r % ny], (reps[1], 1, 1))[:n]
    out = {"scan": [n, n], "write_s": time.perf_counter() - t0,
           "cube_gib": n * n * int(np.prod(src.detector_shape)) * 2 / 2**30}
    for backend in ("gpu", "cpu"):
        with C.RssSampler() as rss:
            t0 = time.perf_counter()
            x = index_orientations(load_4d(path), [phase], libraries=[lib], progress=False, backend=backend,
                                   **{**prm.as_dict(), "chunk_rows": chunk_rows})
            dt = time.perf_counter() - t0
        q = x.rotations.data.reshape(-1, 4)
        pid = np.asarray(x.phase_id).reshape(-1)
        out[backend] = {"s": dt, "patterns_per_s": n * n / dt, "peak_rss_mib": rss.peak_mb,
                        **accuracy(q, pid, tq.reshape(-1, 4), phase)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["nba-64", "au-64"], choices=sorted(CIFS))
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--chunk-rows", nargs="+", type=int, default=[8, 64])
    ap.add_argument("--big", type=int, default=0, help="side of the tiled nba scan (0: skip)")
    ap.add_argument("--budget-s", type=float, default=1e9, help="skip remaining parts after this many seconds")
    ap.add_argument("--parts", nargs="+", default=["kernel", "patterns", "job"], choices=["kernel", "patterns", "job"],
                    help="per-dataset parts to run (the tiled scan is --big)")
    ap.add_argument("--rows", type=int, default=0, help="kernel/patterns parts on the first ROWS scan rows (0: all)")
    ap.add_argument("--gpu-is-cpu", action="store_true", help=argparse.SUPPRESS)  # smoke test of this script
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/stemgrains-bench-gpu"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gpu.json")
    args = ap.parse_args(argv)
    T0 = time.perf_counter()
    if args.gpu_is_cpu:  # plumbing check without a device: the "GPU" kernel is the CPU one
        import types

        import stemgrains.index as sgi
        from stemgrains.index import _cpu

        shim = types.SimpleNamespace(index_chunk_gpu=_cpu.index_chunk)
        sys.modules["stemgrains.index._gpu"] = shim
        sgi._gpu = shim

    from stemgrains.crystal import load_phase
    from stemgrains.index.api import IndexParams
    from stemgrains.io import load_4d, load_truth
    from stemgrains.library.templates import build_library

    report = {"benchmark": "gpu", "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
              "machine": C.machine_info(), "versions": C.versions()}
    try:
        from numba import cuda

        report["gpu"] = str(cuda.get_current_device().name)
    except Exception as err:  # noqa: BLE001
        report["gpu"] = f"none ({err})"
    args.workdir.mkdir(parents=True, exist_ok=True)

    def save():
        report["total_s"] = time.perf_counter() - T0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=float))
        tmp.replace(args.out)

    for name in args.datasets:
        path = REPO / "benchmarks" / "data" / f"{name}.h5"
        phase = load_phase(CIFS[name])
        ds = load_4d(path)
        ky, kx = ds.detector_shape
        prm = IndexParams(step_deg=args.step).resolved(ds.calibration, ds.detector_shape)
        r = report.setdefault("datasets", {}).setdefault(name, {"scan": list(ds.scan_shape)})
        t, lib = timed(lambda: build_library(phase, step_deg=prm.step_deg, k_max=prm.k_max, cache=False,
                                             accelerating_voltage_kV=ds.calibration.accelerating_voltage_kV,
                                             excitation_error_sigma=prm.excitation_error_sigma))
        r["library"] = {"uncached_s": t, "n_templates": lib.n_templates}
        truth_q = load_truth(path)["quaternions"].reshape(-1, 4)
        rows = args.rows or ds.scan_shape[0]
        block = np.asarray(ds.data[:rows]).reshape(-1, ky, kx)
        grid = (rows, ds.scan_shape[1])
        truth_q = truth_q[: rows * grid[1]]
        from stemgrains.index import index_patterns

        # first use: numba compilation (CPU; cache) and CUDA kernels + context
        for backend in ("cpu", "gpu"):
            t, _ = timed(lambda: index_patterns(block[: 2 * grid[1]], ds.calibration, [lib], prm, backend=backend,
                                                scan_shape=(2, grid[1])))
            r[f"first_call_{backend}_s"] = t
        print(f"[{time.perf_counter() - T0:.0f} s] {name}: warm", flush=True)
        for part, fn in (
            ("kernel", lambda: kernel_part(block, ds.calibration, lib, replace(prm, search_stride=1), phase, args.repeat)),
            ("patterns", lambda: patterns_part(block, ds.calibration, lib, prm, phase, grid, truth_q, args.repeat)),
            ("job", lambda: job_part(path, phase, lib, prm, load_truth(path)["quaternions"].reshape(-1, 4), args.chunk_rows,
                                     args.out.with_name(args.out.stem + f"_profile_{name}.txt"))),
        ):
            if part not in args.parts:
                continue
            if time.perf_counter() - T0 > args.budget_s:
                r[part] = "skipped: budget"
                continue
            try:
                r[part] = fn()
            except Exception as err:  # noqa: BLE001  (a report, not a crash: the other parts still run)
                import traceback

                traceback.print_exc()
                r[part] = f"error: {type(err).__name__}: {err}"
            print(f"[{time.perf_counter() - T0:.0f} s] {name} {part}: {json.dumps(r[part], default=float)}", flush=True)
            save()
    if args.big and time.perf_counter() - T0 < args.budget_s:
        name = "nba-64"
        path = REPO / "benchmarks" / "data" / f"{name}.h5"
        phase = load_phase(CIFS[name])
        ds = load_4d(path)
        prm = IndexParams(step_deg=args.step).resolved(ds.calibration, ds.detector_shape)
        lib = build_library(phase, step_deg=prm.step_deg, k_max=prm.k_max,
                            accelerating_voltage_kV=ds.calibration.accelerating_voltage_kV,
                            excitation_error_sigma=prm.excitation_error_sigma)
        try:
            report["big"] = big_part(args.big, path, phase, lib, prm, args.workdir, max(args.chunk_rows))
        except Exception as err:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            report["big"] = f"error: {type(err).__name__}: {err}"
        print(f"[{time.perf_counter() - T0:.0f} s] big: {json.dumps(report['big'], default=float)}", flush=True)
    save()
    print(f"wrote {args.out} ({time.perf_counter() - T0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
