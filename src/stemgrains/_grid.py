"""The scan grid of an orientation map, whatever its shape.

orix gives a ``CrystalMap`` of one scan row or one scan column a 1-D ``shape`` ``(n,)`` and a single point the
shape ``()``; every stage here works on ``(ny, nx)`` arrays aligned with the scan (conventions.md), so this is
the one place that turns a map's shape back into ``(ny, nx)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["map_shape", "attach_scan_step"]


def map_shape(xmap: Any) -> tuple[int, int]:
    """Scan shape ``(ny, nx)`` of an orix ``CrystalMap`` (rows along y, columns along x).

    A 1-D map is a single row when its y coordinates are all equal (1, n) and a single column otherwise
    (n, 1); a single point is (1, 1).

    Raises
    ------
    InputError
        The map has more than two dimensions.
    """
    shape = tuple(int(s) for s in xmap.shape)
    if len(shape) == 2:
        return shape  # type: ignore[return-value]
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        # orix drops the coordinate that does not vary: y is None for one row, x for one column
        x, y = getattr(xmap, "x", None), getattr(xmap, "y", None)
        if shape[0] <= 1 or y is None or np.ptp(np.asarray(y, dtype=float)) == 0:
            return (1, max(shape[0], 1))
        if x is None or np.ptp(np.asarray(x, dtype=float)) == 0:
            return (shape[0], 1)
    raise InputError(f"the orientation map must be 2-D (ny, nx), got shape {shape}")


def attach_scan_step(xmap: Any, scan_step_nm: float | None) -> Any:
    """Record the physical scan step (nm) on a ``CrystalMap`` as attribute ``scan_step_nm`` and return it.

    orix derives ``dx``/``dy`` from the coordinates, so a single point (and the cross direction of a single
    row or column) has no step; this keeps the one the data was recorded with.
    """
    if scan_step_nm is not None and np.isfinite(scan_step_nm) and scan_step_nm > 0:
        xmap.scan_step_nm = float(scan_step_nm)
    return xmap
