"""Compare a series of scans of the same area: register every map to the first, match grains across the series
(one series id per physical grain), measure each grain's orientation change and each boundary's change.

Inputs are results files of ``stemgrains run`` / ``segment`` (``/orientation``, ``/grains``, ``/boundaries``,
optionally ``/classification``), a run folder (its ``results.h5``), an index-only results file or an
``.ang``/``.ctf`` map; the last two are segmented on the fly (:func:`stemgrains.grains.segment_grains` with the
given threshold, then :func:`stemgrains.boundaries.extract_boundaries`; no classification).

Method
------
1. Registration of every scan to scan 1 (:mod:`stemgrains.compare.register`): the best of the eight turns/flips
   of the scan grid (or only the one given) and an integer shift, from the masked normalised cross-correlation
   of IPF colours; optionally a small rotation of the content (``max_angle_deg``); or ``shift`` given. Every
   map is then re-gridded onto scan 1's grid (integer moves; nearest neighbour under a small rotation), its
   orientations and c axes expressed in scan 1's sample frame.
2. Grain matching between consecutive scans j → k over the pixels both cover: intersection over union (IoU) of
   every pair of grains, restricted to that common field of view; one-to-one assignment maximising the total
   IoU (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`) among pairs with IoU ≥ ``min_iou``,
   of the same phase (by name), whose mean orientations differ by at most ``max_rotation_deg``
   (disorientation, proper rotations of the Laue group). A matched grain keeps its series id (scan 1's grains
   keep their labels; new grains get the next free ids). An unmatched grain lying for at least half of its
   area (in the common field of view) inside a matched grain of the other scan, of a close orientation, is
   ``split`` off (in k) or ``merged`` into it (from j); an unmatched grain cut by the border of the common field
   of view to fewer than ``min_grain_size`` pixels is at the ``edge`` (the other scan's segmentation may have
   dissolved it for its own window: not compared); other unmatched grains have ``appeared`` / ``vanished``;
   grains with no pixel in the common field of view are ``outside``.
3. Per matched grain: disorientation of the mean orientations (deg), tilt of the c axis (deg, hexagonal /
   trigonal phases), shift of the centroid and change of the area, both over the common field of view.
4. Boundaries are matched by their pair of series ids; per boundary: ``appeared``, ``vanished``, ``outside``, or
   any of ``moved`` (symmetric mean nearest-neighbour distance between the two traces — the midpoints of the
   boundary's pixel pairs within the common field of view — above ``move_tolerance_px``), ``label-changed``,
   ``behaviour-changed`` (classification), else ``unchanged``. A boundary cut by the border of the common field
   of view (some of its pixel pairs outside it, in either scan) is ``partly-outside``: each scan classified the
   part of it that scan saw (its segments' traces are fitted over different extents), so its label and behaviour
   are not compared; its trace is compared over the common part (``moved;partly-outside`` when it moved).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from .._table import Table
from ..errors import FileFormatError, InputError, ParameterError
from .register import PIXEL_OPS, PixelOp, Registration, apply_op, ipf_channels, min_overlap_px, register_maps
from .._repr import compact_repr

__all__ = ["ScanResults", "Comparison", "GRAIN_COLUMNS", "BOUNDARY_COLUMNS", "load_scan", "compare_results", "resolve_input",
           "registration_record", "scan_names", "MIN_AGREEMENT"]

#: Default least fraction of the common pixels that agree in orientation at a searched placement
#: (:data:`stemgrains.config.COMPARE_MIN_AGREEMENT`).
MIN_AGREEMENT = config.COMPARE_MIN_AGREEMENT

#: Columns of ``grains_matched.csv`` (one row per grain and comparison j → k).
GRAIN_COLUMNS = ("series_id", "scan_from", "scan_to", "grain_from", "grain_to", "status", "partner_series_id",
                 "phase", "iou", "overlap_px", "disorientation_deg", "c_axis_tilt_deg", "centroid_shift_nm",
                 "dx_nm", "dy_nm", "area_from_nm2", "area_to_nm2", "area_change_nm2")

#: Columns of ``boundaries_changed.csv`` (one row per boundary and comparison j → k).
BOUNDARY_COLUMNS = ("series_grain_a", "series_grain_b", "scan_from", "scan_to", "boundary_from", "boundary_to",
                    "status", "moved", "label_changed", "behaviour_changed", "partly_outside", "trace_distance_nm",
                    "n_pairs_from",
                    "n_pairs_to", "misorientation_from_deg", "misorientation_to_deg", "label_from", "label_to",
                    "behaviour_from", "behaviour_to")


@dataclass
class ScanResults:
    """One scan of the series.

    Attributes
    ----------
    path
        The file read.
    quaternions
        ``(ny, nx, 4)`` per-pixel orientations (orix convention).
    phase_id
        ``(ny, nx)``; −1 not indexed.
    grains, boundaries, classification
        :class:`~stemgrains.grains.GrainMap`, :class:`~stemgrains.boundaries.BoundaryTable` and
        :class:`~stemgrains.boundaries.BoundaryClassification` (or ``None``).
    segmented_here
        The file had no ``/grains`` (index-only results, .ang/.ctf): segmented by :func:`load_scan`.
    """

    path: Path
    quaternions: np.ndarray
    phase_id: np.ndarray
    grains: Any
    boundaries: Any
    classification: Any = None
    segmented_here: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.phase_id.shape  # type: ignore[return-value]

    @property
    def scan_step_nm(self) -> float:
        return float(self.grains.scan_step_nm)


@dataclass
class Comparison:
    """Result of :func:`compare_results`.

    Attributes
    ----------
    paths
        The inputs, scan 1 first.
    registrations
        One :class:`~stemgrains.compare.register.Registration` per scan (scan 1: identity, shift (0, 0)).
    series_labels
        ``(n_scans, ny, nx)`` int32 on scan 1's grid: series id of every pixel (0 unassigned or not covered).
    covered
        ``(n_scans, ny, nx)`` bool, scan 1's pixels each scan covers.
    grains
        Table with :data:`GRAIN_COLUMNS` (``grains_matched.csv``).
    boundaries
        Table with :data:`BOUNDARY_COLUMNS` (``boundaries_changed.csv``).
    boundary_points
        Per comparison j → k: ``{(series_a, series_b): (points_from (n, 2), points_to (m, 2))}`` trace points
        (x, y) in scan-1 pixel coordinates, for the figures.
    scan_step_nm
        Scan step of the series, nm.
    parameters
        Everything used.
    warnings
        One line per doubtful registration: a given shift under which few pixels agree, or a searched placement
        that is not unique (other shifts, or another candidate, under which about as many pixels agree;
        :attr:`Registration.unique <stemgrains.compare.register.Registration.unique>`).
    """

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

    paths: list[Path]
    registrations: list[Registration]
    series_labels: np.ndarray
    covered: np.ndarray
    grains: Table
    boundaries: Table
    boundary_points: list[dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]]
    scan_step_nm: float
    phases: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Display names of the scans (:func:`scan_names`: a run folder's name rather than ``results.h5``)."""
        return scan_names(self.paths)

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts per comparison: grains per status, boundaries per status, registration."""
        out: dict[str, Any] = {"scans": [str(p) for p in self.paths], "names": self.names, "registrations": [],
                               "comparisons": [],
                               "warnings": list(self.warnings)}
        for reg in self.registrations:
            out["registrations"].append(registration_record(reg))
        g, b = self.grains, self.boundaries
        for k in range(1, len(self.paths)):
            sel = np.asarray(g["scan_to"]) == k + 1
            st = np.asarray(g["status"])[sel]
            bsel = np.asarray(b["scan_to"]) == k + 1
            bst = np.asarray(b["status"])[bsel]
            flags = {name: int(np.sum(np.asarray(b[name])[bsel])) for name in ("moved", "label_changed",
                                                                                 "behaviour_changed", "partly_outside")}
            matched = sel & (np.asarray(g["status"]) == "matched")
            dis = np.asarray(g["disorientation_deg"], float)[matched]
            out["comparisons"].append({
                "scan_from": k, "scan_to": k + 1,
                "grains": {s: int(np.sum(st == s)) for s in sorted(set(st.tolist()))},
                "boundaries": {s: int(np.sum(bst == s)) for s in sorted(set(bst.tolist()))},
                "boundary_changes": flags,
                "max_disorientation_deg": float(np.nanmax(dis)) if dis.size and np.isfinite(dis).any() else None,
                "median_disorientation_deg": float(np.nanmedian(dis)) if dis.size and np.isfinite(dis).any() else None,
            })
        return out


def registration_record(reg: Registration) -> dict[str, Any]:
    """A registration as a JSON-ready dict (what ``compare.json`` holds per scan)."""
    return {"rotation": reg.op.name, "quarter_turns": int(reg.op.k % 4), "flip": bool(reg.op.flip),
            "angle_deg": float(reg.angle_deg), "centre_row_col_px": [float(c) for c in reg.centre],
            "sample_rotation_matrix": reg.sample_rotation().T.tolist(), "shift_row_col_px": list(reg.shift),
            "score": _nan_none(reg.score), "runner_up": _nan_none(reg.runner_up), "overlap_px": int(reg.overlap_px),
            "agreement": _nan_none(reg.agreement), "given": bool(reg.given), "placement_unique": bool(reg.unique),
            "n_tied_shifts": int(reg.n_tied),
            "tied_shift_range_row_col_px": ([list(reg.tied_range[:2]), list(reg.tied_range[2:])]
                                            if reg.tied_range is not None else None)}


def _nan_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


# ------------------------------------------------------------------------------------------------- loading
def resolve_input(path: str | os.PathLike) -> Path:
    """The file to read for ``path``: the path itself, or a run folder's ``results.h5`` (FileFormatError if
    neither exists)."""
    p = Path(path)
    if p.is_dir():
        cand = p / "results.h5"
        if not cand.is_file():
            raise FileFormatError(f"{p}: a folder without results.h5 (give a results file or a `stemgrains run` "
                                  "output folder)")
        return cand
    if not p.is_file():
        raise FileFormatError(f"{p}: file not found")
    return p


def scan_names(inputs: list[str | os.PathLike]) -> list[str]:
    """Short display names of the inputs: a run folder's name (its ``results.h5`` says nothing), else the file
    name; names that collide are given as the path relative to the inputs' common parent."""
    paths = [Path(p) for p in inputs]
    full = [p.resolve() for p in paths]

    def short(p: Path) -> str:
        return p.parent.name if p.name == "results.h5" and p.parent.name else p.name

    def named(p: Path) -> Path:
        return p.parent if p.name == "results.h5" and p.parent.name else p

    names = [short(p) for p in full]
    if len(set(names)) < len(names):
        try:
            parent = Path(os.path.commonpath([str(named(p).parent) for p in full]))
            names = [str(named(p).relative_to(parent)) or named(p).name for p in full]
        except ValueError:  # different drives
            names = [str(named(p)) for p in full]
    return names


def load_scan(path: str | os.PathLike, *, threshold_deg: float = config.GRAIN_THRESHOLD_DEG,
              min_grain_size: int = config.MIN_GRAIN_SIZE_PX) -> ScanResults:
    """Read one scan: orientation map, grains, boundaries, classification (see the module docstring).

    Files without ``/grains`` are segmented here with ``threshold_deg`` (deg) and ``min_grain_size`` (px).

    Raises
    ------
    FileFormatError
        Missing or unreadable file, a folder without ``results.h5``, grains that do not fit the map.
    """
    from ..boundaries import extract_boundaries, read_boundaries, read_classification
    from ..grains import read_grains, segment_grains
    from ..grains.segment import map_arrays
    from ..io import load_orientation_map
    from ..io.results import read_with

    p = resolve_input(path)
    xmap = load_orientation_map(p)
    q, pid, _ = map_arrays(xmap)
    has = {"grains": False, "boundaries": False, "classification": False}
    import h5py

    if h5py.is_hdf5(p):
        def probe(f: Any, source: str) -> dict[str, bool]:
            return {k: k in f for k in has}

        has = read_with(p, probe)
    if has["grains"]:
        grains = read_grains(p)
        if grains.labels.shape != pid.shape:
            raise FileFormatError(f"{p}: /grains/labels has shape {grains.labels.shape}, the orientation map "
                                  f"{pid.shape}")
        bounds = read_boundaries(p) if has["boundaries"] else extract_boundaries(grains, xmap)
        cls = read_classification(p) if has["classification"] and has["boundaries"] else None
        here = False
    else:
        grains = segment_grains(xmap, threshold_deg=threshold_deg, min_grain_size=min_grain_size)
        bounds = extract_boundaries(grains, xmap)
        cls = None
        here = True
    return ScanResults(p, q, pid, grains, bounds, cls, here)


# ------------------------------------------------------------------------------------------------- helpers
def _phase_names(phases: Any) -> dict[int, str]:
    return {int(i): str(ph.name) for i, ph in phases if i >= 0} if phases is not None else {}


def _phase_by_name(phases: Any, name: str) -> Any:
    for i, ph in phases:
        if i >= 0 and str(ph.name) == name:
            return ph
    return None


def _agreement(ref: ScanResults, q_mov: np.ndarray, pid_mov: np.ndarray, both: np.ndarray, tol_deg: float,
               names_ref: dict[int, str], names_mov: dict[int, str], syms: dict[str, np.ndarray]) -> int:
    """Number of ``both`` pixels whose orientations agree within ``tol_deg`` (disorientation angle under the proper
    rotations ``syms[phase name]`` of the Laue group, same phase)."""
    from ..crystal.symmetry import disorientation_angle

    n_ok = 0
    pr, pm = ref.phase_id[both], pid_mov[both]
    qr, qm = ref.quaternions[both], q_mov[both]
    for i, name in names_ref.items():
        sel = (pr == i) & np.isin(pm, [j for j, nm in names_mov.items() if nm == name])
        if sel.any():
            ang = np.degrees(disorientation_angle(qr[sel], qm[sel], syms[name]))
            n_ok += int(np.sum(ang < tol_deg))
    return n_ok


def _place(reg: Registration, scan: ScanResults, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Phase ids and orientations (in scan 1's sample frame) of ``scan`` on scan 1's grid."""
    pid_on, _ = reg.resample(scan.phase_id, shape, fill=-1)
    # resample() re-grids (the op on the pixel grid); orientations() expresses them in scan 1's sample frame
    q_on, _ = reg.resample(reg.orientations(scan.quaternions), shape, fill=0.0)
    return pid_on, q_on


@dataclass
class _Grains:
    """Per-scan grain quantities on the reference grid (after registration)."""

    labels: np.ndarray  # (ny, nx) on scan 1's grid, 0 = none
    covered: np.ndarray
    ids: np.ndarray
    phase: np.ndarray  # names
    quat: np.ndarray  # mean orientation in scan 1's sample frame
    c_axis: np.ndarray  # in scan 1's sample frame
    area_px: np.ndarray  # whole grain, pixels


def _grains_on_reference(scan: ScanResults, reg: Registration, ref_shape: tuple[int, int]) -> _Grains:
    labels, covered = reg.resample(scan.grains.labels, ref_shape, fill=0)
    t = scan.grains.table
    ids = np.asarray(t["id"], dtype=np.int64)
    names = _phase_names(scan.grains.phases)
    phase = np.array([names.get(int(p), f"phase {int(p)}") for p in np.asarray(t["phase_id"])], dtype=object)
    quat = reg.orientations(np.asarray(t["mean_quaternion"], float).reshape(-1, 4))
    c = reg.vectors(np.asarray(t["c_axis"], float).reshape(-1, 3))
    return _Grains(labels, covered, ids, phase, quat, c, np.asarray(t["area_px"], float))


def _region_stats(labels: np.ndarray, region: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area (px), centroid row and column of labels 0..n over ``region``."""
    lab = np.where(region, labels, 0).ravel()
    rr, cc = np.indices(labels.shape)
    area = np.bincount(lab, minlength=n + 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.bincount(lab, rr.ravel(), minlength=n + 1) / area
        c = np.bincount(lab, cc.ravel(), minlength=n + 1) / area
    return area, r, c


def _match_pair(a: _Grains, b: _Grains, region: np.ndarray, *, min_iou: float, max_rotation_deg: float,
                phases: Any) -> dict[str, Any]:
    """One-to-one grain matching of scans a → b over ``region`` (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    from ..boundaries import disorientation

    na = int(max(a.ids.max(initial=0), a.labels.max(initial=0)))
    nb = int(max(b.ids.max(initial=0), b.labels.max(initial=0)))
    area_a, ra, ca = _region_stats(a.labels, region, na)
    area_b, rb, cb = _region_stats(b.labels, region, nb)
    both = region & (a.labels > 0) & (b.labels > 0)
    code = a.labels[both].astype(np.int64) * (nb + 1) + b.labels[both]
    pairs, counts = np.unique(code, return_counts=True)
    ga, gb = pairs // (nb + 1), pairs % (nb + 1)
    iou = counts / (area_a[ga] + area_b[gb] - counts)
    row_a = {int(g): i for i, g in enumerate(a.ids)}
    row_b = {int(g): i for i, g in enumerate(b.ids)}
    # orientation of every candidate pair
    dis = np.full(len(pairs), np.nan)
    ia = np.array([row_a.get(int(g), -1) for g in ga], dtype=np.int64)
    ib = np.array([row_b.get(int(g), -1) for g in gb], dtype=np.int64)
    same = (ia >= 0) & (ib >= 0)
    same[same] = a.phase[ia[same]] == b.phase[ib[same]]
    for name in sorted(set(a.phase[ia[same]].tolist())) if same.any() else []:
        sel = same & (a.phase[np.maximum(ia, 0)] == name)
        ph = _phase_by_name(phases, name)
        if ph is None or ph.point_group is None:
            continue
        dis[sel], _, _ = disorientation(a.quat[ia[sel]], b.quat[ib[sel]], ph)
    ok = same & (dis <= max_rotation_deg)
    cand = ok & (iou >= min_iou)
    match_a: dict[int, int] = {}
    if cand.any():
        ua, inv_a = np.unique(ga[cand], return_inverse=True)
        ub, inv_b = np.unique(gb[cand], return_inverse=True)
        cost = np.full((len(ua), len(ub)), 1e6)
        cost[inv_a, inv_b] = 1.0 - iou[cand]
        r, c = linear_sum_assignment(cost)
        for i, j in zip(r, c):
            if cost[i, j] < 1e6:
                match_a[int(ua[i])] = int(ub[j])
    pair_index = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(ga, gb))}
    matched_b = {v: k for k, v in match_a.items()}
    # split / merged: an unmatched grain mostly (>= 1/2 of its area in the region) inside a matched grain
    part_a: dict[int, int] = {}
    part_b: dict[int, int] = {}
    for i in np.flatnonzero(ok):
        x, y = int(ga[i]), int(gb[i])
        if x not in match_a and y in matched_b and counts[i] >= 0.5 * area_a[x]:
            part_a[x] = y  # x merged into the b grain y
        if y not in matched_b and x in match_a and counts[i] >= 0.5 * area_b[y]:
            part_b[y] = x  # y split off from the a grain x
    return dict(match_a=match_a, matched_b=matched_b, part_a=part_a, part_b=part_b, area_a=area_a, area_b=area_b,
                ra=ra, ca=ca, rb=rb, cb=cb, iou=iou, counts=counts, dis=dis, pair_index=pair_index, row_a=row_a,
                row_b=row_b)


def _trace_points(scan: ScanResults, reg: Registration, region: np.ndarray
                  ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Boundary id → (``(n, 2)`` trace points (x, y) on scan 1's grid, ``(n,)`` their segment ids): midpoints of
    the boundary's pixel pairs with both pixels in ``region``."""
    p = scan.boundaries.pairs
    if len(p) == 0:
        return {}
    seg_id = np.asarray(p["segment_id"], dtype=np.int64)
    bid = _pair_boundary_ids(scan)
    shape = scan.shape
    ny, nx = region.shape
    keep = np.ones(len(bid), bool)
    mids = []
    for side in ("a", "b"):
        r, c = reg.to_reference(np.asarray(p[f"row_{side}"], float), np.asarray(p[f"col_{side}"], float), shape)
        r, c = np.rint(r).astype(np.int64), np.rint(c).astype(np.int64)
        inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
        keep &= inside
        keep[inside] &= region[r[inside], c[inside]]
        mids.append((r, c))
    x = 0.5 * (mids[0][1] + mids[1][1])
    y = 0.5 * (mids[0][0] + mids[1][0])
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for b in np.unique(bid[keep]):
        sel = keep & (bid == b)
        out[int(b)] = (np.stack([x[sel], y[sel]], axis=1), seg_id[sel])
    return out


def _pair_boundary_ids(scan: ScanResults) -> np.ndarray:
    """``(n_pairs,)`` boundary id of every pixel pair of the scan's boundary table."""
    bt = scan.boundaries
    p = bt.pairs
    if "boundary_id" in p:
        return np.asarray(p["boundary_id"], dtype=np.int64)
    lut = dict(zip(np.asarray(bt.segments["segment_id"]).tolist(), np.asarray(bt.segments["boundary_id"]).tolist()))
    return np.array([lut[int(s)] for s in np.asarray(p["segment_id"]).tolist()], dtype=np.int64)


def _pair_counts(scan: ScanResults) -> dict[int, int]:
    """Boundary id → number of its pixel pairs in the whole scan."""
    if len(scan.boundaries.pairs) == 0:
        return {}
    ids, counts = np.unique(_pair_boundary_ids(scan), return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


def _trace_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Symmetric mean nearest-neighbour distance between two point sets (same units as the points)."""
    from scipy.spatial import cKDTree

    d1, _ = cKDTree(q).query(p)
    d2, _ = cKDTree(p).query(q)
    return 0.5 * (float(np.mean(d1)) + float(np.mean(d2)))


def _boundary_attrs(scan: ScanResults) -> tuple[dict[int, tuple[int, int, float]], dict[int, tuple[str, str]]]:
    """boundary id → (grain_a, grain_b, misorientation_deg); segment id → (label, behaviour) (empty without a
    classification)."""
    b = scan.boundaries.boundaries
    seg: dict[int, tuple[str, str]] = {}
    if scan.classification is not None and len(scan.classification.segments):
        cs = scan.classification.segments
        lab, beh = np.asarray(cs["label"]).astype(str), np.asarray(cs["behaviour"]).astype(str)
        for i, sid in enumerate(np.asarray(cs["segment_id"]).tolist()):
            seg[int(sid)] = (str(lab[i]), str(beh[i]))
    mis = np.asarray(b["misorientation_deg"], float) if "misorientation_deg" in b else np.full(len(b), np.nan)
    out = {int(bid): (int(b["grain_a"][i]), int(b["grain_b"][i]), float(mis[i]))
           for i, bid in enumerate(np.asarray(b["boundary_id"]).tolist())}
    return out, seg


def _majority(seg_ids: np.ndarray, seg: dict[int, tuple[str, str]], which: int) -> str:
    """The label (``which`` 0) or behaviour (1) carried by most of the pixel pairs (their segments' values)."""
    vals = [seg[int(s)][which] for s in seg_ids if int(s) in seg]
    if not vals:
        return ""
    names, counts = np.unique(np.array(vals), return_counts=True)
    return str(names[int(np.argmax(counts))])


def _median_disorientation(ref: ScanResults, s: ScanResults, op: PixelOp, shift: tuple[int, int], angle: float,
                           centre: tuple[float, float], mask: np.ndarray, tol_deg: float, names_ref: dict[int, str],
                           names_mov: dict[int, str], syms: dict[str, np.ndarray]) -> float:
    """Median disorientation (deg) of the agreeing (< ``tol_deg``) pixels under a placement: a rotation error of
    the placement adds to every grain's disorientation, so its minimum over the angle fixes the angle."""
    from ..crystal.symmetry import disorientation_angle

    pid_on, q_on = _place(Registration(op, shift, 0.0, 0.0, 0, 0.0, False, angle, centre), s, ref.shape)
    both = mask & (pid_on >= 0)
    vals = []
    for i, name in names_ref.items():
        sel = both & (ref.phase_id == i) & np.isin(pid_on, [j for j, nm in names_mov.items() if nm == name])
        if sel.any():
            vals.append(np.degrees(disorientation_angle(ref.quaternions[sel], q_on[sel], syms[name])))
    a = np.concatenate(vals) if vals else np.zeros(0)
    a = a[a < tol_deg]
    return float(np.median(a)) if a.size else float("inf")


def _search_angle(ref: ScanResults, ref_ch: np.ndarray, ref_ok: np.ndarray, s: ScanResults, op: PixelOp,
                  start: tuple[tuple[int, int], float, float], centre: tuple[float, float], max_angle: float,
                  n_min: int, agreeing: Any, spread: Any, tol_deg: float
                  ) -> tuple[float, tuple[int, int], float, float]:
    """Small rotation of the content (see :class:`~stemgrains.compare.register.Registration`): the IPF channels of
    the moving map, its orientations turned into the reference frame, are rotated by each angle of a 0.5° grid
    and correlated; the candidate with most agreeing pixels wins; the angle is then refined in 0.05° steps by
    the median disorientation of the agreeing pixels (:func:`_median_disorientation`)."""
    from .register import _ncc, _peaks, _unwrap

    shift0, score0, runner0 = start
    cands = [(agreeing(op, shift0, 0.0), score0, 0.0, shift0)]
    pid = op(s.phase_id)
    for a in np.arange(-max_angle, max_angle + 1e-9, 0.5):
        if abs(a) < 1e-9:
            continue
        reg = Registration(op, (0, 0), 0.0, 0.0, 0, 0.0, False, float(a), centre)
        ch = ipf_channels(op(reg.orientations(s.quaternions)), pid, s.grains.phases)
        rr, cc = np.indices(pid.shape)
        qr, qc = reg._rotate(rr, cc, float(a))
        qr, qc = np.rint(qr).astype(np.int64), np.rint(qc).astype(np.int64)
        inside = (qr >= 0) & (qr < pid.shape[0]) & (qc >= 0) & (qc < pid.shape[1])
        rot = np.full_like(ch, np.nan)
        rot[:, inside] = ch[:, qr[inside], qc[inside]]
        ok = np.zeros(pid.shape, bool)
        ok[inside] = pid[qr[inside], qc[inside]] >= 0
        ncc, _ = _ncc(ref_ch, ref_ok, rot, ok, n_min)
        for i, j in _peaks(ncc, 4):
            t = (_unwrap(i, pid.shape[0], ncc.shape[0]), _unwrap(j, pid.shape[1], ncc.shape[1]))
            cands.append((agreeing(op, t, float(a)), float(ncc[i, j]), float(a), t))
    cands.sort(key=lambda c: (-c[0], -c[1]))
    n_best, score, angle, shift = cands[0]
    fine = [(spread(angle + d, shift), angle + d) for d in np.arange(-0.5, 0.5 + 1e-9, 0.05)]
    angle = float(round(min(fine)[1], 2))
    # rivals: other shifts, or angles beyond the agreement tolerance (nearer angles agree by construction)
    others = [c[0] for c in cands[1:] if abs(c[2] - cands[0][2]) >= tol_deg
              or max(abs(c[3][0] - shift[0]), abs(c[3][1] - shift[1])) > 2]
    runner = (max(others) / n_best if n_best else 1.0) if others else 0.0
    return angle, shift, score, float(runner)


# ------------------------------------------------------------------------------------------------- main entry
def compare_results(
    paths: list[str | os.PathLike],
    *,
    rotation: str | PixelOp | None = "auto",
    shifts: list[tuple[int, int] | None] | None = None,
    min_overlap_fraction: float = 0.25,
    min_agreement: float = MIN_AGREEMENT,
    min_iou: float = 0.2,
    max_rotation_deg: float = 15.0,
    move_tolerance_px: float = 0.5,
    threshold_deg: float = config.GRAIN_THRESHOLD_DEG,
    min_grain_size: int = config.MIN_GRAIN_SIZE_PX,
    max_angle_deg: float = 0.0,
    angles_deg: list[float] | None = None,
    scans: list[ScanResults] | None = None,
) -> Comparison:
    """Compare a series of scans of the same area (see the module docstring for the method).

    Parameters
    ----------
    paths
        Two or more results files / run folders / .ang / .ctf maps; scan 1 is the reference.
    rotation
        ``"auto"``: try the eight turns and flips of the scan grid; ``None`` or ``"none"``: translation only; a
        :class:`PixelOp` or its name (``"rot90"``, ``"flip+rot180"``, …): that one.
    shifts
        Per later scan, ``(drow, dcol)`` scan pixels (reference pixel p ↔ re-gridded scan pixel p + shift), or
        ``None`` to estimate it; a given shift uses ``rotation`` as the op (identity when ``"auto"``).
    min_overlap_fraction
        Registration: least common indexed area, as a fraction of the smaller map's indexed pixels; below it
        the comparison is refused (at least 16 pixels, at most the smaller map).
    min_agreement
        Least fraction of the common indexed pixels whose orientations agree within ``max_rotation_deg`` (at
        least ``threshold_deg``) at the placement found; below it the scans are taken for different areas and the comparison is refused
        (InputError). A given shift is kept and a line added to :attr:`Comparison.warnings` instead.
    min_iou
        Least intersection over union of two grains to be matched.
    max_rotation_deg
        Largest disorientation (deg) of the mean orientations of two matched grains.
    move_tolerance_px
        A boundary has ``moved`` when the mean distance between its traces exceeds this, scan pixels.
    threshold_deg, min_grain_size
        Segmentation of inputs without grains (deg, px); ``min_grain_size`` also decides the ``edge`` status.
    max_angle_deg
        Also search small rotations of each scan's content within ± this angle (deg, 0.5° steps, then refined
        to 0.05° by the median disorientation of the agreeing pixels), about scan 1's centre, after the turn
        or flip; 0 (default): none. Maps are then re-gridded by nearest neighbour.
    angles_deg
        Per later scan, a given rotation (deg) to use with a given shift.
    scans
        Already loaded scans (skips reading ``paths``; tests).

    Returns
    -------
    Comparison
        A searched placement that other placements match about as well (a scan inside one grain: its position
        there is unknown) is kept, with ``Registration.unique`` False and a line in :attr:`Comparison.warnings`.

    Raises
    ------
    ParameterError
        Fewer than two scans; parameters out of range; different scan steps (> 1 %).
    InputError
        Scans that do not overlap enough.
    """
    from .register import parse_op

    if scans is None:
        if len(paths) < 2:
            raise ParameterError(f"compare needs at least two scans, got {len(paths)}")
        scans = [load_scan(p, threshold_deg=threshold_deg, min_grain_size=min_grain_size) for p in paths]
    for name, v, ok, span in (
            ("min_overlap_fraction", min_overlap_fraction, 0 < min_overlap_fraction <= 1, "above 0 and at most 1"),
            ("min_agreement", min_agreement, 0 <= min_agreement <= 1, "from 0 to 1"),
            ("min_iou", min_iou, 0 < min_iou <= 1, "above 0 and at most 1"),
            ("max_rotation_deg", max_rotation_deg, 0 <= max_rotation_deg <= 180, "from 0 to 180 (degrees)"),
            ("move_tolerance_px", move_tolerance_px, move_tolerance_px >= 0, "of at least 0 (pixels)"),
            ("max_angle_deg", max_angle_deg, 0 <= max_angle_deg <= 45, "from 0 to 45 (degrees)")):
        if not (np.isfinite(v) and ok):
            raise ParameterError(f"{name} expects a value {span}, got {float(v):g}")
    n = len(scans)
    if shifts is not None and len(shifts) != n - 1:
        raise ParameterError(f"give one shift per later scan ({n - 1}), got {len(shifts)}")
    ref = scans[0]
    step = ref.scan_step_nm
    for s in scans[1:]:
        if abs(s.scan_step_nm - step) > 0.01 * step:
            raise ParameterError(f"{s.path}: scan step {s.scan_step_nm:g} nm differs from {ref.path}'s {step:g} nm; "
                                 "compare needs scans of one step")
    if isinstance(rotation, PixelOp):
        ops: tuple[PixelOp, ...] = (rotation,)
    elif rotation is None or str(rotation).lower() == "none":
        ops = (PixelOp(),)
    elif str(rotation).lower() == "auto":
        ops = PIXEL_OPS
    else:
        ops = (parse_op(str(rotation)),)
    notes: list[str] = []
    regs = _register_scans(scans, ops, shifts, angles_deg, threshold_deg=threshold_deg, max_angle_deg=max_angle_deg,
                           min_overlap_fraction=min_overlap_fraction, min_agreement=min_agreement,
                           max_rotation_deg=max_rotation_deg, warnings=notes)
    series_labels, covered, grain_rows, bound_rows, points = _track_grains(
        scans, regs, min_iou=min_iou, max_rotation_deg=max_rotation_deg, move_tolerance_px=move_tolerance_px,
        min_grain_size=min_grain_size)
    params = {"rotation": rotation.name if isinstance(rotation, PixelOp) else rotation,
              "shifts": [list(s) if s is not None else None for s in shifts] if shifts is not None else None,
              "min_overlap_fraction": min_overlap_fraction, "min_agreement": min_agreement, "min_iou": min_iou, "max_rotation_deg": max_rotation_deg,
              "move_tolerance_px": move_tolerance_px, "threshold_deg": threshold_deg, "min_grain_size": min_grain_size,
              "segmented_here": [bool(s.segmented_here) for s in scans]}
    return Comparison([s.path for s in scans], regs, series_labels, covered, _to_table(grain_rows, GRAIN_COLUMNS),
                      _to_table(bound_rows, BOUNDARY_COLUMNS), points, step, ref.grains.phases, params, notes)


def _register_scans(scans: list[ScanResults], ops: tuple[PixelOp, ...], shifts: list | None, angles_deg: list | None,
                    *, threshold_deg: float, max_angle_deg: float, min_overlap_fraction: float,
                    min_agreement: float = 0.0, max_rotation_deg: float = 15.0, warnings: list[str] | None = None
                    ) -> list[Registration]:
    """Registration of every later scan onto scan 1 (scan 1's own first): given shifts/angles, or searched over
    ``ops`` (and small rotations up to ``max_angle_deg``); an :class:`InputError` when the overlap is too small
    or, for a searched placement, fewer than ``min_agreement`` of the common pixels agree in orientation within
    ``max_rotation_deg`` (a given placement appends a line to ``warnings`` instead). A searched placement that is
    not unique (:func:`_ties`) is kept with a line in ``warnings``."""
    warnings = [] if warnings is None else warnings
    n = len(scans)
    ref = scans[0]
    names_ref = _phase_names(ref.grains.phases)
    from ..grains import laue_rotations

    syms = {name: laue_rotations(_phase_by_name(ref.grains.phases, name)) for name in names_ref.values()}
    ref_ok = ref.phase_id >= 0
    ref_ch = ipf_channels(ref.quaternions, ref.phase_id, ref.grains.phases)
    regs = [Registration(PixelOp(), (0, 0), float("nan"), float("nan"), int(ref_ok.sum()), 1.0, True)]
    centre = ((ref.shape[0] - 1) / 2.0, (ref.shape[1] - 1) / 2.0)
    if angles_deg is not None and len(angles_deg) != n - 1:
        raise ParameterError(f"give one angle per later scan ({n - 1}), got {len(angles_deg)}")
    for k in range(1, n):
        s = scans[k]
        mov_ok = s.phase_id >= 0
        names_mov = _phase_names(s.grains.phases)
        # rescoring uses at most ~20000 reference pixels (a regular subsample): cheap on large maps
        stride = max(1, int(np.ceil(np.sqrt(ref_ok.sum() / 20000.0))))
        sub = np.zeros(ref.shape, bool)
        sub[::stride, ::stride] = True

        def agreeing(op: PixelOp, shift: tuple[int, int], angle: float = 0.0, s: ScanResults = s,
                     names_mov: dict = names_mov) -> int:
            pid_on, q_on = _place(Registration(op, shift, 0.0, 0.0, 0, 0.0, False, angle, centre), s, ref.shape)
            return _agreement(ref, q_on, pid_on, ref_ok & (pid_on >= 0) & sub, threshold_deg, names_ref, names_mov,
                              syms)

        given = shifts[k - 1] if shifts is not None else None
        angle = 0.0
        n_min = min_overlap_px(int(ref_ok.sum()), int(mov_ok.sum()), min_overlap_fraction)
        if given is not None:
            op = ops[0] if len(ops) == 1 else PixelOp()
            shift = (int(given[0]), int(given[1]))
            score = runner = float("nan")
            angle = float(angles_deg[k - 1]) if angles_deg is not None else 0.0
        else:
            if not ref_ok.any() or not mov_ok.any():
                raise InputError(f"{ref.path if not ref_ok.any() else s.path}: no indexed pixel; a map without "
                                 "indexed pixels cannot be registered")
            ch = ipf_channels(s.quaternions, s.phase_id, s.grains.phases)
            op, shift, score, runner = register_maps(ref_ch, ref_ok, ch, mov_ok, agreeing=agreeing, ops=ops,
                                                     min_overlap_fraction=min_overlap_fraction)
            if max_angle_deg > 0:
                angle, shift, score, runner = _search_angle(
                    ref, ref_ch, ref_ok, s, op, (shift, score, runner), centre, max_angle_deg, n_min, agreeing,
                    lambda a, t: _median_disorientation(ref, s, op, t, a, centre, ref_ok & sub, threshold_deg,
                                                        names_ref, names_mov, syms), threshold_deg)
            peak = shift
            shift, tied = _best_on_plateau(agreeing, op, angle, ref_ok, mov_ok, shift, n_min)
        tmp = Registration(op, shift, score, runner, 0, float("nan"), given is not None, angle, centre)
        pid_on, q_on = _place(tmp, s, ref.shape)
        both = ref_ok & (pid_on >= 0)
        if both.sum() < n_min:
            raise InputError(f"{s.path}: shares {int(both.sum())} indexed pixels with {ref.path} at shift {shift}, "
                             f"fewer than {n_min} ({100 * min_overlap_fraction:g} % of the smaller map)")
        agree = _agreement(ref, q_on, pid_on, both, threshold_deg, names_ref, names_mov, syms) / int(both.sum())
        # same area? pixels that changed by more than a matched grain may (max_rotation_deg) cannot be the
        # same grains; a turn of the whole specimen within that stays acceptable (search it with max_angle_deg)
        same = (_agreement(ref, q_on, pid_on, both, max(max_rotation_deg, threshold_deg), names_ref, names_mov, syms)
                / int(both.sum())) if min_agreement > 0 else 1.0
        if same < min_agreement:
            turn = f", rotated {angle:+.2f}°" if angle else ""
            what = (f"{s.path}: at the {'given' if given is not None else 'best'} placement on {ref.path} "
                    f"({op.name}{turn}, shift ({shift[0]}, {shift[1]}) px) only {100 * same:.0f} % of the "
                    f"{int(both.sum())} pixels both index agree in orientation within "
                    f"{max(max_rotation_deg, threshold_deg):g}° (at least {100 * min_agreement:g} % expected)")
            if given is None:
                raise InputError(f"{what}: the scans do not show the same area, or their orientations are not in "
                                 "the same sample frame (a scan grid turned without its orientations; give --shift to "
                                 "compare anyway)")
            warnings.append(f"{what}: the scans may not show the same area")
        n_tied, span = 0, None
        if given is None:
            n_tied, span, note = _ties(s, ref, op, shift, angle, runner, tied, peak)
            if note:
                warnings.append(note)
        regs.append(Registration(op, shift, score, runner, int(both.sum()), agree, given is not None, angle, centre,
                                 n_tied, span))

    return regs


def _best_on_plateau(agreeing: Any, op: PixelOp, angle: float, ref_ok: np.ndarray, mov_ok: np.ndarray,
                     shift: tuple[int, int], n_min: int) -> tuple[tuple[int, int], tuple[dict, bool]]:
    """The searched shift moved to the best of its plateau of tying shifts
    (:func:`~stemgrains.compare.register.best_tied_shift`), and that plateau ``(tied, capped)``."""
    from .register import best_tied_shift

    best, tied, capped = best_tied_shift(lambda t: agreeing(op, t, angle), ref_ok, op(mov_ok), shift, n_min)
    return best, (tied, capped)


def _ties(s: ScanResults, ref: ScanResults, op: PixelOp, shift: tuple[int, int], angle: float, runner: float,
          plateau: tuple[dict, bool], peak: tuple[int, int]) -> tuple[int, tuple[int, int, int, int], str | None]:
    """Is a searched placement unique? Shifts that tie with it (``plateau``: the ``(tied, capped)`` of
    :func:`~stemgrains.compare.register.tied_shifts`) farther than 2 px, their number, the span ``(row_min,
    row_max, col_min, col_max)`` of all tying shifts, and the warning line when it is not unique (ties, or a rival
    candidate agreeing about as well); the line says when the kept shift is not the correlation's ``peak`` but
    the better one of its plateau."""
    from .register import _NEAR_PX, TIE_FRACTION

    tied, capped = plateau
    far = [t for t in tied if max(abs(t[0] - shift[0]), abs(t[1] - shift[1])) > _NEAR_PX]
    rows, cols = [t[0] for t in tied], [t[1] for t in tied]
    span = (min(rows), max(rows), min(cols), max(cols))
    if not far and not (runner >= TIE_FRACTION and tied[shift] > 0):  # nothing agrees: nothing to tie with
        return 0, span, None
    turn = f", rotated {angle:+.2f}°" if angle else ""
    where = f"{s.path}: the placement on {ref.path} ({op.name}{turn}, shift ({shift[0]}, {shift[1]}) px) is not unique"
    if far:
        more = (f"; kept the shift under which the most pixels agree ({tied[shift]} px), not the correlation peak "
                f"({peak[0]}, {peak[1]})" if peak != shift else "")
        what = (f"{'at least ' if capped else ''}{len(far)} other shifts more than {_NEAR_PX} px away (rows "
                f"{span[0]}..{span[1]}, cols {span[2]}..{span[3]}) make at least {100 * TIE_FRACTION:g} % as many "
                f"pixels agree in orientation{more} (e.g. a scan inside one grain)")
    else:
        what = (f"another candidate placement makes {100 * runner:.0f} % as many pixels agree in orientation "
                f"(at least {100 * TIE_FRACTION:g} %)")
    return len(far), span, (f"{where}: {what}; grain and boundary positions may be wrong: give --shift ROW,COL "
                            "(after --rotation) to place it")


def _track_grains(scans: list[ScanResults], regs: list[Registration], *, min_iou: float, max_rotation_deg: float,
                  move_tolerance_px: float, min_grain_size: int) -> tuple[np.ndarray, np.ndarray, list, list, list]:
    """Grains matched from scan to scan: series labels ``(n, ny, nx)``, covered masks, grain and boundary rows,
    and the boundary trace points of each later scan."""
    n = len(scans)
    ref = scans[0]
    step = ref.scan_step_nm
    grains_on = [_grains_on_reference(s, r, ref.shape) for s, r in zip(scans, regs)]
    # series ids
    series: list[dict[int, int]] = [{int(g): int(g) for g in grains_on[0].ids}]
    next_id = int(max(grains_on[0].ids.max(initial=0), 0)) + 1
    grain_rows: list[dict[str, Any]] = []
    bound_rows: list[dict[str, Any]] = []
    points: list[dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]] = []
    for k in range(1, n):
        a, b = grains_on[k - 1], grains_on[k]
        region = a.covered & b.covered
        m = _match_pair(a, b, region, min_iou=min_iou, max_rotation_deg=max_rotation_deg, phases=ref.grains.phases)
        sid_a = series[k - 1]
        sid_b: dict[int, int] = {}
        for ga, gb in m["match_a"].items():
            sid_b[gb] = sid_a[ga]
        for gb in sorted(int(g) for g in b.ids):
            if gb not in sid_b:
                sid_b[gb] = next_id
                next_id += 1
        series.append(sid_b)
        g_rows = _grain_rows(k, a, b, m, sid_a, sid_b, step, min_grain_size)
        grain_rows.extend(g_rows)
        edge = {int(r["series_id"]) for r in g_rows if r["status"] == "edge"}
        rows, pts = _boundary_rows(k, scans[k - 1], scans[k], regs[k - 1], regs[k], region, sid_a, sid_b,
                                   move_tolerance_px, step, edge)
        bound_rows.extend(rows)
        points.append(pts)

    ny, nx = ref.shape
    series_labels = np.zeros((n, ny, nx), np.int32)
    covered = np.zeros((n, ny, nx), bool)
    for k, g in enumerate(grains_on):
        lut = np.zeros(int(max(g.labels.max(initial=0), g.ids.max(initial=0))) + 1, np.int32)
        for lab, sid in series[k].items():
            lut[lab] = sid
        series_labels[k] = lut[g.labels]
        covered[k] = g.covered
    return series_labels, covered, grain_rows, bound_rows, points


_STR_COLS = {"status", "phase", "label_from", "label_to", "behaviour_from", "behaviour_to"}
_BOOL_COLS = {"moved", "label_changed", "behaviour_changed", "partly_outside"}
_INT_COLS = {"series_id", "scan_from", "scan_to", "grain_from", "grain_to", "partner_series_id", "overlap_px",
             "series_grain_a", "series_grain_b", "boundary_from", "boundary_to", "n_pairs_from", "n_pairs_to"}


def _to_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Table:
    cols: dict[str, Any] = {}
    for c in columns:
        vals = [r[c] for r in rows]
        if c in _STR_COLS:
            cols[c] = np.array(vals, dtype=str) if vals else np.zeros(0, dtype="<U1")
        elif c in _BOOL_COLS:
            cols[c] = np.array(vals, dtype=bool)
        elif c in _INT_COLS:
            cols[c] = np.array(vals, dtype=np.int64)
        else:
            cols[c] = np.array(vals, dtype=np.float64)
    return Table(cols)


def _grain_rows(k: int, a: _Grains, b: _Grains, m: dict[str, Any], sid_a: dict[int, int], sid_b: dict[int, int],
                step: float, min_grain_size: int) -> list[dict[str, Any]]:
    rows = []

    def at_edge(area_in: float, area_all: float) -> bool:
        # cut by the border of the common field of view to fewer pixels than the smallest grain: the other
        # scan's segmentation may have dissolved it (its window cut it), so it is not compared
        return area_in < area_all and area_in < min_grain_size

    nan = float("nan")

    def base(series_id: int, ga: int, gb: int, status: str, partner: int, phase: str) -> dict[str, Any]:
        return {"series_id": series_id, "scan_from": k, "scan_to": k + 1, "grain_from": ga, "grain_to": gb,
                "status": status, "partner_series_id": partner, "phase": phase, "iou": nan, "overlap_px": 0,
                "disorientation_deg": nan, "c_axis_tilt_deg": nan, "centroid_shift_nm": nan, "dx_nm": nan,
                "dy_nm": nan, "area_from_nm2": nan, "area_to_nm2": nan, "area_change_nm2": nan}

    step2 = step * step
    for ga in sorted(int(g) for g in a.ids):
        ia = m["row_a"][ga]
        area_a = m["area_a"][ga] if ga < len(m["area_a"]) else 0.0
        gb = m["match_a"].get(ga)
        if gb is not None:
            ib = m["row_b"][gb]
            r = base(sid_a[ga], ga, gb, "matched", -1, str(a.phase[ia]))
            i = m["pair_index"][(ga, gb)]
            ca, cb = a.c_axis[ia], b.c_axis[ib]
            tilt = float(np.degrees(np.arccos(np.clip(abs(float(np.dot(ca, cb))), 0.0, 1.0))))
            dx = (m["cb"][gb] - m["ca"][ga]) * step
            dy = (m["rb"][gb] - m["ra"][ga]) * step
            r.update(iou=float(m["iou"][i]), overlap_px=int(m["counts"][i]), disorientation_deg=float(m["dis"][i]),
                     c_axis_tilt_deg=tilt if np.isfinite(tilt) else nan, dx_nm=float(dx), dy_nm=float(dy),
                     centroid_shift_nm=float(np.hypot(dx, dy)), area_from_nm2=area_a * step2,
                     area_to_nm2=m["area_b"][gb] * step2, area_change_nm2=(m["area_b"][gb] - area_a) * step2)
        elif area_a == 0:
            r = base(sid_a[ga], ga, 0, "outside", -1, str(a.phase[ia]))
        elif ga not in m["part_a"] and at_edge(area_a, a.area_px[ia]):
            r = base(sid_a[ga], ga, 0, "edge", -1, str(a.phase[ia]))
            r.update(area_from_nm2=area_a * step2)
        elif ga in m["part_a"]:
            gb2 = m["part_a"][ga]
            r = base(sid_a[ga], ga, 0, "merged", sid_b[gb2], str(a.phase[ia]))
            r.update(area_from_nm2=area_a * step2)
        else:
            r = base(sid_a[ga], ga, 0, "vanished", -1, str(a.phase[ia]))
            r.update(area_from_nm2=area_a * step2)
        rows.append(r)
    for gb in sorted(int(g) for g in b.ids):
        if gb in m["matched_b"]:
            continue
        ib = m["row_b"][gb]
        area_b = m["area_b"][gb] if gb < len(m["area_b"]) else 0.0
        if area_b == 0:
            r = base(sid_b[gb], 0, gb, "outside", -1, str(b.phase[ib]))
        elif gb not in m["part_b"] and at_edge(area_b, b.area_px[ib]):
            r = base(sid_b[gb], 0, gb, "edge", -1, str(b.phase[ib]))
            r.update(area_to_nm2=area_b * step2)
        elif gb in m["part_b"]:
            r = base(sid_b[gb], 0, gb, "split", sid_a[m["part_b"][gb]], str(b.phase[ib]))
            r.update(area_to_nm2=area_b * step2)
        else:
            r = base(sid_b[gb], 0, gb, "appeared", -1, str(b.phase[ib]))
            r.update(area_to_nm2=area_b * step2)
        rows.append(r)
    return rows


def _boundary_rows(k: int, sa: ScanResults, sb: ScanResults, reg_a: Registration, reg_b: Registration,
                   region: np.ndarray, sid_a: dict[int, int], sid_b: dict[int, int], tol_px: float, step: float,
                   edge: set[int] = frozenset()) -> tuple[list[dict[str, Any]],
                                                          dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]]:
    """Rows of ``boundaries_changed.csv`` for scans k → k + 1 (labels and behaviours: those carried by most of the
    boundary's pixel pairs in the common field of view) and the trace points per boundary. A boundary cut by the
    border of the common field of view is ``partly-outside`` (label and behaviour not compared), and so is one of
    a grain at the ``edge`` (series ids ``edge``) found in one scan only (not ``appeared``/``vanished``)."""
    pts_a = _trace_points(sa, reg_a, region)
    pts_b = _trace_points(sb, reg_b, region)
    all_a, all_b = _pair_counts(sa), _pair_counts(sb)
    (attr_a, seg_a), (attr_b, seg_b) = _boundary_attrs(sa), _boundary_attrs(sb)

    def keyed(attrs: dict[int, tuple], sid: dict[int, int]) -> dict[tuple[int, int], int]:
        out = {}
        for bid, (ga, gb, _mis) in attrs.items():
            x, y = sid.get(ga, -ga), sid.get(gb, -gb)
            out[(min(x, y), max(x, y))] = bid
        return out

    ka, kb = keyed(attr_a, sid_a), keyed(attr_b, sid_b)
    rows = []
    pts_out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    empty = (np.zeros((0, 2)), np.zeros(0, np.int64))
    for key in sorted(set(ka) | set(kb)):
        ba, bb = ka.get(key, -1), kb.get(key, -1)
        pa, sega = pts_a.get(ba, empty) if ba >= 0 else empty
        pb, segb = pts_b.get(bb, empty) if bb >= 0 else empty
        mis_a = attr_a[ba][2] if ba >= 0 else float("nan")
        mis_b = attr_b[bb][2] if bb >= 0 else float("nan")
        la, lb = _majority(sega, seg_a, 0), _majority(segb, seg_b, 0)
        ha, hb = _majority(sega, seg_a, 1), _majority(segb, seg_b, 1)
        r = {"series_grain_a": key[0], "series_grain_b": key[1], "scan_from": k, "scan_to": k + 1,
             "boundary_from": ba, "boundary_to": bb, "moved": False, "label_changed": False,
             "behaviour_changed": False, "partly_outside": False, "trace_distance_nm": float("nan"),
             "n_pairs_from": len(pa), "n_pairs_to": len(pb), "misorientation_from_deg": mis_a,
             "misorientation_to_deg": mis_b, "label_from": la, "label_to": lb, "behaviour_from": ha, "behaviour_to": hb}
        if len(pa) and len(pb):
            d = _trace_distance(pa, pb)
            r["trace_distance_nm"] = d * step
            r["moved"] = bool(d > tol_px)
            # cut by the border of the common field of view in either scan: each scan classified a different
            # extent of it, so its label and behaviour are not compared
            cut = len(pa) < all_a.get(ba, 0) or len(pb) < all_b.get(bb, 0)
            r["partly_outside"] = bool(cut)
            r["label_changed"] = bool(not cut and la and lb and la != lb)
            r["behaviour_changed"] = bool(not cut and ha and hb and ha != hb)
            flags = [name for name, on in (("moved", r["moved"]), ("label-changed", r["label_changed"]),
                                           ("behaviour-changed", r["behaviour_changed"]),
                                           ("partly-outside", r["partly_outside"])) if on]
            r["status"] = ";".join(flags) if flags else "unchanged"
        elif (len(pa) or len(pb)) and (key[0] in edge or key[1] in edge):
            # a grain the border of the common field of view cut to less than a grain in one scan: not compared
            r["status"], r["partly_outside"] = "partly-outside", True
        elif len(pa):
            r["status"] = "vanished"
        elif len(pb):
            r["status"] = "appeared"
        else:
            r["status"] = "outside"
        rows.append(r)
        pts_out[key] = (pa, pb)
    return rows, pts_out
