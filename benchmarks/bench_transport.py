"""Benchmark of the transport model: solve time and peak memory vs map size.

Synthetic Voronoi grain maps (mean grain diameter ~25 px, random c-axes, ratio 1000, 1 nm boundaries, 2 nm
pixels) between a left (1 V) and a right (0 V) electrode. Each size runs in a fresh subprocess (peak RSS is
per process); BLAS/OpenMP threads are limited to ``--threads`` (default 2). Results go to
``benchmarks/results/transport.json``.

    python benchmarks/bench_transport.py [--sizes 250 500 1000] [--repeats 3] [--model tensor]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def voronoi(n: int, n_grains: int, seed: int):
    import numpy as np
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, n, size=(n_grains, 2))
    rr, cc = np.indices((n, n))
    _, idx = cKDTree(seeds).query(np.stack([rr.ravel(), cc.ravel()], 1))
    return (idx.reshape(n, n) + 1).astype(np.int32)


def one_run(size: int, model: str, repeats: int, solver: str) -> dict:
    import resource

    import numpy as np
    from orix.crystal_map import Phase, PhaseList

    from stemgrains._table import Table
    from stemgrains.grains import GrainMap
    from stemgrains.transport import solve_transport

    n_grains = max(4, int((size / 25.0) ** 2))
    lab = voronoi(size, n_grains, seed=size)
    c = np.random.default_rng(1).normal(size=(n_grains, 3))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    table = Table({"id": np.arange(1, n_grains + 1), "phase_id": np.zeros(n_grains, int), "c_axis": c})
    gm = GrainMap(lab, table, PhaseList(Phase("na_beta2_alumina", point_group="-3m")), scan_step_nm=2.0)
    # warm-up (numba compilation) on a small map
    small = GrainMap(lab[:20, :20], table, gm.phases, scan_step_nm=2.0)
    solve_transport(small, electrodes={"left": 1.0, "right": 0.0}, model=model)
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = solve_transport(gm, electrodes={"left": 1.0, "right": 0.0}, model=model, solver=solver)
        times.append(time.perf_counter() - t0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "size": size,
        "n_pixels": size * size,
        "n_grains": n_grains,
        "n_boundaries": len(res.boundaries),
        "model": model,
        "solver": res.solver,
        "seconds_median": float(np.median(times)),
        "seconds_all": times,
        "peak_rss_mib": peak_kib / 1024.0,
        "conductance": res.conductance,
        "current_imbalance": res.current_imbalance,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="tensor", choices=("tensor", "resistor"))
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", default=str(HERE / "results" / "transport.json"))
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one_run(args.one, args.model, args.repeats, args.solver)))
        return 0
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[k] = str(args.threads)
    runs = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--repeats", str(args.repeats), "--model", args.model,
               "--solver", args.solver]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(f"{size:5d}²: {run['seconds_median']:7.2f} s (median of {args.repeats}), peak RSS {run['peak_rss_mib']:7.0f} MiB, "
              f"{run['solver']['method']} {run['solver']['n_unknowns']} unknowns, {run['solver']['iterations']} it, "
              f"imbalance {run['current_imbalance']:.1e}")
    import numpy
    import scipy

    try:
        import pyamg

        pyamg_version = pyamg.__version__
    except ImportError:
        pyamg_version = None
    from stemgrains import __version__

    report = {
        "benchmark": "transport",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "threads": args.threads},
        "versions": {"stemgrains": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
                     "scipy": scipy.__version__, "pyamg": pyamg_version},
        "parameters": {"model": args.model, "solver": args.solver, "repeats": args.repeats,
                       "conductivity_ratio": 1000, "gb_thickness_nm": 1.0, "scan_step_nm": 2.0,
                       "mean_grain_diameter_px": 25},
        "runs": runs,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, default=str))
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
