"""numba kernels of the virtual detectors (slow references in :mod:`stemgrains.virtual._reference`).

A detector is given in sparse form: for detector ``d``, entries ``ptr[d]:ptr[d+1]`` of ``rows``, ``cols``,
``weights`` list the detector pixels it integrates and their weights. ``shifts`` moves every detector of one
pattern by whole pixels (the per-pattern beam-centre offset, rounded); pixels shifted off the detector are
skipped.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _pattern_sums(pattern, rows, cols, weights, ptr, drow, dcol, out):
    """Weighted sums of one pattern ``(ky, kx)`` for every detector into ``out`` ``(n_det,)``."""
    ky, kx = pattern.shape
    for d in range(len(ptr) - 1):
        s = 0.0
        for k in range(ptr[d], ptr[d + 1]):
            r = rows[k] + drow
            c = cols[k] + dcol
            if r >= 0 and r < ky and c >= 0 and c < kx:
                s += weights[k] * pattern[r, c]
        out[d] = s


@nb.njit(cache=True, nogil=True)
def virtual_block(block, rows, cols, weights, ptr, shifts):
    """Virtual images of a block of scan rows.

    Parameters
    ----------
    block : (nr, nx, ky, kx) numeric
    rows, cols : (m,) int64, weights : (m,) float64, ptr : (n_det + 1,) int64
        Sparse detectors (see the module docstring).
    shifts : (nr, nx, 2) int64
        Whole-pixel (row, col) shift of the detectors for each pattern.

    Returns
    -------
    (n_det, nr, nx) float64
    """
    nr, nx = block.shape[0], block.shape[1]
    n_det = len(ptr) - 1
    out = np.zeros((n_det, nr, nx), dtype=np.float64)
    tmp = np.zeros(n_det, dtype=np.float64)
    for i in range(nr):
        for j in range(nx):
            _pattern_sums(block[i, j], rows, cols, weights, ptr, shifts[i, j, 0], shifts[i, j, 1], tmp)
            for d in range(n_det):
                out[d, i, j] = tmp[d]
    return out
