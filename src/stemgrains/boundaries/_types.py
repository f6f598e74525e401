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

    def special_summary(self) -> dict[str, dict[str, float]]:
        """Boundaries matching each user-defined special misorientation (``parameters["special"]``, in the order
        given; column ``special`` of :attr:`boundaries`).

        Returns ``{name: {"n_boundaries", "length_nm", "length_fraction"}}``: count, length (nm) and fraction of
        the whole boundary length (0 for an empty map); every special appears, with 0 when none matched.
        """
        import numpy as np

        names: list[str] = []
        for s in self.parameters.get("special") or []:
            name = str(s.name if hasattr(s, "name") else (s["name"] if isinstance(s, dict) else s[0]))
            if name not in names:
                names.append(name)
        b = self.boundaries
        length = np.asarray(b["length_nm"], dtype=np.float64) if len(b) else np.zeros(0)
        col = np.asarray(b["special"]).astype(str) if len(b) and "special" in b else np.full(len(length), "")
        total = float(length.sum())
        out: dict[str, dict[str, float]] = {}
        for name in names:
            hit = col == name
            out[name] = {"n_boundaries": int(hit.sum()), "length_nm": float(length[hit].sum()),
                         "length_fraction": float(length[hit].sum()) / total if total > 0 else 0.0}
        return out
