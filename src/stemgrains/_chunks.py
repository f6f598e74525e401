"""Checkpointed chunk runner: a scan processed as independent blocks of rows, serially or on a dask cluster.

A *chunk* is a block of scan rows ``(first_row, stop_row)``; a *task* turns the block's data into a dict of
numpy arrays. This module knows nothing of what the task computes (indexing, virtual images, calibration all
fit): it provides

* :func:`run_key` — a content hash of everything that determines the result (version, input, parameters), so a
  checkpoint is reused only for the same job;
* :class:`ChunkCheckpoint` — a folder of finished chunks (``rows_<r0>_<r1>.npz``, written atomically) and a
  ``manifest.json`` with the run key; a folder of another job is emptied, a corrupt chunk is recomputed;
* :func:`run_chunks` — runs the chunks that are not checkpointed yet, serially in this process or on a
  ``dask.distributed`` client (:func:`map_chunks_distributed`), saving each as it finishes.

No home-made distribution layer: futures, retries and the scheduler are dask's.

How the rows reach dask workers
-------------------------------
* Data a worker can reopen by path — the lazy HDF5 view of :mod:`stemgrains.io`
  (:class:`~stemgrains.io.H5Array`, which pickles as its path) or a read-only ``numpy.memmap`` that spans its
  file (a ``.npy`` opened by :func:`stemgrains.io.load_4d`) — is shipped once as a small
  :class:`~stemgrains.data.Dataset4D` and every worker reads its own rows from disk (the workers must see the
  file under the same path: a shared file system on a cluster).
* Anything else (an in-memory numpy array, an h5py dataset, a dask array) is read here, a block of rows at a
  time, and scattered to the workers; at most ``max_in_flight`` blocks are out at once, so memory stays bounded
  by the chunk size whatever the scan size.

The task's shared inputs (e.g. template libraries) are scattered once to every worker (``broadcast=True``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import Dataset4D
from .errors import InputError, ParameterError, StemgrainsError

__all__ = ["run_key", "ChunkCheckpoint", "row_chunks", "run_chunks", "map_chunks_distributed", "with_kernel_lock"]

_DIST_MISSING = "dask.distributed is not installed; install the 'dist' extra: pip install 'stemgrains[dist]'"

#: A task ``task(block, calibration, shared) -> result``: ``block`` the rows ``(r1 - r0, nx, ky, kx)``.
Task = Callable[[np.ndarray, Any, Any], Any]


# ------------------------------------------------------------------------------------------------
# run key and checkpoint folder
# ------------------------------------------------------------------------------------------------
def run_key(parts: dict[str, Any]) -> str:
    """20 hex digits of the SHA-256 of ``parts`` as sorted JSON (non-JSON values by ``str``)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def row_chunks(n_rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """``(first_row, stop_row)`` blocks of at most ``chunk_rows`` rows covering ``n_rows`` rows."""
    return [(r0, min(n_rows, r0 + chunk_rows)) for r0 in range(0, n_rows, chunk_rows)]


class ChunkCheckpoint:
    """A folder of finished chunks of one job.

    Parameters
    ----------
    folder
        Created if missing. Holds ``manifest.json`` (``{"key": ..., **meta}``) and ``rows_RRRRRR_SSSSSS.npz``.
    key
        :func:`run_key` of the job. A folder whose manifest has another key (or none) is emptied of chunks and
        given this key.
    meta
        Extra JSON fields of the manifest (e.g. the data shape), for people reading the folder.
    """

    def __init__(self, folder: str | os.PathLike, key: str, meta: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = key
        manifest = self.folder / "manifest.json"
        try:
            old = json.loads(manifest.read_text()) if manifest.is_file() else None
        except (OSError, ValueError):
            old = None
        #: chunks of another job (other key) removed on opening: the caller says so (a rerun that does not resume)
        self.discarded = 0
        if not isinstance(old, dict) or old.get("key") != key:
            for f in self.folder.glob("rows_*.npz"):
                f.unlink()
                self.discarded += 1
            manifest.write_text(json.dumps({"key": key, **(meta or {})}))

    def path(self, r0: int, r1: int) -> Path:
        return self.folder / f"rows_{r0:06d}_{r1:06d}.npz"

    def save(self, r0: int, r1: int, arrays: dict[str, np.ndarray]) -> None:
        """Write a finished chunk atomically (temporary name, then rename)."""
        path = self.path(r0, r1)
        # numpy opens (and owns) the temporary file itself: a Ctrl-C in the middle of writing then leaves no zip
        # object on a closed file object behind (its clean-up printed "Exception ignored ... seek of closed file")
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load(self, r0: int, r1: int, fields: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The arrays ``fields`` of a saved chunk, or None when it is missing or unreadable (never trusted)."""
        path = self.path(r0, r1)
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                return {k: z[k] for k in fields}
        except Exception:  # a corrupt checkpoint is recomputed, never trusted
            return None


def run_chunks(
    dataset: Dataset4D,
    chunks: Sequence[tuple[int, int]],
    task: Task,
    shared: Any,
    *,
    client: Any = None,
    checkpoint: ChunkCheckpoint | None = None,
    to_arrays: Callable[[Any], dict[str, np.ndarray]] = dict,
    from_arrays: Callable[[dict[str, np.ndarray]], Any] | None = None,
    fields: Sequence[str] = (),
    is_complete: Callable[[Any, int, int], bool] = lambda res, r0, r1: True,
    on_start: Callable[[int], None] | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    retries: int = 2,
) -> dict[tuple[int, int], Any]:
    """Results of ``task(dataset.rows(r0, r1), dataset.calibration, shared)`` for every chunk.

    Chunks found in ``checkpoint`` (and accepted by ``is_complete``) are loaded with ``from_arrays``; the rest
    run serially here, or on the workers of ``client`` (a ``dask.distributed.Client``), and are saved to the
    checkpoint (``to_arrays``) as each finishes. ``on_start(n_loaded_rows)`` is called once before any work,
    ``on_chunk(r0, r1)`` after each computed chunk (progress bars).

    Returns
    -------
    dict
        ``{(r0, r1): result}`` for every chunk.
    """
    results: dict[tuple[int, int], Any] = {}
    todo = []
    for r0, r1 in chunks:
        got = checkpoint.load(r0, r1, fields) if checkpoint is not None else None
        res = from_arrays(got) if got is not None and from_arrays is not None else None
        if res is not None and is_complete(res, r0, r1):
            results[(r0, r1)] = res
        else:
            todo.append((r0, r1))
    if on_start is not None:
        on_start(sum(b - a for a, b in results))

    def finished(r0: int, r1: int, res: Any) -> None:
        results[(r0, r1)] = res
        if checkpoint is not None:
            checkpoint.save(r0, r1, to_arrays(res))
        if on_chunk is not None:
            on_chunk(r0, r1)

    if client is not None:
        for (r0, r1), res in map_chunks_distributed(client, dataset, task, shared, todo, retries=retries):
            finished(r0, r1, res)
    else:
        _run_serial(dataset, todo, task, shared, finished)
    return results


#: cores from which the next chunk is read in a thread while the current one computes
PREFETCH_MIN_CPUS = 4


def _run_serial(dataset: Dataset4D, todo: Sequence[tuple[int, int]], task: Task, shared: Any,
                finished: Callable[[int, int, Any], None]) -> None:
    """The chunks in order, here; while one computes, a reader thread fetches the next one's rows
    (:meth:`~stemgrains.data.Dataset4D.fetch_rows`: file I/O and decompression, which run no numba kernel), so
    reading overlaps computing. At most two chunks' rows are in memory. Only with ``PREFETCH_MIN_CPUS`` cores or
    more: numba's parallel kernels split their work statically over all cores, so on 2 cores a reader thread slows
    every kernel it overlaps about as much as it saves (measured: no gain on 2 cores)."""
    fetch = getattr(dataset, "fetch_rows", None)
    if fetch is None or len(todo) < 2 or (os.cpu_count() or 1) < PREFETCH_MIN_CPUS:
        for r0, r1 in todo:
            finished(r0, r1, task(dataset.rows(r0, r1), dataset.calibration, shared))
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stemgrains-read")
    try:
        ahead = pool.submit(fetch, *todo[0])
        for k, (r0, r1) in enumerate(todo):
            fetched = ahead.result()
            if k + 1 < len(todo):
                ahead = pool.submit(fetch, *todo[k + 1])
            block = dataset.finish_rows(fetched, r0, r1)
            del fetched
            finished(r0, r1, task(block, dataset.calibration, shared))
            del block
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------------
# numba kernels in worker threads
# ------------------------------------------------------------------------------------------------
# numba's "workqueue" threading layer aborts the process when two threads launch parallel kernels at once, which
# happens on a dask worker with several threads; with it, chunks on one worker process run one at a time.
_KERNEL_LOCK = threading.RLock()  # re-entrant: a locked batch job runs locked chunks inside
_THREADSAFE_LAYER: bool | None = None


def _numba_layer_is_threadsafe() -> bool:
    global _THREADSAFE_LAYER
    if _THREADSAFE_LAYER is None:
        import numba

        layer = str(numba.config.THREADING_LAYER)
        if layer in ("tbb", "omp", "threadsafe"):
            ok = True
        elif layer == "workqueue":
            ok = False
        else:  # "default" / "safe": numba takes tbb, then omp, then workqueue
            ok = False
            for mod in ("numba.np.ufunc.tbbpool", "numba.np.ufunc.omppool"):
                try:
                    __import__(mod)
                except ImportError:
                    continue
                ok = True
                break
        _THREADSAFE_LAYER = ok
    return _THREADSAFE_LAYER


def with_kernel_lock(fn: Callable[..., Any], *args: Any, needed: bool = True, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, holding the process-wide kernel lock when ``needed`` and numba's threading layer
    is not thread-safe (parallel numba kernels launched from several threads at once abort the process)."""
    if not needed or _numba_layer_is_threadsafe():
        return fn(*args, **kwargs)
    with _KERNEL_LOCK:
        return fn(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# dask.distributed
# ------------------------------------------------------------------------------------------------
def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise StemgrainsError(_DIST_MISSING) from None
    return distributed


def _task_rows(dataset: Dataset4D, r0: int, r1: int, task: Task, shared: Any) -> Any:
    """Worker task: read scan rows ``r0:r1`` of a reopenable dataset and run ``task`` on them."""
    return task(dataset.rows(r0, r1), dataset.calibration, shared)


def _task_scattered(block: np.ndarray, calibration: Any, task: Task, shared: Any) -> Any:
    """Worker task: run ``task`` on a block of rows scattered from the client."""
    return task(np.asarray(block), calibration, shared)


class _MemmapRows:
    """A read-only memory map of a whole ``(ny, nx, ky, kx)`` array in a file, pickled as (path, offset, shape,
    dtype) and reopened on the worker."""

    def __init__(self, path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = path
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._arr: np.memmap | None = None

    def _array(self) -> np.memmap:
        if self._arr is None:
            self._arr = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape)
        return self._arr

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self._array()[key])

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "offset": self.offset, "shape": self.shape, "dtype": self.dtype.str}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["offset"], tuple(state["shape"]), np.dtype(state["dtype"]))


def _reopenable(data: Any) -> Any | None:
    """A picklable stand-in for ``data`` that workers reopen by path, or None when the rows must be shipped."""
    from .io import H5Array
    from .preprocess.averaging import NeighborSummedData

    if isinstance(data, H5Array):
        return data
    if isinstance(data, NeighborSummedData):  # workers sum the rows they read from the reopened file
        inner = _reopenable(data.data)
        return None if inner is None else data.over(inner)
    if isinstance(data, np.memmap) and getattr(data, "filename", None):
        # Only a C-contiguous view that covers the file from its offset to the end is certainly the whole mapping
        # (np.memmap maps at most that much); any other view (a slice, a shorter map) is shipped by rows.
        try:
            size = os.path.getsize(data.filename)
        except OSError:
            return None
        if data.flags.c_contiguous and data.nbytes == size - int(data.offset) and data.nbytes > 0:
            if data.mode != "r":
                data.flush()
            return _MemmapRows(str(data.filename), int(data.offset), data.shape, data.dtype)
    return None


def _check_chunks(chunks: Iterable[Sequence[int]], ny: int) -> list[tuple[int, int]]:
    out = []
    for c in chunks:
        try:
            r0, r1 = (int(v) for v in c)
        except (TypeError, ValueError):
            raise ParameterError(f"chunks: expected (first_row, stop_row) pairs, got {c!r}") from None
        if not 0 <= r0 < r1 <= ny:
            raise ParameterError(f"chunks: rows {r0}:{r1} are not a non-empty range inside the scan's {ny} rows")
        out.append((r0, r1))
    return out


def _first_line(err: BaseException) -> str:
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()
    return type(err).__name__


def _worker_threads(client: Any) -> int:
    try:
        info = client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))
    except Exception:  # an unusual client without scheduler_info: assume a small cluster
        return 2


def _check_distributed_args(client: Any, dataset: Any, retries: int, max_in_flight: int | None) -> None:
    if not isinstance(dataset, Dataset4D):
        raise InputError(f"dataset must be a Dataset4D (see stemgrains.io.load_4d), got {type(dataset).__name__}")
    for name in ("submit", "scatter"):
        if not callable(getattr(client, name, None)):
            raise ParameterError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if int(retries) != retries or retries < 0:
        raise ParameterError(f"retries must be a non-negative integer, got {retries!r}")
    if max_in_flight is not None and (int(max_in_flight) != max_in_flight or max_in_flight < 1):
        raise ParameterError(f"max_in_flight must be a positive integer, got {max_in_flight!r}")


def map_chunks_distributed(
    client: Any,
    dataset: Dataset4D,
    task: Task,
    shared: Any,
    chunks: Iterable[Sequence[int]],
    *,
    retries: int = 2,
    max_in_flight: int | None = None,
    name: str = "stemgrains",
) -> Iterator[tuple[tuple[int, int], Any]]:
    """Run ``task(rows, calibration, shared)`` on scan chunks on the workers of a dask cluster, yielding results
    as chunks finish (completion order, every chunk exactly once).

    ``task`` must be picklable (a module-level function); ``shared`` is scattered once to every worker.
    ``max_in_flight`` chunks are submitted at once (default: twice the cluster's worker threads, at least 2),
    which bounds the memory held by scattered blocks and results not yet consumed.

    Raises
    ------
    StemgrainsError
        dask.distributed is missing, or a chunk failed ``retries + 1`` times (the message names its rows).
    InputError, ParameterError
        A dataset that is not a Dataset4D, a client that is not one, bad chunks, retries or max_in_flight.
    """
    distributed = _import_distributed()
    _check_distributed_args(client, dataset, retries, max_in_flight)
    todo = _check_chunks(chunks, dataset.scan_shape[0])
    if not todo:
        return
    if max_in_flight is None:
        max_in_flight = max(2, 2 * _worker_threads(client))
    yield from _DaskRun(client, distributed, dataset, task, shared, retries, name).run(todo, int(max_in_flight))


class _DaskRun:
    """One :func:`map_chunks_distributed` call: the scattered inputs and the futures in flight."""

    def __init__(self, client: Any, distributed: Any, dataset: Dataset4D, task: Task, shared: Any, retries: int,
                 name: str) -> None:
        self.client, self.dataset, self.task, self.retries = client, dataset, task, retries
        self.prefix = f"{name}-{uuid.uuid4().hex[:10]}-rows"
        self.shared_future = client.scatter([shared], broadcast=True, hash=False)[0]
        reader = _reopenable(dataset.data)
        self.ds_future = None
        if reader is not None:
            light = Dataset4D(data=reader, calibration=dataset.calibration, metadata={}, source=dataset.source)
            self.ds_future = client.scatter([light], broadcast=True, hash=False)[0]
        self.rows_of: dict[Any, tuple[int, int]] = {}
        self.block_of: dict[Any, Any] = {}
        self.live: dict[Any, Any] = {}
        self.done = distributed.as_completed(loop=getattr(client, "loop", None))

    def submit(self, r0: int, r1: int) -> None:
        c, key = self.client, f"{self.prefix}-{r0}-{r1}"
        if self.ds_future is not None:
            fut = c.submit(_task_rows, self.ds_future, r0, r1, self.task, self.shared_future, key=key,
                           retries=self.retries, pure=False)
        else:
            block = c.scatter(self.dataset.rows(r0, r1), hash=False)
            fut = c.submit(_task_scattered, block, self.dataset.calibration, self.task, self.shared_future, key=key,
                           retries=self.retries, pure=False)
            self.block_of[fut.key] = block
        self.rows_of[fut.key] = (r0, r1)
        self.live[fut.key] = fut
        self.done.add(fut)

    def collect(self, fut: Any) -> tuple[tuple[int, int], Any]:
        r0, r1 = self.rows_of.pop(fut.key)
        self.live.pop(fut.key, None)
        block = self.block_of.pop(fut.key, None)
        if fut.status != "finished":
            err = fut.exception() if fut.status == "error" else None
            why = f"{type(err).__name__}: {_first_line(err)}" if err is not None else f"task {fut.status}"
            raise StemgrainsError(
                f"scan rows {r0}:{r1} failed on the dask workers after {self.retries + 1} attempt(s) ({why})"
            ) from err
        res = fut.result()
        fut.release()
        if block is not None:
            block.release()
        return (r0, r1), res

    def run(self, todo: list[tuple[int, int]], max_in_flight: int) -> Iterator[tuple[tuple[int, int], Any]]:
        pending = iter(todo)
        try:
            for _ in range(max_in_flight):
                nxt = next(pending, None)
                if nxt is None:
                    break
                self.submit(*nxt)
            for fut in self.done:
                out = self.collect(fut)
                nxt = next(pending, None)
                if nxt is not None:
                    self.submit(*nxt)
                yield out
        finally:
            # on an error, or when the caller stops early: cancel what is still queued, drop what we scattered
            for f in self.live.values():
                f.cancel()
            for b in self.block_of.values():
                b.release()
            self.shared_future.release()
            if self.ds_future is not None:
                self.ds_future.release()
