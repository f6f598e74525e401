"""First-run costs of indexing (issue #13): numba compilation and the template library, measured separately.

Each measurement is a fresh process running ``stemgrains index`` on one scan (default ``data_samples/``):

* ``cold``: an empty numba cache (``NUMBA_CACHE_DIR`` in a new temporary folder) and the template library cached
  (built by an earlier run): the whole job plus the compilation of every kernel it uses, the recorded ones in
  parallel processes first (:mod:`stemgrains._precompile`, the default);
* ``cold_one_process``: the same with ``STEMGRAINS_COMPILE_PROCESSES=1`` (each kernel compiled at its first call);
* ``warm``: the same with the numba cache that run filled: the job alone (kernels loaded from the cache);
* ``library_uncached``: warm kernels, an empty library cache (``STEMGRAINS_CACHE`` in a new folder): the job plus
  building the library;

so compilation ≈ cold − warm and the library build ≈ library_uncached − warm. In the cold process numba's compile
events (``numba.core.event``, "numba:compile") are recorded: the seconds spent compiling, in all and per kernel
(exclusive of the kernels compiled inside it), the largest listed. Nothing is asserted; the machine is shared
(load average recorded).

    python benchmarks/bench_first_run.py [--input SCAN.h5 --phase CIF] [--out benchmarks/results/first_run.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

#: the child process: runs the CLI, optionally recording numba's compile events, prints one JSON line
_CHILD = r"""
import json, sys, time, collections
record = sys.argv[1] == "1"
if record:
    from numba.core import event as ev
    cm = ev.install_recorder("numba:compile")
    rec = cm.__enter__()
t0 = time.perf_counter()
from stemgrains.cli import main
rc = main(sys.argv[2:])
total = time.perf_counter() - t0
out = {"rc": rc, "seconds": total}
if record:
    cm.__exit__(None, None, None)
    excl = collections.Counter(); n = collections.Counter(); stack = []; child = {}
    for ts, e in rec.buffer:
        name = getattr((e.data or {}).get("dispatcher"), "py_func", None)
        key = f"{name.__module__}.{name.__qualname__}" if name is not None else str((e.data or {}).get("dispatcher"))
        if e.is_start:
            stack.append((key, ts))
        else:
            k, t1 = stack.pop()
            dur = ts - t1
            excl[k] += dur - child.pop(len(stack) + 1, 0.0)
            n[k] += 1
            child[len(stack)] = child.get(len(stack), 0.0) + dur
    out["compile_seconds"] = sum(excl.values())
    out["compile_events"] = sum(n.values())
    out["kernels"] = [{"kernel": k, "seconds": round(v, 3), "compiles": n[k]} for k, v in excl.most_common(25)]
print("FIRST_RUN_JSON " + json.dumps(out))
"""


def _run(argv: list[str], env: dict[str, str], record: bool) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, "1" if record else "0", *argv], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FIRST_RUN_JSON ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench_first_run: the child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    out = json.loads(lines[-1].split(" ", 1)[1])
    out["process_wall_s"] = wall  # including the interpreter and imports
    return out


def _processes() -> int:
    sys.path.insert(0, str(C.REPO / "src"))
    from stemgrains._precompile import _processes as n

    return n(len(__import__("stemgrains._precompile", fromlist=["x"]).load_signatures()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default=str(C.REPO / "data_samples" / "nba_sample.h5"))
    ap.add_argument("--phase", default=str(C.REPO / "data_samples" / "na_beta2_alumina.cif"))
    ap.add_argument("--out", default=str(C.RESULTS_DIR / "first_run.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stemgrains-first-run-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "numba"), STEMGRAINS_CACHE=str(tmp / "library"))
        env["PYTHONPATH"] = os.pathsep.join([str(C.REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)

        def argv(name: str) -> list[str]:
            return ["index", args.input, "--phase", args.phase, "--no-progress", "-o", str(tmp / f"{name}.h5")]

        print("building the library (warm-up run) ...", flush=True)
        first = _run(argv("first"), env, record=False)  # fills both caches
        env_cold = dict(env, NUMBA_CACHE_DIR=str(tmp / "numba-cold"))
        print("cold numba cache, kernels compiled in parallel processes (the default) ...", flush=True)
        cold = _run(argv("cold"), env_cold, record=True)
        print("cold numba cache, kernels compiled in the process at first call ...", flush=True)
        serial = _run(argv("serial"), dict(env, NUMBA_CACHE_DIR=str(tmp / "numba-serial"),
                                           STEMGRAINS_COMPILE_PROCESSES="1"), record=True)
        print("warm ...", flush=True)
        warm = [_run(argv(f"warm{k}"), env_cold, record=False) for k in range(2)]
        print("uncached library ...", flush=True)
        lib = _run(argv("lib"), dict(env_cold, STEMGRAINS_CACHE=str(tmp / "library-2")), record=False)
    warm_s = min(w["seconds"] for w in warm)
    doc = {
        "benchmark": "first_run",
        "command": "python benchmarks/bench_first_run.py " + " ".join(sys.argv[1:]),
        "machine": C.machine_info(),
        "versions": C.versions(),
        "input": args.input,
        "phase": args.phase,
        "seconds": {
            "first_both_caches_empty": first["seconds"],
            "cold_numba_cache": cold["seconds"],
            "cold_numba_cache_one_process": serial["seconds"],
            "warm": [w["seconds"] for w in warm],
            "library_uncached": lib["seconds"],
        },
        "compile_processes": _processes(),
        "compilation_s": cold["seconds"] - warm_s,
        "compilation_one_process_s": serial["seconds"] - warm_s,
        "compilation_recorded_s": serial["compile_seconds"],
        "compile_events": serial["compile_events"],
        "compiled_in_the_process_after_parallel_s": cold["compile_seconds"],
        "library_build_s": lib["seconds"] - warm_s,
        "largest_compiles": serial["kernels"],
        "notes": ["compilation_s = cold − fastest warm run (whole processes, same scan), with the recorded kernels "
                  "compiled in compile_processes parallel processes first (stemgrains._precompile, the default); "
                  "compilation_one_process_s: the same with STEMGRAINS_COMPILE_PROCESSES=1 (every kernel compiled "
                  "in the process at its first call, as before); compilation_recorded_s: the seconds numba's "
                  "compile events span in that process (exclusive per kernel; includes orix's and numba's own "
                  "helpers); compiled_in_the_process_after_parallel_s: the same in the default run (kernels the "
                  "record does not hold)", "the machine is shared: see the load average"],
    }
    path = C.write_json(args.out, doc)
    print(f"compilation {doc['compilation_s']:.1f} s in {doc['compile_processes']} processes, "
          f"{doc['compilation_one_process_s']:.1f} s in one (recorded {doc['compilation_recorded_s']:.1f} s in "
          f"{doc['compile_events']} compiles), library build {doc['library_build_s']:.1f} s, warm job {warm_s:.1f} s "
          f"→ {path}")


if __name__ == "__main__":
    main()
