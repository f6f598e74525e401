"""Virtual-imaging benchmark: peak memory and throughput vs scan size, streamed from disk.

For each scan size (``--scan-sizes``, default 64 128 256) an on-disk uint16 HDF5 cube of ``--detector`` ×
``--detector`` patterns (default 128; 256 × 256 × 128 × 128 is 2.1 GB) is written in the project layout
(:func:`stemgrains.io.create_4d`, one pattern per HDF5 chunk, random Poisson-like counts with a bright direct beam),
then a fresh subprocess opens it lazily and computes three virtual images in one pass (BF disk, ADF annulus,
a VDF disk pair) with :func:`stemgrains.virtual.virtual_images`. Reported per size: peak RSS of that process
(``ru_maxrss``), the RSS when the file was open, the peak sampled while computing, seconds and patterns/s.
Flat peaks across sizes = memory bounded by the block of scan rows (``--memory-mb``), not by the scan.
Also checks the images against an independent numpy sum on the first rows.

Results: ``benchmarks/results/virtual.json`` (``--out``) and a table on stdout::

    python benchmarks/bench_virtual.py                     # 64, 128, 256 (writes 2.1 GB to --workdir)
    python benchmarks/bench_virtual.py --scan-sizes 32 64  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, RssSampler, machine_info, max_rss_mb, rss_mb, versions, write_json  # noqa: E402


def make_cube(path: Path, n: int, k: int) -> None:
    from stemgrains.data import Calibration
    from stemgrains.io import create_4d

    rng = np.random.default_rng(n)
    rr, cc = np.mgrid[0:k, 0:k]
    beam = (np.hypot(rr - k / 2, cc - k / 2) <= k / 16) * 3000
    cal = Calibration(q_pixel_size=0.02, scan_step_nm=2.0, center=(k / 2, k / 2))
    with create_4d(path, (n, n, k, k), np.uint16, cal) as dset:
        for r in range(n):
            row = rng.integers(0, 20, size=(n, k, k), dtype=np.uint16) + beam.astype(np.uint16)
            dset[r] = row


def worker(path: str, memory_mb: float) -> None:
    """Run in a fresh process: open lazily, compute the virtual images, print JSON."""
    from stemgrains.io import load_4d
    from stemgrains.virtual import annulus, bright_field, dark_field, virtual_images

    ds = load_4d(path)
    k = ds.detector_shape[0]
    dets = [bright_field(k / 16), annulus(k / 8, k / 2), dark_field([[k / 2 + k / 4, k / 2], [k / 2 - k / 4, k / 2]], 3)]
    virtual_images(Dataset4D_small(ds), dets)  # compile outside the measurement
    open_mb = rss_mb()
    t0 = time.perf_counter()
    with RssSampler() as rs:
        ims = virtual_images(ds, dets, memory_mb=memory_mb)
    sec = time.perf_counter() - t0
    block = np.asarray(ds.data[0:2], dtype=np.float64)
    c = ds.calibration.center
    disk = np.hypot(np.mgrid[0:k, 0:k][0] - c[0], np.mgrid[0:k, 0:k][1] - c[1]) <= k / 16
    ok = bool(np.array_equal(ims[0, 0:2], block[..., disk].sum(-1)))
    ny, nx = ds.scan_shape
    print(json.dumps({"seconds": sec, "patterns_per_s": ny * nx / sec, "peak_rss_mb": max_rss_mb(),
                      "rss_open_mb": open_mb, "peak_sampled_mb": rs.peak_mb, "matches_numpy": ok,
                      "n_patterns": ny * nx}))


def Dataset4D_small(ds):  # noqa: N802 - a tiny view for compiling the kernel
    from stemgrains.data import Dataset4D

    return Dataset4D(np.asarray(ds.data[0:1, 0:2]), ds.calibration)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scan-sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--detector", type=int, default=128)
    ap.add_argument("--memory-mb", type=float, default=128.0)
    ap.add_argument("--workdir", default="/tmp/stemgrains_bench_virtual")
    ap.add_argument("--keep", action="store_true", help="keep the cubes")
    ap.add_argument("--out", default=str(RESULTS_DIR / "virtual.json"))
    ap.add_argument("--worker", nargs=2, metavar=("PATH", "MEMORY_MB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], float(args.worker[1]))
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.scan_sizes:
        path = work / f"cube_{n}_{args.detector}.h5"
        if not path.exists():
            t0 = time.perf_counter()
            make_cube(path, n, args.detector)
            print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s",
                  flush=True)
        r = subprocess.run([sys.executable, __file__, "--worker", str(path), str(args.memory_mb)],
                           capture_output=True, text=True, check=True, env={**os.environ})
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res.update({"scan": [n, n], "detector": [args.detector, args.detector],
                    "file_gib": path.stat().st_size / 2**30, "memory_mb_budget": args.memory_mb})
        rows.append(res)
        print(f"{n:4d}² scan, {res['file_gib']:.2f} GiB: {res['seconds']:.1f} s, {res['patterns_per_s']:.0f} "
              f"patterns/s, peak RSS {res['peak_rss_mb']:.0f} MiB (open {res['rss_open_mb']:.0f}, sampled peak "
              f"{res['peak_sampled_mb']:.0f}), matches numpy: {res['matches_numpy']}", flush=True)
        if not args.keep:
            path.unlink()
    write_json(args.out, {"benchmark": "virtual", "machine": machine_info(), "versions": versions(),
                          "results": rows})
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
