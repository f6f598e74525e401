"""TransportResult: what :func:`stemgrains.transport.solve_transport` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._table import Table
from .._repr import compact_repr

__all__ = ["TransportResult", "REGION_NAMES"]

#: Codes of ``TransportResult.region``.
REGION_NAMES = {0: "blocking", 1: "grain", 2: "frame", 3: "unassigned"}


@dataclass
class TransportResult:
    """Solution of the ionic transport model on a grain map.

    All maps live on the computational grid: the grain map, padded by the frame when ``frame`` was a width
    (``map_window = (row0, col0, ny, nx)`` locates the original map in it). Units: potentials V; lengths nm;
    conductivities in units of σ_ip; current densities σ_ip·V/nm; currents per unit lamella thickness σ_ip·V
    (multiply by σ_ip [S/m] × lamella thickness [m] to get amperes).

    Attributes
    ----------
    potential
        ``(ny, nx)`` potential at pixel centres; NaN on blocking pixels and floating regions.
    node_potential
        ``(ny+1, nx+1)`` potential at pixel corners (mean over the node's copies; ``None`` for ``model="resistor"``).
    field
        ``(ny, nx, 2)`` field ``E = −∇φ`` (x, y), V/nm, at pixel centres.
    current_density
        ``(ny, nx, 2)`` ``J = Σ E`` (x, y).
    sigma
        ``(ny, nx, 3)`` pixel conductivity ``(σ_xx, σ_xy, σ_yy)``.
    labels
        ``(ny, nx)`` grain labels on the grid (0 outside grains).
    region
        ``(ny, nx)`` int8 region code, see :data:`REGION_NAMES`.
    floating
        ``(ny, nx)`` bool: conducting pixels in a region connected to no electrode (their potential is NaN).
    electrodes
        Table ``name, potential_V, current, n_nodes``: ``current`` flows from the electrode into the sample.
    faces
        Table, one row per pixel face on a grain boundary: ``row_a, col_a, row_b, col_b`` (pixel in grain A = the
        smaller label, pixel in grain B), ``grain_a, grain_b``, ``normal`` (n, 2) unit normal from A into B,
        ``current`` through the face from A to B, ``mismatch`` = ``J_A·n − J_B·n`` with the pixel-centre current
        densities of the two pixels (> 0: more current arrives from A than leaves into B), ``field`` (n, 2) the mean of
        the two pixels' fields.
    boundaries
        Table, one row per grain pair (or per row of the given BoundaryTable): ``grain_a, grain_b`` (and
        ``boundary_id``), ``n_faces, length_nm, current`` (A → B), ``mismatch_mean, mismatch_abs_mean``,
        ``field`` (n, 2) mean field on the boundary pixels (NaN when the boundary has no conducting face).
    boundary_field
        ``(n_boundaries, 2)`` array in the order of the given BoundaryTable's ``boundaries``, else a dict
        ``{(grain_a, grain_b): (E_x, E_y)}``; this is what the classification accepts as per-boundary fields.
    segments
        Per-segment table like ``boundaries`` (when a BoundaryTable with ``pairs`` was given), else ``None``.
    scan_step_nm, map_window, model, solver, parameters
        Pixel size; the map's window; the model; solver information; all parameters.
    """

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

    potential: np.ndarray
    node_potential: np.ndarray | None
    field: np.ndarray
    current_density: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray
    region: np.ndarray
    floating: np.ndarray
    electrodes: Table
    faces: Table
    boundaries: Table
    boundary_field: Any
    segments: Table | None = None
    scan_step_nm: float = 1.0
    map_window: tuple[int, int, int, int] = (0, 0, 0, 0)
    model: str = "tensor"
    solver: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def current_magnitude(self) -> np.ndarray:
        """``(ny, nx)`` ``|J|``."""
        return np.hypot(self.current_density[..., 0], self.current_density[..., 1])

    def electrode_current(self, name: str) -> float:
        """Current flowing from electrode ``name`` into the sample."""
        names = [str(n) for n in self.electrodes["name"]]
        if name not in names:
            raise KeyError(f"no electrode {name!r}; electrodes are {names}")
        return float(self.electrodes["current"][names.index(name)])

    @property
    def total_current(self) -> float:
        """Sum of the currents entering the sample (the current driven through it)."""
        c = np.asarray(self.electrodes["current"], dtype=np.float64)
        return float(c[c > 0].sum())

    @property
    def current_imbalance(self) -> float:
        """``|Σ electrode currents| / total_current`` (current conservation check; 0 when nothing flows)."""
        tot = self.total_current
        c = np.asarray(self.electrodes["current"], dtype=np.float64)
        return float(abs(c.sum()) / tot) if tot > 0 else 0.0

    @property
    def conductance(self) -> float:
        """``total_current / (V_max − V_min)`` over the electrodes (σ_ip units), NaN when all are equal."""
        v = np.asarray(self.electrodes["potential_V"], dtype=np.float64)
        dv = float(v.max() - v.min())
        return self.total_current / dv if dv > 0 else float("nan")

    @property
    def n_floating_pixels(self) -> int:
        return int(self.floating.sum())

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The part of a grid-shaped array that covers the original grain map."""
        r0, c0, ny, nx = self.map_window
        return array[r0 : r0 + ny, c0 : c0 + nx]
