"""Ionic (Na⁺) transport model on a grain map.

:func:`solve_transport` computes the steady-state current between electrodes through a
:class:`~stemgrains.grains.GrainMap` of Na-β″-alumina: every grain conducts with the uniaxial tensor of
``docs/classification.md`` §1 (σ_ip in the conduction planes, σ_op = σ_ip/ratio across them), grain
boundaries add the series resistance of a thin isotropic layer, blocking phases and pores carry no current.

Discretisation: bilinear finite elements on the pixel grid (nodes at pixel corners, one element per pixel with its
constant tensor, exact 4×4 element matrices, so off-diagonal tensors are handled consistently); boundaries are
zero-thickness resistive interfaces between duplicated nodes (conductance σ_GB/t_GB per unit length), see
:mod:`stemgrains.transport._fem`. ``model="resistor"`` is the published per-direction resistor formula on a 5-point
finite-volume network (:mod:`stemgrains.transport._resistor`); the mapping of its angles to ours is documented in
:mod:`stemgrains.transport._conductivity`. Sparse solves: scipy direct for small systems, CG with a pyamg
smoothed-aggregation preconditioner for large ones (Jacobi CG when pyamg is missing).
"""

from ._conductivity import DEFAULT_BLOCKING_PHASES, conductivity_tensor, grain_conductivities, resistor_conductivity
from ._types import REGION_NAMES, TransportResult
from .api import EDGES, solve_transport
from .io import read_transport, write_transport

__all__ = [
    "solve_transport",
    "TransportResult",
    "write_transport",
    "read_transport",
    "conductivity_tensor",
    "resistor_conductivity",
    "grain_conductivities",
    "DEFAULT_BLOCKING_PHASES",
    "EDGES",
    "REGION_NAMES",
]
