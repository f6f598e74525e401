"""Small builders for the transport tests: grain maps from labels + c-axes, Voronoi maps, boundary tables."""

from __future__ import annotations

import numpy as np
from orix.crystal_map import Phase, PhaseList

from stemgrains._table import Table
from stemgrains.boundaries import BoundaryTable
from stemgrains.grains import GrainMap

C_X = (1.0, 0.0, 0.0)  # planes edge-on, trace along y: easy direction y
C_Y = (0.0, 1.0, 0.0)  # planes edge-on, trace along x: easy direction x
C_Z = (0.0, 0.0, 1.0)  # planes in the lamella surface: isotropic


def make_grain_map(labels, c_axes, scan_step_nm=1.0, phase_ids=None, phases=None) -> GrainMap:
    labels = np.asarray(labels, dtype=np.int32)
    c = np.asarray(c_axes, dtype=np.float64).reshape(-1, 3)
    n = len(c)
    c_unit = c / np.linalg.norm(c, axis=1, keepdims=True)
    alpha = np.degrees(np.arccos(np.clip(np.abs(c_unit[:, 2]), 0, 1)))
    trace = np.degrees(np.arctan2(c_unit[:, 0], -c_unit[:, 1]))
    trace = np.where(trace > 90, trace - 180, np.where(trace <= -90, trace + 180, trace))
    table = Table(
        {
            "id": np.arange(1, n + 1, dtype=np.int32),
            "phase_id": np.zeros(n, np.int64) if phase_ids is None else np.asarray(phase_ids),
            "c_axis": c,
            "alpha_deg": alpha,
            "trace_angle_deg": trace,
        }
    )
    if phases is None:
        phases = PhaseList(Phase(name="na_beta2_alumina", point_group="-3m"))
    return GrainMap(labels=labels, table=table, phases=phases, scan_step_nm=scan_step_nm)


def voronoi_labels(shape, n_grains, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ny, nx = shape
    seeds = rng.uniform((0, 0), (ny, nx), size=(n_grains, 2))
    rr, cc = np.mgrid[0:ny, 0:nx]
    d = (rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2
    return (np.argmin(d, axis=-1) + 1).astype(np.int32)


def random_c_axes(n, seed=0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def boundary_table_from_labels(labels, scan_step_nm=1.0, reverse_order=False, swap_ab=False) -> BoundaryTable:
    """One straight segment per grain pair, built from the 4-connected pixel pairs of different labels."""
    lab = np.asarray(labels)
    pairs = []
    for (dr, dc) in ((0, 1), (1, 0)):
        a = lab[: lab.shape[0] - dr, : lab.shape[1] - dc]
        b = lab[dr:, dc:]
        r, c = np.nonzero((a != b) & (a > 0) & (b > 0))
        for ri, ci in zip(r, c):
            p, q = (ri, ci), (ri + dr, ci + dc)
            if lab[p] > lab[q]:
                p, q = q, p
            pairs.append((p[0], p[1], q[0], q[1], int(lab[p]), int(lab[q])))
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 6)
    keys = sorted({(int(a), int(b)) for a, b in pairs[:, 4:]})
    if reverse_order:
        keys = keys[::-1]
    bid = {k: i + 1 for i, k in enumerate(keys)}
    ga = np.array([k[1] if swap_ab else k[0] for k in keys])
    gb = np.array([k[0] if swap_ab else k[1] for k in keys])
    seg_of_pair = np.array([bid[(int(a), int(b))] * 10 for a, b in pairs[:, 4:]])
    boundaries = Table({"boundary_id": np.arange(1, len(keys) + 1), "grain_a": ga, "grain_b": gb})
    segments = Table(
        {
            "segment_id": np.arange(1, len(keys) + 1) * 10,
            "boundary_id": np.arange(1, len(keys) + 1),
            "grain_a": ga,
            "grain_b": gb,
            "length_nm": np.array([np.sum(seg_of_pair == (i + 1) * 10) for i in range(len(keys))]) * scan_step_nm,
        }
    )
    ptab = Table(
        {
            "row_a": pairs[:, 0],
            "col_a": pairs[:, 1],
            "row_b": pairs[:, 2],
            "col_b": pairs[:, 3],
            "segment_id": seg_of_pair,
        }
    )
    tj = Table({"row": np.zeros(0), "col": np.zeros(0)})
    return BoundaryTable(segments=segments, boundaries=boundaries, pairs=ptab, triple_junctions=tj)
