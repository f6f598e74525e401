"""Compile the numba kernels in parallel processes on the first run after an install (issue #13).

numba compiles a kernel at its first call, one after another in the calling process: 2–3 minutes of silence
on a fresh install (``benchmarks/results/first_run.json``). The kernels' signatures do not depend on the data
beyond the dtype of the raw patterns, so the ones ``stemgrains run`` and ``stemgrains index`` use are recorded
in :data:`SIGNATURES_FILE` (package data). Where numba's on-disk cache does not hold them yet,
:func:`precompile_kernels` hands them to up to :data:`MAX_PROCESSES` worker processes (``python -m
stemgrains._precompile``: not a multiprocessing pool, whose children import the caller's ``__main__`` again), each
compiling its share into the cache (largest first, by the compile time recorded with them); the calling process then loads every
kernel from the cache at its first call instead of compiling it. The workers' writes to numba's cache are
serialised (a file lock, :func:`_locked_cache_writes`), so one kernel compiled with two signatures in two workers
at once cannot corrupt it. A kernel that fails to compile in a worker,
a signature the run does not use (another dtype), or a platform where processes cannot be started (a daemonic
worker process) only means that kernel compiles at its first call, as without this module.

``STEMGRAINS_COMPILE_PROCESSES`` sets the number of processes (1: none, the kernels compile in the calling
process at first call). The record is made by ``python -m stemgrains._precompile_record``
(:mod:`stemgrains._precompile_record`); tests/test_precompile.py checks that it names existing kernels with the
signatures a run uses.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["SIGNATURES_FILE", "MAX_PROCESSES", "load_signatures", "precompile_kernels"]

#: the recorded kernels: a JSON list of {"module", "name", "signature": [numba type reprs], "seconds"}
SIGNATURES_FILE = Path(__file__).with_name("kernel_signatures.json")
#: at most this many compiling processes (each holds ~0.3–0.5 GB while it compiles); the largest kernel alone
#: takes ~25 s on one core, so more processes cannot help
MAX_PROCESSES = 8
ENV_PROCESSES = "STEMGRAINS_COMPILE_PROCESSES"

_done = False


def load_signatures(path: str | os.PathLike = SIGNATURES_FILE) -> list[dict[str, Any]]:
    """The recorded kernels (see :data:`SIGNATURES_FILE`); [] where the file is missing or unreadable."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [it for it in items if isinstance(it, dict) and {"module", "name", "signature"} <= set(it)] \
        if isinstance(items, list) else []


def _dispatcher(item: dict[str, Any]) -> Any:
    obj: Any = importlib.import_module(item["module"])
    for part in item["name"].split("."):
        obj = getattr(obj, part)
    return obj


def _signature(item: dict[str, Any]) -> tuple[Any, ...]:
    """The numba types of a recorded signature (reprs such as ``Array(float32, 3, 'C', False, aligned=True)``,
    evaluated among numba's type names only)."""
    from numba.core import types

    names = {k: v for k, v in vars(types).items() if not k.startswith("_")}
    names["bool"] = types.boolean  # numba's repr of its boolean type
    return tuple(eval(text, {"__builtins__": {}}, names) for text in item["signature"])  # noqa: S307


def _is_cached(item: dict[str, Any]) -> bool:
    """Whether numba's on-disk cache holds this kernel and signature for this source, numba version and CPU:
    its index file lists the key numba would look up (read, not loaded; anything unexpected in numba's internals
    counts as not cached)."""
    try:
        disp = _dispatcher(item)
        cache = disp._cache
        key = cache._index_key(_signature(item), disp.targetctx.codegen())
        name = cache._cache_file._load_index().get(key)
        return name is not None and os.path.isfile(cache._cache_file._data_path(name))
    except Exception:  # noqa: BLE001
        return False


def _locked_cache_writes(lock_path: str) -> None:
    """In a worker process: numba's cache writes (``IndexDataCacheFile.save``: read the function's index, pick a
    data file, write both) hold an exclusive lock on ``lock_path`` (``fcntl.flock``). Two workers compiling one
    function with different signatures at once (a kernel called inside two others) could otherwise both take data
    file 1 and leave an index whose entry names the other's code: a crash at every later run."""
    import fcntl

    from numba.core import caching

    original = caching.IndexDataCacheFile.save
    if getattr(original, "_stemgrains_locked", False):
        return

    def save(self: Any, key: Any, data: Any) -> None:
        with open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                original(self, key, data)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    save._stemgrains_locked = True  # type: ignore[attr-defined]
    caching.IndexDataCacheFile.save = save


def _compile_share(items: list[dict[str, Any]]) -> list[tuple[str, float, str | None]]:
    """In a worker process: compile each item into numba's cache. Returns (name, seconds, error or None)."""
    out = []
    for it in items:
        t = time.perf_counter()
        try:
            _dispatcher(it).compile(_signature(it))
            err = None
        except Exception as e:  # noqa: BLE001  the calling process compiles it at first call instead
            err = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        out.append((f"{it['module']}.{it['name']}", time.perf_counter() - t, err))
    return out


def _seconds(item: dict[str, Any]) -> float:
    """A recorded kernel's compile seconds (1 where the record has none)."""
    return float(item.get("seconds") or 1.0)


def _shares(items: list[dict[str, Any]], n: int) -> list[list[dict[str, Any]]]:
    """``items`` split into ``n`` shares of about equal recorded seconds (longest first onto the least loaded)."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    load = [0.0] * n
    for it in sorted(items, key=lambda it: -_seconds(it)):
        k = load.index(min(load))
        shares[k].append(it)
        load[k] += _seconds(it)
    return [s for s in shares if s]


def _processes(n_items: int, log: Any = None) -> int:
    """Processes for ``n_items`` kernels: ``STEMGRAINS_COMPILE_PROCESSES`` (a value that is no whole number ≥ 1
    is said on ``log``, default stderr, and taken as 1), else the cores, at most :data:`MAX_PROCESSES`."""
    text = os.environ.get(ENV_PROCESSES, "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            print(f"stemgrains: {ENV_PROCESSES}={text}: expected a whole number ≥ 1; the kernels compile in this "
                  "process", file=log if log is not None else sys.stderr, flush=True)
        return max(1, n)
    return max(1, min(MAX_PROCESSES, os.cpu_count() or 1, n_items))


def precompile_kernels(log: Any = None, processes: int | None = None) -> dict[str, Any] | None:
    """Compile the recorded kernels numba's cache does not hold, in parallel processes (see the module).

    Runs once per process and only in a main process (not in a worker of a pool or a cluster). Blocks until the
    workers are done.

    Parameters
    ----------
    log
        Text stream for two lines (what is compiled, in how many processes; how long it took), default
        ``sys.stderr``; None where nothing needs compiling.
    processes
        Number of processes; default ``STEMGRAINS_COMPILE_PROCESSES``, else the cores (at most
        :data:`MAX_PROCESSES`). 1: nothing is done here (the kernels compile at first call).

    Returns
    -------
    dict or None
        ``{"kernels": compiled, "processes": n, "seconds": wall, "failed": [names]}``, or None where nothing was
        done (already done in this process, all cached, one process, or processes cannot be started).
    """
    global _done
    if _done or multiprocessing.parent_process() is not None:
        return None
    _done = True
    try:
        import fcntl  # noqa: F401  the workers' cache writes are serialised with it (POSIX)
    except ImportError:
        return None
    todo = [it for it in load_signatures() if not _is_cached(it)]
    if not todo:
        return None
    n = processes if processes is not None else _processes(len(todo), log)
    if n <= 1:
        return None
    # the kernels' modules imported here first: what compiles at import (orix's gufuncs, two cache entries that
    # refer to each other) is compiled once, here, not by every worker at once into the same cache files
    for it in todo:
        _dispatcher(it)
    shares = _shares(todo, n)
    log = log if log is not None else sys.stderr
    serial = sum(_seconds(it) for it in todo)
    print(f"stemgrains: compiling {len(todo)} numba kernel{'s' if len(todo) != 1 else ''} in {len(shares)} "
          f"process{'es' if len(shares) != 1 else ''}, once after an install (about {serial / 60:.0f} min on one "
          f"core, 2 min in 2 processes on 2 cores; later runs load them from numba's cache in seconds)",
          file=log, flush=True)
    t0 = time.perf_counter()
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="stemgrains-compile-") as tmp:
            results = _run_workers(shares, Path(tmp))
    except (OSError, RuntimeError, ValueError):
        return None  # no processes here: the kernels compile at first call
    wall = time.perf_counter() - t0
    failed = [name for name, _, err in results if err is not None]
    print(f"stemgrains: compiled in {wall:.0f} s" + (f" ({len(failed)} left to compile at first use)" if failed else ""),
          file=log, flush=True)
    return {"kernels": len(results) - len(failed), "processes": len(shares), "seconds": wall, "failed": failed}


def _run_workers(shares: list[list[dict[str, Any]]], tmp: Path) -> list[tuple[str, float, str | None]]:
    """Each share compiled by a worker process of its own, ``python -m stemgrains._precompile`` (not a
    multiprocessing "spawn" pool: its children import the caller's ``__main__`` again, which ran a user's script
    once more in every worker, indexing included), on one numba thread, its cache writes serialised by a lock file in
    ``tmp``. Returns each kernel's (name, seconds, error or None); RuntimeError where a worker did not finish (the
    others are stopped)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    procs = []
    try:
        for k, share in enumerate(shares):
            (tmp / f"share{k}.json").write_text(json.dumps(share), encoding="utf-8")
            procs.append(subprocess.Popen([sys.executable, "-m", "stemgrains._precompile", str(tmp / f"share{k}.json"),
                                           str(tmp / f"done{k}.json"), str(tmp / "lock")], env=env,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for p in procs:
            p.wait()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results: list[tuple[str, float, str | None]] = []
    for k, p in enumerate(procs):
        done = tmp / f"done{k}.json"
        if p.returncode != 0 or not done.is_file():
            raise RuntimeError(f"compiling worker {k} ended with status {p.returncode}")
        results += [(str(n), float(t), e) for n, t, e in json.loads(done.read_text(encoding="utf-8"))]
    return results


def _worker(share_path: str, done_path: str, lock_path: str) -> None:
    """A worker process of :func:`_run_workers`: compile the kernels listed in ``share_path`` into numba's cache
    and write their (name, seconds, error) to ``done_path``."""
    _locked_cache_writes(lock_path)
    items = json.loads(Path(share_path).read_text(encoding="utf-8"))
    Path(done_path).write_text(json.dumps(_compile_share(items)), encoding="utf-8")


if __name__ == "__main__":  # python -m stemgrains._precompile SHARE.json DONE.json LOCK
    _worker(*sys.argv[1:4])
