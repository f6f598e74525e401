"""The project's own 4D-STEM HDF5 layout (read and write).

Layout::

    /data        dataset (scan_row, scan_col, det_row, det_col), any numeric dtype, chunked by scan positions
                 attrs: q_pixel_size (1/Å per pixel), accelerating_voltage_kV, and optionally scan_step_nm,
                        center_row, center_col (pixels), q_rotation_deg, q_flip, ellipticity_ratio,
                        ellipticity_angle_deg, affine (4 numbers)  (= Calibration.to_attrs())
    /truth       optional (simulated data): quaternions (ny, nx, 4) orix convention (sample → crystal,
                 scalar first), phase_id (ny, nx) int, grain_id (ny, nx) int, any further (ny, nx, …) arrays
    /phases/<id> optional: phases as written by stemgrains.crystal.write_phases
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..data import Calibration, Dataset4D
from ..errors import FileFormatError, InputError, StemgrainsError
from ._common import H5Array, as_4d, build_calibration, check_file, first_line, open_h5, scalar_attr
from .results import atomic_h5

FORMAT_NAME = "stemgrains HDF5"

_ATTR_KEYS = ("q_pixel_size", "accelerating_voltage_kV", "scan_step_nm", "q_rotation_deg", "q_flip")


def calibration_from_attrs(attrs: Any) -> dict[str, Any]:
    """Calibration fields found in the attributes of ``/data`` (values not validated here)."""
    found: dict[str, Any] = {}
    for key in _ATTR_KEYS:
        v = scalar_attr(attrs, key)
        if v is not None:
            found[key] = v
    row, col = scalar_attr(attrs, "center_row"), scalar_attr(attrs, "center_col")
    if row is not None and col is not None:
        found["center"] = (row, col)
    ratio = scalar_attr(attrs, "ellipticity_ratio")
    if ratio is not None:
        found["ellipticity"] = (ratio, scalar_attr(attrs, "ellipticity_angle_deg", 0.0))
    affine = scalar_attr(attrs, "affine")
    if affine is not None:
        found["affine"] = tuple(np.asarray(affine).reshape(-1).tolist())
    return found


def read_project(f: h5py.File, path: Path, overrides: dict[str, Any]) -> Dataset4D:
    """A :class:`Dataset4D` over ``/data`` of an open project file (lazy: the dataset stays on disk)."""
    source = str(path)
    if "data" not in f:
        groups = ", ".join(sorted(f.keys())[:8]) or "nothing"
        raise FileFormatError(f"{source}: no 'data' dataset at the root (found {groups}); expected /data (ny, nx, ky, kx)")
    dset = f["data"]
    if not isinstance(dset, h5py.Dataset):
        raise FileFormatError(f"{source}: /data is a group, expected a dataset (ny, nx, ky, kx)")
    if dset.dtype.kind not in "uif":
        raise FileFormatError(f"{source}: /data has dtype {dset.dtype}; expected integers or floats")
    found = calibration_from_attrs(dset.attrs)
    data = as_4d(H5Array(dset, source), source)
    cal, origin = build_calibration(source, found, overrides)
    # fail fast on a damaged file: read one pattern now rather than deep inside a stage
    data[0, 0]
    meta = {
        "format": FORMAT_NAME,
        "calibration_origin": origin,
        "has_truth": "truth" in f,
        "has_phases": "phases" in f,
        "chunks": list(dset.chunks) if dset.chunks else None,
        "compression": dset.compression,
    }
    return Dataset4D(data=data, calibration=cal, metadata=meta, source=source)


def default_chunks(shape: tuple[int, int, int, int], itemsize: int, target_bytes: int = 1 << 20) -> tuple[int, ...]:
    """Chunks of whole patterns along one scan row, about ``target_bytes`` each."""
    ny, nx, ky, kx = shape
    per_pattern = max(1, ky * kx * itemsize)
    n = int(max(1, min(nx, target_bytes // per_pattern)))
    return (1, n, ky, kx)


def write_truth(f: h5py.File | h5py.Group, truth: dict[str, Any], scan_shape: tuple[int, int] | None = None) -> None:
    """Write ground-truth maps under ``/truth`` of an open file.

    Parameters
    ----------
    f
        Open, writable h5py file or group.
    truth
        ``quaternions`` (ny, nx, 4) orix convention (sample → crystal, scalar first), ``phase_id`` (ny, nx)
        int, ``grain_id`` (ny, nx) int, and any further arrays whose leading shape is (ny, nx).
    scan_shape
        Expected (ny, nx); checked when given.
    """
    if "truth" in f:
        del f["truth"]
    grp = f.create_group("truth")
    for name, value in truth.items():
        arr = np.asarray(value)
        if scan_shape is not None and tuple(arr.shape[:2]) != tuple(scan_shape):
            raise InputError(f"truth {name!r} has shape {arr.shape}; expected leading shape {tuple(scan_shape)}")
        if name == "quaternions" and (arr.ndim != 3 or arr.shape[-1] != 4):
            raise InputError(f"truth quaternions must be (ny, nx, 4), got {arr.shape}")
        grp.create_dataset(name, data=arr)


@contextlib.contextmanager
def create_4d(
    path: str | os.PathLike,
    shape: tuple[int, int, int, int],
    dtype: Any,
    calibration: Calibration,
    *,
    phases: Any = None,
    truth: dict[str, Any] | None = None,
    chunks: tuple[int, int, int, int] | None = None,
    compression: Any = None,
    compression_opts: Any = None,
) -> Iterator[h5py.Dataset]:
    """Create a project 4D-STEM file atomically and yield its empty ``/data`` dataset to fill.

    The file appears at ``path`` only when the block ends without an error.

    Parameters
    ----------
    path
        Output ``.h5`` file.
    shape
        ``(scan_row, scan_col, det_row, det_col)``.
    dtype
        Numeric dtype of the patterns.
    calibration
        Stored as attributes of ``/data``.
    phases
        Optional orix Phase/PhaseList written under ``/phases``.
    truth
        Optional ground-truth maps, see :func:`write_truth`.
    chunks
        HDF5 chunk shape; default: whole patterns, about 1 MB per chunk along a scan row.
    compression, compression_opts
        Passed to h5py (``"gzip"``, ``"lzf"`` or an ``hdf5plugin`` filter).

    Examples
    --------
    >>> with create_4d("sim.h5", (ny, nx, ky, kx), "float32", cal) as dset:   # doctest: +SKIP
    ...     for r in range(ny):
    ...         dset[r] = simulate_row(r)
    """
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be 4 integers (ny, nx, ky, kx), got {shape!r}") from None
    if len(shape) != 4 or min(shape) < 1:
        raise InputError(f"shape must be 4 positive integers (ny, nx, ky, kx), got {shape!r}")
    dt = np.dtype(dtype)
    if dt.kind not in "uif":
        raise InputError(f"dtype must be an integer or float type, got {dt}")
    if not isinstance(calibration, Calibration):
        raise InputError(f"calibration must be a Calibration, got {type(calibration).__name__}")
    calibration.check_detector(shape[2:], source=str(path))
    with atomic_h5(path) as f:
        dset = f.create_dataset(
            "data",
            shape=shape,
            dtype=dt,
            chunks=chunks or default_chunks(shape, dt.itemsize),
            compression=compression,
            compression_opts=compression_opts,
        )
        for k, v in calibration.to_attrs().items():
            dset.attrs[k] = v
        if phases is not None:
            from ..crystal import write_phases

            write_phases(f, phases)
        if truth is not None:
            write_truth(f, truth, scan_shape=shape[:2])
        yield dset


def write_4d(path: str | os.PathLike, data: Any, calibration: Calibration, **layout: Any) -> Path:
    """Write a 4D-STEM cube in the project layout, streaming it one scan row at a time.

    Parameters
    ----------
    path
        Output ``.h5`` file (written atomically).
    data
        Array-like ``(scan_row, scan_col, det_row, det_col)``: numpy, memmap, h5py, dask, or a
        :class:`~stemgrains.data.Dataset4D` (whose calibration is then ignored in favour of ``calibration``).
    calibration
        Stored as attributes of ``/data``.
    **layout
        The keyword options of :func:`create_4d`: ``phases``, ``truth``, ``chunks``, ``compression``,
        ``compression_opts``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if isinstance(data, Dataset4D):
        ds = data
    else:
        if getattr(data, "shape", None) is None:
            data = np.asarray(data)
        as_4d(data, "write_4d data")
        ds = Dataset4D(data=data, calibration=calibration, source="write_4d data")
    with create_4d(path, ds.shape, ds.dtype, calibration, **layout) as dset:
        for r in range(ds.shape[0]):
            dset[r] = ds.rows(r, r + 1)[0]
    return Path(path)


def load_truth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Ground-truth maps of a simulated project file: every dataset under ``/truth`` as a numpy array.

    Usually ``quaternions`` (ny, nx, 4) (orix convention, sample → crystal), ``phase_id`` (ny, nx) and
    ``grain_id`` (ny, nx). Raises :class:`~stemgrains.errors.FileFormatError` if the file has no ``/truth``.
    """
    p = check_file(path)
    f = open_h5(p)
    try:
        with f:
            if "truth" not in f or not isinstance(f["truth"], h5py.Group):
                raise FileFormatError(f"{p}: no /truth group (only simulated datasets carry ground truth)")
            out = {}
            for name, obj in f["truth"].items():
                if isinstance(obj, h5py.Dataset):
                    out[name] = obj[()]
    except StemgrainsError:
        raise
    except Exception as err:  # damaged file: h5py raises many types
        raise FileFormatError(f"{p}: cannot read /truth ({first_line(err)})") from None
    q = out.get("quaternions")
    if q is not None and (q.ndim != 3 or q.shape[-1] != 4):
        raise FileFormatError(f"{p}: /truth/quaternions has shape {q.shape}; expected (ny, nx, 4)")
    return out


def load_phases_from(path: str | os.PathLike) -> Any:
    """The phases stored under ``/phases`` of a project or results file, as an orix ``PhaseList``."""
    from ..crystal import read_phases

    p = check_file(path)
    f = open_h5(p)
    try:
        with f:
            return read_phases(f, source=str(p))
    except StemgrainsError:
        raise
    except Exception as err:  # damaged file: h5py raises many types
        raise FileFormatError(f"{p}: cannot read /phases ({first_line(err)})") from None


__all__ = [
    "FORMAT_NAME",
    "read_project",
    "create_4d",
    "write_4d",
    "write_truth",
    "load_truth",
    "load_phases_from",
    "default_chunks",
]
