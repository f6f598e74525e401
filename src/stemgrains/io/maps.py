"""Orientation maps: reading ``.ang``/``.ctf``/orix ``.h5`` and our own results layout; writing our layout.

Every map comes back as an orix ``CrystalMap`` following the project conventions:

* shape ``(ny, nx)`` = (scan rows, scan columns); ``x`` runs along the columns, ``y`` along the rows
  (``xmap.x.reshape(xmap.shape)[0]`` increases, ``xmap.y.reshape(xmap.shape)[:, 0]`` increases);
* ``x``/``y`` in **nm** and ``scan_unit == "nm"``: EBSD ``.ang`` (EDAX TSL, EMsoft) and ``.ctf`` (Oxford)
  store µm and are multiplied by 1000; NanoMegas ASTAR ``.ang`` files (header "ACOM") store nm (e.g. a 2 nm
  step is written ``2.000``) and are kept as they are; orix decides the vendor from the header and we
  follow its ``scan_unit``. A map whose unit is ``px`` keeps pixel coordinates.
* rotations as stored by the file (orix convention: sample → crystal, Bunge Euler angles as written).
  Vendor EBSD software may refer the Euler angles to a frame rotated about the beam from the map frame
  (EDAX TSL "setting 2"); no such correction is applied. Misorientations, grains and boundary
  misorientation angles do not depend on it; absolute in-plane directions (boundary traces against the
  c-axis) do.

Our results layout (written by :func:`write_orientation_map`, next to the provenance of
:mod:`stemgrains.io.results`)::

    /orientation/quaternions          (ny, nx, 4) float64, orix convention, scalar first
    /orientation/phase_id             (ny, nx) int32, -1 = not indexed
    /orientation/correlation_index    (ny, nx) float   (when present in the map)
    /orientation/reliability          (ny, nx) float   (when present)
    /orientation/phase_reliability    (ny, nx) float   (optional)
    /orientation/<prop>               (ny, nx, …) every other property of the map
    /orientation/candidate_quaternions (ny, nx, k, 4)  when the map holds k > 1 rotations per point
    /calibration  attrs scan_step_nm
    /phases/<id>  stemgrains.crystal.write_phases
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from typing import Any

import h5py
import numpy as np

from ..errors import FileFormatError, InputError, ParameterError, StemgrainsError
from ._common import HDF5_SIGNATURE, check_file, file_signature, first_line, open_h5, scalar_attr

__all__ = ["load_orientation_map", "write_orientation_map", "read_orientation_map", "map_scan_step_nm"]

_UNIT_TO_NM = {"nm": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "mm": 1e6, "a": 0.1, "å": 0.1}
_RESERVED = ("quaternions", "phase_id", "candidate_quaternions")


def map_scan_step_nm(xmap: Any) -> float | None:
    """Scan step of a CrystalMap in nm (``None`` if its unit is pixels or unknown)."""
    attached = getattr(xmap, "scan_step_nm", None)  # stemgrains._grid.attach_scan_step (1 x 1 maps have no dx)
    if attached:
        return float(attached)
    f = _UNIT_TO_NM.get(str(getattr(xmap, "scan_unit", "px")).strip().lower())
    if f is None:
        return None
    step = float(xmap.dx) if xmap.dx else float(getattr(xmap, "dy", 0.0) or 0.0)
    return step * f if step > 0 else None


def _grid_indices(xmap: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(row, col) of every point in the data and the full map shape, from the x/y coordinates."""
    n = xmap.size
    x = np.zeros(n) if xmap.x is None else np.asarray(xmap.x, dtype=float)
    y = np.zeros(n) if xmap.y is None else np.asarray(xmap.y, dtype=float)
    dx = float(xmap.dx) if xmap.dx else 1.0
    dy = float(xmap.dy) if getattr(xmap, "dy", 0) else dx
    cols = np.rint((x - x.min()) / dx).astype(np.int64) if n else x.astype(np.int64)
    rows = np.rint((y - y.min()) / dy).astype(np.int64) if n else y.astype(np.int64)
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    return rows, cols, shape


def _rescaled(xmap: Any, source: str) -> Any:
    """A copy of ``xmap`` with x/y in nm (unit 'nm'); unchanged if already nm or in pixels."""
    from orix.crystal_map import CrystalMap

    unit = str(xmap.scan_unit).strip().lower()
    f = _UNIT_TO_NM.get(unit)
    if f is None or f == 1.0:
        return xmap
    if not xmap.is_in_data.all():
        raise FileFormatError(f"{source}: maps with points outside the data are not supported")
    return CrystalMap(
        rotations=xmap.rotations,
        phase_id=xmap.phase_id,
        x=None if xmap.x is None else np.asarray(xmap.x, dtype=float) * f,
        y=None if xmap.y is None else np.asarray(xmap.y, dtype=float) * f,
        phase_list=xmap.phases,
        prop=dict(xmap.prop),
        scan_unit="nm",
    )


def _check_axes(xmap: Any, source: str) -> None:
    """x must run along columns and y along rows of ``xmap.shape`` (raster order, x fastest)."""
    if xmap.x is None or xmap.y is None or len(xmap.shape) != 2:
        return
    ny, nx = xmap.shape
    if xmap.size != ny * nx:
        return
    x = np.asarray(xmap.x).reshape(ny, nx)
    y = np.asarray(xmap.y).reshape(ny, nx)
    ok = (nx == 1 or np.all(np.diff(x[0]) > 0)) and (ny == 1 or np.all(np.diff(y[:, 0]) > 0))
    if not ok:
        raise FileFormatError(f"{source}: map points are not in raster order (x along columns, y along rows)")


def read_orientation_map(f: h5py.File | h5py.Group, source: str = "results file") -> Any:
    """Read our ``/orientation`` layout from an open HDF5 file into a CrystalMap (x/y in nm)."""
    from orix.crystal_map import CrystalMap, PhaseList
    from orix.quaternion import Rotation

    from ..crystal import read_phases

    if "orientation" not in f or not isinstance(f["orientation"], h5py.Group):
        raise FileFormatError(f"{source}: no /orientation group")
    g = f["orientation"]
    if "quaternions" not in g or "phase_id" not in g:
        raise FileFormatError(f"{source}: /orientation needs 'quaternions' and 'phase_id' datasets")
    q = np.asarray(g["quaternions"][()], dtype=np.float64)
    pid = np.asarray(g["phase_id"][()])
    if q.ndim != 3 or q.shape[-1] != 4:
        raise FileFormatError(f"{source}: /orientation/quaternions has shape {q.shape}; expected (ny, nx, 4)")
    ny, nx = q.shape[:2]
    if pid.shape != (ny, nx) or pid.dtype.kind not in "iu":
        raise FileFormatError(f"{source}: /orientation/phase_id has shape {pid.shape} {pid.dtype}; expected int ({ny}, {nx})")
    if not np.all(np.isfinite(q)):
        raise FileFormatError(f"{source}: /orientation/quaternions holds non-finite values")
    n = ny * nx
    if "candidate_quaternions" in g:
        cq = np.asarray(g["candidate_quaternions"][()], dtype=np.float64)
        if cq.ndim != 4 or cq.shape[:2] != (ny, nx) or cq.shape[-1] != 4:
            raise FileFormatError(f"{source}: /orientation/candidate_quaternions has shape {cq.shape}")
        rot = Rotation(cq.reshape(n, cq.shape[2], 4))
    else:
        rot = Rotation(q.reshape(n, 4))
    prop = {}
    for name, obj in g.items():
        if name in _RESERVED or not isinstance(obj, h5py.Dataset):
            continue
        arr = obj[()]
        if arr.shape[:2] != (ny, nx):
            continue  # not a per-pixel property
        prop[name] = arr.reshape((n,) + arr.shape[2:])
    step = None
    if "calibration" in f:
        step = scalar_attr(f["calibration"].attrs, "scan_step_nm")
    if step is not None:
        step = float(step)
        if not np.isfinite(step) or step <= 0:
            raise FileFormatError(f"{source}: /calibration scan_step_nm = {step!r}; expected a positive number")
    rows, cols = np.divmod(np.arange(n), nx)
    unit = "nm" if step is not None else "px"
    step = step if step is not None else 1.0
    phases = read_phases(f, source=source) if "phases" in f else PhaseList()
    ids = set(np.unique(pid).tolist()) - {-1}
    missing = ids - set(phases.ids)
    if missing:
        raise FileFormatError(f"{source}: /orientation/phase_id uses phase(s) {sorted(missing)} not in /phases")
    from .._grid import attach_scan_step

    xmap = CrystalMap(
        rotations=rot,
        phase_id=pid.reshape(n).astype(np.int64),
        x=cols * step,
        y=rows * step,
        phase_list=phases,
        prop=prop,
        scan_unit=unit,
    )
    return attach_scan_step(xmap, step if unit == "nm" else None)


def write_orientation_map(target: h5py.File | h5py.Group | str | os.PathLike, xmap: Any) -> None:
    """Write a CrystalMap in our ``/orientation`` layout (see the module docstring).

    Parameters
    ----------
    target
        An open, writable h5py file/group (e.g. from :func:`stemgrains.io.results.atomic_h5`), or a path:
        then a new results file is written atomically.
    xmap
        orix ``CrystalMap``. Points outside the data (``is_in_data`` False) are written with phase_id -1
        and the identity quaternion. Its coordinates give ``/calibration`` ``scan_step_nm`` (set when
        absent; a different value already there raises ParameterError).
    """
    from orix.crystal_map import CrystalMap

    if not isinstance(xmap, CrystalMap):
        raise InputError(f"xmap must be an orix CrystalMap, got {type(xmap).__name__}")
    if not isinstance(target, (h5py.File, h5py.Group)):
        from .results import atomic_h5

        with atomic_h5(target) as f:
            write_orientation_map(f, xmap)
        return
    rows, cols, (ny, nx) = _grid_indices(xmap)
    n_rot = xmap.rotations_per_point
    rq = np.asarray(xmap.rotations.data, dtype=np.float64)
    q = np.zeros((ny, nx, 4))
    q[..., 0] = 1.0
    q[rows, cols] = rq[:, 0] if n_rot > 1 else rq
    pid = np.full((ny, nx), -1, dtype=np.int32)
    pid[rows, cols] = xmap.phase_id
    if "orientation" in target:
        del target["orientation"]
    g = target.create_group("orientation")
    g.create_dataset("quaternions", data=q)
    g.create_dataset("phase_id", data=pid)
    if n_rot > 1:
        cq = np.zeros((ny, nx, n_rot, 4))
        cq[..., 0] = 1.0
        cq[rows, cols] = rq
        g.create_dataset("candidate_quaternions", data=cq)
    for name, values in xmap.prop.items():
        if name in _RESERVED:
            continue
        v = np.asarray(values)
        if v.dtype.kind not in "biuf" or v.shape[0] != xmap.size:
            continue
        full = np.full((ny, nx) + v.shape[1:], np.nan if v.dtype.kind == "f" else 0, dtype=v.dtype)
        full[rows, cols] = v
        g.create_dataset(name, data=full)
    step = map_scan_step_nm(xmap)
    if step is not None:
        cal = target.require_group("calibration")
        old = scalar_attr(cal.attrs, "scan_step_nm")
        if old is not None and abs(float(old) - step) > 1e-6 * step:
            raise ParameterError(
                f"map scan step {step:g} nm differs from /calibration scan_step_nm = {float(old):g} nm in the file"
            )
        cal.attrs["scan_step_nm"] = step
    phases = [(i, p) for i, p in xmap.phases if i >= 0]
    if phases:
        from orix.crystal_map import PhaseList

        from ..crystal import write_phases

        write_phases(target, PhaseList(phases=[p for _, p in phases], ids=[i for i, _ in phases]))


#: crystal frames of hexagonal/trigonal phases in map files (``hex_frame`` of :func:`load_orientation_map`)
HEX_FRAMES = ("auto", "x-a", "x-astar")


#: start of the ``# Info`` text of an .ang phase block in which :func:`stemgrains.io.export.write_ang` records
#: the phase's own point group and space group (the TSL ``Symmetry`` code stands for a Laue class)
ANG_INFO_TAG = "stemgrains: point group"

#: columns of an .ang data row: Euler angles, x, y, image quality, confidence index, phase (EDAX TSL)
ANG_MIN_COLUMNS = 8


def _text_map_check(p: Any, ext: str) -> str:
    """Refuse an empty or header-less .ang/.ctf with one line; return the .ctf vendor ("" for .ang).

    Vendor, as orix tells them apart: "astar" (NanoMegas), "emsoft", "mtex", else "oxford" (Oxford/Bruker,
    and the files stemgrains writes).
    """
    source = str(p)
    try:
        with open(p, encoding="utf-8", errors="replace") as f:
            text_lines = f.read().splitlines()
    except OSError as err:
        raise FileFormatError(f"{source}: cannot read ({first_line(err)})") from None
    if ext == ".ang":
        data = [ln for ln in text_lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not data:
            raise FileFormatError(f"{source}: no data points (an empty .ang map: only a header, or nothing)")
        n_cols = len(data[0].split())
        if n_cols < ANG_MIN_COLUMNS:
            raise FileFormatError(f"{source}: its data rows have {n_cols} columns; an .ang map has at least "
                                  f"{ANG_MIN_COLUMNS} (phi1 PHI phi2 x y IQ CI phase)")
        _last_row_check(source, data)
        return ""
    start = next((i for i, ln in enumerate(text_lines) if ln.startswith("Phase\tX\tY")), None)
    if start is None:
        raise FileFormatError(f"{source}: not an Oxford .ctf map (no 'Phase X Y ...' column header line)")
    data = [ln for ln in text_lines[start + 1:] if ln.strip()]
    if not data:
        raise FileFormatError(f"{source}: no data points (an empty .ctf map: only a header)")
    _last_row_check(source, data)
    head = "\n".join(text_lines[:start])
    if "File created from ACOM RES results" in head:
        return "astar"
    if "EMsoft v." in head:
        return "emsoft"
    if "Created from mtex" in head:
        return "mtex"
    return "oxford"


def _last_row_check(source: str, data: list[str]) -> None:
    """Refuse, with one line, a map whose last data row has fewer values than its first: a copy cut mid-row
    (numpy's own complaint names ``usecols``, nothing a user can act on)."""
    n_first, n_last = len(data[0].split()), len(data[-1].split())
    if n_last < n_first:
        raise FileFormatError(f"{source}: its last data row is incomplete ({n_last} of {n_first} values; the file "
                              "is truncated?)")


def _columns_changed(source: str, err: Exception) -> str | None:
    """numpy's "the number of columns changed from A to B at row R; use `usecols` ..." as our one line."""
    m = re.search(r"number of columns changed from (\d+) to (\d+) at row (\d+)", str(err))
    if m is None:
        return None
    before, now, row = m.groups()
    return (f"{source}: data row {row} has {now} values where the rows before it have {before} (a damaged or "
            "edited file?)")


def _stated_grid(p: Any, ext: str, header: dict[str, str]) -> tuple[int, int] | None:
    """``(rows, columns)`` of the square grid a map's header states: .ang ``NROWS`` and ``NCOLS_ODD`` (when
    ``NCOLS_EVEN`` is the same or absent), .ctf ``YCells`` and ``XCells``; ``None`` when it states none."""
    if ext == ".ang":
        rows, odd, even = (header.get(k, "").strip() for k in ("NROWS", "NCOLS_ODD", "NCOLS_EVEN"))
        if even and even != odd:
            return None
    else:
        cells: dict[str, str] = {}
        with open(p, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Phase\tX\tY"):
                    break
                key, _, value = line.partition("\t")
                cells.setdefault(key.strip(), value.strip())
        rows, odd = cells.get("YCells", ""), cells.get("XCells", "")
    try:
        grid = int(rows), int(odd)
    except ValueError:
        return None
    return grid if min(grid) > 0 else None


def _check_square_grid(xmap: Any, p: Any, ext: str, header: dict[str, str]) -> None:
    """Refuse, with one line, a map with fewer data rows than the grid its header states (a copy cut short:
    numpy reshape tracebacks further on, or a smaller map read silently), or whose x/y coordinates span a
    grid it does not fill; the grid named is the header's, as the file states it."""
    n = int(np.asarray(xmap.is_in_data).size)
    stated = _stated_grid(p, ext, header)
    if stated is not None and n < stated[0] * stated[1]:
        raise FileFormatError(f"{p}: {n} data rows for the {stated[0]} x {stated[1]} grid its header states "
                              f"({stated[0] * stated[1]} points); the file is truncated or its header is wrong")
    grid = int(np.prod(xmap.shape))
    if len(xmap.shape) == 2 and n != grid:
        ny, nx = (int(v) for v in xmap.shape)
        raise FileFormatError(f"{p}: {n} data rows for the {ny} x {nx} grid their x/y coordinates span ({grid} "
                              "points); the file is truncated or points are missing")


def load_orientation_map(path: str | os.PathLike, *, hex_frame: str = "auto") -> Any:
    """Load an orientation map as an orix ``CrystalMap`` with x/y in nm (see the module docstring).

    Parameters
    ----------
    path
        ``.ang`` (EDAX TSL, NanoMegas ASTAR, EMsoft, orix), ``.ctf`` (Oxford), orix ``.h5``, or a stemgrains
        results file holding ``/orientation``.
    hex_frame
        Crystal frame the file uses for hexagonal/trigonal phases. ``"auto"`` (default): the vendor's
        convention — Oxford/Bruker ``.ctf`` (and those stemgrains writes) x ∥ a*, everything else x ∥ a.
        ``"x-astar"`` or ``"x-a"`` force one. Orientations given with x ∥ a* are rotated by 30° about c into
        orix's frame (x ∥ a); ``xmap.hex_frame`` records what was done.

    Returns
    -------
    orix.crystal_map.CrystalMap
        Shape ``(ny, nx)``, x along columns, y along rows, ``scan_unit == "nm"`` (or ``"px"`` if the file
        gives no physical step).
    """
    if hex_frame not in HEX_FRAMES:
        raise ParameterError(f"hex_frame must be one of {', '.join(HEX_FRAMES)}, got {hex_frame!r}")
    p = check_file(path, "orientation map")
    source = str(p)
    ext = p.suffix.lower()
    vendor = ""
    if file_signature(p) == HDF5_SIGNATURE:
        f = open_h5(p)
        try:
            with f:
                if "orientation" in f:
                    return _hex_frame(read_orientation_map(f, source=source), hex_frame == "x-astar", "results file")
        except StemgrainsError:
            raise
        except Exception as err:  # damaged HDF5: h5py raises many types
            raise FileFormatError(f"{source}: damaged results file ({first_line(err)})") from None
        from .fourd import is_4d_data

        if is_4d_data(p):
            raise FileFormatError(f"{source}: 4D diffraction data, not a results file or orientation map; index it "
                                  "first (stemgrains run or stemgrains index)")
    elif ext in (".h5", ".hdf5", ".hdf"):
        raise FileFormatError(f"{source}: not an HDF5 file (no HDF5 signature)")
    elif ext not in (".ang", ".ctf"):
        raise FileFormatError(f"{source}: unsupported orientation map type {ext or '(none)'}; expected .ang, .ctf or .h5")
    else:
        vendor = _text_map_check(p, ext)
    from orix.io import load as orix_load

    what = {".ang": "an .ang", ".ctf": "a .ctf"}.get(ext, "an orientation")
    try:
        # orix prints notes while renaming phases, numpy warns on odd rows: the one-line error says it all
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xmap = orix_load(str(p), **({"autogen_names": False} if ext == ".ang" else {}))
            if ext == ".ang" and not _material_names_usable(xmap):
                xmap = orix_load(str(p))  # orix's names from the formulas (made unique)
    except StemgrainsError:
        raise
    except Exception as err:  # orix/numpy raise many types on malformed text or HDF5
        if not vendor and ext not in (".ang", ".ctf"):  # HDF5 without /orientation that orix does not know either
            raise FileFormatError(f"{source}: cannot read as an orientation map: no /orientation group (not a "
                                  f"stemgrains results file) and not an orix map ({first_line(err)})") from None
        raise FileFormatError(_columns_changed(source, err)
                              or f"{source}: cannot read as {what} map ({first_line(err)})") from None
    if xmap.size == 0:
        raise FileFormatError(f"{source}: no data points in the map")
    from .._grid import ang_header, hex_grid_points, hex_to_square

    header = ang_header(p) if ext == ".ang" else {}
    hex_grid = header.get("GRID", "").lower().startswith("hex")  # rows alternate in length: not this check
    if not hex_grid and ext in (".ang", ".ctf"):
        _check_square_grid(xmap, p, ext, header)
    elif not hex_grid and len(xmap.shape) == 2 and np.asarray(xmap.is_in_data).size != int(np.prod(xmap.shape)):
        raise FileFormatError(f"{source}: {np.asarray(xmap.is_in_data).size} data points for the "
                              f"{xmap.shape[0]} x {xmap.shape[1]} grid of the map; points are missing")
    if hex_grid:  # orix reads HexGrid points as if on a square grid
        expected = hex_grid_points(header)
        if expected is not None and xmap.size != expected:
            raise FileFormatError(f"{source}: {xmap.size} data points for the hexagonal grid its header states "
                                  f"({header['NROWS']} rows alternating {header['NCOLS_ODD']} and {header['NCOLS_EVEN']} "
                                  f"points, {expected} in all); the file is "
                                  f"{'truncated' if xmap.size < expected else 'longer than its header says'} or its "
                                  "header is wrong")
        xmap = hex_to_square(xmap, source)
    _check_axes(xmap, source)
    astar = hex_frame == "x-astar" or (hex_frame == "auto" and ext == ".ctf" and vendor == "oxford")
    out = _hex_frame(_rescaled(xmap, source), astar, f"{vendor or ext.lstrip('.')} {ext}")
    if getattr(xmap, "resampled_from", None):
        out.resampled_from = xmap.resampled_from
    if ext == ".ang":
        _own_export_props(out, p)
        _recorded_symmetry(out, p)
    return out


def ang_phase_header(lines: Any) -> Any:
    """``(k, phase, text)`` for each header line of an .ang (``lines``: its lines, up to the first data row):
    the line's index, the number of the ``# Phase N`` block it lies in (None before the first) and its text
    without the leading ``#`` and spaces. Read by :func:`_recorded_symmetry` and written through by
    :func:`stemgrains.io.export.write_ang`."""
    current = None
    for k, line in enumerate(lines):
        if not line.startswith("#"):
            return
        text = line.lstrip("#").strip()
        words = text.split()
        if len(words) == 2 and words[0] == "Phase" and words[1].isdigit():
            current = int(words[1])
        yield k, current, text


def _recorded_symmetry(xmap: Any, path: "os.PathLike[str]") -> None:
    """Give the phases of an .ang that :func:`stemgrains.io.export.write_ang` wrote the point group (and space
    group) its phase blocks record in ``# Info`` (:func:`~stemgrains.io.export.ang_phase_info`). orix reads the
    TSL ``Symmetry`` code as a proper point group: ``32`` (trigonal -3m) came back as 321, which ``info`` showed
    for an R-3m phase. Only where the recorded group has the Laue class of the ``Symmetry`` code (a file edited
    since keeps what orix read); other .ang files (EDAX TSL, ASTAR, EMsoft) are read as orix reads them."""
    from orix.crystal_map import Phase

    recorded: dict[int, tuple[str, int | None]] = {}
    pattern = re.compile(rf"Info\s+{re.escape(ANG_INFO_TAG)} (\S+)(?:; space group (\d+)\b.*)?")
    with open(path, encoding="utf-8", errors="replace") as fh:
        for _, current, text in ang_phase_header(fh):
            if current is not None and (m := pattern.fullmatch(text)):
                recorded[current] = (m.group(1), int(m.group(2)) if m.group(2) else None)
    for pid, phase in xmap.phases:
        if pid not in recorded or phase.point_group is None:
            continue
        name, number = recorded[pid]
        try:
            found = Phase(point_group=name)
            if number is not None and Phase(space_group=number).point_group.name == name:
                found = Phase(space_group=number)
        except Exception:  # not a point group / space group orix knows: keep what orix read
            continue
        if found.point_group is None or found.point_group.laue.name != phase.point_group.laue.name:
            continue
        if found.space_group is not None:
            phase.space_group = found.space_group
        else:
            phase.point_group = found.point_group


def _own_export_props(xmap: Any, path: "os.PathLike[str]") -> None:
    """An ``.ang`` that stemgrains exported (:func:`stemgrains.io.export.write_ang`, its header names the input)
    holds the reliability / 100 in its CI column and the correlation index in its IQ column: read back as the props
    ``reliability`` and ``correlation_index`` too (``ci`` and ``iq`` are kept), so that a cut on either judges what
    it judged on the results file (``segment_grains`` took ``ci`` for the correlation index: a cut at 0.1 was a
    cut at R 10)."""
    from .outputs import _export_recorded_input

    if {"ci", "iq"} <= set(xmap.prop) and _export_recorded_input(path) is not None:
        ci = np.asarray(xmap.prop["ci"], dtype=np.float64)
        xmap.prop["reliability"] = 100.0 * np.clip(ci, 0.0, None)  # (CI −1: not indexed)
        xmap.prop["correlation_index"] = np.asarray(xmap.prop["iq"], dtype=np.float64)


def _material_names_usable(xmap: Any) -> bool:
    """Whether the phases of an .ang read with their ``MaterialName`` (orix ``autogen_names=False``) have names
    that are all set and distinct. orix names them by ``Formula`` otherwise: ``MaterialName Beta-alumina``
    with ``Formula X`` became a phase "X", which nothing recognised as a conducting phase."""
    names = [str(ph.name or "").strip() for i, ph in xmap.phases if i >= 0]
    return all(names) and len(set(names)) == len(names)


def _hex_frame(xmap: Any, astar: bool, origin: str) -> Any:
    """Bring hexagonal/trigonal orientations given with x ∥ a* into orix's x ∥ a; record the frame used."""
    if astar:
        from ..crystal import is_hexagonal_like
        from ..grains.segment import astar_to_a_frame

        if any(i >= 0 and is_hexagonal_like(p) for i, p in xmap.phases):
            params = getattr(xmap, "parameters", None)
            xmap = astar_to_a_frame(xmap)
            if params is not None:
                xmap.parameters = params  # type: ignore[attr-defined]
            xmap.hex_frame = f"x || a* ({origin}): rotated 30 deg about c into x || a"  # type: ignore[attr-defined]
            return xmap
    xmap.hex_frame = "x || a (as stored)"  # type: ignore[attr-defined]
    return xmap
