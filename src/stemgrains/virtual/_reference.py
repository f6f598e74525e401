"""Slow, obvious reference implementations of the virtual-detector kernels (the oracle of the tests)."""

from __future__ import annotations

import numpy as np


def virtual_block_reference(block: np.ndarray, masks: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``out[d, i, j] = Σ_{r,c} masks[d, r, c] · block[i, j, r + shift_r, c + shift_c]`` over the pixels that stay on
    the detector; ``masks`` ``(n_det, ky, kx)`` dense weights, ``shifts`` ``(nr, nx, 2)`` whole pixels."""
    nr, nx, ky, kx = block.shape
    out = np.zeros((masks.shape[0], nr, nx))
    for d in range(masks.shape[0]):
        for i in range(nr):
            for j in range(nx):
                dr, dc = int(shifts[i, j, 0]), int(shifts[i, j, 1])
                total = 0.0
                for r in range(ky):
                    for c in range(kx):
                        if masks[d, r, c] == 0:
                            continue
                        rr, cc = r + dr, c + dc
                        if 0 <= rr < ky and 0 <= cc < kx:
                            total += float(masks[d, r, c]) * float(block[i, j, rr, cc])
                out[d, i, j] = total
    return out
