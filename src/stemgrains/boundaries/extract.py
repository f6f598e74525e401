"""Grain boundaries of a GrainMap: pixel pairs, straight segments, triple junctions, misorientation.

Geometry (pixel units; pixel centres at integer ``(x, y) = (col, row)``; the sample frame of conventions.md):
each pair of 4-connected pixels of grains A < B contributes one *pixel edge* (the unit line between them, midpoint
halfway between the two pixel centres). The edges of one boundary form chains between triple junctions / the
map border (or closed loops). Each chain is split into straight segments by Douglas–Peucker on the ordered edge
midpoints (split while a midpoint is farther than ``kink_tolerance_px`` from the chord). Per segment: a line fit
(PCA of its edge midpoints) gives the trace direction ``t`` and the normal ``n`` (pointing from A into B, signed
by the A→B pixel-pair vectors, ``t = ẑ × n = (−n_y, n_x)``); the length is that of the midpoint polyline, each
edge owning half of the gaps to its chain neighbours (half an edge, 0.5 px, at a chain end), times the scan step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import config
from .._table import Table
from ..errors import InputError, ParameterError
from ..grains import GrainMap
from ._chains import link_edges, split_chains, trace_chains
from ._types import BOUNDARY_COLUMNS, PAIR_COLUMNS, SEGMENT_COLUMNS, BoundaryTable

__all__ = ["extract_boundaries", "pixel_pairs", "triple_junctions", "axial_angle_deg"]


def axial_angle_deg(vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Angle of the axis ±(vx, vy) from +x toward +y, degrees in (−90, 90]."""
    a = np.degrees(np.arctan2(vy, vx))
    a = np.where(a > 90.0, a - 180.0, a)
    return np.where(a <= -90.0, a + 180.0, a)


def pixel_pairs(labels: np.ndarray) -> dict[str, np.ndarray]:
    """All 4-connected pixel pairs of two different grains (labels > 0), A = the smaller label.

    Returns row/col of the A and B pixels, the grains, the edge midpoint (x, y) and the two edge corner ids
    (corner ``(i, j)`` at ``(x, y) = (j − 0.5, i − 0.5)``, id ``i·(nx+1) + j``). Horizontal neighbours first
    (raster order), then vertical ones.
    """
    ny, nx = labels.shape
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("r1", "c1", "r2", "c2", "c0_id", "c1_id", "mx", "my")}
    # horizontal neighbours (r, c)-(r, c+1): vertical edge at x = c + 0.5
    r, c = np.nonzero((labels[:, :-1] != labels[:, 1:]) & (labels[:, :-1] > 0) & (labels[:, 1:] > 0))
    out["r1"].append(r), out["c1"].append(c), out["r2"].append(r), out["c2"].append(c + 1)
    out["c0_id"].append(r * (nx + 1) + c + 1), out["c1_id"].append((r + 1) * (nx + 1) + c + 1)
    out["mx"].append(c + 0.5), out["my"].append(r.astype(float))
    # vertical neighbours (r, c)-(r+1, c): horizontal edge at y = r + 0.5
    r, c = np.nonzero((labels[:-1, :] != labels[1:, :]) & (labels[:-1, :] > 0) & (labels[1:, :] > 0))
    out["r1"].append(r), out["c1"].append(c), out["r2"].append(r + 1), out["c2"].append(c)
    out["c0_id"].append((r + 1) * (nx + 1) + c), out["c1_id"].append((r + 1) * (nx + 1) + c + 1)
    out["mx"].append(c.astype(float)), out["my"].append(r + 0.5)
    res = {k: np.concatenate(v) for k, v in out.items()}
    l1 = labels[res["r1"], res["c1"]]
    l2 = labels[res["r2"], res["c2"]]
    swap = l1 > l2
    res["row_a"] = np.where(swap, res["r2"], res["r1"])
    res["col_a"] = np.where(swap, res["c2"], res["c1"])
    res["row_b"] = np.where(swap, res["r1"], res["r2"])
    res["col_b"] = np.where(swap, res["c1"], res["c2"])
    res["grain_a"] = np.minimum(l1, l2)
    res["grain_b"] = np.maximum(l1, l2)
    return res


def triple_junctions(labels: np.ndarray) -> Table:
    """Pixel corners where ≥ 3 different grains (labels > 0) meet.

    Columns ``row``, ``col`` (corner position in pixel coordinates, i.e. half-integers) and ``grains``
    ``(n, 4)``: the grain ids meeting there, ascending, padded with 0.
    """
    quad = np.stack([labels[:-1, :-1], labels[:-1, 1:], labels[1:, :-1], labels[1:, 1:]], axis=-1)
    s = np.sort(quad, axis=-1)
    distinct = (s > 0) & np.concatenate([np.ones(s.shape[:-1] + (1,), bool), s[..., 1:] != s[..., :-1]], axis=-1)
    tj = distinct.sum(-1) >= 3
    i, j = np.nonzero(tj)
    big = np.iinfo(np.int32).max
    g = np.sort(np.where(distinct[tj], s[tj], big), axis=-1)
    g = np.where(g == big, 0, g).astype(np.int32)
    return Table({"row": i + 0.5, "col": j + 0.5, "grains": g.reshape(-1, 4), "n_grains": distinct[tj].sum(-1)})


def _segment_geometry(mx, my, seg, n_seg, ex, ey, vx, vy):
    """PCA line fit per segment: centroid and unit normal (pointing from A into B). ``ex, ey``: the pixel edge
    directions (a tiny weight, so that one-edge segments follow their edge); ``vx, vy``: A→B pixel vectors."""
    cnt = np.bincount(seg, minlength=n_seg).astype(float)
    sx, sy = np.bincount(seg, mx, n_seg) / cnt, np.bincount(seg, my, n_seg) / cnt
    dx, dy = mx - sx[seg], my - sy[seg]
    cxx = np.bincount(seg, dx * dx, n_seg) + 1e-9 * np.bincount(seg, ex * ex, n_seg)
    cyy = np.bincount(seg, dy * dy, n_seg) + 1e-9 * np.bincount(seg, ey * ey, n_seg)
    cxy = np.bincount(seg, dx * dy, n_seg) + 1e-9 * np.bincount(seg, ex * ey, n_seg)
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)  # principal axis of the 2x2 covariance
    tx, ty = np.cos(theta), np.sin(theta)
    nx_, ny_ = ty, -tx
    s = np.bincount(seg, vx, n_seg) * nx_ + np.bincount(seg, vy, n_seg) * ny_
    flip = np.where(s < 0, -1.0, 1.0)
    nx_, ny_ = nx_ * flip, ny_ * flip
    return sx, sy, nx_, ny_


def _traced_edges(labels: np.ndarray, kink_tolerance_px: float, min_segment_px: int) -> tuple:
    """The boundary pixel pairs sorted by boundary, with their chains and straight segments.

    Returns ``(pp, ukey, bidx, order, chain, closed, cstart, seg)``: pixel pairs (columns of :func:`pixel_pairs`,
    sorted by boundary, raster order inside one), the unique grain-pair keys (one boundary each, in order of
    ``(grain_a, grain_b)``), each pair's boundary index, the chain order of the pairs, each ordered pair's chain,
    which chains are closed, chain starts, and each ordered pair's segment.
    """
    ny, nx = labels.shape
    pp = pixel_pairs(labels)
    # boundaries: unique grain pairs, numbered in order of (grain_a, grain_b)
    key = pp["grain_a"].astype(np.int64) * (int(labels.max(initial=0)) + 1) + pp["grain_b"]
    ukey, bidx = np.unique(key, return_inverse=True)
    n_b = len(ukey)
    # sort edges by boundary (stable: keeps raster order inside a boundary)
    eorder = np.argsort(bidx, kind="stable")
    pp = {k: v[eorder] for k, v in pp.items()}
    bidx = bidx[eorder]
    bstart = np.searchsorted(bidx, np.arange(n_b + 1))
    partner = link_edges(bidx, pp["c0_id"], pp["c1_id"], (ny + 1) * (nx + 1))
    order, chain, closed = trace_chains(partner, pp["c0_id"], pp["c1_id"], bstart)
    mx, my = pp["mx"][order], pp["my"][order]
    n_ch = len(closed)
    cstart = np.searchsorted(chain, np.arange(n_ch + 1))
    seg = split_chains(mx, my, cstart, kink_tolerance_px, min_segment_px)
    return pp, ukey, bidx, order, chain, closed, cstart, seg


def _length_shares(mx: np.ndarray, my: np.ndarray, chain: np.ndarray, closed: np.ndarray, cstart: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Length share (px) of each edge toward its previous and next chain neighbour: half the gap between their
    midpoints, 0.5 px at an open chain end; closed loops wrap around."""
    gap = np.hypot(np.diff(mx), np.diff(my))
    same_chain = chain[1:] == chain[:-1]
    left = np.full(len(mx), 0.5)
    right = np.full(len(mx), 0.5)
    left[1:][same_chain] = gap[same_chain] / 2
    right[:-1][same_chain] = gap[same_chain] / 2
    for c in np.flatnonzero(closed):  # closed loops wrap around
        a, b = cstart[c], cstart[c + 1] - 1
        if b > a:
            g = np.hypot(mx[a] - mx[b], my[a] - my[b]) / 2
            left[a] = right[b] = g
    return left, right


def _segment_ends(mx: np.ndarray, my: np.ndarray, seg: np.ndarray, n_seg: int, cx: np.ndarray, cy: np.ndarray,
                  tx: np.ndarray, ty: np.ndarray, left: np.ndarray, right: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of each segment's first edge, and its start and end points ``(n_seg, 2)``: the projections of the
    first/last edge midpoints on the segment's line, extended by their outer length shares."""
    seg_first = np.searchsorted(seg, np.arange(n_seg))
    seg_last = np.r_[seg_first[1:], len(seg)][:n_seg] - 1  # [:n_seg]: no boundary, no segment

    s_first = (mx[seg_first] - cx) * tx + (my[seg_first] - cy) * ty
    s_last = (mx[seg_last] - cx) * tx + (my[seg_last] - cy) * ty
    direction = np.where(s_last >= s_first, 1.0, -1.0)
    s0 = s_first - direction * left[seg_first]
    s1 = s_last + direction * right[seg_last]
    start = np.stack([cx + s0 * tx, cy + s0 * ty], axis=1)
    end = np.stack([cx + s1 * tx, cy + s1 * ty], axis=1)
    return seg_first, start, end


def _boundary_columns(grain_map: GrainMap, xmap: Any, pairs: Table, grain_a: np.ndarray, grain_b: np.ndarray,
                      seg_boundary: np.ndarray, seg_len_px: np.ndarray, nxs: np.ndarray, nys: np.ndarray,
                      bidx: np.ndarray, n_b: int, step: float, low_angle_deg: float, special: Any, max_sigma: int,
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-boundary columns (length, mean normal and trace, misorientation, CSL, special, and with ``xmap`` the
    mean pixel-pair disorientation) and the misorientation parameters."""
    from .misorientation import boundary_misorientations, pair_misorientation_angles

    b_len = np.bincount(seg_boundary, seg_len_px, n_b).astype(np.float64) * step
    mean_n = np.stack(
        [np.bincount(seg_boundary, nxs * seg_len_px, n_b), np.bincount(seg_boundary, nys * seg_len_px, n_b)], axis=1
    ).astype(np.float64)  # bincount of nothing is int64
    norm = np.linalg.norm(mean_n, axis=1, keepdims=True)
    mean_n = np.divide(mean_n, norm, out=np.full_like(mean_n, np.nan), where=norm > 1e-9)
    gi_a, gi_b = grain_map.index_of(grain_a), grain_map.index_of(grain_b)
    phase_col = np.asarray(grain_map.table["phase_id"])
    bcols: dict[str, Any] = {
        "boundary_id": np.arange(n_b, dtype=np.int64),
        "grain_a": grain_a,
        "grain_b": grain_b,
        "phase_a": phase_col[gi_a] if n_b else np.zeros(0, np.int64),
        "phase_b": phase_col[gi_b] if n_b else np.zeros(0, np.int64),
        "n_segments": np.bincount(seg_boundary, minlength=n_b).astype(np.int64),
        "length_nm": b_len,
    }
    mis, mis_info = boundary_misorientations(
        grain_map, grain_a, grain_b, low_angle_deg=low_angle_deg, special=special, max_sigma=max_sigma
    )
    bcols.update(mis)
    bcols["n_pixel_pairs"] = np.bincount(bidx, minlength=n_b).astype(np.int64)
    bcols["normal"] = mean_n.reshape(-1, 2)
    bcols["trace_angle_deg"] = axial_angle_deg(-mean_n[:, 1], mean_n[:, 0])
    if xmap is not None:
        ang = pair_misorientation_angles(xmap, pairs["row_a"], pairs["col_a"], pairs["row_b"], pairs["col_b"])
        cnt = np.bincount(pairs["boundary_id"], np.isfinite(ang), n_b)
        with np.errstate(invalid="ignore", divide="ignore"):
            bcols["pixel_misorientation_deg"] = np.bincount(pairs["boundary_id"], np.nan_to_num(ang), n_b) / cnt
    return bcols, mis_info


def _ordered(columns: Any, first: Sequence[str]) -> Table:
    """A Table with the documented columns ``first`` first, then any others in their order."""
    return Table({**{k: columns[k] for k in first}, **{k: columns[k] for k in columns if k not in first}})


def extract_boundaries(
    grain_map: GrainMap,
    xmap: Any = None,
    *,
    low_angle_deg: float = config.LOW_ANGLE_DEG,
    kink_tolerance_px: float = 1.5,
    min_segment_px: int = 3,
    special: Sequence[Any] | None = None,
    max_sigma: int = 29,
) -> BoundaryTable:
    """Boundaries between the grains of a GrainMap, split into straight segments.

    Parameters
    ----------
    grain_map
        Grains (labels 1..n; 0 = unassigned pixels, which border no boundary).
    xmap
        Optional orix ``CrystalMap`` the grains came from: adds the per-boundary column
        ``pixel_misorientation_deg``, the mean disorientation across the boundary's pixel pairs, degrees.
    low_angle_deg
        Boundaries with a disorientation below this are ``low_angle``, degrees.
    kink_tolerance_px
        A chain is split where its edge midpoints leave the chord by more than this, pixels.
    min_segment_px
        Splits never leave a segment with fewer pixel edges than this.
    special
        User-defined special misorientations (see :func:`~stemgrains.boundaries.misorientation.parse_special`):
        ``(name, angle_deg, axis, tolerance_deg)`` with ``axis`` crystal direction indices ``[uvw]`` or
        Miller–Bravais ``[UVTW]``; matching boundaries get that name in column ``special``.
    max_sigma
        Largest Σ of the CSL list (Brandon criterion Δθ ≤ 15°/√Σ).

    Returns
    -------
    BoundaryTable
        ``segments`` (one row per straight segment), ``boundaries`` (one row per grain pair; misorientation, CSL,
        special), ``pairs`` (one row per pixel pair, with ``segment_id``), ``triple_junctions`` and the parameters.
    """
    if not isinstance(grain_map, GrainMap):
        raise InputError(f"extract_boundaries expects a GrainMap, got {type(grain_map).__name__}")
    if not kink_tolerance_px > 0:
        raise ParameterError(f"kink_tolerance_px must be > 0 pixels, got {kink_tolerance_px!r}")
    if int(min_segment_px) != min_segment_px or min_segment_px < 1:
        raise ParameterError(f"min_segment_px must be a positive integer, got {min_segment_px!r}")
    if not 0 < low_angle_deg < 180:
        raise ParameterError(f"low_angle_deg must be in (0, 180) degrees, got {low_angle_deg!r}")
    labels = grain_map.labels
    ny, nx = labels.shape
    if xmap is not None and int(np.prod(getattr(xmap, "shape", (ny * nx,)))) != ny * nx:
        raise InputError(f"xmap: a map of {getattr(xmap, 'shape', None)} pixels, not the {ny} x {nx} of grain_map "
                         "(give the map the grains were segmented from)")
    step = float(grain_map.scan_step_nm)
    pp, ukey, bidx, order, chain, closed, cstart, seg = _traced_edges(labels, kink_tolerance_px, min_segment_px)
    n_b = len(ukey)
    mx, my = pp["mx"][order], pp["my"][order]
    n_seg = int(seg.max(initial=-1)) + 1
    left, right = _length_shares(mx, my, chain, closed, cstart)
    w = left + right
    # per segment geometry
    vx = (pp["col_b"] - pp["col_a"])[order].astype(float)
    vy = (pp["row_b"] - pp["row_a"])[order].astype(float)
    ex, ey = np.abs(vy), np.abs(vx)  # an edge runs perpendicular to its pixel pair
    cx, cy, nxs, nys = _segment_geometry(mx, my, seg, n_seg, ex, ey, vx, vy)
    tx, ty = -nys, nxs
    seg_first, start, end = _segment_ends(mx, my, seg, n_seg, cx, cy, tx, ty, left, right)
    seg_len_px = np.bincount(seg, w, n_seg)
    seg_boundary = bidx[order][seg_first]
    grain_a = (ukey // (int(labels.max(initial=0)) + 1)).astype(np.int32)
    grain_b = (ukey % (int(labels.max(initial=0)) + 1)).astype(np.int32)
    segments = Table(
        {
            "segment_id": np.arange(n_seg, dtype=np.int64),
            "boundary_id": seg_boundary.astype(np.int64),
            "grain_a": grain_a[seg_boundary],
            "grain_b": grain_b[seg_boundary],
            "n_pixel_pairs": np.bincount(seg, minlength=n_seg).astype(np.int64),
            "length_nm": seg_len_px * step,
            "normal": np.stack([nxs, nys], axis=1).reshape(-1, 2),
            "trace_angle_deg": axial_angle_deg(tx, ty),
            "start": start.reshape(-1, 2),
            "end": end.reshape(-1, 2),
            "chain_id": chain[seg_first].astype(np.int64),
            "centre": np.stack([cx, cy], axis=1).reshape(-1, 2),
        }
    )
    # pairs, in chain order
    pairs = Table(
        {
            "row_a": pp["row_a"][order].astype(np.int32),
            "col_a": pp["col_a"][order].astype(np.int32),
            "row_b": pp["row_b"][order].astype(np.int32),
            "col_b": pp["col_b"][order].astype(np.int32),
            "segment_id": seg.astype(np.int64),
            "boundary_id": bidx[order].astype(np.int64),
            "length_px": w,
        }
    )
    bcols, mis_info = _boundary_columns(grain_map, xmap, pairs, grain_a, grain_b, seg_boundary, seg_len_px, nxs, nys,
                                        bidx, n_b, step, low_angle_deg, special, max_sigma)
    boundaries = _ordered(bcols, BOUNDARY_COLUMNS)
    segments = _ordered(segments, SEGMENT_COLUMNS)
    pairs = _ordered(pairs, PAIR_COLUMNS)
    params = {
        "low_angle_deg": float(low_angle_deg),
        "kink_tolerance_px": float(kink_tolerance_px),
        "min_segment_px": int(min_segment_px),
        "max_sigma": int(max_sigma),
        "brandon": "15 deg / sqrt(sigma)",
        "scan_step_nm": step,
        "connectivity": 4,
        **mis_info,
    }
    return BoundaryTable(
        segments=segments,
        boundaries=boundaries,
        pairs=pairs,
        triple_junctions=triple_junctions(labels),
        parameters=params,
    )
