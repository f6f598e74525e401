"""Shared helpers of the readers: file checks, safe HDF5 opening, calibration merging, a safe lazy HDF5 array.

Every reader turns whatever the underlying library raises on a bad file into a one-line
:class:`~stemgrains.errors.FileFormatError` naming the file; corrupt HDF5 in particular makes h5py raise
``OSError``, ``KeyError``, ``ValueError``, ``RuntimeError``, ``TypeError`` … depending on where the damage is.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..data import Calibration
from ..errors import FileFormatError, InputError, ParameterError
from .files import HDF5_SIGNATURE, NPY_SIGNATURE, file_signature, first_line, open_h5  # noqa: F401


#: Calibration fields that can be given as overrides to the readers.
CALIBRATION_FIELDS = tuple(Calibration.__dataclass_fields__)
#: the command-line option that overrides a calibration value a data file states (named where the file's is refused)
_OVERRIDE_OPTION = {"accelerating_voltage_kV": "--voltage", "q_pixel_size": "--q-pixel-size", "scan_step_nm": "--scan-step",
                    "q_rotation_deg": "--q-rotation", "ellipticity": "--ellipticity", "affine": "--affine"}


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` if it is a readable regular file, else raise FileFormatError."""
    try:
        p = Path(path)
    except TypeError:
        raise InputError(f"{what} path must be a string or path, got {type(path).__name__}") from None
    if not p.exists():
        raise FileFormatError(f"{p}: {what} not found")
    if not p.is_file():
        raise FileFormatError(f"{p}: not a regular file")
    if not os.access(p, os.R_OK):
        raise FileFormatError(f"{p}: {what} is not readable (permission denied)")
    return p


def scalar_attr(attrs: Any, key: str, default: Any = None) -> Any:
    """An HDF5 attribute as a Python scalar (bytes decoded, 1-element arrays unwrapped)."""
    if key not in attrs:
        return default
    v = attrs[key]
    if isinstance(v, np.ndarray):
        if v.size != 1:
            return v
        v = v.reshape(()).item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", errors="replace")
    return v


def clean_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values; raise ParameterError on names that are not Calibration fields."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(clean) - set(CALIBRATION_FIELDS))
    if unknown:
        raise ParameterError(
            f"unknown calibration parameter(s) {', '.join(unknown)}; expected some of {', '.join(CALIBRATION_FIELDS)}"
        )
    return clean


def _is_nan_pair(value: Any) -> bool:
    """Whether a stored ``(row, col)`` holds a NaN (a centre written as unknown)."""
    try:
        return any(math.isnan(float(v)) for v in value)
    except (TypeError, ValueError):
        return False


def build_calibration(source: str, found: dict[str, Any], overrides: dict[str, Any]) -> tuple[Calibration, dict[str, str]]:
    """Merge calibration values read from a file with user overrides (overrides win).

    Returns the validated :class:`Calibration` and, per field, where its value came from
    (``"file"``, ``"override"``, ``"default"``, or ``"missing"`` for a ``q_pixel_size`` found nowhere: the
    calibration then has ``q_pixel_size=None``; ``"unknown"`` for a beam centre the file stores as NaN, which
    counts as not stored: the centre is then found in every pattern, as where none is stored).
    """
    clean = clean_overrides(overrides)
    kw = {k: v for k, v in found.items() if v is not None}
    unknown_center = _is_nan_pair(kw.get("center"))
    if unknown_center:
        del kw["center"]
    kw.update(clean)
    missing = "q_pixel_size" not in kw
    if missing:
        kw["q_pixel_size"] = None  # opened and inspected without one; indexing asks for it
    try:
        cal = Calibration(**kw)
    except ParameterError as err:
        stated = [k for k, opt in _OVERRIDE_OPTION.items() if k not in clean and found.get(k) is not None and k in str(err)]
        hint = f" (the value stated in this file; give {_OVERRIDE_OPTION[stated[0]]} to override it)" if stated else ""
        raise ParameterError(f"{source}: {err}{hint}") from None
    origin = {}
    for name in CALIBRATION_FIELDS:
        if name in clean:
            origin[name] = "override"
        elif name == "center" and unknown_center:
            origin[name] = "unknown"
        elif name in found and found[name] is not None:
            origin[name] = "file"
        elif name == "q_pixel_size" and missing:
            origin[name] = "missing"
        else:
            origin[name] = "default"
    return cal, origin


#: what every 4D-STEM reader expects, for the messages
EXPECTED_4D = "expected 4-D data (scan_row, scan_col, det_row, det_col)"


def not_4d_message(source: str, shape: tuple[int, ...], n_scan: int | None = None, n_detector: int | None = None,
                   reshapable: bool = True) -> str:
    """One line saying what the array of shape ``shape`` in ``source`` looks like instead of 4D-STEM data, and what
    was expected (the same hint for every reader: ``.npy``, HDF5, rosettasciio files).

    Parameters
    ----------
    source
        The file, named first.
    shape
        The array's shape.
    n_scan, n_detector
        Numbers of navigation (scan) and signal (detector) axes when the file says (HyperSpy-style files).
    reshapable
        Whether a 3-D stack can be given a scan shape (``load_4d(scan_shape=...)``).
    """
    shape = tuple(int(s) for s in shape)
    axes = "" if n_scan is None else f" with {n_scan} scan and {n_detector} detector axes"
    nd = len(shape)
    if nd == 2 or (nd == 3 and shape[2] in (3, 4) and n_detector in (None, 1) and min(shape[:2]) > 4):
        what = ("a 2-D map of 3 or 4 values per pixel (an RGB image, orientations as quaternions)" if nd == 3 else
                "one 2-D image (a single diffraction pattern, a virtual image or a map)")
        return f"{source}: data has {nd} dimensions {shape}{axes}: {what}, not 4D-STEM data; {EXPECTED_4D}"
    if nd == 3 and (n_scan is None or n_scan == 1):
        how = ("; give its scan shape (load_4d(scan_shape=(rows, cols)), stemgrains virtual --scan-shape) or save "
               "it as (rows, cols, det_row, det_col)") if reshapable else ""
        return (f"{source}: data is 3-D {shape}{axes}: a stack of {shape[0]} patterns without the scan's shape; "
                f"{EXPECTED_4D}{how}")
    if n_detector is not None and n_detector != 2:
        kind = "a spectrum or 1-D signal per scan position" if n_detector == 1 else f"{n_detector} detector axes"
        return f"{source}: data {shape}{axes}: {kind}, not 4D-STEM data; {EXPECTED_4D} (2 scan, 2 detector axes)"
    return f"{source}: data has {nd} dimensions {shape}{axes}, not 4D-STEM data; {EXPECTED_4D}"


def as_4d(data: Any, source: str, scan_shape: tuple[int, int] | None = None) -> Any:
    """Check that ``data`` is 4-D; reshape a 3-D stack ``(n, ky, kx)`` when ``scan_shape`` is given."""
    shape = tuple(int(s) for s in data.shape)
    if scan_shape is not None:
        try:
            ny, nx = (int(s) for s in scan_shape)
        except (TypeError, ValueError):
            raise ParameterError(f"scan_shape must be (rows, cols), got {scan_shape!r}") from None
        if ny < 1 or nx < 1:
            raise ParameterError(f"scan_shape must be positive (rows, cols), got {scan_shape!r}")
        if len(shape) == 3 and shape[0] == ny * nx:
            return data.reshape(ny, nx, shape[1], shape[2])
        if len(shape) == 4 and shape[:2] == (ny, nx):
            return data
        if len(shape) == 4 and shape[0] * shape[1] == ny * nx:
            return data.reshape(ny, nx, shape[2], shape[3])
        raise InputError(f"{source}: data shape {shape} does not fit scan_shape {(ny, nx)}")
    if len(shape) != 4:
        raise InputError(not_4d_message(source, shape, reshapable=hasattr(data, "reshape")))
    if min(shape) < 1:
        raise InputError(f"{source}: data shape {shape} has an empty axis")
    return data


def finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _rows_of(key: Any, shape: tuple[int, ...]) -> str:
    """`` at scan rows a–b`` (from 0, inclusive) of a read ``key`` whose first index is an int or a step-1 slice
    over the first axis of ``shape``; empty for other keys."""
    first = key[0] if isinstance(key, tuple) and key else key
    if isinstance(first, (int, np.integer)) and shape:
        return f" at scan row {int(first) % max(shape[0], 1)}"
    if isinstance(first, slice) and first.step in (None, 1) and shape:
        lo, hi, _ = first.indices(shape[0])
        return f" at scan rows {lo}–{hi - 1}" if hi > lo else ""
    return ""


class H5Array:
    """Read-only, lazy view of an h5py dataset for :class:`~stemgrains.data.Dataset4D`.

    Slicing reads from disk; read errors of a damaged file become one-line
    :class:`~stemgrains.errors.FileFormatError` s naming the file. The view keeps its file open, can be
    pickled (it reopens the file by path, read-only), and works with ``dask.array.from_array``.
    Attributes it does not define (``chunks``, ``compression``, …) come from the h5py dataset.
    """

    def __init__(self, dset: h5py.Dataset, source: str) -> None:
        self._dset = dset
        self._file = dset.file  # keep the file open as long as the view lives
        self._path = str(self._file.filename)
        self._name = dset.name
        self.source = source
        self.shape = tuple(int(s) for s in dset.shape)
        self.dtype = np.dtype(dset.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return self._dset[key]
        except (OSError, RuntimeError, KeyError, SystemError) as err:
            raise FileFormatError(f"{self.source}: cannot read {self._name}{_rows_of(key, self.shape)}: the file is "
                                  f"damaged or truncated there ({first_line(err)})") from None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[()]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._dset, name)

    def __repr__(self) -> str:
        return f"<H5Array {self._name} {self.shape} {self.dtype} of {self._path}>"

    def close(self) -> None:
        """Close the underlying file (further reads fail)."""
        try:
            self._file.close()
        except Exception:  # closing a damaged or already closed file: nothing left to do
            pass

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self._path, "name": self._name, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        f = open_h5(Path(state["path"]))
        self.__init__(f[state["name"]], state["source"])

