"""Public entry point of the transport model: :func:`solve_transport`.

The model (see :mod:`stemgrains.transport` for the overview):

* every pixel of a grain carries its grain's conductivity – the uniaxial tensor of docs/classification.md §1
  (``model="tensor"``, bilinear finite elements, :mod:`._fem`) or the published per-direction resistor formula
  (``model="resistor"``, 5-point finite-volume network, :mod:`._resistor`);
* grain boundaries are thin resistive layers (isotropic ``σ_GB``, thickness ``t_GB``) on every pixel face between
  two grains: an added series resistance ``t_GB/σ_GB`` per unit boundary area;
* blocking phases (σ = 0; ZrO2 by default) and pores; unassigned pixels (label 0) are boundary material
  (isotropic σ_GB) by default, or pores, or any isotropic value;
* an optional surrounding frame of isotropic effective conductivity (σ_ip/250 by default) with no boundary layer
  between it and the grains;
* electrodes are fixed potentials on image edges or pixel masks (metal: every node of a masked pixel is fixed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .. import config
from .._table import Table
from ..boundaries import check_boundaries_of
from ..errors import InputError, ParameterError
from . import _fem
from ._conductivity import DEFAULT_BLOCKING_PHASES, grain_conductivities
from ._resistor import solve_resistor
from ._solve import SOLVERS, solve_dirichlet
from ._types import TransportResult

__all__ = ["solve_transport", "EDGES"]

EDGES = ("left", "right", "top", "bottom")
MODELS = ("tensor", "resistor")
_GROUP_FRAME = -1
_GROUP_UNASSIGNED = -2


def _number(name: str, value: Any, *, lo: float = 0.0, lo_open: bool = False, allow_inf: bool = False) -> float:
    try:
        if isinstance(value, (bool, np.bool_, str)):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(x) or (math.isinf(x) and not allow_inf) or x < lo or (lo_open and x == lo):
        rel = ">" if lo_open else ">="
        if lo > -math.inf:
            cond = f"{'' if allow_inf else 'finite and '}{rel} {lo:g}"
        else:
            cond = "a number" if allow_inf else "finite"
        raise ParameterError(f"{name} must be {cond}, got {value!r}")
    return x


def _parse_periodic(periodic: Any) -> tuple[bool, bool]:
    if periodic in (None, "", False):
        return False, False
    if not isinstance(periodic, str) or set(periodic) - {"x", "y"}:
        raise ParameterError(f"periodic must be None, 'x', 'y' or 'xy', got {periodic!r}")
    return "y" in periodic, "x" in periodic


def _parse_electrodes(
    electrodes: Any, map_shape: tuple[int, int], grid_shape: tuple[int, int], pad: int
) -> list[dict]:
    """Electrodes as dicts ``name, potential, edge (str | None), mask (grid bool | None)``."""
    if electrodes is None:
        raise ParameterError("electrodes are required, e.g. {'left': 1.0, 'right': 0.0} or [(mask, volts), ...]")
    if isinstance(electrodes, Mapping):
        items = []
        for name, spec in electrodes.items():
            if isinstance(spec, tuple) and len(spec) == 2:
                items.append((str(name), spec[0], spec[1]))
            elif isinstance(name, str) and name in EDGES:
                items.append((name, name, spec))
            else:
                raise ParameterError(
                    f"electrode {name!r}: use an edge name ({', '.join(EDGES)}) as key or give (mask, volts)"
                )
    elif isinstance(electrodes, Iterable) and not isinstance(electrodes, (str, bytes)):
        items = []
        for i, item in enumerate(electrodes):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ParameterError(f"electrodes[{i}] must be (edge name or mask, volts), got {type(item).__name__}")
            spec, volts = item
            name = spec if isinstance(spec, str) else f"electrode_{i}"
            items.append((name, spec, volts))
    else:
        raise ParameterError(f"electrodes must be a dict or a list of (mask, volts), got {type(electrodes).__name__}")
    if not items:
        raise ParameterError("electrodes are required: got none")
    names = [n for n, _, _ in items]
    if len(set(names)) != len(names):
        raise ParameterError(f"electrode names must be unique, got {names}")
    out = []
    for name, spec, volts in items:
        v = _number(f"potential of electrode {name!r}", volts, lo=-math.inf)
        if isinstance(spec, str):
            if spec not in EDGES:
                raise ParameterError(f"electrode {name!r}: unknown edge {spec!r}, expected one of {', '.join(EDGES)}")
            out.append({"name": name, "potential": v, "edge": spec, "mask": None})
            continue
        mask = np.asarray(spec)
        if mask.dtype != bool:
            raise ParameterError(f"electrode {name!r}: mask must be a boolean array, got dtype {mask.dtype}")
        if mask.shape == map_shape and pad:
            mask = np.pad(mask, pad, constant_values=False)
        if mask.shape != grid_shape:
            want = f"the map's {map_shape}" + (f" or the padded grid's {grid_shape}" if grid_shape != map_shape else "")
            raise ParameterError(f"electrode {name!r}: mask shape {mask.shape}, expected {want}")
        if not mask.any():
            raise ParameterError(f"electrode {name!r}: mask is empty")
        out.append({"name": name, "potential": v, "edge": None, "mask": mask})
    require_potential_difference([(e["name"], e["potential"]) for e in out])
    return out


def require_potential_difference(potentials: list[tuple[str, float]]) -> None:
    """Raise a one-line :class:`ParameterError` unless the electrodes drive a current: at least two of them, at
    different potentials (``potentials`` = ``[(name, volts), ...]``)."""
    volts = {float(v) for _, v in potentials}
    if len(potentials) < 2 or len(volts) < 2:
        given = ", ".join(f"{n}={v:g}" for n, v in potentials) or "none"
        raise ParameterError(
            f"the electrodes drive no current (got {given}): give at least two electrodes at different potentials, "
            "e.g. --electrode left=1 --electrode right=0"
        )


def _electrode_nodes(e: dict, grid_shape: tuple[int, int], node_shape: tuple[int, int]) -> np.ndarray:
    """Flat indices of the pixel-corner nodes an electrode fixes."""
    ny, nx = grid_shape
    nny, nnx = node_shape
    if e["edge"] is not None:
        i = {"left": (np.arange(nny), np.zeros(nny, int)), "right": (np.arange(nny), np.full(nny, nnx - 1))}
        i.update({"top": (np.zeros(nnx, int), np.arange(nnx)), "bottom": (np.full(nnx, nny - 1), np.arange(nnx))})
        r, c = i[e["edge"]]
        return np.unique(r * nnx + c)
    r, c = np.nonzero(e["mask"])
    rr = np.concatenate([r, r, r + 1, r + 1]) % nny
    cc = np.concatenate([c, c + 1, c + 1, c]) % nnx
    return np.unique(rr * nnx + cc)


def _check_electrode_conflicts(elec: list[dict], nodes: list[np.ndarray]) -> None:
    for i in range(len(elec)):
        for j in range(i + 1, len(elec)):
            if elec[i]["potential"] == elec[j]["potential"]:
                continue
            shared = np.intersect1d(nodes[i], nodes[j], assume_unique=True)
            if shared.size:
                raise InputError(
                    f"electrodes {elec[i]['name']!r} ({elec[i]['potential']:g} V) and {elec[j]['name']!r} "
                    f"({elec[j]['potential']:g} V) overlap or touch ({shared.size} shared pixel corners)"
                )


def _pixel_model(
    grain_map: Any,
    phases: Any,
    *,
    model: str,
    sigma_ip: float,
    conductivity_ratio: float,
    sigma_gb: float,
    blocking_phases: Any,
    phase_conductivity: Any,
    unassigned: Any,
    frame: Any,
    sigma_frame: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Grid labels, region codes, node groups, kinds and pixel tensors; and the frame width."""
    labels = np.asarray(grain_map.labels)
    if labels.ndim != 2 or labels.size == 0:
        raise InputError(f"grain map labels must be a non-empty 2-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"grain map labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise InputError("grain map labels must be >= 0 (0 = unassigned)")
    table = grain_map.table
    ids = np.asarray(table["id"]).astype(np.int64)
    gs = grain_conductivities(
        table,
        phases,
        model=model,
        sigma_ip=sigma_ip,
        conductivity_ratio=conductivity_ratio,
        blocking_phases=blocking_phases,
        phase_conductivity=phase_conductivity,
    )
    lut = np.full(max(int(labels.max()), int(ids.max(initial=0))) + 1, -1, dtype=np.int64)
    lut[ids] = np.arange(len(ids))
    missing = np.unique(labels[(labels > 0) & (lut[labels] < 0)])
    if missing.size:
        raise InputError(f"grain labels {missing[:5].tolist()} are not in the grain table")
    ny, nx = labels.shape
    sigma = np.zeros((ny, nx, 3))
    grain = labels > 0
    sigma[grain] = gs[lut[labels[grain]]]
    region = np.where(grain, 1, 3).astype(np.int8)
    # unassigned pixels
    if isinstance(unassigned, str):
        if unassigned == "pore":
            s_un = 0.0
        elif unassigned == "gb":
            s_un = sigma_gb
        else:
            raise ParameterError(f"unassigned must be 'gb', 'pore' or a conductivity, got {unassigned!r}")
    else:
        s_un = _number("unassigned", unassigned)
    sigma[~grain] = (s_un, 0.0, s_un)
    group = np.where(grain, labels, _GROUP_UNASSIGNED)
    # frame
    pad = 0
    if frame is not None and not (isinstance(frame, (int, np.integer)) and not isinstance(frame, bool)):
        fmask = np.asarray(frame)
        if fmask.dtype != bool or fmask.shape != labels.shape:
            raise ParameterError(f"frame must be a width in pixels or a boolean mask of shape {labels.shape}")
        labels = np.where(fmask, 0, labels)
        region[fmask] = 2
        sigma[fmask] = (sigma_frame, 0.0, sigma_frame)
        group[fmask] = _GROUP_FRAME
    elif frame is not None:
        pad = int(frame)
        if pad < 0:
            raise ParameterError(f"frame width must be >= 0 pixels, got {frame}")
        if pad:
            labels = np.pad(labels, pad)
            region = np.pad(region, pad, constant_values=2)
            group = np.pad(group, pad, constant_values=_GROUP_FRAME)
            sigma = np.pad(sigma, ((pad, pad), (pad, pad), (0, 0)))
            sigma[region == 2] = (sigma_frame, 0.0, sigma_frame)
    conducting = (sigma[..., 0] > 0) & (sigma[..., 2] > 0)
    region = np.where(conducting, region, 0).astype(np.int8)
    kind = np.where(region == 1, 1, np.where(region == 0, 0, 2)).astype(np.int8)
    grid_labels = np.where(region == 1, labels, 0)
    return grid_labels, region, group, kind, sigma, pad


def _boundary_tables(
    labels: np.ndarray,
    gb: dict,
    current_density: np.ndarray,
    field: np.ndarray,
    h: float,
    boundaries: Any,
    pad: int,
) -> tuple[Table, Table, Any, Table | None]:
    """Per-face, per-boundary (and per-segment) tables of boundary currents, mismatches and fields."""
    ra, ca, rb, cb = gb["ra"], gb["ca"], gb["rb"], gb["cb"]
    la, lb = labels[ra, ca], labels[rb, cb]
    swap = la > lb
    normal = np.where(gb["axis"][:, None] == 1, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    normal = np.where(swap[:, None], -normal, normal)
    r_a, c_a = np.where(swap, rb, ra), np.where(swap, cb, ca)
    r_b, c_b = np.where(swap, ra, rb), np.where(swap, ca, cb)
    current = np.where(swap, -gb["current"], gb["current"])
    jn_a = np.sum(current_density[r_a, c_a] * normal, axis=1)
    jn_b = np.sum(current_density[r_b, c_b] * normal, axis=1)
    fld = 0.5 * (field[r_a, c_a] + field[r_b, c_b])
    g_a, g_b = np.minimum(la, lb), np.maximum(la, lb)
    faces = Table(
        {
            "row_a": r_a - pad,
            "col_a": c_a - pad,
            "row_b": r_b - pad,
            "col_b": c_b - pad,
            "grain_a": g_a,
            "grain_b": g_b,
            "normal": normal.reshape(-1, 2),
            "current": current,
            "mismatch": jn_a - jn_b,
            "field": fld.reshape(-1, 2),
        }
    )

    def aggregate(key: np.ndarray, n_out: int) -> dict[str, np.ndarray]:
        ok = key >= 0
        k = key[ok]
        cnt = np.bincount(k, minlength=n_out).astype(np.float64)
        out = {"n_faces": cnt.astype(np.int64), "length_nm": cnt * h}

        def nsum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            good = np.isfinite(x[ok])
            s = np.bincount(k[good], weights=x[ok][good], minlength=n_out)
            c = np.bincount(k[good], minlength=n_out).astype(np.float64)
            return s, c

        s, c = nsum(current)
        out["current"] = np.where(c > 0, s, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            s, c = nsum(jn_a - jn_b)
            out["mismatch_mean"] = s / c
            s, c = nsum(np.abs(jn_a - jn_b))
            out["mismatch_abs_mean"] = s / c
            fx, c = nsum(fld[:, 0])
            fy, _ = nsum(fld[:, 1])
            out["field"] = np.stack([fx / c, fy / c], axis=1)
        return out

    segments = None
    if boundaries is not None:
        btab = getattr(boundaries, "boundaries", None)
        if btab is None or "grain_a" not in btab or "grain_b" not in btab:
            raise InputError("boundaries must be a BoundaryTable with a 'boundaries' table (grain_a, grain_b)")
        ba = np.asarray(btab["grain_a"]).astype(np.int64)
        bb = np.asarray(btab["grain_b"]).astype(np.int64)
        bmin, bmax = np.minimum(ba, bb), np.maximum(ba, bb)
        m = int(max(labels.max(initial=0), bmax.max(initial=0))) + 1
        pair_row = {int(k): i for i, k in enumerate((bmin * m + bmax).tolist())}
        key = np.array([pair_row.get(int(k), -1) for k in (g_a * m + g_b).tolist()], dtype=np.int64)
        agg = aggregate(key, len(ba))
        cols = {"grain_a": ba, "grain_b": bb}
        if "boundary_id" in btab:
            cols = {"boundary_id": np.asarray(btab["boundary_id"]), **cols}
        btable = Table({**cols, **agg})
        # a boundary stored with grain_a > grain_b: quantities from A to B flip sign
        flip = ba > bb
        for name in ("current", "mismatch_mean"):
            btable[name] = np.where(flip, -btable[name], btable[name])
        btable["field"] = btable["field"]
        boundary_field = np.array(btable["field"], dtype=np.float64)
        segments = _segment_table(boundaries, faces, aggregate)
    else:
        pairs, key = np.unique(np.stack([g_a, g_b], axis=1), axis=0, return_inverse=True)
        pairs = pairs.reshape(-1, 2)
        key = np.asarray(key).ravel()
        agg = aggregate(key, len(pairs))
        btable = Table({"grain_a": pairs[:, 0], "grain_b": pairs[:, 1], **agg})
        boundary_field = {(int(a), int(b)): tuple(map(float, f)) for (a, b), f in zip(pairs, agg["field"])}
    return faces, btable, boundary_field, segments


def _segment_table(boundaries: Any, faces: Table, aggregate: Any) -> Table | None:
    pairs = getattr(boundaries, "pairs", None)
    seg = getattr(boundaries, "segments", None)
    if pairs is None or seg is None or len(seg) == 0 or "segment_id" not in pairs:
        return None
    sid = np.asarray(seg["segment_id"]).astype(np.int64)
    row_of_sid = {int(s): i for i, s in enumerate(sid.tolist())}
    lookup = {}
    for r1, c1, r2, c2, s in zip(
        *(np.asarray(pairs[k]).astype(np.int64).tolist() for k in ("row_a", "col_a", "row_b", "col_b", "segment_id"))
    ):
        lookup[(min((r1, c1), (r2, c2)), max((r1, c1), (r2, c2)))] = row_of_sid.get(s, -1)
    keys = [
        (min((r1, c1), (r2, c2)), max((r1, c1), (r2, c2)))
        for r1, c1, r2, c2 in zip(*(faces[k].tolist() for k in ("row_a", "col_a", "row_b", "col_b")))
    ]
    key = np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)
    agg = aggregate(key, len(sid))
    cols = {"segment_id": sid}
    for k in ("boundary_id", "grain_a", "grain_b"):
        if k in seg:
            cols[k] = np.asarray(seg[k])
    out = Table({**cols, **agg})
    if "grain_a" in seg and "grain_b" in seg:
        flip = np.asarray(seg["grain_a"]) > np.asarray(seg["grain_b"])
        for name in ("current", "mismatch_mean"):
            out[name] = np.where(flip, -out[name], out[name])
    return out


def solve_transport(
    grain_map: Any,
    phases: Any = None,
    electrodes: Any = None,
    *,
    conductivity_ratio: float = config.CONDUCTIVITY_RATIO,
    sigma_ip: float = 1.0,
    gb_conductivity: float | None = None,
    gb_thickness_nm: float = config.GB_THICKNESS_NM,
    frame: int | np.ndarray | None = None,
    frame_conductivity: float | None = None,
    blocking_phases: Iterable[Any] = DEFAULT_BLOCKING_PHASES,
    phase_conductivity: Mapping[Any, float] | None = None,
    unassigned: str | float = "gb",
    model: str = "tensor",
    periodic: str | None = None,
    boundaries: Any = None,
    solver: str = "auto",
    rtol: float = 1e-10,
) -> TransportResult:
    """Steady-state Na⁺ current through a grain map between electrodes at fixed potentials.

    Parameters
    ----------
    grain_map
        :class:`~stemgrains.grains.GrainMap` (``labels``, ``table`` with ``id``, ``c_axis`` (or ``alpha_deg`` +
        ``trace_angle_deg``), ``phase_id``; ``phases``; ``scan_step_nm``).
    phases
        orix ``PhaseList`` naming the phase ids; default ``grain_map.phases``.
    electrodes
        ``{"left": 1.0, "right": 0.0}`` (edge names ``left, right, top, bottom`` → volts), ``{name: (mask, volts)}``,
        or ``[(edge name or mask, volts), ...]``. Masks are ``(ny, nx)`` bool of the map (or of the padded grid);
        masked pixels are metal at that potential. Electrodes with different potentials must not share a pixel
        corner (:class:`InputError`). At least two electrodes at different potentials are needed, otherwise no
        current flows (:class:`ParameterError`).
    conductivity_ratio
        ``σ_ip / σ_op`` (> 0).
    sigma_ip
        In-plane conductivity; everything scales with it (default 1: results in units of σ_ip).
    gb_conductivity
        Isotropic conductivity of the boundary layer, default ``σ_ip / 20``; 0 makes boundaries insulating.
    gb_thickness_nm
        Boundary layer thickness, nm; 0 (or ``gb_conductivity=inf``) removes the boundary resistance.
    frame
        ``None``; a width in pixels of a frame added around the map; or a boolean mask of frame pixels in the map.
    frame_conductivity
        Isotropic effective conductivity of the frame, default ``σ_ip / 250``.
    blocking_phases
        Phase ids or case-insensitive name substrings with σ = 0 (default: zirconia).
    phase_conductivity
        Isotropic conductivity per phase id or name, overriding the c-axis model.
    unassigned
        Label-0 pixels: ``"gb"`` (isotropic σ_GB, default), ``"pore"`` (σ = 0), or an isotropic conductivity.
    model
        ``"tensor"`` (bilinear FEM with the full tensor, default) or ``"resistor"`` (published per-direction formula
        on a 5-point resistor network).
    periodic
        ``None``, ``"x"``, ``"y"`` or ``"xy"``: periodic boundary conditions along those axes (tensor model only).
    boundaries
        Optional :class:`~stemgrains.boundaries.BoundaryTable`; per-boundary results then follow its ``boundaries``
        order (and ``segments`` via its ``pairs``).
    solver
        ``"auto"``, ``"direct"``, ``"amg"`` (CG + pyamg smoothed aggregation) or ``"cg"`` (CG + Jacobi).
    rtol
        Relative residual of the iterative solvers.

    Returns
    -------
    TransportResult
        Regions connected to no electrode are *floating*: reported in ``floating`` with NaN potential and current.
    """
    if grain_map is None or not hasattr(grain_map, "labels") or not hasattr(grain_map, "table"):
        raise InputError(f"grain_map must be a GrainMap, got {type(grain_map).__name__}")
    if model not in MODELS:
        raise ParameterError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if solver not in SOLVERS:
        raise ParameterError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    phases = grain_map.phases if phases is None else phases
    sigma_ip, ratio, sigma_gb, t_gb, sigma_frame, h, rtol = _checked_numbers(
        grain_map, sigma_ip, conductivity_ratio, gb_conductivity, gb_thickness_nm, frame_conductivity, rtol
    )
    periodic_y, periodic_x = _parse_periodic(periodic)
    if (periodic_y or periodic_x) and model == "resistor":
        raise ParameterError("periodic boundaries are only implemented for model='tensor'")

    labels, region, group, kind, sigma, pad = _pixel_model(
        grain_map,
        phases,
        model=model,
        sigma_ip=sigma_ip,
        conductivity_ratio=ratio,
        sigma_gb=sigma_gb if math.isfinite(sigma_gb) else sigma_ip,
        blocking_phases=blocking_phases,
        phase_conductivity=phase_conductivity,
        unassigned=unassigned,
        frame=frame,
        sigma_frame=sigma_frame,
    )
    grid_shape = labels.shape
    if not np.any(kind != 0):
        raise InputError("the map has no conducting pixel (all blocking phases or pores)")
    check_boundaries_of(grain_map, boundaries)  # another grain map's table gave boundaries this map does not have
    map_shape = tuple(np.shape(grain_map.labels))
    for ax, per in (("y", periodic_y), ("x", periodic_x)):
        if per and grid_shape[0 if ax == "y" else 1] < 2:
            raise ParameterError(f"periodic along {ax} needs at least 2 pixels along {ax}")
    elec, enodes, node_shape = _electrode_setup(electrodes, map_shape, grid_shape, pad, periodic_y, periodic_x)

    raw = _solve_model(model, labels, kind, group, sigma, elec, enodes, node_shape, h, sigma_gb, t_gb, periodic_y,
                       periodic_x, solver, rtol)
    _zero_round_off(raw, elec, map_shape, h, rtol)

    faces, btable, boundary_field, segments = _boundary_tables(
        labels, raw["gb_faces"], raw["current_density"], raw["field"], h, boundaries, pad
    )
    params = _parameters(model, sigma_ip, ratio, sigma_gb, t_gb, pad, frame, sigma_frame, blocking_phases,
                         phase_conductivity, unassigned, periodic, solver, rtol, h, elec)
    return _result(raw, elec, enodes, labels, sigma, region, faces, btable, boundary_field, segments, h, pad,
                   map_shape, model, params)


#: fields, current densities and currents below this fraction of the nominal field ΔV / L (and σ_ip ΔV / L,
#: σ_ip ΔV) — or ten times the solver's rtol where that is larger — are the solver's round-off, set to 0
ROUND_OFF = 1e-9


def _zero_round_off(raw: dict, elec: list[dict], map_shape: tuple, h: float, rtol: float) -> None:
    """Set to exactly 0 the field, current density and currents of ``raw`` (:func:`_solve_model`) that are the
    solver's round-off: below ``max(ROUND_OFF, 10 rtol)`` of the nominal field ΔV / L (ΔV the electrodes' potential
    span, L the map's longer side in nm; σ in σ_ip units). Where electrodes at different potentials are not
    connected, nothing flows, and the 1e-15 V/nm left by the solve would otherwise give every boundary a random
    'local field' direction (``classify --field-from-transport``) and the figures streamlines of noise."""
    v = [float(e["potential"]) for e in elec]
    dv = max(v) - min(v) if v else 0.0
    if not dv > 0:
        return
    tol_e = max(ROUND_OFF, 10.0 * rtol) * dv / (max(map_shape) * h)
    for key in ("field", "current_density"):
        arr = raw[key]
        small = np.hypot(arr[..., 0], arr[..., 1]) < tol_e  # NaN (floating) stays NaN
        arr[small] = 0.0
    cur = np.asarray(raw["electrode_currents"], dtype=np.float64)
    raw["electrode_currents"] = np.where(np.abs(cur) < tol_e * h * max(map_shape), 0.0, cur)
    faces = raw["gb_faces"]
    if "current" in faces:
        c = np.asarray(faces["current"], dtype=np.float64)
        faces["current"] = np.where(np.abs(c) < tol_e * h, 0.0, c)


def _checked_numbers(grain_map: Any, sigma_ip: float, conductivity_ratio: float, gb_conductivity: float | None,
                     gb_thickness_nm: float, frame_conductivity: float | None, rtol: float) -> tuple[float, ...]:
    """The validated scalars of :func:`solve_transport`: σ_ip, σ_ip/σ_op, σ_GB (default σ_ip/20), GB thickness
    (nm), σ_frame (default σ_ip/250), the scan step h (nm) and rtol."""
    sigma_ip = _number("sigma_ip", sigma_ip, lo_open=True)
    ratio = _number("conductivity_ratio", conductivity_ratio, lo_open=True)
    sigma_gb = (
        sigma_ip * config.GB_CONDUCTIVITY_FRACTION
        if gb_conductivity is None
        else _number("gb_conductivity", gb_conductivity, allow_inf=True)
    )
    t_gb = _number("gb_thickness_nm", gb_thickness_nm)
    sigma_frame = (
        sigma_ip * config.FRAME_CONDUCTIVITY_FRACTION
        if frame_conductivity is None
        else _number("frame_conductivity", frame_conductivity)
    )
    h = _number("grain_map.scan_step_nm", getattr(grain_map, "scan_step_nm", 1.0), lo_open=True)
    rtol = _number("rtol", rtol, lo_open=True)

    return sigma_ip, ratio, sigma_gb, t_gb, sigma_frame, h, rtol


def check_electrodes(electrodes: Any, map_shape: tuple[int, int], frame: int | None = None) -> None:
    """The checks :func:`solve_transport` makes on ``electrodes`` for a map of ``map_shape`` (and a ``frame`` of
    that many pixels), before any map exists: names, finite potentials, a potential difference, mask shapes, and
    no two electrodes at different potentials touching. Raises a one-line :class:`ParameterError`."""
    pad = int(frame or 0)
    grid = (int(map_shape[0]) + 2 * pad, int(map_shape[1]) + 2 * pad)
    _electrode_setup(electrodes, tuple(map_shape), grid, pad, False, False)


def _electrode_setup(electrodes: Any, map_shape: tuple, grid_shape: tuple, pad: int, periodic_y: bool,
                     periodic_x: bool) -> tuple[list[dict], list[np.ndarray], tuple[int, int]]:
    """Parsed electrodes, their nodes on the FEM node grid and that grid's shape; conflicts raise."""
    elec = _parse_electrodes(electrodes, map_shape, grid_shape, pad)
    for e in elec:
        if e["edge"] in ("left", "right") and periodic_x or e["edge"] in ("top", "bottom") and periodic_y:
            raise ParameterError(f"electrode {e['name']!r} lies on an edge that is periodic")
    node_shape = (grid_shape[0] + (not periodic_y), grid_shape[1] + (not periodic_x))
    enodes = [_electrode_nodes(e, grid_shape, node_shape) for e in elec]
    _check_electrode_conflicts(elec, enodes)
    return elec, enodes, node_shape


def _parameters(model: str, sigma_ip: float, ratio: float, sigma_gb: float, t_gb: float, pad: int, frame: Any,
                sigma_frame: float, blocking_phases: Any, phase_conductivity: Any, unassigned: Any, periodic: Any,
                solver: str, rtol: float, h: float, elec: list[dict]) -> dict:
    """The parameters of a :func:`solve_transport` run, as recorded in :attr:`TransportResult.parameters`."""
    params = {
        "model": model,
        "sigma_ip": sigma_ip,
        "conductivity_ratio": ratio,
        "gb_conductivity": sigma_gb,
        "gb_thickness_nm": t_gb,
        "frame": pad if pad or frame is None or np.ndim(frame) == 0 else "mask",
        "frame_conductivity": sigma_frame,
        "blocking_phases": [str(b) for b in blocking_phases or ()],
        "phase_conductivity": {str(k): float(v) for k, v in (phase_conductivity or {}).items()},
        "unassigned": unassigned,
        "periodic": periodic or "",
        "solver": solver,
        "rtol": rtol,
        "scan_step_nm": h,
        "electrodes": {e["name"]: {"potential_V": e["potential"], "edge": e["edge"] or "mask"} for e in elec},
    }
    return params


def _result(raw: dict, elec: list[dict], enodes: list, labels: np.ndarray, sigma: np.ndarray, region: np.ndarray,
            faces: Any, btable: Any, boundary_field: Any, segments: Any, h: float, pad: int, map_shape: tuple,
            model: str, params: dict) -> TransportResult:
    etab = Table(
        {
            "name": np.array([e["name"] for e in elec]),
            "potential_V": np.array([e["potential"] for e in elec]),
            "current": np.asarray(raw["electrode_currents"], dtype=np.float64),
            "n_nodes": np.array([len(n) for n in enodes], dtype=np.int64),
        }
    )
    return TransportResult(
        potential=raw["potential"],
        node_potential=raw["node_potential"],
        field=raw["field"],
        current_density=raw["current_density"],
        sigma=sigma,
        labels=labels.astype(np.int32),
        region=region,
        floating=raw["floating"],
        electrodes=etab,
        faces=faces,
        boundaries=btable,
        boundary_field=boundary_field,
        segments=segments,
        scan_step_nm=h,
        map_window=(pad, pad, map_shape[0], map_shape[1]),
        model=model,
        solver=raw["solver"],
        parameters=params,
    )


def _solve_model(model: str, labels: np.ndarray, kind: np.ndarray, group: np.ndarray, sigma: np.ndarray,
                 elec: list[dict], enodes: list, node_shape: tuple[int, int], h: float, sigma_gb: float, t_gb: float,
                 periodic_y: bool, periodic_x: bool, solver: str, rtol: float) -> dict:
    """Solve the tensor FEM or the resistor network; every electrode must touch a conducting pixel."""
    no_gb = t_gb == 0 or math.isinf(sigma_gb)
    g_if = 0.0 if no_gb else sigma_gb / t_gb  # σ_ip / nm

    def gb_face(ra: np.ndarray, ca: np.ndarray, rb: np.ndarray, cb: np.ndarray) -> np.ndarray:
        la, lb = labels[ra, ca], labels[rb, cb]
        return (la > 0) & (lb > 0) & (la != lb)

    if model == "tensor":
        raw = _solve_tensor(
            labels, kind, group, sigma, elec, enodes, node_shape, h, g_if, no_gb, periodic_y, periodic_x, gb_face,
            solver, rtol,
        )
    else:
        r_gb = 0.0 if no_gb else (math.inf if sigma_gb == 0 else t_gb / (h * sigma_gb))
        raw = solve_resistor(sigma, kind, gb_face, r_gb, elec, h, False, False, solver, rtol)
    for e, n_contact in zip(elec, raw["electrode_contacts"]):
        if n_contact == 0:
            raise InputError(f"electrode {e['name']!r} touches no conducting pixel")
    return raw


def _solve_tensor(
    labels, kind, group, sigma, elec, enodes, node_shape, h, g_if, no_gb, periodic_y, periodic_x, gb_face, solver, rtol
) -> dict:
    # without boundary resistance all grains share their nodes (labels still tell the boundaries apart)
    grp = np.where(kind == 1, 1, group) if no_gb else group
    corner, node_of, _ = _fem.node_copies(grp, kind, periodic_y, periodic_x)
    n_dof = len(node_of)
    conducting = kind != 0
    faces = _fem.pixel_faces(conducting, periodic_y, periodic_x)
    fd = _fem.face_dofs(corner, faces)
    split = (fd[:, 0] != fd[:, 2]) | (fd[:, 1] != fd[:, 3])
    gh = np.where(split, g_if * h, 0.0)
    k = _fem.assemble(corner, sigma, conducting, fd, gh, n_dof)
    adj = _fem.connectivity(corner, conducting, fd, gh, n_dof)
    fixed = np.full(n_dof, np.nan)
    owner = np.full(n_dof, -1, dtype=np.int64)
    n_contacts = []
    for i, (e, nodes) in enumerate(zip(elec, enodes)):
        d = np.flatnonzero(np.isin(node_of, nodes))
        new = d[owner[d] < 0]
        owner[new] = i
        fixed[d] = e["potential"]
        n_contacts.append(len(d))
        if len(d) == 0:
            raise InputError(f"electrode {e['name']!r} touches no conducting pixel")
    phi, floating, info = solve_dirichlet(k, adj, fixed, solver=solver, rtol=rtol)
    phi0 = np.nan_to_num(phi, nan=0.0)
    inj = k @ phi0
    currents = np.array([inj[owner == i].sum() for i in range(len(elec))])

    ny, nx = labels.shape
    pc = np.where(corner >= 0, phi[np.maximum(corner, 0)], np.nan)  # (ny, nx, 4)
    potential = pc.mean(axis=2)
    gx, gy = _fem.pixel_gradients(pc, h)
    field = np.stack([-gx, -gy], axis=-1)
    jd = np.stack(
        [sigma[..., 0] * field[..., 0] + sigma[..., 1] * field[..., 1], sigma[..., 1] * field[..., 0] + sigma[..., 2] * field[..., 1]],
        axis=-1,
    )
    field[~conducting] = 0.0
    jd[~conducting] = 0.0
    floating_px = conducting & np.any(np.where(corner >= 0, floating[np.maximum(corner, 0)], False), axis=2)
    for arr in (field, jd):
        arr[floating_px] = np.nan
    nny, nnx = node_shape
    good = np.isfinite(phi)
    cnt = np.bincount(node_of[good], minlength=nny * nnx)
    s = np.bincount(node_of[good], weights=phi[good], minlength=nny * nnx)
    with np.errstate(invalid="ignore", divide="ignore"):
        node_pot = (s / cnt).reshape(nny, nnx)

    isgb = gb_face(faces["ra"], faces["ca"], faces["rb"], faces["cb"])
    sel = {key: v[isgb] for key, v in faces.items()}
    if no_gb:
        side_a = np.where(sel["axis"] == 1, 1, 2)
        side_b = np.where(sel["axis"] == 1, 3, 0)
        fa = _fem.element_face_flux(pc[sel["ra"], sel["ca"]], sigma[sel["ra"], sel["ca"]], side_a, h)
        fb = _fem.element_face_flux(pc[sel["rb"], sel["cb"]], sigma[sel["rb"], sel["cb"]], side_b, h)
        cur = 0.5 * (fa - fb) * h
    else:
        cur = _fem.face_currents(phi, fd[isgb], gh[isgb])
    sel["current"] = cur
    return {
        "potential": potential,
        "node_potential": node_pot,
        "field": field,
        "current_density": jd,
        "floating": floating_px,
        "electrode_currents": currents,
        "electrode_contacts": n_contacts,
        "gb_faces": sel,
        "solver": {**info, "n_dof": int(n_dof)},
    }

