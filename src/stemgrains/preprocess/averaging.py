"""Similarity-gated neighbour pattern summation: more signal per pattern from the grain around it.

At the doses of nanobeam scans a single pattern of a randomly oriented grain shows a handful of spots above the
Poisson noise (multislice Au at 1e4 e⁻/pattern: 1–5 detected of the ~20 present), too few to fix an orientation.
The scan positions around it in the same grain record the same pattern, so the pattern of each scan position is
summed with those of its neighbours (within ``radius`` scan px) **that look like it** — neighbour pattern averaging,
as in EBSD's NPA/NPAR (Wright et al., *Ultramicroscopy* 159 (2015) 81–94; kikuchipy's
``average_neighbour_patterns``), gated by similarity so that grain boundaries stay sharp:

- each pattern's *feature*: of the pattern binned to about 64 × 64 px (:func:`feature_bin`), 3 × 3 local mean
  minus 11 × 11 local mean, clipped at 0 (spots over a smooth background), the direct beam masked (disk of the spot
  detector's ``q_min``), zero mean, unit norm;
- a neighbour joins the sum when the dot product ``c`` of the two features is at least
  ``max(min_similarity, relative_similarity · c_max)``, ``c_max`` being the best ``c`` in the window: across a
  boundary the other grain's patterns share no spots (``c`` ≈ 0–0.2 in the test sets, same grain 0.1–0.95 with a
  median 0.9), and the relative gate keeps a pixel at a boundary to its own side even where the other grain is
  alike.

Counts are **summed**, not averaged: the sum of Poisson counts is Poisson, so the spot detector's noise threshold
(``n_sigma`` · √background) stays right for it, as for a longer exposure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError
from . import _kernels as K

__all__ = ["NeighborSummedData", "sum_similar_neighbors", "summed_dataset"]


def _check(radius: Any, mask_radius_px: Any, min_similarity: Any, relative_similarity: Any) -> tuple[int, float, float, float]:
    from .. import config

    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or not 0 <= radius <= config.NEIGHBOR_AVERAGE_RADIUS_MAX:
        raise ParameterError(f"radius must be an integer from 0 to {config.NEIGHBOR_AVERAGE_RADIUS_MAX} (scan px), "
                             f"got {radius!r}")
    for name, v in (("mask_radius_px", mask_radius_px), ("min_similarity", min_similarity),
                    ("relative_similarity", relative_similarity)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ParameterError(f"{name} must be a finite number, got {v!r}")
    if mask_radius_px < 0:
        raise ParameterError(f"mask_radius_px must be >= 0, got {mask_radius_px!r}")
    if not -1 <= min_similarity <= 1 or not 0 <= relative_similarity <= 1:
        raise ParameterError(f"min_similarity must be in [-1, 1] and relative_similarity in [0, 1], got "
                             f"{min_similarity!r}, {relative_similarity!r}")
    return int(radius), float(mask_radius_px), float(min_similarity), float(relative_similarity)


def feature_bin(detector_shape: tuple[int, int]) -> int:
    """Binning of the patterns before their similarity features: features of about 64 × 64 px whatever the detector
    (128² → 2 × 2 bins), so their cost and memory per pattern are bounded (measured: the same accuracy as unbinned
    features on the 128² test sets)."""
    return max(1, min(detector_shape) // 64)


def _sum_rows(block: np.ndarray, row0: int, row1: int, radius: int, mask_radius_px: float, min_similarity: float,
              relative_similarity: float) -> tuple[np.ndarray, np.ndarray]:
    rows, nx, ky, kx = block.shape
    b = np.ascontiguousarray(block)
    f = feature_bin((ky, kx))
    kb, kxb = ky // f, kx // f
    binned = K.bin_sum(b.reshape(rows * nx, ky, kx), f) if f > 1 else b.reshape(rows * nx, ky, kx)
    feats = K.similarity_features(np.ascontiguousarray(binned), mask_radius_px / f)
    return K.neighbor_sum(b, feats.reshape(rows, nx, kb * kxb), row0, row1, radius, min_similarity,
                          relative_similarity)


def sum_similar_neighbors(patterns: np.ndarray, radius: int = 1, *, mask_radius_px: float = 10.0,
                          min_similarity: float = 0.1, relative_similarity: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Each pattern summed with its similar neighbours (see the module docstring for the method and its source).

    Parameters
    ----------
    patterns
        (ny, nx, ky, kx) counts.
    radius
        Neighbours within this Chebyshev distance, scan px (1: the 8 around; 0 returns the patterns as float32).
    mask_radius_px
        Radius of the disk around the direct beam left out of the similarity, detector px.
    min_similarity, relative_similarity
        The gate: a neighbour is summed when ``c ≥ max(min_similarity, relative_similarity · c_max)``.

    Returns
    -------
    sums : (ny, nx, ky, kx) float32
    counts : (ny, nx) int64
        Patterns summed at each scan position (1 = its own only).

    Raises
    ------
    ParameterError
        On a non-4D input or out-of-range parameters.
    """
    arr = np.asarray(patterns)
    if arr.ndim != 4 or min(arr.shape) < 1:
        raise ParameterError(f"patterns must be (ny, nx, ky, kx), got shape {arr.shape}")
    args = _check(radius, mask_radius_px, min_similarity, relative_similarity)
    return _sum_rows(arr, 0, arr.shape[0], *args)


class NeighborSummedData:
    """A (ny, nx, ky, kx) float32 array-like whose rows are :func:`sum_similar_neighbors` of ``data``'s, computed on
    reading (a row slice reads ``radius`` extra rows on each side): streams a scan of any size through the
    chunked stages with results independent of the chunking.

    Supports ``obj[start:stop]`` (scan rows), ``obj[i]`` and ``obj[i, j]``; pickles with ``data``.
    :meth:`counts` gives the number of patterns summed at each scan position of the rows read.
    """

    def __init__(self, data: Any, radius: int = 1, *, mask_radius_px: float = 10.0, min_similarity: float = 0.1,
                 relative_similarity: float = 0.7) -> None:
        shape = tuple(int(s) for s in getattr(data, "shape", ()))
        if len(shape) != 4:
            raise ParameterError(f"data must be (ny, nx, ky, kx), got shape {shape}")
        self.data = data
        self.radius, self.mask_radius_px, self.min_similarity, self.relative_similarity = _check(
            radius, mask_radius_px, min_similarity, relative_similarity)
        self.shape = shape
        self.dtype = np.dtype(np.float32)
        self.ndim = 4
        #: ``{(start, stop): counts}`` of the row blocks read here (kept for :meth:`counts`; not pickled)
        self._counts: dict[tuple[int, int], np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_counts"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._counts = {}

    def over(self, data: Any) -> "NeighborSummedData":
        """The same summation over another array-like holding the same patterns (e.g. reopened on a worker)."""
        return NeighborSummedData(data, self.radius, mask_radius_px=self.mask_radius_px,
                                  min_similarity=self.min_similarity, relative_similarity=self.relative_similarity)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, start: int, stop: int) -> np.ndarray:
        return self.finish_rows(self.fetch_rows(start, stop), start, stop)

    def fetch_rows(self, start: int, stop: int) -> tuple[int, np.ndarray]:
        """Read rows ``start:stop`` of ``data`` with their halo (I/O only): ``(first row read, block)``."""
        lo, hi = max(0, start - self.radius), min(self.shape[0], stop + self.radius)
        block = self.data[lo:hi]
        if hasattr(block, "compute"):
            block = block.compute()
        return lo, np.asarray(block)

    def finish_rows(self, fetched: tuple[int, np.ndarray], start: int, stop: int) -> np.ndarray:
        """The summed rows ``start:stop`` from what :meth:`fetch_rows` read."""
        lo, block = fetched
        sums, counts = _sum_rows(block, start - lo, stop - lo, self.radius, self.mask_radius_px, self.min_similarity,
                                 self.relative_similarity)
        self._counts[(start, stop)] = counts
        return sums

    def counts(self, start: int, stop: int) -> np.ndarray:
        """Patterns summed at each scan position of rows ``start:stop`` (1 = its own only), ``(stop − start, nx)``
        int64: those of the last read of exactly these rows (``obj[start:stop]``, as the chunked stages read
        them), else computed now (reading the rows again). Identical either way: the sums of a block do not depend
        on the blocks around it."""
        got = self._counts.get((start, stop))
        if got is None:
            self._rows(start, stop)
            got = self._counts[(start, stop)]
        return got

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"scan row {key} outside 0..{self.shape[0] - 1}")
            out = self._rows(i, i + 1)[0]
        elif isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("only contiguous scan-row slices are supported")
            out = self._rows(start, max(start, stop)) if stop > start else np.zeros((0,) + self.shape[1:], np.float32)
        else:
            raise IndexError(f"unsupported index {key!r}: use scan-row slices")
        return out[rest] if rest else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[0:self.shape[0]]
        return out.astype(dtype) if dtype is not None else out


def summed_dataset(dataset: Any, radius: int, *, q_min: float, min_similarity: float = 0.1,
                   relative_similarity: float = 0.7) -> Any:
    """``dataset`` (a :class:`~stemgrains.data.Dataset4D`) with its patterns read through
    :class:`NeighborSummedData`, or ``dataset`` itself for ``radius`` 0 or a single pattern.

    ``q_min`` (1/Å, the spot detector's inner limit) sets the masked disk around the direct beam."""
    from ..data import Dataset4D

    if radius == 0 or dataset.scan_shape == (1, 1):
        return dataset
    cal = dataset.calibration
    data = NeighborSummedData(dataset.data, radius, mask_radius_px=q_min / cal.require_q_pixel_size(),
                              min_similarity=min_similarity, relative_similarity=relative_similarity)
    return Dataset4D(data, cal, dict(dataset.metadata), dataset.source)
