"""BoundaryTable: boundaries between grains, split into straight segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._table import Table

__all__ = ["BoundaryTable"]

#: Columns of BoundaryTable.segments (one row per straight segment).
SEGMENT_COLUMNS = (
    "segment_id",
    "boundary_id",
    "grain_a",  # smaller label
    "grain_b",
    "n_pixel_pairs",
    "length_nm",
    "normal",  # (n, 2) unit in-plane normal (x, y) pointing from A into B (sample frame)
    "trace_angle_deg",  # trace direction t = z x n, angle from +x toward +y in (-90, 90]
    "start",  # (n, 2) end point (x, y) in pixels (x = col, y = row)
    "end",  # (n, 2)
)

#: Columns of BoundaryTable.boundaries (one row per grain pair).
BOUNDARY_COLUMNS = (
    "boundary_id",
    "grain_a",
    "grain_b",
    "phase_a",
    "phase_b",
    "n_segments",
    "length_nm",
    "misorientation_deg",
    "misorientation_axis",  # (n, 3) crystal frame (Cartesian) of grain A
    "axis_uvw",  # (n, 3) or (n, 4) Miller(-Bravais) indices, rounded for display
    "low_angle",  # bool
    "csl_sigma",  # int, 0 = none within Brandon
    "special",  # str name of a user-defined special misorientation or ""
)

#: Columns of BoundaryTable.pairs (one row per pair of 4-connected pixels across a boundary).
PAIR_COLUMNS = ("row_a", "col_a", "row_b", "col_b", "segment_id")


@dataclass
class BoundaryTable:
    """Segments, boundaries, pixel pairs and triple junctions of a GrainMap."""

    segments: Table
    boundaries: Table
    pairs: Table
    triple_junctions: Table  # columns: row, col (pixel-corner coordinates), grains (n, 4) ascending, 0-padded
    parameters: dict[str, Any] = field(default_factory=dict)
