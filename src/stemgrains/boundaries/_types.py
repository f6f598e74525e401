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

    def misorientation_summary(self) -> dict[str, Any]:
        """The misorientation and CSL character of the boundary network (length-weighted), what a map of any phase
        has — the conduction-plane classification applies only to phases with conduction planes.

        Returns a JSON-ready dict: ``median_deg`` (median misorientation angle over the boundaries, degrees; None
        without any), ``low_angle_deg`` (the low/high-angle limit), ``low_angle_length_fraction``, and
        ``csl_length_fraction`` ``{"3": f, "9": f, ...}`` (length fraction per CSL Σ within Brandon's criterion, column
        ``csl_sigma``; only the Σ present, Σ1 excluded); fractions of the whole boundary length (0 for an empty map).
        """
        import numpy as np

        b = self.boundaries
        length = np.asarray(b["length_nm"], dtype=np.float64) if len(b) else np.zeros(0)
        total = float(length.sum())

        def frac(hit: Any) -> float:
            return float(length[hit].sum()) / total if total > 0 else 0.0

        angle = np.asarray(b["misorientation_deg"], dtype=np.float64) if len(b) and "misorientation_deg" in b \
            else np.zeros(0)
        finite = angle[np.isfinite(angle)]
        low = np.asarray(b["low_angle"], dtype=bool) if len(b) and "low_angle" in b else np.zeros(len(length), bool)
        sigma = np.asarray(b["csl_sigma"]).astype(np.int64) if len(b) and "csl_sigma" in b else np.zeros(len(length), int)
        return {
            "median_deg": float(np.median(finite)) if len(finite) else None,
            "low_angle_deg": self.parameters.get("low_angle_deg"),
            "low_angle_length_fraction": frac(low),
            "csl_length_fraction": {str(int(k)): frac(sigma == k) for k in np.unique(sigma) if k > 1},
        }

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
