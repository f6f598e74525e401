"""Scan chunks on a ``dask.distributed`` cluster: :func:`run_chunks_distributed`.

A chunk (a block of scan rows) is an independent work unit: a worker reads its rows, runs
:func:`stemgrains.index.api.index_patterns` on them and sends back a :class:`~stemgrains.index.api.ChunkResult`.
No home-made distribution layer: futures, retries and the scheduler are dask's.

How the rows reach the workers
------------------------------
* Data a worker can reopen by path — the lazy HDF5 view of :mod:`stemgrains.io`
  (:class:`~stemgrains.io.H5Array`, which pickles as its path) or a read-only ``numpy.memmap`` that spans its
  file (a ``.npy`` opened by :func:`stemgrains.io.load_4d`) — is shipped once as a small
  :class:`~stemgrains.data.Dataset4D` and every worker reads its own rows from disk (the workers must see the
  file under the same path: a shared file system on a cluster).
* Anything else (an in-memory numpy array, an h5py dataset, a dask array) is read here, a block of rows at a
  time, and scattered to the workers; at most ``max_in_flight`` blocks are out at once, so memory stays bounded
  by the chunk size whatever the scan size.

The template libraries are scattered once to every worker (``broadcast=True``).

Failures: each chunk is retried by dask (``retries=2`` by default); a chunk that still fails raises a
:class:`~stemgrains.errors.StemgrainsError` naming its rows and the workers' error. Nothing is dropped silently.

Needs the optional extra ``dist`` (``pip install 'stemgrains[dist]'``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .data import Dataset4D
from .errors import InputError, ParameterError, StemgrainsError

__all__ = ["run_chunks_distributed"]

_DIST_MISSING = "dask.distributed is not installed; install the 'dist' extra: pip install 'stemgrains[dist]'"

# numba's "workqueue" threading layer aborts the process when two threads launch parallel kernels at once, which
# happens on a dask worker with several threads; with it, chunks on one worker process run one at a time.
_KERNEL_LOCK = threading.Lock()
_THREADSAFE_LAYER: bool | None = None


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise StemgrainsError(_DIST_MISSING) from None
    return distributed


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


def _index_block(block: np.ndarray, calibration: Any, libraries: list, params: Any, backend: str) -> Any:
    from .index.api import index_patterns

    ky, kx = block.shape[-2:]
    patterns = block.reshape(-1, ky, kx)
    kw = {"scan_shape": tuple(block.shape[:2])} if block.ndim == 4 else {}
    if backend != "cpu":
        kw["backend"] = backend
    if backend != "cpu" or _numba_layer_is_threadsafe():
        return index_patterns(patterns, calibration, libraries, params, **kw)
    with _KERNEL_LOCK:
        return index_patterns(patterns, calibration, libraries, params, **kw)


def _index_rows(dataset: Dataset4D, r0: int, r1: int, libraries: list, params: Any, backend: str) -> Any:
    """Worker task: read scan rows ``r0:r1`` of a reopenable dataset and index them."""
    return _index_block(dataset.rows(r0, r1), dataset.calibration, libraries, params, backend)


def _index_scattered(block: np.ndarray, calibration: Any, libraries: list, params: Any, backend: str) -> Any:
    """Worker task: index a block of rows scattered from the client."""
    return _index_block(np.asarray(block), calibration, libraries, params, backend)


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

    if isinstance(data, H5Array):
        return data
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


def run_chunks_distributed(
    client: Any,
    dataset: Dataset4D,
    libraries: list,
    params: Any,
    chunks: Iterable[Sequence[int]],
    *,
    retries: int = 2,
    max_in_flight: int | None = None,
    backend: str = "cpu",
) -> Iterator[tuple[tuple[int, int], Any]]:
    """Index scan chunks on the workers of a dask cluster, yielding results as chunks finish.

    Parameters
    ----------
    client
        A ``dask.distributed.Client`` (e.g. ``Client("tcp://scheduler:8786")`` or ``Client(LocalCluster())``).
    dataset
        The scan. Data that workers can reopen by path (the lazy HDF5 arrays of :func:`stemgrains.io.load_4d`,
        a memory-mapped ``.npy``) is read on the workers; other data is read here and scattered block by block.
    libraries
        One :class:`~stemgrains.library.templates.TemplateLibrary` per phase (scattered once to every worker).
    params
        :class:`~stemgrains.index.api.IndexParams`.
    chunks
        ``(first_row, stop_row)`` pairs of scan rows, one work unit each.
    retries
        How many times dask reruns a failed chunk before giving up.
    max_in_flight
        Chunks submitted at once (default: twice the cluster's worker threads, at least 2). Bounds the memory
        held by scattered blocks and finished results not yet consumed.
    backend
        ``"cpu"`` or ``"gpu"``: passed to ``index_patterns(..., backend=...)`` on the workers (each worker then
        needs a CUDA device).

    Yields
    ------
    ((first_row, stop_row), ChunkResult)
        In completion order, not row order; every chunk exactly once.

    Raises
    ------
    StemgrainsError
        dask.distributed is missing, or a chunk failed ``retries + 1`` times (the message names its rows).
    """
    distributed = _import_distributed()
    if not isinstance(dataset, Dataset4D):
        raise InputError(f"dataset must be a Dataset4D (see stemgrains.io.load_4d), got {type(dataset).__name__}")
    for name in ("submit", "scatter"):
        if not callable(getattr(client, name, None)):
            raise ParameterError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if backend not in ("cpu", "gpu"):
        raise ParameterError(f"backend must be 'cpu' or 'gpu', got {backend!r}")
    if int(retries) != retries or retries < 0:
        raise ParameterError(f"retries must be a non-negative integer, got {retries!r}")
    ny = dataset.scan_shape[0]
    todo = _check_chunks(chunks, ny)
    if not todo:
        return
    if max_in_flight is None:
        max_in_flight = max(2, 2 * _worker_threads(client))
    elif int(max_in_flight) != max_in_flight or max_in_flight < 1:
        raise ParameterError(f"max_in_flight must be a positive integer, got {max_in_flight!r}")

    run = uuid.uuid4().hex[:10]
    lib_future = client.scatter([list(libraries)], broadcast=True, hash=False)[0]
    reader = _reopenable(dataset.data)
    ds_future = None
    if reader is not None:
        light = Dataset4D(data=reader, calibration=dataset.calibration, metadata={}, source=dataset.source)
        ds_future = client.scatter([light], broadcast=True, hash=False)[0]

    pending = iter(todo)
    rows_of: dict[Any, tuple[int, int]] = {}
    block_of: dict[Any, Any] = {}
    live: dict[Any, Any] = {}
    done = distributed.as_completed(loop=getattr(client, "loop", None))

    def submit_next() -> bool:
        nxt = next(pending, None)
        if nxt is None:
            return False
        r0, r1 = nxt
        key = f"stemgrains-index-{run}-rows-{r0}-{r1}"
        if ds_future is not None:
            fut = client.submit(
                _index_rows, ds_future, r0, r1, lib_future, params, backend, key=key, retries=retries, pure=False
            )
        else:
            block = client.scatter(dataset.rows(r0, r1), hash=False)
            fut = client.submit(
                _index_scattered, block, dataset.calibration, lib_future, params, backend, key=key, retries=retries,
                pure=False,
            )
            block_of[fut.key] = block
        rows_of[fut.key] = (r0, r1)
        live[fut.key] = fut
        done.add(fut)
        return True

    try:
        for _ in range(int(max_in_flight)):
            if not submit_next():
                break
        for fut in done:
            r0, r1 = rows_of.pop(fut.key)
            live.pop(fut.key, None)
            block = block_of.pop(fut.key, None)
            if fut.status != "finished":
                err = fut.exception() if fut.status == "error" else None
                why = f"{type(err).__name__}: {_first_line(err)}" if err is not None else f"task {fut.status}"
                raise StemgrainsError(
                    f"scan rows {r0}:{r1} failed on the dask workers after {retries + 1} attempt(s) ({why})"
                ) from err
            res = fut.result()
            fut.release()
            if block is not None:
                block.release()
            submit_next()
            yield (r0, r1), res
    finally:
        # on an error, or when the caller stops early: cancel what is still queued, drop what we scattered
        for f in live.values():
            f.cancel()
        for b in block_of.values():
            b.release()
        lib_future.release()
        if ds_future is not None:
            ds_future.release()

