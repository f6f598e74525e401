"""Calibration files (JSON) and the calibration recorded in results files.

A calibration JSON (written by ``stemgrains calibrate``) is::

    {"calibration": {"q_pixel_size": ..., "center_row": ..., "center_col": ..., "q_rotation_deg": ...,
                     "q_flip": ..., "ellipticity_ratio": ..., "ellipticity_angle_deg": ..., "affine": [4 numbers],
                     "accelerating_voltage_kV": ...},
     "status": "ok" | "undetermined" | "unconfirmed", "reason": ..., "values": ..., "uncertainty": ..., "center": ..., "notes": ...}

A fit (a file with ``"status"``) carries no ``scan_step_nm``: the scan step is a property of the scan, not of the
detector, so a calibration fitted on one scan and given to another never replaces that scan's step (one written
by an earlier version that has it is read without it). Its ``"calibration"`` is what applying the fit gives (the
stated calibration where the fit is not ok), and its ``"origin"`` says where each value came from: a reader takes
only those fitted or given to ``calibrate`` (command line, config, ...), not those it read from the fitted scan's
data file or defaulted (its voltage, the pixel size it states), which would replace the other scan's own. A fit
written before ``"origin"`` existed gives its fitted geometry (pixel size, centre, ellipticity, affine) when ok.

The keys of ``"calibration"`` are the attribute names of the project's HDF5 ``/data`` and of ``/calibration``
in results files (:meth:`stemgrains.data.Calibration.to_attrs`). A hand-written file may hold just that mapping
(flat, without the ``"calibration"`` level) and any subset of the keys.

A run's ``summary.json`` is a calibration file too: its ``"calibration"`` block (the ``[calibration]`` config
names ``center`` and ``ellipticity``, and each value's ``origin``) gives the values that were given to that run or
fitted, not those it read from its data file or defaulted, and never the scan step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Calibration
from ..errors import FileFormatError, ParameterError
from .results import atomic_write_text, json_default, read_with

__all__ = ["CALIBRATION_KEYS", "write_calibration_json", "read_calibration_json", "read_results_calibration",
           "calibration_file_voltage", "calibration_file_detector"]

#: attribute names of a calibration (HDF5 attributes and JSON keys)
CALIBRATION_KEYS = (
    "q_pixel_size", "accelerating_voltage_kV", "scan_step_nm", "center_row", "center_col", "q_rotation_deg", "q_flip",
    "ellipticity_ratio", "ellipticity_angle_deg", "affine",
)


def write_calibration_json(path: str | os.PathLike, fit: Any, input_path: str | os.PathLike | None = None,
                           detector_shape: Any = None) -> Path:
    """Write a :class:`~stemgrains.preprocess.calibrate.CalibrationFit` (or a plain :class:`Calibration`) as JSON,
    atomically. Returns the path.

    ``input_path`` (the data the fit was made from) is recorded as an absolute path under ``"input"``, beside
    ``"software"``, so that :func:`stemgrains.io.outputs.recorded_input` recognises the file as a calibration of
    that input (``index``/``run --auto-calibrate`` replace only those without ``--force``); ``detector_shape``
    (rows, cols) of that input under ``"detector_shape"`` (a scan on another detector gets a note where the file's
    pixel size or centre is given to it: :func:`stemgrains.settings.reused_detector_note`)."""
    path = Path(path)
    if isinstance(fit, Calibration):
        doc = {"calibration": fit.to_attrs()}
    elif hasattr(fit, "to_dict"):
        doc = fit.to_dict()
    else:
        raise ParameterError(f"write_calibration_json expects a CalibrationFit or a Calibration, got {type(fit).__name__}")
    from .._version import __version__

    doc["software"] = f"stemgrains {__version__}"
    if input_path is not None:
        try:
            doc["input"] = str(Path(input_path).resolve())
        except (OSError, RuntimeError):  # a symlink loop
            doc["input"] = os.path.abspath(input_path)
    if detector_shape is not None:
        doc["detector_shape"] = [int(v) for v in detector_shape]
    atomic_write_text(path, json.dumps(doc, indent=2, default=json_default) + "\n")
    return path


def calibration_file_voltage(path: str | os.PathLike) -> float | None:
    """The accelerating voltage (kV) recorded beside the calibration in a calibration JSON (a fit of ``calibrate``
    or a run's summary: the voltage its pixel size was fitted or given at; a hand-written file that states one),
    None where it records none or cannot be read (:func:`read_calibration_json` says why elsewhere)."""
    doc = _json_object(path)
    block = doc.get("calibration", doc)
    v = block.get("accelerating_voltage_kV") if isinstance(block, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def calibration_file_detector(path: str | os.PathLike) -> tuple[int, int] | None:
    """The detector shape (rows, cols) a calibration JSON records for the data it was fitted on or given to
    (``"detector_shape"`` of a fit or a run's summary), None where it records none or cannot be read."""
    v = _json_object(path).get("detector_shape")
    ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    return (v[0], v[1]) if ok else None


def _json_object(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` where it cannot be read or is not an object (the notes that read it say
    nothing then: :func:`read_calibration_json` says why elsewhere)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _overrides_from_attrs(attrs: dict[str, Any], source: str) -> dict[str, Any]:
    """Calibration keyword arguments from a mapping of attribute names (validated, one-line errors)."""
    unknown = sorted(set(attrs) - set(CALIBRATION_KEYS))
    if unknown:
        raise FileFormatError(f"{source}: unknown calibration key(s) {', '.join(unknown)}; expected some of {', '.join(CALIBRATION_KEYS)}")
    kw: dict[str, Any] = {}
    for key in ("q_pixel_size", "accelerating_voltage_kV", "scan_step_nm", "q_rotation_deg", "q_flip"):
        if attrs.get(key) is not None:
            kw[key] = attrs[key]
    if (attrs.get("center_row") is None) != (attrs.get("center_col") is None):
        raise FileFormatError(f"{source}: give both center_row and center_col, or neither")
    if attrs.get("center_row") is not None:
        kw["center"] = (attrs["center_row"], attrs["center_col"])
    if attrs.get("ellipticity_ratio") is not None:
        kw["ellipticity"] = (attrs["ellipticity_ratio"], attrs.get("ellipticity_angle_deg", 0.0))
    if attrs.get("affine") is not None:
        kw["affine"] = attrs["affine"]
    if "q_flip" in kw and not isinstance(kw["q_flip"], (bool, np.bool_)):
        raise FileFormatError(f"{source}: q_flip must be true or false, got {kw['q_flip']!r}")
    try:  # validate every value now, naming the file
        Calibration(**{"q_pixel_size": 1.0, **kw})
    except ParameterError as err:
        raise FileFormatError(f"{source}: {err}") from None
    return kw


def read_calibration_json(path: str | os.PathLike) -> dict[str, Any]:
    """The calibration fields of a calibration JSON as :class:`Calibration` keyword arguments (only the keys
    present), ready to be passed as overrides to :func:`stemgrains.io.load_4d`.

    Raises
    ------
    FileFormatError
        Missing or unreadable file, not JSON, unknown keys, invalid values; the message names the file.
    """
    p = Path(path)
    if p.is_dir():
        raise FileFormatError(f"{p}: is a folder; expected a calibration JSON file (e.g. {p / 'calibration.json'})")
    if not p.is_file():
        raise FileFormatError(f"{p}: calibration file not found")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FileFormatError(f"{p}: not a readable calibration JSON ({err})") from None
    if not isinstance(doc, dict):
        raise FileFormatError(f"{p}: expected a JSON object with calibration keys ({', '.join(CALIBRATION_KEYS)})")
    attrs = doc.get("calibration", doc) if isinstance(doc.get("calibration", doc), dict) else None
    if attrs is None:
        raise FileFormatError(f"{p}: 'calibration' must be an object of calibration keys")
    if "calibration" not in doc and {"scan_shape", "n_grains", "indexed_fraction"} & set(doc):
        raise FileFormatError(f"{p}: a run's summary.json without its 'calibration' block (edited?) gives no "
                              f"calibration; {_GIVE_INSTEAD}")
    if isinstance(attrs.get("origin"), dict):  # the calibration block of a run's summary.json
        attrs = _given_or_fitted(attrs, attrs["origin"], p)
        if not {k for k in attrs if k != "scan_step_nm"}:
            raise FileFormatError(f"{p}: this summary's run applied no calibration value that was given or fitted (its "
                                  "values came from its data file or defaults; an unconfirmed or undetermined fit "
                                  f"is not applied), so it has none to give; {_GIVE_INSTEAD}")
    elif "origin" in attrs or "center" in attrs or "ellipticity" in attrs:  # such a block, edited
        raise FileFormatError(f"{p}: a summary.json calibration block needs its 'origin' record (an object saying "
                              "where each value came from), and a calibration file spells the centre and ellipticity "
                              "center_row, center_col, ellipticity_ratio, ellipticity_angle_deg")
    elif ("status" in doc or isinstance(doc.get("origin"), dict)) and isinstance(doc.get("calibration"), dict):
        attrs = _fit_attrs(doc, attrs, p)  # a fit written by calibrate (or a file shaped like one: its origins hold)
    for key, v in attrs.items():  # JSON numbers, not their text (float("0.02") would take a string silently)
        if key in CALIBRATION_KEYS and isinstance(v, str):  # (other keys: unknown, said so below)
            raise FileFormatError(f"{p}: {key} must be a number (or true/false, a list for affine), got the string "
                                  f"{v!r}")
        if key in CALIBRATION_KEYS and key != "q_flip" and isinstance(v, bool):  # (true would read as 1)
            raise FileFormatError(f"{p}: {key} must be a number, got {str(v).lower()}")
    if not attrs:  # {} or {"calibration": {}}: it would apply nothing, silently
        raise FileFormatError(f"{p}: holds no calibration value; expected some of {', '.join(CALIBRATION_KEYS)}")
    if (attrs.get("ellipticity_ratio") is None) != (attrs.get("ellipticity_angle_deg") is None):
        raise FileFormatError(f"{p}: give both ellipticity_ratio and ellipticity_angle_deg (the long axis, degrees "
                              "from +col toward +row), or neither")
    if ("status" in doc or "origin" in doc.get("calibration", {})) and isinstance(doc.get("calibration"), dict):
        # a fit written by calibrate, or a run's summary: the detector's calibration, not that scan's step
        attrs = {k: v for k, v in attrs.items() if k != "scan_step_nm"}
    return _overrides_from_attrs(attrs, str(p))


#: the origins of values a run was given or fitted (:func:`stemgrains.settings.override_origins`,
#: :meth:`stemgrains.preprocess.calibrate.CalibrationFit.origin`); ``"calibration file PATH"`` and
#: ``"fitted (METHOD)"`` are prefixes
GIVEN_ORIGINS = ("command line", "config", "override", "calibration file ", "fitted")
#: the origins of values a run read from its data file or did not know: never given to another scan
NOT_GIVEN_ORIGINS = ("file", "default", "unknown", "missing")
#: the field of :class:`Calibration` each flat attribute name belongs to
_FIELD_OF = {"center_row": "center", "center_col": "center", "ellipticity_ratio": "ellipticity",
             "ellipticity_angle_deg": "ellipticity"}
#: the values a fit of ``calibrate`` without an ``origin`` record (written before it had one) gives when ok
_FITTED_KEYS = ("q_pixel_size", "center_row", "center_col", "ellipticity_ratio", "ellipticity_angle_deg", "affine")
_GIVE_INSTEAD = ("leave --calibration out (each scan keeps its own calibration), or give values as options "
                 "(--q-pixel-size, --center, ...)")


def _given_or_fitted(block: dict[str, Any], origin: dict[str, Any], source: Path) -> dict[str, Any]:
    """The calibration attributes of ``block`` whose ``origin`` (per :class:`Calibration` field) says they were given
    to that run (command line, config, a calibration file, the API) or fitted. Those it read from its data file,
    defaulted or did not know are left out, so that the scan indexed with this file keeps its own (another scan's
    file may state another voltage or pixel size). ``block`` spells the centre and ellipticity as the
    ``[calibration]`` config keys (``center`` [row, col], ``ellipticity`` [ratio, angle]; a run's summary.json) or
    as the attribute names (``center_row``, ...; a fit of ``calibrate``). An origin that is none of
    :data:`GIVEN_ORIGINS` / :data:`NOT_GIVEN_ORIGINS` is a FileFormatError naming the file."""
    out: dict[str, Any] = {}
    for key, value in block.items():
        where = origin.get(_FIELD_OF.get(key, key))
        if key == "origin" or value is None or where is None or where in NOT_GIVEN_ORIGINS:
            continue
        if not (isinstance(where, str) and where.startswith(GIVEN_ORIGINS)):
            raise FileFormatError(f"{source}: origin of {_FIELD_OF.get(key, key)}: expected one of "
                                  f"{', '.join(repr(o.strip()) for o in GIVEN_ORIGINS + NOT_GIVEN_ORIGINS)} "
                                  f"('calibration file PATH', 'fitted (METHOD)'), got {where!r}")
        if key in ("center", "ellipticity"):
            if not (isinstance(value, list) and len(value) == 2):
                raise FileFormatError(f"{source}: {key} must be a list of two numbers, got {value!r}")
            names = ("center_row", "center_col") if key == "center" else ("ellipticity_ratio", "ellipticity_angle_deg")
            out.update(zip(names, value))
        else:
            out[key] = value
    return out


def _fit_attrs(doc: dict[str, Any], attrs: dict[str, Any], source: Path) -> dict[str, Any]:
    """The calibration attributes a fit of ``stemgrains calibrate`` gives another scan: those it fitted (status
    ok) and those its run was given (its ``origin`` record); not those it read from the scan's data file or
    defaulted (the voltage, a stated pixel size). A fit written before the record existed gives its fitted
    geometry (:data:`_FITTED_KEYS`) when ok, nothing otherwise. A fit that gives nothing is a FileFormatError."""
    if isinstance(doc.get("origin"), dict):
        out = _given_or_fitted(attrs, doc["origin"], source)
    else:
        out = {k: v for k, v in attrs.items() if k in _FITTED_KEYS} if doc.get("status") == "ok" else {}
    if not out:
        if doc.get("status") is None:
            raise FileFormatError(f"{source}: its 'origin' record gives no value as fitted or given (they came from a "
                                  f"data file or defaults), so it has none to give; {_GIVE_INSTEAD}")
        why = "it was not applied" if doc.get("status") != "ok" else "it changed nothing"
        raise FileFormatError(f"{source}: this calibration fit is {doc.get('status')!s} ({why}) and its calibrate run "
                              "was given no calibration value (they came from the data file or defaults), so it has "
                              f"none to give; {_GIVE_INSTEAD}")
    return out


def read_results_calibration(h5file: Any) -> Calibration:
    """The :class:`Calibration` recorded in ``/calibration`` of a results file (path or open h5py file)."""

    def reader(f, source):
        if "calibration" not in f:
            raise FileFormatError(f"{source}: no /calibration group")
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) and v.size > 1 else v) for k, v in f["calibration"].attrs.items()}
        attrs = {k: (v.item() if isinstance(v, (np.ndarray, np.generic)) and np.size(v) == 1 else v) for k, v in attrs.items()}
        kw = _overrides_from_attrs({k: v for k, v in attrs.items() if k in CALIBRATION_KEYS}, f"{source} /calibration")
        if "q_pixel_size" not in kw:
            raise FileFormatError(f"{source}: /calibration has no q_pixel_size")
        return Calibration(**kw)

    return read_with(h5file, reader)
