"""Virtual images of a 4D-STEM scan, streamed over chunks of scan rows.

:func:`virtual_images` integrates several detectors in one pass over the data: the cube is read a block of scan
rows at a time (:meth:`~stemgrains.data.Dataset4D.rows`), so peak memory is bounded by the block
(``memory_mb``), not by the scan. Each pattern is summed over the detector's pixels, weighted
(``I_d(i, j) = Σ_k w_d(k) · P_ij(k)``, the definition py4DSTEM, pyxem and LiberTEM use).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..preprocess.api import pattern_centers
from ..data import Calibration, Dataset4D
from ..errors import InputError, ParameterError
from . import _kernels as K
from ._reference import virtual_block_reference
from .detectors import Detector

__all__ = ["virtual_images", "virtual_image", "estimate_center", "pattern_centers", "chunk_rows_for"]


def _as_dataset(dataset: Any) -> Dataset4D:
    if isinstance(dataset, Dataset4D):
        return dataset
    shape = getattr(dataset, "shape", None)
    if shape is None or len(shape) != 4:
        raise InputError(f"expected a Dataset4D or a 4-D array (scan_row, scan_col, det_row, det_col), got "
                         f"{type(dataset).__name__} of shape {shape}")
    # an uncalibrated array: q_pixel_size 1 is a placeholder, q-unit detectors must come with a Dataset4D
    return Dataset4D(dataset, Calibration(q_pixel_size=1.0), metadata={"uncalibrated": True})


def chunk_rows_for(dataset: Dataset4D, memory_mb: float) -> int:
    """Scan rows per block so that one block (as read, plus a float64 copy at worst) fits in ``memory_mb``."""
    ny, nx, ky, kx = dataset.shape
    row_bytes = nx * ky * kx * max(dataset.dtype.itemsize, 8)
    return int(max(1, min(ny, (memory_mb * 1024**2) // row_bytes)))


def _native(block: np.ndarray) -> np.ndarray:
    if block.dtype.kind not in "biuf":
        raise InputError(f"4D data must be numeric, got dtype {block.dtype}")
    if block.dtype.kind == "b" or block.dtype == np.float16 or not block.dtype.isnative:
        block = block.astype(np.float64)
    return np.ascontiguousarray(block)


def estimate_center(dataset: Dataset4D, n_sample: int = 64, radius_px: float = 4.0) -> tuple[float, float]:
    """Beam centre ``(row, col)`` px: the calibrated centre, else the iterated centre of mass around the brightest
    pixel of the mean of up to ``n_sample`` patterns spread over the scan."""
    if dataset.calibration.center is not None:
        return dataset.calibration.center
    from ..preprocess import direct_beam_center

    ny, nx = dataset.scan_shape
    k = max(1, int(np.ceil(np.sqrt(n_sample))))
    rows = np.unique(np.linspace(0, ny - 1, min(k, ny)).astype(int))
    cols = np.unique(np.linspace(0, nx - 1, min(k, nx)).astype(int))
    acc = np.zeros(dataset.detector_shape)
    for r in rows:
        acc += np.asarray(dataset.rows(int(r), int(r) + 1)[0][cols], dtype=np.float64).sum(0)
    return direct_beam_center(acc, radius_px=radius_px)


def _sparse(weights: np.ndarray) -> tuple[np.ndarray, ...]:
    rows, cols, w, ptr = [], [], [], [0]
    for m in weights:
        r, c = np.nonzero(m)
        rows.append(r), cols.append(c), w.append(m[r, c])
        ptr.append(ptr[-1] + len(r))
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(w).astype(np.float64), np.asarray(ptr, dtype=np.int64))


def virtual_images(
    dataset: Any,
    detectors: Sequence[Detector],
    *,
    center: tuple[float, float] | None = None,
    follow_center: bool | np.ndarray = False,
    memory_mb: float = 128.0,
    progress: bool = False,
    backend: str = "numba",
) -> np.ndarray:
    """Images of several virtual detectors in one streamed pass over the scan.

    Parameters
    ----------
    dataset
        :class:`~stemgrains.data.Dataset4D` (or a 4-D array; then q-unit detectors are refused)
        ``(scan_row, scan_col, det_row, det_col)``; never read whole.
    detectors
        :class:`~stemgrains.virtual.Detector` s (:func:`bright_field`, :func:`annulus`, :func:`dark_field`,
        :func:`mask_detector`).
    center
        Beam centre ``(row, col)`` px where the geometry is placed; default the calibrated centre, else
        :func:`estimate_center`.
    follow_center
        ``False``: detectors are fixed on the detector. ``True``: the direct beam is found in every pattern
        (:func:`pattern_centers`) and all detectors move with it (shifted by the offset from ``center``, rounded to
        whole pixels). An array ``(ny, nx, 2)`` gives those per-pattern centres (row, col) directly.
    memory_mb
        Budget for one block of scan rows, MiB: peak memory is about this plus the output images.
    progress
        Show a tqdm progress bar (scan rows) on stderr.
    backend
        ``"numba"`` (default) or ``"reference"`` (the slow numpy oracle, for tests).

    Returns
    -------
    (n_detectors, ny, nx) float64
        Counts summed over each detector (weights × counts for weighted masks); NaN where a pattern holds
        non-finite counts under the detector (the CLI counts those positions and draws them red).

    Raises
    ------
    ParameterError
        Bad detector, centre, memory budget or backend; q-unit detector without calibration.
    InputError
        Data that is not 4-D or not numeric; ``follow_center`` array of the wrong shape.
    """
    ds = _as_dataset(dataset)
    dets = list(detectors)
    if not dets or not all(isinstance(d, Detector) for d in dets):
        raise ParameterError("detectors must be a non-empty sequence of stemgrains.virtual.Detector")
    if backend not in ("numba", "reference"):
        raise ParameterError(f"backend must be 'numba' or 'reference', got {backend!r}")
    if not (np.isfinite(memory_mb) and memory_mb > 0):
        raise ParameterError(f"memory_mb must be positive, got {memory_mb!r}")
    uncal = ds.metadata.get("uncalibrated", False)
    if uncal and any(d.units == "q" for d in dets):
        raise ParameterError("detectors in 1/Å need calibrated data (a Dataset4D with q_pixel_size)")
    ny, nx = ds.scan_shape
    needs_center = any(d.relative_to_center for d in dets) or follow_center is not False
    c0 = None
    if center is not None:
        c0 = (float(center[0]), float(center[1]))
    elif needs_center:
        c0 = estimate_center(ds)
    weights = np.stack([d.weights(ds.detector_shape, c0, ds.calibration.q_pixel_size) for d in dets])
    given_centers = None
    if isinstance(follow_center, np.ndarray):
        given_centers = np.asarray(follow_center, dtype=np.float64)
        if given_centers.shape != (ny, nx, 2):
            raise InputError(f"follow_center array must have shape {(ny, nx, 2)}, got {given_centers.shape}")
    rows, cols, w, ptr = _sparse(weights)
    step = chunk_rows_for(ds, memory_mb)
    out = np.zeros((len(dets), ny, nx))
    from tqdm.auto import tqdm

    with tqdm(total=ny, unit="row", desc="virtual images", disable=not progress, leave=False) as bar:
        for r0 in range(0, ny, step):
            r1 = min(ny, r0 + step)
            block = _native(ds.rows(r0, r1))
            shifts = np.zeros((r1 - r0, nx, 2), dtype=np.int64)
            if given_centers is not None:
                shifts = np.rint(given_centers[r0:r1] - np.asarray(c0)).astype(np.int64)
            elif follow_center is True:
                shifts = np.rint(pattern_centers(block, c0) - np.asarray(c0)).astype(np.int64)
            if backend == "numba":
                out[:, r0:r1] = K.virtual_block(block, rows, cols, w, ptr, shifts)
            else:
                out[:, r0:r1] = virtual_block_reference(block, weights, shifts)
            del block
            bar.update(r1 - r0)
    return out


def virtual_image(dataset: Any, detector: Detector, **kwargs: Any) -> np.ndarray:
    """One virtual image ``(ny, nx)`` float64; see :func:`virtual_images` for the parameters."""
    return virtual_images(dataset, [detector], **kwargs)[0]
