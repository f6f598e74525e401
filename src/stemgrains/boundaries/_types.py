"""BoundaryTable: boundaries between grains, split into straight segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._table import Table
from .._repr import compact_repr

__all__ = ["BoundaryTable", "check_boundaries_of"]

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

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

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


def check_boundaries_of(grain_map: Any, boundaries: Any, what: str = "boundaries") -> None:
    """Refuse, in one line, a :class:`BoundaryTable` made from another grain map than ``grain_map`` (e.g. kept in a
    notebook while the grains were segmented again with another threshold): each of its pixel pairs must lie on
    the map and join the two grains its segment names. Tables without the pair columns (or None) are not checked.

    Raises
    ------
    InputError
        Naming ``what``, the number of pixel pairs that do not fit and the map's shape.
    """
    import numpy as np

    from ..errors import InputError

    pairs, segs = getattr(boundaries, "pairs", None), getattr(boundaries, "segments", None)
    labels = getattr(grain_map, "labels", None)
    need = ("row_a", "col_a", "row_b", "col_b", "segment_id")
    if labels is None or pairs is None or segs is None or any(c not in pairs for c in need) or not len(pairs) \
            or any(c not in segs for c in ("segment_id", "grain_a", "grain_b")):
        return
    labels = np.asarray(labels)
    ra, ca, rb, cb = (np.asarray(pairs[c], dtype=np.int64) for c in need[:4])
    ny, nx = labels.shape
    inside = (ra >= 0) & (ra < ny) & (ca >= 0) & (ca < nx) & (rb >= 0) & (rb < ny) & (cb >= 0) & (cb < nx)
    seg_id = np.asarray(segs["segment_id"], dtype=np.int64)
    if not len(seg_id):
        return
    order = np.argsort(seg_id)
    pair_seg = np.asarray(pairs["segment_id"], dtype=np.int64)
    pos = np.clip(np.searchsorted(seg_id[order], pair_seg), 0, len(seg_id) - 1)
    listed = seg_id[order][pos] == pair_seg  # pairs of segments left out of the table are not judged
    ga = np.asarray(segs["grain_a"], dtype=np.int64)[order][pos]
    gb = np.asarray(segs["grain_b"], dtype=np.int64)[order][pos]
    la = np.where(inside, labels[np.clip(ra, 0, ny - 1), np.clip(ca, 0, nx - 1)], -1)
    lb = np.where(inside, labels[np.clip(rb, 0, ny - 1), np.clip(cb, 0, nx - 1)], -1)
    fits = inside & (((la == ga) & (lb == gb)) | ((la == gb) & (lb == ga)))
    n, bad = int(listed.sum()), int((listed & ~fits).sum())
    if n and 2 * bad > n:  # (a table edited by hand, a few segments renamed, is let through)
        raise InputError(f"{what}: {bad} of its {n} pixel pairs do not join the grains it names on this {ny} x {nx} "
                         "grain map: the boundaries were extracted from another grain map (extract_boundaries("
                         "grain_map, xmap) again after segment_grains)")
