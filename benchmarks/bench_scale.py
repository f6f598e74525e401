"""Scale benchmark of the indexing engine: streaming memory, throughput sweeps, CPU vs GPU vs py4DSTEM.

Three parts (``--parts memory throughput backends``, default all):

memory
    For each scan size (``--scan-sizes``, default 32 64 128) an on-disk uint16 HDF5 cube is made (project layout via
    :func:`stemgrains.io.create_4d`, one pattern per HDF5 chunk) by tiling a small simulated Au polycrystal
    (``--tile`` × ``--tile`` positions from :func:`stemgrains.simulate.simulate_polycrystal`, with its truth), and
    indexed streaming (:func:`stemgrains.index.index_orientations`, rows read chunk by chunk) in a fresh
    subprocess. Reported: peak RSS of the process (``ru_maxrss``), RSS after set-up, and the peak RSS sampled
    (psutil, 20 ms) while indexing; flat peaks across scan sizes = memory bounded by the chunk, not the scan.
throughput
    Patterns/s of the matching stage (:func:`stemgrains.index.api.index_patterns` on an in-memory block) and of
    the whole job (load → index → map) vs library step (``--steps``), detector size (``--detectors``) and scan size.
backends
    The same dataset through ``--backend`` (cpu, gpu, py4dstem). ``gpu`` needs a CUDA device (numba.cuda) and
    goes through ``index_orientations(..., backend="gpu")``. ``py4dstem`` calls the hook ``py4dstem_acom(path, cif, step_deg)`` of
    ``benchmarks/bench_index.py`` (returns a dict with at least ``patterns_per_s``); recorded as missing otherwise.

Accuracy is reported with speed: fraction of indexed pixels within 2° of the truth (Laue symmetry) and median.
Results: ``benchmarks/results/scale.json`` (``--out``) and a table on stdout. The default run takes a few
minutes on 2 cores.

Examples
--------
Default (2-core laptop)::

    python benchmarks/bench_scale.py

Larger than memory: a 256 × 256 scan of 128 × 128 uint16 patterns is 256·256·128·128·2 B = 2.1 GB; the
8.6 GB case is a 512 × 512 scan of 128 × 128 patterns or a 256 × 256 scan of 256 × 256 patterns::

    python benchmarks/bench_scale.py --parts memory --scan-sizes 64 128 256 --detectors 256 --steps 2 \\
        --workdir /scratch/bench

The H200 measurement (CPU and GPU on the same data, same run)::

    python benchmarks/bench_scale.py --backend cpu gpu --scan-sizes 64 128 256 --detectors 128 \\
        --steps 3 2 1 --threads 16 --workdir /tmp/bench --out benchmarks/results/scale_h200.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CIF = REPO / "data_samples" / "au.cif"


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def make_cube(path: Path, n: int, detector: int, tile: int, seed: int = 7) -> Path:
    """An n × n scan of detector² uint16 patterns on disk: a simulated tile × tile Au polycrystal, tiled."""
    import numpy as np

    from stemgrains.crystal import load_phase
    from stemgrains.io import create_4d, load_4d, load_truth
    from stemgrains.simulate import simulate_polycrystal

    if path.is_file():
        return path
    tile = min(tile, n)
    base = path.with_name(f"tile_{tile}_{detector}_{seed}.h5")
    if not base.is_file():
        simulate_polycrystal(base, phases=[str(CIF)], scan_shape=(tile, tile), detector_shape=(detector, detector),
                             n_grains=max(2, tile // 8), seed=seed, dose=1e4, progress=False)
    src = load_4d(base)
    truth = load_truth(base)
    reps = (-(-n // tile), -(-n // tile))
    tiled = {k: np.tile(v, reps + (1,) * (v.ndim - 2))[:n, :n] for k, v in truth.items()}
    block = np.asarray(src.data[:])
    with create_4d(path, (n, n, detector, detector), "uint16", src.calibration, phases=[load_phase(CIF)],
                   truth=tiled, chunks=(1, 1, detector, detector)) as dset:
        for r in range(n):  # one scan row at a time: the cube is never in memory
            dset[r] = np.tile(block[r % tile], (reps[1], 1, 1))[:n]
    return path


# ----------------------------------------------------------------------------------------------------------------
# measurement helpers (run inside the child process)
# ----------------------------------------------------------------------------------------------------------------
class RssSampler:
    """Peak resident memory sampled every ``interval`` s in a thread (psutil); None without psutil."""

    def __init__(self, interval: float = 0.02) -> None:
        try:
            import psutil
        except ImportError:
            self.proc = None
        else:
            self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int | None:
        return None if self.proc is None else int(self.proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() or 0)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        if self.proc is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.proc is not None:
            self._thread.join()
            self.peak = max(self.peak, self.rss() or 0)


def max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def accuracy(xmap, truth_q, phase) -> dict:
    import numpy as np
    from orix.quaternion import Orientation

    ok = xmap.phase_id >= 0
    if not ok.any():
        return {"indexed_fraction": 0.0}
    sym = phase.point_group.laue
    o1 = Orientation(xmap.rotations.data[ok], symmetry=sym)
    o2 = Orientation(truth_q.reshape(-1, 4)[ok], symmetry=sym)
    ang = np.asarray(o1.angle_with(o2, degrees=True))
    return {
        "indexed_fraction": float(ok.mean()),
        "median_deg": float(np.median(ang)),
        "within_1deg": float(np.mean(ang < 1)),
        "within_2deg": float(np.mean(ang < 2)),
        "within_5deg": float(np.mean(ang < 5)),
    }


def child(args: argparse.Namespace) -> dict:
    """One measurement in this (fresh) process; prints its JSON."""
    import numpy as np

    from stemgrains.crystal import load_phase
    from stemgrains.io import load_4d, load_truth
    from stemgrains.index.api import IndexParams, index_orientations, index_patterns
    from stemgrains.library.templates import build_library

    path = Path(args.child)
    backend = args.backend[0]
    out: dict = {"file": str(path), "backend": backend, "step_deg": args.steps[0], "chunk_rows": args.chunk_rows}
    if backend == "py4dstem":
        sys.path.insert(0, str(HERE))
        try:
            import bench_index  # the lead's peer benchmark
            hook = bench_index.py4dstem_acom
        except (ImportError, AttributeError) as err:
            out["status"] = f"hook missing: benchmarks/bench_index.py:py4dstem_acom ({err})"
            return out
        t0 = time.perf_counter()
        res = dict(hook(str(path), str(CIF), args.steps[0]))
        out.update(res, status="ok", seconds=time.perf_counter() - t0)
        out.setdefault("job_patterns_per_s", res.get("patterns_per_s"))  # the hook's own timing (a subset)
        return out
    if backend == "gpu":
        from stemgrains.errors import StemgrainsError

        try:
            from stemgrains.index import _gpu  # noqa: F401
        except StemgrainsError as err:
            out["status"] = str(err)
            return out
    phase = load_phase(CIF)
    ds = load_4d(path)
    ny, nx = ds.scan_shape
    ky, kx = ds.detector_shape
    prm = IndexParams(step_deg=args.steps[0], chunk_rows=args.chunk_rows).resolved(ds.calibration, ds.detector_shape)
    t0 = time.perf_counter()
    lib = build_library(phase, step_deg=prm.step_deg, k_max=prm.k_max,
                        accelerating_voltage_kV=ds.calibration.accelerating_voltage_kV,
                        excitation_error_sigma=prm.excitation_error_sigma)
    out["library_s"] = time.perf_counter() - t0
    out["n_templates"] = lib.n_templates
    kw = {"backend": backend}
    # warm-up: numba compilation / cache load and the GPU context, on one row
    index_patterns(ds.rows(0, 1).reshape(-1, ky, kx), ds.calibration, [lib], prm, **kw)
    out["rss_after_setup_mb"] = (RssSampler().rss() or 0) / 2**20
    # matching stage alone: one in-memory chunk
    block = ds.rows(0, min(ny, prm.chunk_rows)).reshape(-1, ky, kx)
    t0 = time.perf_counter()
    index_patterns(block, ds.calibration, [lib], prm, **kw)
    out["match_patterns_per_s"] = len(block) / (time.perf_counter() - t0)
    del block
    # whole job, streaming from disk
    with RssSampler() as sampler:
        t0 = time.perf_counter()
        xmap = index_orientations(ds, [phase], libraries=[lib], progress=False, step_deg=prm.step_deg,
                                  chunk_rows=prm.chunk_rows, **kw)
        dt = time.perf_counter() - t0
    out.update(
        status="ok", scan=[ny, nx], detector=[ky, kx], n_patterns=ny * nx,
        cube_mb=ny * nx * ky * kx * ds.dtype.itemsize / 2**20, job_s=dt, job_patterns_per_s=ny * nx / dt,
        peak_rss_sampled_mb=sampler.peak / 2**20 if sampler.proc is not None else None, max_rss_mb=max_rss_mb(),
    )
    out.update(accuracy(xmap, load_truth(path)["quaternions"], phase))
    return out


def run_child(path: Path, backend: str, step: float, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, __file__, "--child", str(path), "--backend", backend, "--steps", str(step),
           "--chunk-rows", str(args.chunk_rows)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"file": str(path), "backend": backend, "step_deg": step, "status": "error",
                "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------------------------
def table(rows: list[dict], title: str) -> str:
    cols = [("backend", "{}"), ("step_deg", "{:g}"), ("scan", "{}"), ("detector", "{}"), ("cube_mb", "{:.0f}"),
            ("match_patterns_per_s", "{:.0f}"), ("job_patterns_per_s", "{:.0f}"), ("rss_after_setup_mb", "{:.0f}"),
            ("peak_rss_sampled_mb", "{:.0f}"), ("max_rss_mb", "{:.0f}"), ("within_2deg", "{:.1%}"),
            ("median_deg", "{:.2f}")]
    head = ["backend", "step", "scan", "det", "cube MB", "match p/s", "job p/s", "RSS0 MB", "peak MB", "maxRSS MB",
            "≤2°", "median°"]
    lines = [title, " | ".join(head)]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"{r.get('backend')} | {r.get('step_deg')} | {r.get('status')} {r.get('error', '')}")
            continue
        cells = []
        for k, fmt in cols:
            v = r.get(k)
            if isinstance(v, list):
                v = "×".join(str(x) for x in v)
                fmt = "{}"
            cells.append("-" if v is None else fmt.format(v))
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", nargs="+", default=["memory", "throughput", "backends"],
                    choices=["memory", "throughput", "backends"])
    ap.add_argument("--scan-sizes", nargs="+", type=int, default=[32, 64, 128], help="scan side lengths (memory)")
    ap.add_argument("--detectors", nargs="+", type=int, default=[64, 128], help="detector side lengths")
    ap.add_argument("--steps", nargs="+", type=float, default=[3.0, 2.0, 1.0], help="library steps, degrees")
    ap.add_argument("--backend", nargs="+", default=["cpu", "gpu", "py4dstem"], choices=["cpu", "gpu", "py4dstem"])
    ap.add_argument("--tile", type=int, default=32, help="side of the simulated tile the cubes repeat")
    ap.add_argument("--throughput-scan", type=int, default=16, help="scan side for the step/detector sweep")
    ap.add_argument("--chunk-rows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="numba/BLAS threads per measurement")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "stemgrains-bench-scale",
                    help="where the cubes are written (reused when present)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args), default=float))
        return 0

    import numba
    import numpy as np

    import stemgrains

    args.workdir.mkdir(parents=True, exist_ok=True)
    det0, step0 = args.detectors[0], args.steps[0]
    report: dict = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "threads": args.threads},
        "versions": {"stemgrains": stemgrains.__version__, "numpy": np.__version__, "numba": numba.__version__},
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"},
        "data": "Au polycrystal simulated by stemgrains.simulate on a tile, tiled to the scan size; dose 1e4, uint16",
    }
    t_start = time.perf_counter()
    if "memory" in args.parts:
        rows = []
        for n in args.scan_sizes:
            path = make_cube(args.workdir / f"scan_{n}_{det0}.h5", n, det0, args.tile)
            rows.append(run_child(path, "cpu", step0, args))
            print(table(rows[-1:], f"memory: scan {n}²"), flush=True)
        report["memory"] = rows
    if "throughput" in args.parts:
        rows = []
        n = args.throughput_scan
        for det in args.detectors:
            path = make_cube(args.workdir / f"scan_{n}_{det}.h5", n, det, args.tile)
            for step in args.steps:
                rows.append(run_child(path, "cpu", step, args))
        report["throughput"] = rows
    if "backends" in args.parts:
        rows = []
        n = args.throughput_scan * 2
        path = make_cube(args.workdir / f"scan_{n}_{det0}.h5", n, det0, args.tile)
        for backend in args.backend:
            rows.append(run_child(path, backend, step0, args))
        report["backends"] = rows
    report["total_s"] = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float))
    for part in ("memory", "throughput", "backends"):
        if part in report:
            print()
            print(table(report[part], f"== {part} =="))
    print(f"\nwrote {args.out} ({report['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
