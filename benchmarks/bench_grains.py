"""Benchmark: grain segmentation + boundary extraction of a 1000 × 1000 synthetic polycrystal.

A Voronoi map (default 2000 grains, cubic m-3m, random orientations, 1° per-pixel orientation noise) is
segmented (5° threshold) and its boundaries extracted (segments, misorientation, CSL). Reports the median
wall time over repeats (after a warm-up run that compiles the numba kernels) and the accuracy (adjusted Rand
index of the grains against the truth). Prints the JSON and writes it to benchmarks/results/grains.json.

    python benchmarks/bench_grains.py [--size 1000] [--grains 2000] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def voronoi_map(size: int, n_grains: int, noise_deg: float, seed: int):
    import numpy as np
    from orix.crystal_map import CrystalMap, Phase, PhaseList
    from orix.quaternion import Rotation
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, size, (n_grains, 2))
    rr, cc = np.indices((size, size))
    _, idx = cKDTree(seeds).query(np.stack([rr.ravel(), cc.ravel()], 1))
    labels = (idx + 1).reshape(size, size)
    gq = rng.normal(size=(n_grains, 4))
    gq /= np.linalg.norm(gq, axis=1, keepdims=True)
    axes = rng.normal(size=(size * size, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    noise = Rotation.from_axes_angles(axes, np.radians(np.abs(rng.normal(0, noise_deg, size * size))))
    q = (noise * Rotation(gq[labels.ravel() - 1])).data
    xmap = CrystalMap(rotations=Rotation(q), phase_id=np.zeros(size * size, int), x=cc.ravel() * 2.0,
                      y=rr.ravel() * 2.0, phase_list=PhaseList(Phase(name="fcc", space_group=225)), scan_unit="nm")
    return xmap, labels


def adjusted_rand_index(a, b) -> float:
    import numpy as np

    a = np.unique(a.ravel(), return_inverse=True)[1]
    b = np.unique(b.ravel(), return_inverse=True)[1]
    n = len(a)
    pairs = np.unique(a.astype(np.int64) * (b.max() + 1) + b, return_counts=True)[1]
    c2 = lambda x: float(np.sum(x.astype(float) * (x - 1) / 2))  # noqa: E731
    sum_ij, sa, sb = c2(pairs), c2(np.bincount(a)), c2(np.bincount(b))
    exp = sa * sb / (n * (n - 1) / 2)
    return (sum_ij - exp) / (0.5 * (sa + sb) - exp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--grains", type=int, default=2000)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "grains.json"))
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    import numpy as np

    import stemgrains
    from stemgrains.boundaries.extract import extract_boundaries
    from stemgrains.grains import segment_grains

    small, _ = voronoi_map(64, 20, args.noise, 1)
    extract_boundaries(segment_grains(small), small)  # warm-up: numba compilation / cache load, CSL table
    xmap, truth = voronoi_map(args.size, args.grains, args.noise, 0)
    t_seg, t_ext = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        gm = segment_grains(xmap)
        t1 = time.perf_counter()
        bt = extract_boundaries(gm)
        t2 = time.perf_counter()
        t_seg.append(t1 - t0)
        t_ext.append(t2 - t1)
    assigned = gm.labels > 0
    result = {
        "benchmark": "grains",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                    "python": platform.python_version()},
        "versions": {"stemgrains": stemgrains.__version__, "numpy": np.__version__},
        "parameters": {"size": args.size, "n_grains": args.grains, "noise_deg": args.noise, "point_group": "m-3m",
                       "threshold_deg": gm.parameters["threshold_deg"], "repeats": args.repeats},
        "timings_s": {
            "segment_median": float(np.median(t_seg)),
            "extract_boundaries_median": float(np.median(t_ext)),
            "total_median": float(np.median(np.add(t_seg, t_ext))),
            "segment_all": t_seg,
            "extract_all": t_ext,
        },
        "accuracy": {
            "n_grains_found": gm.n_grains,
            "n_grains_true": int(len(np.unique(truth))),
            "assigned_fraction": float(assigned.mean()),
            "adjusted_rand_index_assigned": adjusted_rand_index(gm.labels[assigned], truth[assigned]),
        },
        "output": {"n_boundaries": len(bt.boundaries), "n_segments": len(bt.segments),
                   "n_pixel_pairs": len(bt.pairs), "n_triple_junctions": len(bt.triple_junctions)},
    }
    text = json.dumps(result, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
