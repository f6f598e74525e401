"""Loading 4D-STEM data cubes: :func:`load_4d` picks the reader from the extension (and the content).

All readers are lazy: the cube stays on disk (an h5py dataset kept open read-only, a read-only
``numpy.memmap``, or a dask array from rosettasciio) and stages stream it with
:meth:`~stemgrains.data.Dataset4D.rows`. Every reader returns ``data[scan_row, scan_col, det_row, det_col]``.

==========================  ==========================================================================
input                       reader
==========================  ==========================================================================
.h5/.hdf5/.hdf/.emd         project layout (``/data`` with calibration attributes, see
                            :mod:`stemgrains.io._project`) or py4DSTEM / EMD 1.0 (root attributes
                            ``emd_group_type = "file"``, ``version_major``), told apart by content
.npy                        ``numpy.load(mmap_mode="r")``; calibration only from overrides
.mib .blo .app5 .dm3 .dm4   rosettasciio (``pip install stemgrains[io]``), see :mod:`stemgrains.io._vendor`
.xml (EMPAD) .hspy .zspy    (HyperSpy/pyxem; also HDF5 of any extension with ``Experiments`` at the root)
Velox .emd                  rosettasciio, when the HDF5 .emd is not EMD 1.0
other extensions            sniffed: HDF5 or NPY signature
==========================  ==========================================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset4D
from ..errors import FileFormatError, ParameterError, StemgrainsError
from ._common import HDF5_SIGNATURE, NPY_SIGNATURE, as_4d, build_calibration, check_file, file_signature, first_line, open_h5
from ._emd import is_emd, read_emd
from ._project import read_project
from ._vendor import HDF5_PLUGINS, PLUGINS, read_vendor

__all__ = ["load_4d", "HDF5_EXTENSIONS", "supported_extensions", "is_4d_data"]

HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf", ".emd")
_MAP_HINT = ("an orientation map (2-D), not 4D-STEM data; segment it (stemgrains segment), compare it "
             "(stemgrains compare) or inspect it (stemgrains info)")
_IMAGE_HINT = ("an image (2-D, or a stack of images), not a 4D-STEM file type stemgrains reads (unsupported); "
               "{expected}")
_HINTS = {
    ".cif": "a crystal structure (CIF), not 4D-STEM data; give it with --phase",
    ".hdr": "the header of a Merlin scan; give the .mib file beside it",
    ".raw": "the raw data of an EMPAD scan; give the .xml file beside it",
    ".ang": _MAP_HINT,
    ".ctf": _MAP_HINT,
    **{ext: _IMAGE_HINT for ext in (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")},
}


def supported_extensions() -> tuple[str, ...]:
    """File extensions :func:`load_4d` reads."""
    return (*HDF5_EXTENSIONS, ".npy", *PLUGINS)


def _read_npy(path: Path, overrides: dict[str, Any], scan_shape: tuple[int, int] | None) -> Dataset4D:
    source = str(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError:
        magic = b"\x93NUMPY"  # (np.load says why it cannot be read)
    if magic != b"\x93NUMPY":  # numpy calls any other file "pickled data"
        raise FileFormatError(f"{source}: not a .npy file (it does not start with the NumPy header); expected an array "
                              "saved with numpy.save")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # ValueError (bad header / pickled object arrays), OSError, EOFError …
        raise FileFormatError(f"{source}: not a readable .npy array ({first_line(err)})") from None
    if not isinstance(arr, np.ndarray):
        raise FileFormatError(f"{source}: expected a single .npy array")
    if arr.dtype.kind not in "uif":
        raise FileFormatError(f"{source}: array dtype {arr.dtype}; expected integers or floats")
    data = as_4d(arr, source, scan_shape)
    cal, origin = build_calibration(source, {}, overrides)
    meta = {"format": "numpy .npy (memory-mapped)", "calibration_origin": origin}
    return Dataset4D(data=data, calibration=cal, metadata=meta, source=source)


def _hdf5_layout(f: Any) -> str | None:
    """``"hspy"`` for a HyperSpy/pyxem file, ``"velox"`` for a Velox EMD, else None (our layout, EMD 1.0)."""
    fmt = f.attrs.get("file_format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if fmt == "HyperSpy" or ("Experiments" in f and "data" not in f):
        return "hspy"
    if "Data" in f and "Version" in f and "data" not in f:
        return "velox"
    return None


def _given_scan_shape(ds: Dataset4D, scan_shape: Any, path: Path) -> Dataset4D:
    """``ds`` where ``scan_shape`` is None or its own scan shape; a file whose data are 4-D already cannot take
    another (it was silently ignored)."""
    if scan_shape is not None and tuple(int(v) for v in scan_shape) != tuple(ds.scan_shape):
        ny, nx = ds.scan_shape
        raise ParameterError(f"{path}: its data are 4-D already, a {ny} x {nx} scan; scan_shape (--scan-shape) "
                             f"{tuple(int(v) for v in scan_shape)} is for a flat stack of patterns")
    return ds


def _read_hdf5(path: Path, overrides: dict[str, Any], dataset: str | None, scan_shape: Any = None) -> Dataset4D:
    f = open_h5(path)
    try:
        if is_emd(f):
            return _given_scan_shape(read_emd(f, path, overrides, dataset=dataset), scan_shape, path)
        layout = _hdf5_layout(f)
        if layout is not None:
            f.close()
            return read_vendor(path, overrides, scan_shape=scan_shape, dataset=dataset, plugin=HDF5_PLUGINS[layout])
        if "orientation" in f and "data" not in f:
            raise FileFormatError(f"{path}: a stemgrains results file (orientation map, 2-D), not 4D-STEM data; "
                                  "segment, classify or compare it (stemgrains segment/classify/compare) or inspect it "
                                  "(stemgrains info); in Python: load_orientation_map")
        return _given_scan_shape(read_project(f, path, overrides), scan_shape, path)
    except StemgrainsError:
        f.close()
        raise
    except Exception as err:  # damaged HDF5: h5py raises OSError, KeyError, ValueError, RuntimeError, TypeError …
        try:
            f.close()
        except Exception:  # closing a damaged file can fail again; the file is unusable anyway
            pass
        raise FileFormatError(f"{path}: damaged HDF5 file ({first_line(err)})") from None


def load_4d(
    path: str | os.PathLike,
    *,
    scan_shape: tuple[int, int] | None = None,
    dataset: str | None = None,
    **calibration_overrides: Any,
) -> Dataset4D:
    """Open a 4D-STEM data cube lazily as a :class:`~stemgrains.data.Dataset4D`.

    Parameters
    ----------
    path
        The file: project HDF5, py4DSTEM/EMD 1.0 ``.h5``, ``.npy``, or a vendor file (``.mib``, ``.blo``,
        ``.app5``, ``.dm3``/``.dm4``, EMPAD ``.xml``; these need ``pip install stemgrains[io]``).
    scan_shape
        ``(rows, cols)`` of the scan, for files that store a flat stack of patterns ``(n, ky, kx)``
        (``.npy``, Merlin ``.mib`` without scan information).
    dataset
        Which cube when a file holds several: the HDF5 path of the EMD data cube, or the TopSpin dataset path.
    **calibration_overrides
        :class:`~stemgrains.data.Calibration` fields that replace what the file says: ``q_pixel_size``
        (1/Å per pixel), ``accelerating_voltage_kV`` (kV), ``scan_step_nm`` (nm), ``center`` (row, col) in
        detector pixels, ``q_rotation_deg`` (degrees), ``q_flip``, ``ellipticity``. ``None`` values are ignored.

    Returns
    -------
    Dataset4D
        ``data[scan_row, scan_col, det_row, det_col]`` (never read into memory), its calibration, and
        ``metadata`` with at least ``format`` and ``calibration_origin`` (per field: ``"file"``,
        ``"override"`` or ``"default"``; the commands say which override: ``"command line"``, ``"config"`` or
        ``"calibration file PATH"``, :func:`stemgrains.settings.label_override_origins`).

    Raises
    ------
    FileFormatError
        Missing, unreadable, truncated or corrupt file; unsupported format; no 4-D data in it.
    InputError
        Data that is not 4-D (give ``scan_shape`` for a 3-D stack).
    ParameterError
        Invalid calibration (e.g. a negative ``q_pixel_size``) or none where one is needed.
    """
    ext = Path(path).suffix.lower() if isinstance(path, (str, os.PathLike)) else ""
    if ext == ".zspy" and Path(path).is_dir():  # a zarr directory store
        return read_vendor(Path(path), calibration_overrides, scan_shape=scan_shape, dataset=dataset)
    p = check_file(path, "4D-STEM file")
    ext = p.suffix.lower()
    sig = file_signature(p)
    if ext in HDF5_EXTENSIONS or (ext not in PLUGINS and ext != ".npy" and sig == HDF5_SIGNATURE):
        return _read_hdf5(p, calibration_overrides, dataset, scan_shape)
    if ext == ".npy" or (ext not in PLUGINS and sig.startswith(NPY_SIGNATURE)):
        return _read_npy(p, calibration_overrides, scan_shape)
    if ext in PLUGINS:
        return read_vendor(p, calibration_overrides, scan_shape=scan_shape, dataset=dataset)
    expected = f"expected one of {', '.join(supported_extensions())}"
    hint = _HINTS.get(ext)
    if hint:
        raise FileFormatError(f"{p}: {hint.format(expected=expected)}")
    raise FileFormatError(f"{p}: unsupported 4D-STEM file type {ext or '(no extension)'}; {expected}")


def is_4d_data(path: str | os.PathLike) -> bool:
    """Whether :func:`load_4d` opens ``path`` as a 4D-STEM cube (lazily; nothing is read). For error messages:
    a raw data file given where a results file or orientation map belongs. False for anything it refuses."""
    try:
        ds = load_4d(path)
    except StemgrainsError:
        return False
    except Exception:  # a reader failing in its own way: not a cube we could use either
        return False
    f = getattr(ds.data, "file", None)
    if f is not None:
        try:
            f.close()
        except Exception:  # already closed / not an h5py file: nothing to release
            pass
    return True
