"""``stemgrains info INPUT``: what a file holds (format, shape, dtype, calibration; or an orientation map)."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import FileFormatError, ParameterError
from ._common import add_calibration_overrides, calibration_overrides, given_origins

NAME = "info"
HELP = "show format, shape, dtype and calibration of a 4D-STEM file, or a summary of an orientation map"
ORDER = 10

_MAP_EXTENSIONS = (".ang", ".ctf")
#: the message of :meth:`stemgrains.data.Calibration.check_detector`: the centre it refuses
_OFF_CENTRE = re.compile(r"^center \(row, col\) = \(([^,]+), ([^)]+)\) lies outside")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="4D-STEM file (.h5, .npy, .mib, .blo, .app5, .dm4, .xml) or map (.ang, .ctf, results .h5)")
    add_calibration_overrides(p)


def _is_orientation_map(path: Path) -> bool:
    if path.suffix.lower() in _MAP_EXTENSIONS:
        return True
    from ..io.files import HDF5_SIGNATURE, file_signature, open_h5

    if not path.is_file() or file_signature(path) != HDF5_SIGNATURE:
        return False
    try:
        f = open_h5(path)
    except FileFormatError:
        return False  # load_4d reports it
    try:
        with f:
            return "orientation" in f and "data" not in f
    except Exception:  # damaged file: let load_4d report it
        return False


def _indexed_with(path: Path) -> str | None:
    """The calibration a results file of ours was indexed with (``/calibration``: pixel size, voltage, and each
    value's origin where recorded), as one line; None for other map files."""
    import json

    import h5py
    import numpy as np

    try:
        with h5py.File(path, "r") as f:
            if "calibration" not in f:
                return None
            a = dict(f["calibration"].attrs)
    except Exception:  # not HDF5 (.ang, .ctf): no calibration recorded
        return None
    origin = {}
    if "origin" in a:
        try:
            origin = json.loads(str(a["origin"]))
        except ValueError:
            origin = {}

    def tag(name: str) -> str:
        return f" [{origin[name]}]" if name in origin else ""

    parts = []
    if a.get("q_pixel_size") is not None:
        parts.append(f"q pixel size {float(a['q_pixel_size']):g} 1/Å{tag('q_pixel_size')}")
    if a.get("accelerating_voltage_kV") is not None:
        parts.append(f"{float(a['accelerating_voltage_kV']):g} kV{tag('accelerating_voltage_kV')}")
    if a.get("scan_step_nm") is not None:
        parts.append(f"scan step {float(a['scan_step_nm']):g} nm{tag('scan_step_nm')}")
    if a.get("ellipticity_ratio") is not None:
        parts.append(f"ellipticity {float(a['ellipticity_ratio']):g} at {float(a.get('ellipticity_angle_deg', 0)):g}°"
                     f"{tag('ellipticity')}")
    if a.get("center_row") is not None and a.get("center_col") is not None:
        parts.append(f"centre ({float(a['center_row']):g}, {float(a['center_col']):g}) px{tag('center')}")
    elif "center" in origin:  # none stored: found in every pattern
        parts.append(f"centre found per pattern{tag('center')}")
    if float(a.get("q_rotation_deg", 0) or 0) or origin.get("q_rotation_deg", "default") != "default":
        parts.append(f"q rotation {float(a.get('q_rotation_deg', 0) or 0):g}°{tag('q_rotation_deg')}")
    if bool(a.get("q_flip", False)) or origin.get("q_flip", "default") != "default":
        parts.append(f"flip {bool(a.get('q_flip', False))}{tag('q_flip')}")
    if a.get("affine") is not None:
        parts.append(f"affine {', '.join(f'{float(v):g}' for v in np.ravel(a['affine']))}{tag('affine')}")
    return "indexed with " + ", ".join(parts) if parts else None


def _print_map(path: Path) -> int:
    import numpy as np

    from .._grid import map_shape
    from ..io import load_orientation_map, map_scan_step_nm

    xmap = load_orientation_map(path)
    ny, nx = map_shape(xmap)
    step = map_scan_step_nm(xmap)
    print(f"file:        {path}")
    print("kind:        orientation map")
    hexgrid = " (a hexagonal grid, resampled to this square grid by nearest neighbour)" if getattr(
        xmap, "resampled_from", None) == "HexGrid" else ""
    print(f"shape:       {ny} x {nx} (rows x cols){hexgrid}")
    print(f"scan step:   {f'{step:g} nm' if step is not None else 'unknown (pixel units)'}")
    line = _indexed_with(path)
    if line:
        print(f"calibration: {line}")
    print("phases:")
    pid = np.asarray(xmap.phase_id)
    for i, phase in xmap.phases:
        count = int(np.count_nonzero(pid == i))
        pg = phase.point_group.name if phase.point_group is not None else "-"
        print(f"  {i:>3}  {phase.name:<24} point group {pg:<6} {count} px ({100.0 * count / max(pid.size, 1):.1f} %)")
    from ..crystal import is_hexagonal_like

    if any(i >= 0 and is_hexagonal_like(ph) for i, ph in xmap.phases):
        print(f"hex frame:   {getattr(xmap, 'hex_frame', 'x || a (as stored)')}")
    props = ", ".join(sorted(xmap.prop)) or "none"
    print(f"properties:  {props}")
    held = _stages_held(path)
    if held:
        print(f"also holds:  {held}")
    return 0


def _stages_held(path: Path) -> str | None:
    """What a results file of ours holds beyond the orientation map (grains and boundaries of ``segment``, the
    classification, the transport model), as one line; None for other map files or where it holds none."""
    import h5py

    from ..boundaries import read_boundaries
    from ..grains import read_grains

    try:
        with h5py.File(path, "r") as f:
            groups = set(f)
        parts = []
        if "grains" in groups:
            parts.append(f"{read_grains(path).n_grains} grains")
        if "boundaries" in groups:
            parts.append(f"{len(read_boundaries(path).boundaries)} boundaries")
        parts += [name for name in ("classification", "transport") if name in groups]
    except Exception:  # noqa: BLE001 - not HDF5 (.ang, .ctf), or a group it cannot read: nothing more
        return None
    if not parts:
        return None
    by = "run" if (path.parent / "stemgrains_run.json").is_file() else "segment, classify, transport or run"
    return ", ".join(parts) + f" (written by {by})"


def _warn_pixel_size(ds, origin: dict[str, str]) -> None:
    """A pixel size index and run would refuse (:func:`stemgrains.settings.pixel_size_refusal`: nothing to index
    with it) shown with a one-line warning saying so, by where it came from."""
    from dataclasses import replace as _replace

    from ..settings import pixel_size_refusal

    err = pixel_size_refusal({"spots": {}}, _replace(ds, metadata={**ds.metadata, "calibration_origin": origin}))
    if err is not None:
        text = str(err).replace("[calibration] q_pixel_size", "q_pixel_size", 1)
        print(f"warning: {text}; index and run refuse it", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..io import load_4d

    path = Path(args.input)
    if not path.exists():
        raise FileFormatError(f"{path}: file not found")
    if path.is_dir():  # (it said "not a regular file")
        held = " (a run's folder: its results.h5)" if (path / "results.h5").is_file() else ""
        raise FileFormatError(f"{path}: is a folder; info reads a 4D-STEM data file or an orientation map: give one "
                              f"of its files{held}")
    if path.suffix.lower() == ".json":  # (it said "unsupported 4D-STEM file type .json")
        raise FileFormatError(f"{path}: a JSON file (a run's summary, a calibration): read it as text; info reads a "
                              "4D-STEM data file or an orientation map")
    overrides = calibration_overrides(args)
    if _is_orientation_map(path):
        if overrides:  # (they were ignored without a word)
            print(f"note: {path} is an orientation map: the calibration options apply to 4D-STEM data; the "
                  "calibration a map was indexed with is shown as recorded", file=sys.stderr)
        return _print_map(path)
    off_detector = None
    try:
        ds = load_4d(path, **overrides)
    except ParameterError as err:
        # a stored beam centre off the detector: show the file anyway, and say so (other commands refuse it)
        m = _OFF_CENTRE.match(str(err))
        if m is None or overrides.get("center") is not None:
            raise
        off_detector = (m.group(1), m.group(2))
        ds = load_4d(path, **{**overrides, "center": (0.0, 0.0)})
    cal = ds.calibration
    origin = given_origins(ds, args)  # the values given here: the --calibration file's, or typed
    if getattr(args, "calibration", None):  # a pixel size fitted at another voltage or detector: as index, run say it
        from ..settings import reused_detector_note, reused_pixel_size_note

        labelled = replace(ds, metadata={**ds.metadata, "calibration_origin": origin})
        for note in (reused_pixel_size_note(labelled, {"file": args.calibration}),
                     reused_detector_note(labelled, {"file": args.calibration})):
            if note:
                print(note, file=sys.stderr)

    def tag(name: str) -> str:
        return f"  [{origin[name]}]" if name in origin else ""

    ny, nx, ky, kx = ds.shape
    print(f"file:        {path}")
    print(f"format:      {ds.metadata.get('format', 'unknown')}")
    print(f"shape:       {ny} x {nx} scan, {ky} x {kx} detector (scan_row, scan_col, det_row, det_col)")
    print(f"dtype:       {ds.dtype}")
    if cal.q_pixel_size is None:
        print("q pixel:     not calibrated in the file (indexing needs --q-pixel-size, 1/Å per pixel)")
    else:
        print(f"q pixel:     {cal.q_pixel_size:g} 1/Å per pixel{tag('q_pixel_size')}")
        _warn_pixel_size(ds, origin)
    print(f"voltage:     {cal.accelerating_voltage_kV:g} kV (λ = {cal.wavelength:.6f} Å){tag('accelerating_voltage_kV')}")
    print(f"scan step:   {cal.scan_step_nm:g} nm{tag('scan_step_nm')}")
    centre = f"({cal.center[0]:g}, {cal.center[1]:g}) px (row, col)" if cal.center is not None else "auto"
    if origin.get("center") == "unknown":  # stored as NaN: found in every pattern, as where none is stored
        centre = ("unknown (NaN in the file; found in every pattern): set it with --center ROW,COL or fit it with "
                  "`stemgrains calibrate`")
    if off_detector is not None:
        centre = f"({off_detector[0]}, {off_detector[1]}) px (row, col)  [file]  OFF THE DETECTOR"
        print(f"warning: the beam centre stored in {path} ({off_detector[0]}, {off_detector[1]}) lies off the {ky} x "
              f"{kx} detector; index, run, virtual and the other commands refuse it: give them --center ROW,COL to "
              "override it", file=sys.stderr)
    shown = off_detector is not None or origin.get("center") == "unknown"  # said in words already
    print(f"centre:      {centre}{'' if shown else tag('center')}")
    if origin.get("q_flip", origin.get("q_rotation_deg")) == origin.get("q_rotation_deg"):
        print(f"q rotation:  {cal.q_rotation_deg:g} deg, flip {cal.q_flip}{tag('q_rotation_deg')}")
    else:  # given apart: each with its own origin
        print(f"q rotation:  {cal.q_rotation_deg:g} deg{tag('q_rotation_deg')}, flip {cal.q_flip}{tag('q_flip')}")
    if cal.ellipticity is not None:
        print(f"ellipticity: ratio {cal.ellipticity[0]:g} at {cal.ellipticity[1]:g} deg{tag('ellipticity')}")
    if cal.affine is not None:
        a = cal.affine
        print(f"affine:      (({a[0]:g}, {a[1]:g}), ({a[2]:g}, {a[3]:g})) on (dcol, drow){tag('affine')}")
    extras = {k: v for k, v in ds.metadata.items() if k not in ("format", "calibration_origin")}
    for k, v in extras.items():
        print(f"  {k}: {v}")
    return 0
