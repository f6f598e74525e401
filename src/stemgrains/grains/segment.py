"""Segmentation of an orientation map (orix ``CrystalMap``) into grains.

Neighbouring pixels (4-connectivity) belong to the same grain when both are valid, of the same phase, and their
disorientation (proper rotations of the phase's Laue group) is below a threshold. Connected components are found
with a numba union-find (:mod:`._kernels`); the slow reference there uses scipy's graph components.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from orix.crystal_map import CrystalMap
from orix.quaternion import Orientation

from .. import config
from ..crystal import is_hexagonal_like
from ..errors import InputError, ParameterError
from .._table import Table
from .._grid import map_arrays
from ..crystal.symmetry import c_axis_geometry, disorientation_angle, laue_rotations, proper_laue_group
from ._kernels import edge_angles, reduce_to_reference, relabel_raster, union_find_labels
from ._types import GRAIN_COLUMNS, GrainMap

__all__ = ["segment_grains", "grain_table", "laue_rotations", "map_arrays", "c_axis_geometry", "astar_to_a_frame"]

#: Property names looked up (in this order) for the correlation and reliability thresholds.
CORRELATION_PROPS = ("correlation_index", "ci", "ind", "index")
RELIABILITY_PROPS = ("reliability", "rel", "reliability_index")

_UNIT_TO_NM = {"nm": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "mm": 1e6, "a": 0.1, "å": 0.1}


def _prop_array(xmap: CrystalMap, names: tuple[str, ...], explicit: str | None, what: str) -> tuple[str, np.ndarray]:
    props = dict(xmap.prop.items())
    if explicit is not None and what == "min_reliability" and "rel" not in str(explicit).lower():
        raise ParameterError(f"reliability_prop must name a reliability (higher is better: reliability, "
                             f"grain_reliability, c_axis_reliability, rel, ...), got {explicit!r}")
    if explicit is not None:
        if explicit not in props:
            raise ParameterError(f"{what}: the map has no property {explicit!r} (has {sorted(props)})")
        return explicit, props[explicit]
    lower = {k.lower(): k for k in props}
    for n in names:
        if n in lower:
            return lower[n], props[lower[n]]
    raise ParameterError(f"{what} was given but the map has none of the properties {list(names)} (has {sorted(props)})")


def _passes(xmap: CrystalMap, in_data: np.ndarray, valid: np.ndarray, thr: float, names: tuple[str, ...],
            explicit: str | None, what: str) -> tuple[str, np.ndarray]:
    """The property a threshold ``what`` judges (:func:`_prop_array`) and where it is at least ``thr`` (NaN fails);
    refused where it would keep no valid pixel, or is NaN at every one."""
    name, values = _prop_array(xmap, names, explicit, what)
    vals = _full(xmap, in_data, values, np.nan)
    if valid.any() and not np.isfinite(vals[valid]).any():  # e.g. c_axis_reliability of a cubic map
        raise ParameterError(f"{what}: the map's {name} is undefined (NaN) at every indexed pixel (the c-axis "
                             "reliability is NaN for cubic phases); judge another property")
    with np.errstate(invalid="ignore"):
        passes = vals >= thr
    if (valid & ~passes).any() and not (valid & passes).any():  # the scale differs between formats: say so
        top = np.nanmax(np.where(valid, vals, np.nan))
        raise ParameterError(f"{what} {thr:g} is above every pixel's {name} (largest {top:.4g}): no pixel would be kept")
    return name, passes


def _full(xmap: CrystalMap, in_data: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    out = np.full(in_data.shape, fill, dtype=np.float64)
    out[in_data] = np.asarray(values, dtype=np.float64).reshape(-1)
    return out


def _scan_step(xmap: CrystalMap, scan_step_nm: float | None) -> tuple[float, str]:
    if scan_step_nm is not None:
        step = float(scan_step_nm)
        if not np.isfinite(step) or step <= 0:
            raise ParameterError(f"scan_step_nm must be a positive number, got {scan_step_nm!r}")
        return step, "scan_step_nm argument"
    attached = getattr(xmap, "scan_step_nm", None)  # stemgrains._grid.attach_scan_step
    if attached:
        return float(attached), "map scan_step_nm"
    dx = float(getattr(xmap, "dx", 0.0) or 0.0) or float(getattr(xmap, "dy", 0.0) or 0.0) or 1.0
    unit = str(getattr(xmap, "scan_unit", "") or "").strip()
    factor = _UNIT_TO_NM.get(unit.lower(), 1.0)
    how = f"xmap.dx = {dx:g} {unit or '(no unit)'}" + ("" if unit.lower() in _UNIT_TO_NM else ", taken as nm")
    if dx <= 0:
        raise InputError(f"the orientation map has a non-positive step dx = {dx}; pass scan_step_nm")
    return dx * factor, how


def _merge_unassigned(labels: np.ndarray, ang_right: np.ndarray, ang_down: np.ndarray) -> np.ndarray:
    """Give unassigned pixels (0) the label of a neighbouring grain, iteratively from the grains inward.

    Each pass updates all unassigned pixels that touch a grain at once: the label held by most of its four
    neighbours wins; ties go to the neighbour with the smallest disorientation across the shared edge (only
    defined between valid pixels of one phase), then to the smaller label. Stops when nothing changes.
    """
    labels = labels.copy()
    ny, nx = labels.shape
    inf_col = np.full((ny, 1), np.inf)
    inf_row = np.full((1, nx), np.inf)
    # angle to the left/right/up/down neighbour of each pixel
    ang = np.stack(
        [
            np.hstack([inf_col, ang_right]),  # left neighbour: edge (r, c-1)-(r, c)
            np.hstack([ang_right, inf_col]),  # right
            np.vstack([inf_row, ang_down]),  # up
            np.vstack([ang_down, inf_row]),  # down
        ]
    )
    while True:
        un = labels == 0
        if not un.any():
            break
        pad = np.pad(labels, 1)
        nb = np.stack([pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]])
        cand = un & (nb > 0).any(axis=0)
        if not cand.any():
            break
        lab = nb[:, cand]  # (4, k)
        a = np.where(lab > 0, ang[:, cand], np.inf)
        same = (lab[:, None, :] == lab[None, :, :]) & (lab[None, :, :] > 0)  # (4, 4, k)
        counts = same.sum(axis=0)
        min_ang = np.where(same, a[:, None, :], np.inf).min(axis=0)
        keep = counts == counts.max(axis=0)
        ma = np.where(keep, min_ang, np.inf)
        keep &= ma == ma.min(axis=0)
        choice = np.where(keep & (lab > 0), lab, np.iinfo(np.int32).max).min(axis=0)
        labels[cand] = choice
    return labels


def grain_table(
    labels: np.ndarray,
    core_labels: np.ndarray,
    q: np.ndarray,
    phase_id: np.ndarray,
    phases: Any,
    scan_step_nm: float,
    flat_tolerance_deg: float = config.FLAT_TOLERANCE_DEG,
) -> Table:
    """The grain table (columns :data:`GRAIN_COLUMNS`) of a label image.

    ``labels`` are the final grains (1..n, 0 unassigned); ``core_labels`` the same grains restricted to the
    valid pixels that formed them (statistics of orientation use only these). ``q`` ``(ny, nx, 4)``.
    """
    n = int(labels.max(initial=0))
    flat_lab = labels.ravel()
    ids = np.arange(1, n + 1, dtype=np.int32)
    rows, cols = np.indices(labels.shape)
    area = np.bincount(flat_lab, minlength=n + 1)[1:].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.bincount(flat_lab, rows.ravel(), minlength=n + 1)[1:] / area
        cc = np.bincount(flat_lab, cols.ravel(), minlength=n + 1)[1:] / area
    core = core_labels.ravel()
    in_core = core > 0
    g = core[in_core] - 1  # grain index of each core pixel
    qc = q.reshape(-1, 4)[in_core]
    pc = phase_id.ravel()[in_core]
    gphase = np.full(n, -1, dtype=np.int64)
    gphase[g] = pc  # all core pixels of a grain share its phase
    mean_q = np.full((n, 4), np.nan)
    spread = np.full(n, np.nan)
    hexa = np.zeros(n, dtype=bool)
    # index of the first core pixel of each grain (raster order) = the reference for symmetry reduction
    first = np.zeros(n, dtype=np.int64)
    ug, ufirst = np.unique(g, return_index=True)
    first[ug] = ufirst
    for pid in np.unique(gphase[gphase >= 0]):
        phase = phases[int(pid)]
        sym = laue_rotations(phase)
        sel = pc == pid
        gi, qi = g[sel], qc[sel]
        ref_g = qc[first]  # per grain reference (rows of other phases unused)
        for _ in range(2):
            red = reduce_to_reference(qi, ref_g[gi], sym)
            sums = np.stack([np.bincount(gi, red[:, k], minlength=n) for k in range(4)], axis=1)
            norm = np.linalg.norm(sums, axis=1, keepdims=True)
            ref_g = np.divide(sums, norm, out=np.zeros_like(sums), where=norm > 0)
        grains = np.unique(gi)
        if phase.point_group is not None:
            mean_q[grains] = Orientation(ref_g[grains], symmetry=proper_laue_group(phase)).reduce().data
        else:
            mean_q[grains] = ref_g[grains]
        ang = disorientation_angle(qi, mean_q[gi], sym)
        cnt = np.bincount(gi, minlength=n)
        spread[grains] = np.degrees(np.bincount(gi, ang, minlength=n)[grains] / cnt[grains])
        if is_hexagonal_like(phase):
            hexa[grains] = True
    c, alpha, trace = c_axis_geometry(np.nan_to_num(mean_q), hexa, flat_tolerance_deg)
    area_nm2 = area * scan_step_nm**2
    cols_out = {
        "id": ids,
        "phase_id": gphase,
        "area_px": area,
        "area_nm2": area_nm2,
        "equivalent_diameter_nm": 2.0 * np.sqrt(area_nm2 / np.pi),
        "centroid_row": cr,
        "centroid_col": cc,
        "mean_quaternion": mean_q.reshape(n, 4),
        "orientation_spread_deg": spread,
        "c_axis": c.reshape(n, 3),
        "alpha_deg": alpha,
        "trace_angle_deg": trace,
        "n_valid_px": np.bincount(g, minlength=n).astype(np.int64),
    }
    return Table({**{k: cols_out[k] for k in GRAIN_COLUMNS}, "n_valid_px": cols_out["n_valid_px"]})


#: Quality properties of an indexed map summarised per grain (median over the grain's valid pixels): (property
#: names looked up in this order, column).
QUALITY_MEDIANS = ((RELIABILITY_PROPS, "median_reliability"), (("c_axis_reliability",), "median_c_axis_reliability"),
                   (("grain_reliability",), "median_grain_reliability"))


def grain_medians(core_labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Median of ``values`` (the label image's shape) over each grain's valid pixels (``core_labels`` 1..n, the
    pixels its mean orientation is made of), ignoring NaN; NaN for a grain without a finite value. Returns (n,)."""
    n = int(core_labels.max(initial=0))
    lab = core_labels.ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    keep = (lab > 0) & np.isfinite(v)
    order = np.argsort(lab[keep], kind="stable")
    g, vals = lab[keep][order] - 1, v[keep][order]
    out = np.full(n, np.nan)
    starts = np.searchsorted(g, np.arange(n))
    ends = np.searchsorted(g, np.arange(n), side="right")
    for k in np.flatnonzero(ends > starts):
        out[k] = np.median(vals[starts[k]:ends[k]])
    return out


def check_segment_parameters(threshold_deg: float, min_grain_size: int, small_grains: str = "unassign",
                             min_correlation: float | None = None, min_reliability: float | None = None,
                             correlation_prop: str | None = None, reliability_prop: str | None = None) -> None:
    """The checks of :func:`segment_grains` on its parameters alone (before any data is read: ``run`` makes them
    before indexing). A ``correlation_prop``/``reliability_prop`` without its threshold is refused: it names the
    property the threshold judges, and alone it would change nothing. Raises
    :class:`~stemgrains.errors.ParameterError` (one line naming the parameter)."""
    if not np.isfinite(threshold_deg) or not 0 < threshold_deg < 180:
        raise ParameterError(f"threshold_deg must be in (0, 180) degrees, got {threshold_deg!r}")
    if int(min_grain_size) != min_grain_size or min_grain_size < 1:
        raise ParameterError(f"min_grain_size must be a positive integer, got {min_grain_size!r}")
    for name, v in (("min_correlation", min_correlation), ("min_reliability", min_reliability)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                              or not np.isfinite(v)):
            raise ParameterError(f"{name} must be a finite number, got {v!r}")
    if small_grains not in ("unassign", "merge"):
        raise ParameterError(f"small_grains must be 'unassign' or 'merge', got {small_grains!r}")
    for prop, name, thr, what in (("correlation_prop", correlation_prop, min_correlation, "min_correlation"),
                                  ("reliability_prop", reliability_prop, min_reliability, "min_reliability")):
        if name is not None and thr is None:
            flag, key = "--" + what.replace("_", "-"), f"[grains] {what}"
            raise ParameterError(f"{prop} {name!r} was given without {what} ({flag}, {key}): it names the property "
                                 f"that threshold judges and alone changes nothing (give {flag} too, or leave {prop} out)")


def segment_grains(
    xmap: CrystalMap,
    *,
    threshold_deg: float = config.GRAIN_THRESHOLD_DEG,
    min_grain_size: int = config.MIN_GRAIN_SIZE_PX,
    min_correlation: float | None = None,
    min_reliability: float | None = None,
    small_grains: str = "unassign",
    scan_step_nm: float | None = None,
    correlation_prop: str | None = None,
    reliability_prop: str | None = None,
    flat_tolerance_deg: float = config.FLAT_TOLERANCE_DEG,
) -> GrainMap:
    """Segment an orientation map into grains.

    Parameters
    ----------
    xmap
        orix ``CrystalMap`` of shape ``(ny, nx)`` (from the indexer, or an imported .ang/.ctf map).
    threshold_deg
        Two 4-connected pixels join when their disorientation (proper rotations of the Laue group of their
        phase) is below this angle, degrees. Both must be valid and of the same phase.
    min_grain_size
        Grains with fewer pixels are dissolved (see ``small_grains``), pixels.
    min_correlation, min_reliability
        Pixels whose correlation index / reliability is below these are invalid (NaN is invalid). The property is
        found by name: ``correlation_index``, ``ci``, ``ind``, ``index`` (correlation) and ``reliability``,
        ``rel``, or given by ``correlation_prop`` / ``reliability_prop`` (a reliability, e.g. ``grain_reliability``,
        ``c_axis_reliability``; refused without its threshold). Unindexed (phase id −1) or outside pixels: invalid.
    small_grains
        ``"unassign"``: pixels of small grains and invalid pixels get label 0. ``"merge"``: they are then given,
        iteratively from the grain edges inward, the label most common among their 4 neighbours (ties: the
        best-matching orientation, then the smaller label); then adjacent grains of one phase whose mean
        orientations are within ``threshold_deg`` are joined (repeated until none is), because a band of pixels
        removed by a quality cut can split one grain in two (as MTEX's ``merge`` by threshold). The number of
        joins is recorded as ``parameters["joined_grains"]``.
    scan_step_nm
        Pixel size, nm. Default: ``xmap.dx`` converted from ``xmap.scan_unit`` (nm, µm, mm; unknown units are
        taken as nm). What was used is recorded in ``parameters``.
    flat_tolerance_deg
        Grains with ``alpha`` below this have no trace angle (NaN), degrees.

    Returns
    -------
    GrainMap
        Labels 1..n in raster order of first appearance (deterministic), the grain table and the parameters used.
    """
    check_segment_parameters(threshold_deg, min_grain_size, small_grains, min_correlation, min_reliability,
                             correlation_prop, reliability_prop)
    q, phase_id, in_data = map_arrays(xmap)
    step, step_source = _scan_step(xmap, scan_step_nm)
    valid = in_data & (phase_id >= 0)
    params: dict[str, Any] = {
        "threshold_deg": float(threshold_deg),
        "min_grain_size": int(min_grain_size),
        "small_grains": small_grains,
        "min_correlation": min_correlation,
        "min_reliability": min_reliability,
        "scan_step_nm": step,
        "scan_step_source": step_source,
        "flat_tolerance_deg": float(flat_tolerance_deg),
        "connectivity": 4,
        "symmetry": "proper rotations of the Laue group of each phase",
    }
    for thr, names, explicit, what, key in (
        (min_correlation, CORRELATION_PROPS, correlation_prop, "min_correlation", "correlation_prop"),
        (min_reliability, RELIABILITY_PROPS, reliability_prop, "min_reliability", "reliability_prop"),
    ):
        if thr is None:
            continue
        name, passes = _passes(xmap, in_data, valid, float(thr), names, explicit, what)
        valid &= passes
        params[key] = name
    qnorm = np.linalg.norm(q, axis=-1)
    valid &= np.isfinite(qnorm) & (qnorm > 0)
    # symmetry table indexed by a compact phase index
    pids = np.unique(phase_id[valid])
    pindex = np.zeros(phase_id.shape, dtype=np.int64)
    syms = []
    for k, pid in enumerate(pids):
        pindex[phase_id == pid] = k
        syms.append(laue_rotations(xmap.phases[int(pid)]))
    m_max = max((len(s) for s in syms), default=1)
    sym_table = np.zeros((max(len(syms), 1), m_max, 4))
    n_sym = np.ones(max(len(syms), 1), dtype=np.int64)
    sym_table[:, 0, 0] = 1.0
    for k, s in enumerate(syms):
        sym_table[k, : len(s)] = s
        n_sym[k] = len(s)
    qn = np.where(valid[..., None], q / np.where(qnorm > 0, qnorm, 1.0)[..., None], np.array([1.0, 0, 0, 0]))
    ang_r, ang_d = edge_angles(qn, pindex, valid, sym_table, n_sym)
    thr = np.radians(threshold_deg)
    labels = union_find_labels(ang_r < thr, ang_d < thr, valid)
    sizes = np.bincount(labels.ravel())
    small = sizes < min_grain_size
    small[0] = True
    core = np.where(small[labels], 0, labels)
    core = relabel_raster(core)
    labels = core
    if small_grains == "merge":
        labels = relabel_raster(_merge_unassigned(core, ang_r, ang_d))
        # keep core numbering consistent with the merged labels (merging never joins two grains)
        core = np.where(core > 0, labels, 0)
        labels, core, n_joined = _join_similar_neighbours(labels, core, qn, phase_id, xmap.phases, step, flat_tolerance_deg, thr)
        params["joined_grains"] = n_joined
    table = grain_table(labels, core, qn, phase_id, xmap.phases, step, flat_tolerance_deg)
    for names, column in QUALITY_MEDIANS:
        prop = next((k for k in names if k in xmap.prop), None)
        if prop is not None:
            table[column] = grain_medians(core, _full(xmap, in_data, np.asarray(xmap.prop[prop], dtype=np.float64), np.nan))
    params["n_valid_px"] = int(valid.sum())
    params["n_grains"] = len(table)
    return GrainMap(labels=labels, table=table, phases=xmap.phases, scan_step_nm=step, parameters=params)


def _join_similar_neighbours(labels, core, qn, phase_id, phases, step, flat_tolerance_deg, thr_rad):
    """Join 4-adjacent grains of the same phase whose mean orientations (:func:`grain_table`) are less than
    ``thr_rad`` apart (Laue symmetry), until no pair is; returns (labels, core, number of joins)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_joined = 0
    for _ in range(32):
        n = int(labels.max(initial=0))
        if n < 2:
            break
        table = grain_table(labels, core, qn, phase_id, phases, step, flat_tolerance_deg)
        a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
        b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
        keep = (a > 0) & (b > 0) & (a != b)
        pairs = np.unique(np.sort(np.stack([a[keep], b[keep]], axis=1), axis=1), axis=0)
        if len(pairs) == 0:
            break
        mq = np.asarray(table["mean_quaternion"], dtype=float)
        gp = np.asarray(table["phase_id"])
        i, j = pairs[:, 0] - 1, pairs[:, 1] - 1
        ok = (gp[i] == gp[j]) & (gp[i] >= 0) & np.all(np.isfinite(mq[i]), axis=1) & np.all(np.isfinite(mq[j]), axis=1)
        join = np.zeros(len(pairs), dtype=bool)
        for pid in np.unique(gp[i][ok]):
            sel = ok & (gp[i] == pid)
            ang = disorientation_angle(np.ascontiguousarray(mq[i[sel]]), np.ascontiguousarray(mq[j[sel]]), laue_rotations(phases[int(pid)]))
            join[sel] = ang < thr_rad
        if not join.any():
            break
        n_joined += int(join.sum())
        graph = coo_matrix((np.ones(int(join.sum())), (i[join], j[join])), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        lut = np.concatenate([[0], comp + 1])
        labels = relabel_raster(lut[labels])
        core = np.where(core > 0, labels, 0)
    return labels, core, n_joined


def astar_to_a_frame(xmap: CrystalMap) -> CrystalMap:
    """Re-express the orientations of hexagonal/trigonal phases given with the crystal x axis ∥ a* (Oxford
    Channel 5 .ctf files; MTEX imports them with ``'X||a*'``) in orix's crystal frame (x ∥ a): a rotation by
    30° about c, ``O_orix = R_c(30°) · O_file``. Other phases are unchanged. Returns a new CrystalMap."""
    from orix.quaternion import Rotation

    q, phase_id, in_data = map_arrays(xmap)
    rot = Rotation.from_axes_angles([0.0, 0.0, 1.0], np.radians(30.0)).data.reshape(4)
    out = q.copy()
    for pid, phase in xmap.phases:
        if pid >= 0 and is_hexagonal_like(phase):
            sel = phase_id == pid
            out[sel] = (Rotation(rot) * Rotation(q[sel])).data.reshape(-1, 4)
    return CrystalMap(
        rotations=Rotation(out[in_data]),
        phase_id=phase_id[in_data],
        x=None if xmap.x is None else np.asarray(xmap.x),
        y=None if xmap.y is None else np.asarray(xmap.y),
        phase_list=xmap.phases,
        prop=dict(xmap.prop),
        scan_unit=xmap.scan_unit,
    )
