"""GrainMap: the data type between the grains stage and everything after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._table import Table
from ..errors import InputError
from .._repr import compact_repr

__all__ = ["GrainMap"]

#: Columns every GrainMap.table has (one row per grain, row i ↔ grain id table["id"][i]).
GRAIN_COLUMNS = (
    "id",  # int32, >= 1
    "phase_id",  # int, phase id in `phases`
    "area_px",
    "area_nm2",
    "equivalent_diameter_nm",
    "centroid_row",
    "centroid_col",  # pixels
    "mean_quaternion",  # (n, 4) orix convention (sample -> crystal), symmetry-aware mean
    "orientation_spread_deg",
    "c_axis",  # (n, 3) conduction-plane normal in the sample frame (NaN for non-hexagonal/trigonal phases)
    "alpha_deg",  # angle between conduction plane and lamella surface (docs/classification.md §1)
    "trace_angle_deg",  # in-plane trace angle from +x toward +y, (-90, 90]; NaN when flat
)
#: Columns segment_grains adds when it can, not required of a grain table (read from files, imported maps):
#: n_valid_px always, median_reliability, median_c_axis_reliability and median_grain_reliability where the map has
#: those properties.
GRAIN_COLUMNS_OPTIONAL = ("n_valid_px", "median_reliability", "median_c_axis_reliability", "median_grain_reliability")


@dataclass
class GrainMap:
    """Grain labels + grain table.

    Attributes
    ----------
    labels
        ``(ny, nx)`` int32, 0 = unassigned, grains numbered 1..n.
    table
        :class:`~stemgrains._table.Table`, one row per grain, columns :data:`GRAIN_COLUMNS` (at least).
    phases
        orix ``PhaseList`` of the source map (phase ids as in ``table["phase_id"]``).
    scan_step_nm
        Pixel size, nm.
    parameters
        The segmentation parameters used.
    """

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

    labels: np.ndarray
    table: Table
    phases: Any
    scan_step_nm: float = 1.0
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.ascontiguousarray(self.labels, dtype=np.int32)
        if self.labels.ndim != 2:
            raise InputError(f"GrainMap.labels must be 2-D (ny, nx), got shape {self.labels.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape  # type: ignore[return-value]

    @property
    def n_grains(self) -> int:
        return len(self.table)

    def index_of(self, grain_id: int | np.ndarray) -> np.ndarray:
        """Row index in ``table`` of grain id(s)."""
        ids = np.asarray(self.table["id"])
        lut = np.full(int(ids.max(initial=0)) + 1, -1, dtype=np.int64)
        lut[ids] = np.arange(len(ids))
        return lut[np.asarray(grain_id)]
