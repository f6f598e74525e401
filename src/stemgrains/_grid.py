"""The scan grid of an orientation map, whatever its shape.

orix gives a ``CrystalMap`` of one scan row or one scan column a 1-D ``shape`` ``(n,)`` and a single point the
shape ``()``; every stage here works on ``(ny, nx)`` arrays aligned with the scan (conventions.md), so this is
the one place that turns a map's shape back into ``(ny, nx)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["map_shape", "map_arrays", "attach_scan_step"]


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


def map_arrays(xmap: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-grid arrays of a 2-D ``CrystalMap``: quaternions ``(ny, nx, 4)`` (identity where the point is not in
    the data), phase ids ``(ny, nx)`` (−1 where the point is not indexed or not in the data) and the in-data mask
    ``(ny, nx)``.

    Raises
    ------
    InputError
        ``xmap`` is not an orix ``CrystalMap``, or has more than two dimensions.
    """
    from orix.crystal_map import CrystalMap

    if not isinstance(xmap, CrystalMap):
        raise InputError(f"expected an orix CrystalMap, got {type(xmap).__name__}")
    ny, nx = map_shape(xmap)  # orix gives single rows/columns a 1-D shape, a single point ()
    in_data = np.asarray(xmap.is_in_data, dtype=bool).reshape(ny, nx)
    q = np.zeros((ny, nx, 4))
    q[..., 0] = 1.0
    q[in_data] = xmap.rotations.data.reshape(-1, 4)
    phase_id = np.full((ny, nx), -1, dtype=np.int64)
    phase_id[in_data] = np.asarray(xmap.phase_id)
    return q, phase_id, in_data


def attach_scan_step(xmap: Any, scan_step_nm: float | None) -> Any:
    """Record the physical scan step (nm) on a ``CrystalMap`` as attribute ``scan_step_nm`` and return it.

    orix derives ``dx``/``dy`` from the coordinates, so a single point (and the cross direction of a single
    row or column) has no step; this keeps the one the data was recorded with.
    """
    if scan_step_nm is not None and np.isfinite(scan_step_nm) and scan_step_nm > 0:
        xmap.scan_step_nm = float(scan_step_nm)
    return xmap


def ang_header(path: Any) -> dict[str, str]:
    """The ``KEY: value`` entries of an .ang header (``GRID``, ``NCOLS_ODD``, ``NCOLS_EVEN``, ``NROWS``, ...),
    keys upper-case, values as text."""
    out: dict[str, str] = {}
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("latin-1").strip()
            if not line.startswith("#"):
                break
            key, sep, value = line.lstrip("#").strip().partition(":")
            if sep and key.strip() and " " not in key.strip():
                out.setdefault(key.strip().upper(), value.strip().strip("#").strip())
    return out


def hex_grid_points(header: dict[str, str]) -> int | None:
    """Points of an .ang HexGrid (EDAX): NROWS rows alternating NCOLS_ODD and NCOLS_EVEN points, the first odd;
    ``None`` when the header lacks one of them."""
    try:
        odd, even, rows = (int(header[k]) for k in ("NCOLS_ODD", "NCOLS_EVEN", "NROWS"))
    except (KeyError, ValueError):
        return None
    return (rows + 1) // 2 * odd + rows // 2 * even


def hex_to_square(xmap: Any, source: str = "map") -> Any:
    """Resample a map recorded on a hexagonal grid (EDAX .ang ``GRID: HexGrid``) onto a square grid.

    The square grid has the hexagonal grid's point spacing ``s`` (the x step) along x and y and covers the
    scanned area; every square-grid point takes the orientation, phase and properties of the nearest
    hexagonal-grid point (nearest-neighbour resampling, as MTEX's ``gridify`` does), and points farther than
    the hexagonal cell's circumradius ``s/√3`` from every measured point are not indexed (phase −1).
    Coordinates keep the map's unit.

    Raises
    ------
    FileFormatError
        Fewer than two measured points, or no positive spacing along x.
    """
    from orix.crystal_map import CrystalMap, PhaseList
    from scipy.spatial import cKDTree

    from .errors import FileFormatError

    x = np.asarray(xmap.x, dtype=float) if xmap.x is not None else None
    y = np.asarray(xmap.y, dtype=float) if xmap.y is not None else None
    if x is None or y is None or x.size < 2:
        raise FileFormatError(f"{source}: hexagonal grid with fewer than two points in x and y; cannot resample")
    row_y = np.round(y, 6)
    first_row = row_y == row_y.min()
    dxs = np.diff(np.unique(x[first_row]))
    if not dxs.size or dxs.min() <= 0:
        raise FileFormatError(f"{source}: hexagonal grid without a positive x step; cannot resample")
    s = float(dxs.min())
    nx = int(np.floor((x.max() - x.min()) / s + 1e-6)) + 1
    ny = int(np.floor((y.max() - y.min()) / s + 1e-6)) + 1
    rr, cc = np.divmod(np.arange(ny * nx), nx)
    gx, gy = x.min() + cc * s, y.min() + rr * s
    dist, idx = cKDTree(np.column_stack([x, y])).query(np.column_stack([gx, gy]))
    inside = dist <= s / np.sqrt(3.0) * (1.0 + 1e-6)
    pid = np.where(inside, np.asarray(xmap.phase_id)[idx], -1)
    phases = PhaseList(phases=[p for i, p in xmap.phases if i >= 0], ids=[i for i, _ in xmap.phases if i >= 0])
    if np.any(pid == -1):
        phases.add_not_indexed()
    out = CrystalMap(
        rotations=xmap.rotations[idx],
        phase_id=pid,
        x=gx,
        y=gy,
        phase_list=phases,
        prop={k: np.asarray(v)[idx] for k, v in xmap.prop.items()},
        scan_unit=xmap.scan_unit,
    )
    out.resampled_from = "HexGrid"  # provenance: written into /parameters by `segment`
    return out
