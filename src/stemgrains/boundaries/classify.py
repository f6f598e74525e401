"""Conduction-plane grain-boundary classification for Na-β″-alumina (``docs/classification.md``).

Na⁺ moves almost only inside the basal (00l) conduction planes. Whether it crosses a grain boundary depends
on how the planes of the two grains meet the boundary and on the field direction. This module implements the
Type I/II/III × a/b × 1/2 labels (12 labels) and the continuous quantities of the specification:

* :func:`classify_pair` — vectorised over segments: c-axes of grains A and B (sample frame), the in-plane
  boundary normal (from A into B) and the in-plane field → :class:`PairClassification`.
* :func:`classify_boundaries` — a whole :class:`~stemgrains.grains.GrainMap` +
  :class:`~stemgrains.boundaries.BoundaryTable` → :class:`BoundaryClassification` (per segment and per
  boundary, length-weighted), boundaries touching non-conducting phases labelled ``"other-phase"``.
* :func:`write_classification`, :func:`read_classification`, :func:`write_classification_csv` — files.

Frames (docs/conventions.md): x along scan columns (right), y along rows (down), z along the beam; in-plane
angles from +x toward +y. All angles in degrees; fluxes ``j_a``, ``j_b`` in units of σ_ip|E|.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from .._table import Table
from ..errors import FileFormatError, InputError, ParameterError
from ._classify_pair import (
    BEHAVIOURS,
    LABELS,
    OTHER_PHASE,
    PairClassification,
    broadcast_rows,
    check_parameters,
    classify_unit,
    unit_rows,
)
from ._types import BoundaryTable, check_boundaries_of
from .._repr import compact_repr

__all__ = [
    "LABELS",
    "BEHAVIOURS",
    "OTHER_PHASE",
    "PairClassification",
    "BoundaryClassification",
    "classify_pair",
    "classify_boundaries",
    "conducting_phase_ids",
    "local_boundary_fields",
    "write_classification",
    "read_classification",
    "write_classification_csv",
]

GROUP = "classification"
SPEC = "docs/classification.md"
#: Columns of the boundary table (``/boundaries/boundaries``) repeated in both classification tables (and so in
#: boundaries.csv/segments.csv of ``run`` and ``classify --csv``), under the same names.
BOUNDARY_COLUMNS_COPIED = ("misorientation_deg", "misorientation_axis", "csl_sigma", "special")

#: Numeric per-pair columns (NaN for boundaries that touch a non-conducting grain).
_FLOAT_COLS = ("theta_3d", "theta_2d", "alpha_a", "alpha_b", "phi_a", "phi_b", "psi", "acc", "j_a", "j_b", "r")
_STR_COLS = ("label", "type", "letter", "behaviour")


# --------------------------------------------------------------------------------------------------
# one or many segments
# --------------------------------------------------------------------------------------------------
def classify_pair(
    c_axis_a: Any,
    c_axis_b: Any,
    normal: Any,
    field: Any,
    *,
    conductivity_ratio: float = config.CONDUCTIVITY_RATIO,
    type_tolerance_deg: float = config.TYPE_TOLERANCE_DEG,
    flat_tolerance_deg: float = config.FLAT_TOLERANCE_DEG,
    basis: str = "trace",
    tau_flow: float = config.TAU_FLOW,
    r_block: float = config.R_BLOCK,
) -> PairClassification:
    """Classify boundary segments between grains A and B (docs/classification.md §1–§5).

    Parameters
    ----------
    c_axis_a, c_axis_b
        Conduction-plane normals (c-axes) of grains A and B in the sample frame, ``(3,)`` or ``(n, 3)``.
        Any sign and any non-zero length (they are normalised).
    normal
        In-plane boundary normal ``(x, y)`` pointing from A into B, ``(2,)`` or ``(n, 2)``; normalised.
    field
        In-plane field direction ``(x, y)`` (the direction Na⁺ is driven), ``(2,)`` or ``(n, 2)``; only its
        direction is used. A single vector is broadcast over all segments.
    conductivity_ratio
        σ_ip / σ_op (σ_ip = 1, σ_op = 1/ratio), > 0.
    type_tolerance_deg
        ``delta``: Type I if θ ≤ delta, Type II if θ ≥ 90 − delta, degrees in [0, 45].
    flat_tolerance_deg
        ``flat_tol``: a grain is flat (trace undefined) if alpha < flat_tol, degrees in (0, 90].
    basis
        ``"trace"`` (θ = theta_2d, or theta_3d when a grain is flat) or ``"3d"`` (θ = theta_3d).
    tau_flow
        Flux below which the boundary is ``"parallel"`` (no migration across), > 0, units of σ_ip|E|.
    r_block
        ``|r|`` at or above which the boundary is ``"blocking"`` (r > 0) or ``"depleting"`` (r < 0), in (0, 2]
        (``r`` lies in [−2, 2]; docs/classification.md §5).

    Returns
    -------
    PairClassification
        Arrays of length n, or Python scalars when every input was a single vector.

    Examples
    --------
    Grain A's planes run down the image (trace 90°), B's across it (trace 0°), field to the right:

    >>> rec = classify_pair([1, 0, 0], [0, 1, 0], [1, 0], [1, 0])
    >>> rec.label, rec.behaviour, round(rec.r, 2)
    ('II b1', 'depleting', -1.0)
    """
    params = check_parameters(conductivity_ratio, type_tolerance_deg, flat_tolerance_deg, basis, tau_flow, r_block)
    c_a, s_a = unit_rows(c_axis_a, 3, "c_axis_a")
    c_b, s_b = unit_rows(c_axis_b, 3, "c_axis_b")
    n, s_n = unit_rows(normal, 2, "normal")
    e, s_e = unit_rows(field, 2, "field")
    rows = broadcast_rows({"c_axis_a": c_a, "c_axis_b": c_b, "normal": n, "field": e})
    out = classify_unit(
        *(np.broadcast_to(x, (rows, x.shape[1])) for x in (c_a, c_b, n, e)),
        params,
    )
    if s_a and s_b and s_n and s_e:
        out = {k: v[0].item() for k, v in out.items()}
    return PairClassification(**out)


# --------------------------------------------------------------------------------------------------
# whole maps
# --------------------------------------------------------------------------------------------------
@dataclass
class BoundaryClassification:
    """Conduction-plane classification of every segment and boundary of a grain map.

    Attributes
    ----------
    segments
        One row per boundary segment (order of ``BoundaryTable.segments``): ``segment_id``, ``boundary_id``,
        ``grain_a``, ``grain_b``, ``length_nm``, ``trace_angle_deg``, ``normal`` (n, 2), ``field`` (n, 2, unit),
        ``misorientation_deg`` / ``misorientation_axis`` / ``csl_sigma`` / ``special`` (of the boundary, when
        the boundary table has them: CSL Σ within Brandon, 0 none; name of the matching ``--special``, "" none),
        ``conducting``, ``theta_3d``, ``theta_2d``, ``alpha_a``, ``alpha_b``, ``phi_a``, ``phi_b``, ``psi``,
        ``acc``, ``label``, ``type``, ``letter``, ``field_index``, ``behaviour``, ``j_a``, ``j_b``, ``r``.
        Angles in degrees; fluxes in σ_ip|E|.
    boundaries
        One row per boundary (order of ``BoundaryTable.boundaries``), the same columns without ``segment_id``
        and ``acc``, plus ``n_segments`` and ``label_fraction`` (length fraction of the boundary carrying its
        label). Label and behaviour are those covering the largest length; ``j_a``, ``j_b`` and ``r`` are
        length-weighted means over the segments; the angles come from the length-weighted mean normal
        (``normal``) and mean field (``field``).
    parameters
        All thresholds, the field (a list, or ``"per-boundary"`` / ``"per-segment"``), σ_ip, σ_op, the
        conducting phases and the specification name.
    """

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

    segments: Table
    boundaries: Table
    parameters: dict[str, Any] = dc_field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Length (nm) and length fraction of the boundary network per label and per behaviour (from segments).

        Returns a JSON-ready dict: ``total_length_nm``, ``label_length_nm``, ``label_fraction``,
        ``behaviour_length_nm``, ``behaviour_fraction``; the 12 labels, the 4 behaviours and
        ``"other-phase"`` always appear (with 0 when absent). With a ``c_axis_reliability`` column (grains from a
        map indexed by stemgrains) also ``c_axis_judged_length_nm`` (segments where it is finite) and
        ``c_axis_uncertain_fraction``: the share of that length below ``config.C_AXIS_RELIABILITY_CUT``, whose
        labels rest on a c axis the patterns do not fix (None when nothing is judged).
        """
        length = np.asarray(self.segments["length_nm"], dtype=np.float64) if len(self.segments) else np.zeros(0)
        total = float(length.sum())
        out: dict[str, Any] = {"total_length_nm": total}
        for key, names in (("label", LABELS + (OTHER_PHASE,)), ("behaviour", BEHAVIOURS + (OTHER_PHASE,))):
            col = np.asarray(self.segments[key]).astype(str) if len(self.segments) else np.zeros(0, dtype=str)
            extra = sorted(set(col.tolist()) - set(names))
            lengths = {name: float(length[col == name].sum()) for name in (*names, *extra)}
            out[f"{key}_length_nm"] = lengths
            out[f"{key}_fraction"] = {k: (v / total if total > 0 else 0.0) for k, v in lengths.items()}
        if "c_axis_reliability" in self.segments:
            rel = np.asarray(self.segments["c_axis_reliability"], dtype=np.float64) if len(self.segments) else np.zeros(0)
            judged = np.isfinite(rel)
            judged_len = float(length[judged].sum())
            out["c_axis_reliability_cut"] = float(config.C_AXIS_RELIABILITY_CUT)
            out["c_axis_judged_length_nm"] = judged_len
            out["c_axis_uncertain_fraction"] = (float(length[judged & (rel < config.C_AXIS_RELIABILITY_CUT)].sum()) / judged_len
                                                if judged_len > 0 else None)
        return out


def c_axis_uncertain_line(summary: dict[str, Any]) -> str | None:
    """The line the commands print on the boundary length whose label rests on an ambiguous c axis
    (:meth:`BoundaryClassification.summary`), or None where nothing was judged."""
    frac = summary.get("c_axis_uncertain_fraction")
    if frac is None:
        return None
    return (f"{100 * frac:.1f} % of the classified boundary length has a grain whose c axis (conduction-plane "
            f"orientation) the patterns leave ambiguous (median c-axis reliability < {summary['c_axis_reliability_cut']:g}: "
            "another c axis explains them nearly as well), so its label may be wrong; such boundaries are greyed in "
            "boundary_table.png, the values are column c_axis_reliability of the boundary CSV")


def conducting_phase_ids(phases: Any, conducting_phases: Any = None) -> list[int]:
    """Ids of the conducting phases of an orix ``PhaseList``.

    Parameters
    ----------
    phases
        orix ``PhaseList`` (or a single ``Phase``, id 0).
    conducting_phases
        Phase names and/or ids (one or a non-empty sequence). Default: every phase with Na⁺ conduction planes,
        Na-β″- and Na-β-alumina (:func:`stemgrains.crystal.has_conduction_planes`); other phases, hexagonal
        metals such as Mg included, are not conducting and their boundaries are labelled ``"other-phase"``.
    """
    from orix.crystal_map import Phase, PhaseList

    from ..crystal import has_conduction_planes, is_hexagonal_like

    if isinstance(phases, Phase):
        phases = PhaseList(phases)
    if not isinstance(phases, PhaseList):
        raise InputError(f"grain_map.phases must be an orix PhaseList, got {type(phases).__name__}")
    items = [(int(i), p) for i, p in phases if int(i) >= 0]
    if conducting_phases is None:
        return [i for i, p in items if has_conduction_planes(p)]
    wanted = [conducting_phases] if isinstance(conducting_phases, (str, int, np.integer)) else list(conducting_phases)
    known = ", ".join(f"{i}:{p.name} ({_crystal_system(p)})" for i, p in items)
    if not wanted:  # an empty list would label every boundary other-phase, whatever the map holds
        raise ParameterError(f"conducting_phases: expected at least one phase name or id of the grain map (phases "
                             f"{known}), got an empty list; leave it unset for the phases with Na+ conduction planes")
    by_id = dict(items)
    out: list[int] = []
    for w in wanted:
        if isinstance(w, (int, np.integer)) and not isinstance(w, bool):
            hits = [i for i, _ in items if i == int(w)]
        elif isinstance(w, str):
            hits = [i for i, p in items if p.name == w]
        else:
            hits = []
        if not hits:
            raise ParameterError(f"conducting_phases: no phase {w!r} in the grain map (phases {known})")
        for h in hits:
            if not is_hexagonal_like(by_id[h]):
                raise ParameterError(
                    f"conducting_phases: phase {w!r} is {_crystal_system(by_id[h])}; a conducting phase must be "
                    f"hexagonal or trigonal (its conduction planes are the basal planes ⟂ c) (phases {known})")
        out.extend(h for h in hits if h not in out)
    return out


def _crystal_system(phase: Any) -> str:
    """The orix crystal system of a phase's point group (``"cubic"``, ``"trigonal"``, ...), or ``"no point group"``."""
    pg = getattr(phase, "point_group", None)
    return str(pg.system) if pg is not None and getattr(pg, "system", None) else "no point group"


def local_boundary_fields(boundary_field: Any, n_boundaries: int, source: str = "transport") -> tuple[np.ndarray, int]:
    """Local field per boundary from the transport model, ready for :func:`classify_boundaries`.

    Parameters
    ----------
    boundary_field
        ``(n_boundaries, 2)`` mean field (x, y) at each boundary, boundary-table order
        (:attr:`stemgrains.transport.TransportResult.boundary_field`, ``/transport/boundaries/field``), V/nm.
    n_boundaries
        Rows of the boundary table it must match.

    Returns
    -------
    (field, n_filled)
        The fields (only directions matter), where boundaries no current reaches (non-finite or zero field)
        take the mean field direction of the others, and how many were filled so.

    Raises
    ------
    InputError
        The shape does not match the boundary table (transport computed for other boundaries), or no current
        reaches any boundary.
    """
    arr = np.asarray(boundary_field, dtype=np.float64)
    if arr.size == 0 and n_boundaries == 0:
        return np.zeros((0, 2)), 0
    if arr.ndim != 2 or arr.shape != (n_boundaries, 2):
        raise InputError(f"{source}: boundary_field has shape {arr.shape}, expected ({n_boundaries}, 2), one per "
                         "boundary; rerun the transport model on these boundaries")
    local = arr.copy()
    bad = ~np.all(np.isfinite(local), axis=1) | (np.hypot(local[:, 0], local[:, 1]) == 0)
    if n_boundaries and bad.all():
        raise InputError(f"{source}: no current reaches any boundary (the electrodes are not connected by "
                         "conducting pixels), so there is no local field to classify under; give an applied field "
                         "direction instead (--field X,Y)")
    good = local[~bad]
    mean = good.mean(axis=0) if len(good) else np.array([1.0, 0.0])
    if not np.all(np.isfinite(mean)) or np.hypot(*mean) == 0:
        mean = np.array([1.0, 0.0])
    local[bad] = mean
    return local, int(bad.sum())


def _require(table: Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table]
    if missing:
        raise InputError(f"{what} lacks column(s) {', '.join(missing)}")


def _lookup(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each key in ``ids`` (-1 where absent)."""
    ids = np.asarray(ids).astype(np.int64).ravel()
    keys = np.asarray(keys).astype(np.int64).ravel()
    if len(ids) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids[order], keys), 0, len(ids) - 1)
    rows = order[pos]
    return np.where(ids[rows] == keys, rows, -1)


def _segment_fields(field: Any, boundary_row: np.ndarray, n_boundaries: int, seg_ids: np.ndarray,
                    field_on: str | None) -> tuple[np.ndarray, str]:
    """Unit field per segment from one vector, one per boundary or one per segment."""
    try:
        arr = np.asarray(field, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"field must be numeric in-plane vectors, got {type(field).__name__}") from None
    n_seg = len(boundary_row)
    if field_on not in (None, "boundary", "segment"):
        raise ParameterError(f"field_on must be None, 'boundary' or 'segment', got {field_on!r}")
    if arr.ndim == 2 and arr.shape[0] == 1 and n_boundaries != 1 and n_seg != 1 and field_on is None:
        arr = arr[0]  # one vector given as a (1, 2) array
    if arr.ndim == 1:
        if field_on is not None:
            raise ParameterError(f"field_on={field_on!r} needs one field vector per {field_on}, got a single vector")
        unit, _ = unit_rows(arr, 2, "field")
        return np.repeat(unit, n_seg, axis=0), "single"
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"field must have shape (2,), (n_boundaries, 2) or (n_segments, 2), got {arr.shape}")
    per_b = arr.shape[0] == n_boundaries
    per_s = arr.shape[0] == n_seg
    if field_on == "boundary" and not per_b:
        raise InputError(f"field has {arr.shape[0]} rows, expected one per boundary ({n_boundaries})")
    if field_on == "segment" and not per_s:
        raise InputError(f"field has {arr.shape[0]} rows, expected one per segment ({n_seg})")
    if field_on is None:
        if per_b and per_s and not np.array_equal(boundary_row, np.arange(n_seg)):
            raise ParameterError(
                "field: as many boundaries as segments, in different orders; pass field_on='boundary' or 'segment'"
            )
        if not (per_b or per_s):
            raise InputError(
                f"field has {arr.shape[0]} rows, expected one vector, {n_boundaries} (one per boundary) "
                f"or {n_seg} (one per segment)"
            )
        field_on = "segment" if per_s else "boundary"
    if field_on == "boundary":
        unit, _ = unit_rows(arr, 2, "field", row_names=[f"boundary row {i}" for i in range(len(arr))])
        return unit[boundary_row], "per-boundary"
    unit, _ = unit_rows(arr, 2, "field", row_names=[f"segment {s}" for s in seg_ids])
    return unit, "per-segment"


def _weighted_majority(group: np.ndarray, values: np.ndarray, weight: np.ndarray, names: tuple[str, ...],
                       n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the value (of ``names`` + extras) with the largest total weight, and its weight fraction."""
    cats = list(names) + sorted(set(values.tolist()) - set(names))
    lut = {c: i for i, c in enumerate(cats)}
    code = np.array([lut[v] for v in values.tolist()], dtype=np.int64)
    acc = np.zeros((n_groups, len(cats)))
    np.add.at(acc, (group, code), weight)
    best = np.argmax(acc, axis=1)
    total = acc.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, acc[np.arange(n_groups), best] / total, np.nan)
    return np.array(cats, dtype=str)[best] if cats else np.zeros(n_groups, dtype=str), frac


def _segment_inputs(segs: Table, btab: Table, field: Any, field_on: str | None) -> tuple:
    """Checked segment columns: ids, lengths (nm), the row of each segment's boundary, unit normals ``(n, 2)``,
    unit field directions ``(n, 2)`` and how the field was given (``"single"``, ``"per-boundary"``, ...)."""
    n_seg, n_bnd = len(segs), len(btab)
    seg_ids = np.asarray(segs["segment_id"]).astype(np.int64)
    length = np.asarray(segs["length_nm"], dtype=np.float64).reshape(n_seg)
    if not np.all(np.isfinite(length)) or np.any(length < 0):
        raise InputError("boundaries.segments length_nm must be finite and >= 0")
    b_row = _lookup(btab["boundary_id"], segs["boundary_id"])
    if np.any(b_row < 0):
        i = int(np.flatnonzero(b_row < 0)[0])
        raise InputError(
            f"segment {seg_ids[i]} refers to boundary {segs['boundary_id'][i]}, absent from the boundary table"
        )
    if n_seg:
        normal, _ = unit_rows(np.asarray(segs["normal"]).reshape(n_seg, -1), 2, "boundaries.segments normal",
                              row_names=[f"segment {s}" for s in seg_ids])
        e_seg, field_mode = _segment_fields(field, b_row, n_bnd, seg_ids, field_on)
    else:  # nothing to classify; still check a single field vector
        normal, e_seg = np.zeros((0, 2)), np.zeros((0, 2))
        field_mode = "single" if np.ndim(field) == 1 else "per-segment"
        if field_mode == "single":
            unit_rows(field, 2, "field")

    return seg_ids, length, b_row, normal, e_seg, field_mode


def _conducting_sides(gtab: Table, segs: Table, c_all: np.ndarray, g_conducting: np.ndarray,
                      phase_names: dict[int, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grain-table rows of each segment's grains A and B (−1 where unknown) and whether both are conducting;
    a conducting grain without a finite, non-zero c-axis raises :class:`InputError`."""

    def grain_side(col: str, tab: Table) -> tuple[np.ndarray, np.ndarray]:
        rows = _lookup(gtab["id"], tab[col])
        ok = rows >= 0
        ok[ok] = g_conducting[rows[ok]]
        return rows, ok

    ra, ok_a = grain_side("grain_a", segs)
    rb, ok_b = grain_side("grain_b", segs)
    conducting = ok_a & ok_b
    for rows in (ra[conducting], rb[conducting]):
        c = c_all[rows]
        bad = rows[~np.all(np.isfinite(c), axis=1) | np.all(c == 0.0, axis=1)]
        if len(bad):
            g, pid = int(gtab["id"][bad[0]]), int(gtab["phase_id"][bad[0]])
            raise InputError(
                f"grain {g} (phase {phase_names.get(pid, pid)!r}) is in a conducting phase "
                "but has no finite, non-zero c_axis"
            )

    return ra, rb, conducting


def classify_boundaries(
    grain_map: Any,
    boundaries: BoundaryTable,
    field: Any,
    *,
    conducting_phases: Any = None,
    field_on: str | None = None,
    conductivity_ratio: float = config.CONDUCTIVITY_RATIO,
    type_tolerance_deg: float = config.TYPE_TOLERANCE_DEG,
    flat_tolerance_deg: float = config.FLAT_TOLERANCE_DEG,
    basis: str = "trace",
    tau_flow: float = config.TAU_FLOW,
    r_block: float = config.R_BLOCK,
) -> BoundaryClassification:
    """Classify every segment and boundary of a grain map (docs/classification.md).

    Parameters
    ----------
    grain_map
        :class:`~stemgrains.grains.GrainMap`; its table needs ``id``, ``phase_id`` and ``c_axis`` (n, 3).
    boundaries
        :class:`~stemgrains.boundaries.BoundaryTable`; segments need ``segment_id``, ``boundary_id``,
        ``grain_a``, ``grain_b``, ``length_nm``, ``normal`` (n, 2, from A into B); boundaries need
        ``boundary_id``, ``grain_a``, ``grain_b``. ``trace_angle_deg`` and the boundary columns
        :data:`BOUNDARY_COLUMNS_COPIED` (``misorientation_deg``, ``misorientation_axis``, ``csl_sigma``,
        ``special``) are copied when present.
    field
        In-plane field direction(s) ``(x, y)``: one vector ``(2,)``, one per boundary ``(n_boundaries, 2)``
        (boundary-table order) or one per segment ``(n_segments, 2)`` (segment-table order, e.g. local fields
        from the transport model). Only directions are used. ``None`` (no field) only where no phase conducts
        (nothing is classified): the ``field`` and ``psi`` columns are NaN and ``parameters["field"]`` is None.
    conducting_phases
        Names and/or ids of the conducting phase(s). Default: the phases with conduction planes (Na-β″- and
        Na-β-alumina, :func:`~stemgrains.crystal.has_conduction_planes`). A boundary with a
        grain of another phase (or an unassigned/unknown grain id) gets label and behaviour ``"other-phase"``
        and NaN quantities (``psi`` is still reported).
    field_on
        ``"boundary"`` or ``"segment"`` to say how a 2-D ``field`` is keyed; needed only when there are as many
        boundaries as segments and their orders differ.
    conductivity_ratio, type_tolerance_deg, flat_tolerance_deg, basis, tau_flow, r_block
        As in :func:`classify_pair`.

    Returns
    -------
    BoundaryClassification

    Raises
    ------
    ParameterError
        ``field`` None where a phase conducts (among others).
    """
    params = check_parameters(conductivity_ratio, type_tolerance_deg, flat_tolerance_deg, basis, tau_flow, r_block)
    gtab = grain_map.table
    segs = boundaries.segments
    btab = boundaries.boundaries
    _require(gtab, ("id", "phase_id", "c_axis"), "grain_map.table")
    _require(segs, ("segment_id", "boundary_id", "grain_a", "grain_b", "length_nm", "normal"), "boundaries.segments")
    _require(btab, ("boundary_id", "grain_a", "grain_b"), "boundaries.boundaries")
    check_boundaries_of(grain_map, boundaries)
    cond_ids = conducting_phase_ids(grain_map.phases, conducting_phases)
    phase_names = {int(i): p.name for i, p in _phase_items(grain_map.phases)}

    no_field = field is None
    if no_field and cond_ids:
        raise ParameterError("field: a direction (x, y) is needed where a phase conducts (the classification depends "
                             "on it); None only for a map without a conducting phase")
    n_seg = len(segs)
    seg_ids, length, b_row, normal, e_seg, field_mode = _segment_inputs(segs, btab, (1.0, 0.0) if no_field else field,
                                                                        field_on)
    if no_field:  # nothing depends on a field: none is recorded
        e_seg = np.full_like(e_seg, np.nan)

    # grains → conducting flag, c-axis
    c_all = np.asarray(gtab["c_axis"], dtype=np.float64).reshape(len(gtab), 3)
    g_conducting = np.isin(np.asarray(gtab["phase_id"]).astype(np.int64), cond_ids)

    ra, rb, conducting = _conducting_sides(gtab, segs, c_all, g_conducting, phase_names)

    seg_out = _blank_columns(n_seg)
    idx = np.flatnonzero(conducting)
    if len(idx):
        res = classify_unit(
            unit_rows(c_all[ra[idx]], 3, "c_axis")[0], unit_rows(c_all[rb[idx]], 3, "c_axis")[0],
            normal[idx], e_seg[idx], params,
        )
        for k, v in res.items():
            if k in seg_out:
                seg_out[k][idx] = v
    seg_out["psi"] = np.degrees(np.arccos(np.clip(np.abs(np.sum(e_seg * normal, axis=1)), 0.0, 1.0)))

    seg_table = Table({
        "segment_id": seg_ids,
        "boundary_id": np.asarray(segs["boundary_id"]).astype(np.int64),
        "grain_a": np.asarray(segs["grain_a"]).astype(np.int64),
        "grain_b": np.asarray(segs["grain_b"]).astype(np.int64),
        "length_nm": length,
        "trace_angle_deg": (np.asarray(segs["trace_angle_deg"], dtype=np.float64) if "trace_angle_deg" in segs
                            else _trace_angle(normal)),
        "normal": normal,
        "field": e_seg,
    })
    for col in BOUNDARY_COLUMNS_COPIED:
        if col in btab:
            seg_table[col] = np.asarray(btab[col])[b_row]
    seg_table["conducting"] = conducting
    for k in ("theta_3d", "theta_2d", "alpha_a", "alpha_b", "phi_a", "phi_b", "psi", "acc", "label", "type",
              "letter", "field_index", "behaviour", "j_a", "j_b", "r"):
        seg_table[k] = seg_out[k]
    seg_table["c_axis_reliability"] = _pair_minimum(_grain_c_axis_reliability(gtab), ra, rb)

    bnd_table = _aggregate(btab, gtab, c_all, g_conducting, seg_table, b_row, params)
    parameters = dict(params)
    parameters.update({
        "sigma_ip": 1.0,
        "sigma_op": 1.0 / params["conductivity_ratio"],
        "field": None if no_field else np.asarray(field, dtype=np.float64).tolist() if field_mode == "single" else field_mode,
        "conducting_phases": [{"id": i, "name": phase_names.get(i, "")} for i in cond_ids],
        "specification": SPEC,
    })
    return BoundaryClassification(seg_table, bnd_table, parameters)


def _phase_items(phases: Any) -> list[tuple[int, Any]]:
    from orix.crystal_map import Phase, PhaseList

    if isinstance(phases, Phase):
        phases = PhaseList(phases)
    return [(int(i), p) for i, p in phases]


def _trace_angle(normal: np.ndarray) -> np.ndarray:
    """Angle of t = z × n = (−n_y, n_x) from +x toward +y, in (−90, 90]."""
    ang = np.degrees(np.arctan2(normal[:, 0], -normal[:, 1]))
    ang = np.where(ang > 90.0, ang - 180.0, ang)
    return np.where(ang <= -90.0, ang + 180.0, ang)


def _blank_columns(n: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in _FLOAT_COLS}
    out["label"] = np.full(n, OTHER_PHASE, dtype="U16")
    out["behaviour"] = np.full(n, OTHER_PHASE, dtype="U16")
    out["type"] = np.full(n, "", dtype="U3")
    out["letter"] = np.full(n, "", dtype="U1")
    out["field_index"] = np.zeros(n, dtype=np.int64)
    return out


def _aggregate(btab: Table, gtab: Table, c_all: np.ndarray, g_conducting: np.ndarray, seg: Table,
               b_row: np.ndarray, params: dict[str, Any]) -> Table:
    """Per-boundary, length-weighted summary of the segment classification."""
    n_bnd = len(btab)
    length = seg["length_nm"]
    n_segments = np.bincount(b_row, minlength=n_bnd).astype(np.int64)
    empty = np.flatnonzero(n_segments == 0)
    if len(empty):
        raise InputError(f"boundary {btab['boundary_id'][empty[0]]} has no segments in boundaries.segments")
    w = np.where(length > 0, length, 0.0)
    total = np.bincount(b_row, weights=w, minlength=n_bnd)
    # boundaries whose segments all have zero length: weigh segments equally
    w = np.where(total[b_row] > 0, w, 1.0)
    wsum = np.bincount(b_row, weights=w, minlength=n_bnd)

    def wmean_vec(v: np.ndarray) -> np.ndarray:
        s = np.stack([np.bincount(b_row, weights=w * v[:, j], minlength=n_bnd) for j in range(v.shape[1])], 1)
        norm = np.sqrt(np.sum(s * s, axis=1))
        ok = norm > 1e-9 * wsum
        out = np.full_like(s, np.nan)
        out[ok] = s[ok] / norm[ok, None]
        return out

    normal = wmean_vec(seg["normal"])
    efield = wmean_vec(seg["field"])
    out = _blank_columns(n_bnd)
    label, label_frac = _weighted_majority(b_row, seg["label"].astype(str), w, LABELS + (OTHER_PHASE,), n_bnd)
    behaviour, _ = _weighted_majority(b_row, seg["behaviour"].astype(str), w, BEHAVIOURS + (OTHER_PHASE,), n_bnd)

    ra = _lookup(gtab["id"], btab["grain_a"])
    rb = _lookup(gtab["id"], btab["grain_b"])
    conducting = (ra >= 0) & (rb >= 0)
    conducting[conducting] = g_conducting[ra[conducting]] & g_conducting[rb[conducting]]
    idx = np.flatnonzero(conducting)
    if len(idx):
        n_ok = np.all(np.isfinite(normal[idx]), axis=1)
        e_ok = np.all(np.isfinite(efield[idx]), axis=1)
        res = classify_unit(
            unit_rows(c_all[ra[idx]], 3, "c_axis")[0], unit_rows(c_all[rb[idx]], 3, "c_axis")[0],
            np.where(n_ok[:, None], normal[idx], [1.0, 0.0]), np.where(e_ok[:, None], efield[idx], [1.0, 0.0]),
            params,
        )
        for k in ("theta_3d", "theta_2d", "alpha_a", "alpha_b"):
            out[k][idx] = res[k]
        for k in ("phi_a", "phi_b"):
            out[k][idx] = np.where(n_ok, res[k], np.nan)
        for k in ("j_a", "j_b", "r"):
            out[k][idx] = (np.bincount(b_row, weights=w * np.nan_to_num(seg[k]), minlength=n_bnd) / wsum)[idx]
    both = np.all(np.isfinite(normal), axis=1) & np.all(np.isfinite(efield), axis=1)
    out["psi"] = np.where(both, np.degrees(np.arccos(np.clip(np.abs(np.sum(np.nan_to_num(normal * efield), 1)),
                                                               0.0, 1.0))), np.nan)
    # label / behaviour by largest length; type, letter, index parsed from the label
    out["label"] = label
    out["behaviour"] = behaviour
    is_cls = np.isin(label, LABELS)
    parts = [s.split(" ") if ok else ["", ""] for s, ok in zip(label.tolist(), is_cls.tolist())]
    out["type"] = np.array([p[0] for p in parts], dtype="U3")
    out["letter"] = np.array([p[1][:1] for p in parts], dtype="U1")
    out["field_index"] = np.array([int(p[1][1:]) if p[1] else 0 for p in parts], dtype=np.int64)

    table = Table({
        "boundary_id": np.asarray(btab["boundary_id"]).astype(np.int64),
        "grain_a": np.asarray(btab["grain_a"]).astype(np.int64),
        "grain_b": np.asarray(btab["grain_b"]).astype(np.int64),
        "n_segments": n_segments,
        "length_nm": (np.asarray(btab["length_nm"], dtype=np.float64) if "length_nm" in btab
                      else np.bincount(b_row, weights=length, minlength=n_bnd)),
        "trace_angle_deg": _trace_angle(np.nan_to_num(normal)) if n_bnd else np.zeros(0),
        "normal": normal,
        "field": efield,
    })
    table["trace_angle_deg"] = np.where(np.all(np.isfinite(normal), axis=1), table["trace_angle_deg"], np.nan)
    for col in BOUNDARY_COLUMNS_COPIED:
        if col in btab:
            table[col] = np.asarray(btab[col])
    table["conducting"] = conducting
    for k in ("theta_3d", "theta_2d", "alpha_a", "alpha_b", "phi_a", "phi_b", "psi", "label", "type", "letter",
              "field_index", "behaviour", "j_a", "j_b", "r"):
        table[k] = out[k]
    table["label_fraction"] = label_frac
    table["c_axis_reliability"] = _pair_minimum(_grain_c_axis_reliability(gtab), ra, rb)
    return table


def _grain_c_axis_reliability(gtab: Table) -> np.ndarray:
    """Each grain's median c-axis reliability (grain-table column ``median_c_axis_reliability``), NaN for all
    where the table has none (imported maps, older files)."""
    if "median_c_axis_reliability" in gtab:
        return np.asarray(gtab["median_c_axis_reliability"], dtype=np.float64)
    return np.full(len(gtab), np.nan)


def _pair_minimum(values: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """min(values[ra], values[rb]) per row, NaN where either row is −1 (no grain) or either value is NaN: the
    c-axis reliability of a boundary is that of its less certain grain."""
    ok = (ra >= 0) & (rb >= 0)
    out = np.full(len(ra), np.nan)
    out[ok] = np.minimum(values[ra[ok]], values[rb[ok]])  # NaN propagates
    return out


# --------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------
def write_classification(h5file: Any, result: BoundaryClassification) -> None:
    """Write a classification under ``classification/`` of a results file.

    Parameters
    ----------
    h5file
        An open, writable h5py ``File``/``Group`` (the group is created in it), or a path: an existing results
        file is updated atomically, a missing one is created.
    result
        From :func:`classify_boundaries`.

    Layout: ``classification/segments`` and ``classification/boundaries`` (one dataset per column), and the
    group attrs ``summary`` and ``parameters`` (JSON text). The parameters are also stored as
    ``/parameters`` attr ``classify``.
    """
    if isinstance(h5file, (str, os.PathLike)):
        from ..io.results import atomic_h5, update_h5

        path = Path(h5file)
        ctx = update_h5(path) if path.exists() else atomic_h5(path)
        with ctx as f:
            write_classification(f, result)
        return
    from ..io.results import json_default, write_parameters

    if GROUP in h5file:
        del h5file[GROUP]
    g = h5file.create_group(GROUP)
    _empty_strings_as_bytes(result.segments).to_hdf5(g.create_group("segments"))
    _empty_strings_as_bytes(result.boundaries).to_hdf5(g.create_group("boundaries"))
    g.attrs["summary"] = json.dumps(result.summary(), default=json_default)
    g.attrs["parameters"] = json.dumps(result.parameters, default=json_default, sort_keys=True)
    g.attrs["specification"] = SPEC
    write_parameters(h5file.file, "classify", result.parameters)


def _empty_strings_as_bytes(table: Table) -> Table:
    """Work around ``Table.to_hdf5`` on zero-row text columns (``np.char.encode`` of an empty array gives
    float64, which cannot be decoded on reading): write them as empty byte strings instead."""
    if len(table):
        return table
    return Table({k: (np.zeros(0, dtype="S1") if v.dtype.kind == "U" else v) for k, v in table.items()})


def _bytes_as_str(table: Table) -> Table:
    return Table({k: (v.astype(str) if v.dtype.kind == "S" else v) for k, v in table.items()})


def read_classification(h5file: Any) -> BoundaryClassification:
    """Read what :func:`write_classification` wrote (an open h5py ``File``/``Group`` or a path)."""
    from ..io.results import read_with

    return read_with(h5file, _read_classification)


def _read_classification(h5file: Any, source: str) -> BoundaryClassification:
    if GROUP not in h5file or "segments" not in h5file[GROUP] or "boundaries" not in h5file[GROUP]:
        raise FileFormatError(f"{source}: no {GROUP}/ group with segments and boundaries (run `stemgrains classify`)")
    g = h5file[GROUP]
    try:
        params = json.loads(g.attrs.get("parameters", "{}"))
    except (TypeError, ValueError):
        raise FileFormatError(f"{source}: {GROUP}/ parameters attribute is not JSON") from None
    return BoundaryClassification(_bytes_as_str(Table.from_hdf5(g["segments"])),
                                  _bytes_as_str(Table.from_hdf5(g["boundaries"])), params)


def write_classification_csv(path: str | os.PathLike, result: BoundaryClassification,
                             level: str = "boundaries") -> None:
    """Write the per-boundary (``level="boundaries"``) or per-segment (``"segments"``) table as CSV."""
    if level not in ("boundaries", "segments"):
        raise ParameterError(f"level must be 'boundaries' or 'segments', got {level!r}")
    getattr(result, level).to_csv(path)
