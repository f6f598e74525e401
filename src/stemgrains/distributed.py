"""Scan chunks of an indexing job on a ``dask.distributed`` cluster: :func:`run_chunks_distributed`.

A chunk (a block of scan rows) is an independent work unit: a worker reads its rows, runs
:func:`stemgrains.index.api.index_patterns` on them and sends back a :class:`~stemgrains.index.api.ChunkResult`.
The generic machinery (how rows reach the workers, retries, bounded memory) is :mod:`stemgrains._chunks`
(:func:`~stemgrains._chunks.map_chunks_distributed`); this module binds it to indexing.

Failures: each chunk is retried by dask (``retries=2`` by default); a chunk that still fails raises a
:class:`~stemgrains.errors.StemgrainsError` naming its rows and the workers' error. Nothing is dropped silently.

Needs the optional extra ``dist`` (``pip install 'stemgrains[dist]'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ._chunks import _import_distributed, _reopenable, map_chunks_distributed  # noqa: F401 (re-exported)
from .data import Dataset4D
from .errors import InputError, ParameterError
from .index.api import index_block

__all__ = ["run_chunks_distributed"]


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
    _import_distributed()
    if not isinstance(dataset, Dataset4D):
        raise InputError(f"dataset must be a Dataset4D (see stemgrains.io.load_4d), got {type(dataset).__name__}")
    for name in ("submit", "scatter"):
        if not callable(getattr(client, name, None)):
            raise ParameterError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if backend not in ("cpu", "gpu"):
        raise ParameterError(f"backend must be 'cpu' or 'gpu', got {backend!r}")
    yield from map_chunks_distributed(client, dataset, index_block, (list(libraries), params, backend), chunks,
                                  retries=retries, max_in_flight=max_in_flight, name="stemgrains-index")
