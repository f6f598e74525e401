"""Orientation maps for other programs: EDAX TSL ``.ang`` and Oxford ``.ctf``, written atomically.

Both formats store lengths in **µm** (every reader — OIM Analysis, AZtec/Channel 5, MTEX, orix — takes them
so), so the map's x/y in nm are divided by 1000. Euler angles are Bunge (φ1, Φ, φ2) of the orix orientation
(sample → crystal).

Quality columns (the mapping follows NanoMegas ASTAR's own .ang export, which writes its "index" as IQ and
its "reliability" as CI):

=================  ==================================================  ======================================
column             .ang (EDAX TSL)                                     .ctf (Oxford)
=================  ==================================================  ======================================
correlation index  IQ = correlation_index (0–1)                        BC = round(255 · correlation_index)
reliability R      CI = R / 100 (0–1; the usual "CI > 0.1" clean-up    BS = round(2.55 · R) (0–255)
                   keeps pixels with R > 10)
spots found        —                                                   Bands = n_peaks
not indexed        phase −1 (one phase) or 0, CI = −1, IQ = 0 (orix)   Phase 0, Error 3 ("no solution")
phase ids          1 … n in the order of the map's phase list          1 … n, same order
=================  ==================================================  ======================================

Hexagonal and trigonal phases: ``.ang`` is written in orix's crystal frame (x ∥ a, EDAX TSL's convention);
``.ctf`` in Oxford's (x ∥ a*): orientations are rotated by −30° about c, the inverse of what
:func:`stemgrains.io.load_orientation_map` applies when it reads an Oxford ``.ctf``, so that AZtec, MTEX
(``'X||a*'``) and our own reader see the map we wrote.

Phase symmetry: the ``.ang`` ``Symmetry`` field holds the TSL code of the phase's Laue class (orix writes ``32``
for -3m and 321 alike, and reads it back as 321); each phase's ``# Info`` line records its point group and space
group (:func:`ang_phase_info`), which :func:`stemgrains.io.load_orientation_map` gives back to the phase. The
``.ctf`` phase lines hold Oxford's Laue-group number and the space group number.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..crystal.symmetry import laue_group
from .._version import __version__
from ..errors import InputError

__all__ = ["write_ang", "write_ctf", "OXFORD_LAUE_IDS"]

#: Oxford's Laue-group numbers in .ctf phase lines
OXFORD_LAUE_IDS = {"-1": 1, "2/m": 2, "mmm": 3, "4/m": 4, "4/mmm": 5, "-3": 6, "-3m": 7, "6/m": 8, "6/mmm": 9,
                   "m-3": 10, "m3": 10, "m-3m": 11}


def _scale_to_um(xmap: Any) -> float:
    unit = str(getattr(xmap, "scan_unit", "px")).strip().lower()
    return {"nm": 1e-3, "um": 1.0, "µm": 1.0, "μm": 1.0, "mm": 1e3}.get(unit, 1.0)


def _prop(xmap: Any, name: str, default: float) -> np.ndarray:
    if name in xmap.prop:
        v = np.asarray(xmap.prop[name], dtype=float)
        return v.reshape(v.shape[0], -1)[:, 0] if v.ndim > 1 else v
    return np.full(xmap.size, default, dtype=float)


def _atomic_path(path: str | os.PathLike) -> Any:
    """:func:`~stemgrains.io.results.atomic_path` keeping the extension (the writers choose the format by it)."""
    from .results import atomic_path

    return atomic_path(path, Path(path).suffix)


def _checked(xmap: Any) -> tuple[float, Any]:
    """What both writers start from: ``(f, rotations)``, f the factor taking the map's x/y to µm and one orix
    ``Rotation`` per point (the best, where the map holds several); InputError unless ``xmap`` is a CrystalMap."""
    from orix.crystal_map import CrystalMap

    if not isinstance(xmap, CrystalMap):
        raise InputError(f"xmap must be an orix CrystalMap, got {type(xmap).__name__}")
    return _scale_to_um(xmap), xmap.rotations if xmap.rotations_per_point == 1 else xmap.rotations[:, 0]


def write_ang(path: str | os.PathLike, xmap: Any, *, source: str | os.PathLike | None = None) -> Path:
    """Write an EDAX TSL ``.ang`` file (x/y in µm, IQ/CI from the quality props; see the module docstring).

    Parameters
    ----------
    path
        Output ``.ang`` file (written to a temporary name, then renamed).
    xmap
        orix ``CrystalMap`` with x/y in nm (``scan_unit`` "nm"; "um" and "px" are written as they are) and,
        optionally, props ``correlation_index`` (0–1) and ``reliability`` (0–100).
    source
        The input the map was made from: named in a first header comment line
        (:func:`stemgrains.io.outputs.export_input_line`), which marks the file as ours for that input.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from orix.crystal_map import CrystalMap
    from orix.io import save

    f, rot = _checked(xmap)
    ci = np.clip(_prop(xmap, "reliability", 0.0), 0.0, 100.0) / 100.0
    iq = np.clip(_prop(xmap, "correlation_index", 0.0), 0.0, None)
    out = CrystalMap(
        rotations=rot,
        phase_id=np.asarray(xmap.phase_id),
        x=None if xmap.x is None else np.asarray(xmap.x, dtype=float) * f,
        y=None if xmap.y is None else np.asarray(xmap.y, dtype=float) * f,
        phase_list=xmap.phases,
        prop={"iq": iq, "ci": ci},
        scan_unit="um",
    )
    with _atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()):
        save(tmp, out, image_quality_prop="iq", confidence_index_prop="ci", overwrite=True)
        text = _with_phase_info(Path(tmp).read_text(encoding="utf-8"), xmap)
        if source is not None:
            from .outputs import export_input_line

            text = export_input_line(source) + "\n" + text
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def ang_phase_info(phase: Any) -> str:
    """The ``# Info`` text :func:`write_ang` gives a phase: ``stemgrains: point group -3m; space group 166
    (H-3m)`` (R-3m, hexagonal axes). The ``Symmetry`` field holds a TSL code (orix writes the proper point group
    of the phase's point group, ``32`` for -3m as for 321), which stands for a Laue class; this keeps the point
    group (and space group) itself, for :func:`stemgrains.io.load_orientation_map` to read back."""
    from .maps import ANG_INFO_TAG

    if phase.point_group is None:
        return ""
    text = f"{ANG_INFO_TAG} {phase.point_group.name}"
    if phase.space_group is not None:
        text += f"; space group {phase.space_group.number} ({phase.space_group.short_name})"
    return text


def _with_phase_info(text: str, xmap: Any) -> str:
    """orix's .ang text with each phase block's empty ``# Info`` line holding :func:`ang_phase_info` (orix
    numbers the phases 1 … n in the order of the map's phase list, not-indexed left out)."""
    from .maps import ang_phase_header

    phases = [p for i, p in xmap.phases if i >= 0]
    lines = text.split("\n")
    for k, current, field in list(ang_phase_header(lines)):
        if field == "Info" and current is not None and 1 <= current <= len(phases):
            info = ang_phase_info(phases[current - 1])
            if info:
                lines[k] = f"# Info    {info}"
    return "\n".join(lines)


def _rotate_to_astar(xmap: Any, q: np.ndarray, phase_id: np.ndarray) -> np.ndarray:
    """Orientations of hexagonal/trigonal phases in the x ∥ a* crystal frame: ``O_file = R_c(−30°) · O``."""
    from orix.quaternion import Rotation

    from ..grains.segment import is_hexagonal_like

    rot = Rotation.from_axes_angles([0.0, 0.0, 1.0], np.radians(-30.0))
    out = q.copy()
    for pid, phase in xmap.phases:
        if pid >= 0 and is_hexagonal_like(phase):
            sel = phase_id == pid
            if sel.any():
                out[sel] = (rot * Rotation(q[sel])).data.reshape(-1, 4)
    return out


def write_ctf(path: str | os.PathLike, xmap: Any, *, accelerating_voltage_kV: float | None = None,
              source: str | os.PathLike | None = None) -> Path:
    """Write an Oxford Channel Text File ``.ctf`` (x/y and steps in µm; see the module docstring).

    Parameters
    ----------
    path
        Output ``.ctf`` file (written to a temporary name, then renamed).
    xmap
        orix ``CrystalMap`` on a regular grid, x/y in nm.
    accelerating_voltage_kV
        Written into the header's ``KV`` field (0 when unknown).
    source
        The input the map was made from: named in a header comment line after ``Channel Text File``
        (:func:`stemgrains.io.outputs.export_input_line`), which marks the file as ours for that input.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from orix.quaternion import Rotation

    from .maps import _grid_indices

    f, rot = _checked(xmap)
    rows, cols, (ny, nx) = _grid_indices(xmap)
    step = (float(xmap.dx) if xmap.dx else 1.0) * f
    pid = np.asarray(xmap.phase_id).astype(np.int64)
    q = _rotate_to_astar(xmap, np.asarray(rot.data, dtype=float).reshape(-1, 4), pid)
    eul = np.degrees(Rotation(q).to_euler()) % 360.0
    phases = [(i, p) for i, p in xmap.phases if i >= 0]
    file_id = {i: k + 1 for k, (i, _) in enumerate(phases)}
    ctf_phase = np.array([file_id.get(int(i), 0) for i in pid], dtype=np.int64)
    bc = np.rint(255 * np.clip(_prop(xmap, "correlation_index", 0.0), 0, 1)).astype(int)
    bs = np.rint(2.55 * np.clip(_prop(xmap, "reliability", 0.0), 0, 100)).astype(int)
    bands = np.clip(_prop(xmap, "n_peaks", 0.0), 0, None).astype(int)
    error = np.where(ctf_phase == 0, 3, 0)
    eul[ctf_phase == 0] = 0.0
    lines = [
        "Channel Text File",
        f"Prj\t{Path(path).stem}",
        f"Author\tstemgrains {__version__}",
        "JobMode\tGrid",
        f"XCells\t{nx}",
        f"YCells\t{ny}",
        f"XStep\t{step:.6g}",
        f"YStep\t{step:.6g}",
        "AcqE1\t0",
        "AcqE2\t0",
        "AcqE3\t0",
        "Euler angles refer to Sample Coordinate system (CS0)!\tMag\t0\tCoverage\t100\tDevice\t0\t"
        f"KV\t{accelerating_voltage_kV or 0:g}\tTiltAngle\t0\tTiltAxis\t0",
        f"Phases\t{len(phases)}",
    ]
    for _, p in phases:
        s = p.structure.lattice
        abc = ";".join(f"{v:.4f}" for v in (s.a, s.b, s.c))
        ang = ";".join(f"{v:.3f}" for v in (s.alpha, s.beta, s.gamma))
        laue = OXFORD_LAUE_IDS.get(laue_group(p).name if p.point_group is not None else "-1", 1)
        sg = p.space_group.number if p.space_group is not None else 0
        name = (p.name or "phase").replace("\t", " ")
        lines.append(f"{abc}\t{ang}\t{name}\t{laue}\t{sg}\t\t\tstemgrains")
    if source is not None:
        from .outputs import export_input_line

        lines.insert(1, export_input_line(source))
    lines.append("Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS")
    order = np.lexsort((cols, rows))
    body = io.StringIO()
    for k in order:
        body.write(
            f"{ctf_phase[k]}\t{cols[k] * step:.6f}\t{rows[k] * step:.6f}\t{bands[k]}\t{error[k]}\t"
            f"{eul[k, 0]:.4f}\t{eul[k, 1]:.4f}\t{eul[k, 2]:.4f}\t0.0000\t{bc[k]}\t{bs[k]}\n"
        )
    from .results import atomic_write_text

    atomic_write_text(path, "\n".join(lines) + "\n" + body.getvalue())
    return Path(path)
