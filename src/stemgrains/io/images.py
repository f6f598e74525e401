"""2-D images: writing virtual images (``.npy``, ``.tif``, ``.h5``, ``.png``) and reading image series (frames).

Frames (:func:`read_frames`): ``.npy`` (2-D, or one 3-D stack ``(n, rows, cols)``), ``.tif``/``.tiff`` (tifffile:
one page or a stack; pixel size from ImageJ ``unit``/``spacing`` or the resolution tags), and through
rosettasciio ``.dm3``/``.dm4`` (Gatan), ``.emd`` (Velox) and ``.hspy`` (HyperSpy; needs h5py only), where the
pixel size comes from the signal axes (scale in nm, µm, Å or pm). Every write is atomic (temporary name + rename).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError, InputError, ParameterError, StemgrainsError
from ._common import check_file, first_line
from .outputs import IMAGE_INPUT_KEY

__all__ = ["write_image", "read_frames", "IMAGE_OUTPUTS", "FRAME_EXTENSIONS"]

IMAGE_OUTPUTS = (".npy", ".tif", ".tiff", ".h5", ".png")
FRAME_EXTENSIONS = (".npy", ".tif", ".tiff", ".h5", ".dm3", ".dm4", ".emd", ".hspy")

_LENGTH_TO_NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "μm": 1e3, "micron": 1e3, "å": 0.1, "a": 0.1, "angstrom": 0.1,
                 "pm": 1e-3, "m": 1e9, "mm": 1e6}


def _atomic_path(path: str | os.PathLike) -> Any:
    """:func:`~stemgrains.io.results.atomic_path` keeping the extension (the writers choose the format by it)."""
    from .results import atomic_path

    return atomic_path(path, Path(path).suffix)


def write_image(path: str | os.PathLike, image: np.ndarray, *, attrs: dict[str, Any] | None = None,
                title: str = "", pixel_size_nm: float | None = None,
                input_path: str | os.PathLike | None = None) -> Path:
    """Write a 2-D image ``(scan_row, scan_col)`` (or a stack ``(n, rows, cols)``) by extension, atomically.

    ``.npy`` the array; ``.tif`` float32 (tifffile; ImageJ pixel size when ``pixel_size_nm``); ``.h5`` dataset
    ``image`` with ``attrs`` (JSON-able values) and ``pixel_size_nm``; ``.png`` a figure with a colour bar.
    ``input_path`` (the data the image was made from) is recorded as an absolute path: the ``.h5`` attribute
    ``source`` of ``image``, the key :data:`~stemgrains.io.outputs.IMAGE_INPUT_KEY` (JSON text) of the ``.tif``
    description and of the ``.png`` text chunks; ``.npy`` records none. :func:`stemgrains.io.outputs.recorded_input`
    reads it back.

    Raises
    ------
    ParameterError
        Unsupported extension.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_OUTPUTS:
        raise ParameterError(f"{p}: output must end in one of {', '.join(IMAGE_OUTPUTS)}")
    arr = np.asarray(image)
    source = str(Path(input_path).resolve()) if input_path is not None else None
    if source is not None:
        attrs = {**(attrs or {}), "source": source}
    # JSON text: ASCII whatever the path (TIFF descriptions must be ASCII)
    tagged = {} if source is None else {IMAGE_INPUT_KEY: json.dumps(source)}
    if ext == ".npy":
        with _atomic_path(p) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr)
    elif ext in (".tif", ".tiff"):
        try:
            import tifffile
        except ImportError:
            raise StemgrainsError("writing .tif needs tifffile (pip install tifffile)") from None
        kw: dict[str, Any] = {"metadata": dict(tagged)}
        if pixel_size_nm:
            kw = {"imagej": True, "resolution": (1.0 / pixel_size_nm, 1.0 / pixel_size_nm),
                  "metadata": {"unit": "nm", **tagged}}
        with _atomic_path(p) as tmp:
            tifffile.imwrite(tmp, arr.astype(np.float32), **kw)
    elif ext == ".h5":
        from .results import atomic_h5, json_default

        with atomic_h5(p) as f:
            f.create_dataset("image", data=arr)
            for k, v in (attrs or {}).items():
                f["image"].attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, default=json_default)
            if pixel_size_nm:
                f["image"].attrs["pixel_size_nm"] = float(pixel_size_nm)
    else:
        from ..plot.virtual import plot_virtual_image
        from .results import atomic_savefig

        fig = plot_virtual_image(arr if arr.ndim == 2 else arr[0], title=title, pixel_size_nm=pixel_size_nm)
        atomic_savefig(fig, p, dpi=150, bbox_inches="tight", metadata=tagged or None)
    return p


# --------------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------------
def _scale_nm(scale: Any, units: Any) -> float | None:
    u = str(units or "").strip().replace("Å", "å").lower()
    try:
        s = float(scale)
    except (TypeError, ValueError):
        return None
    if u in _LENGTH_TO_NM and np.isfinite(s) and s > 0:
        return s * _LENGTH_TO_NM[u]
    return None


def _read_npy(p: Path) -> tuple[np.ndarray, float | None]:
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as err:
        raise FileFormatError(f"{p}: not a readable .npy array ({first_line(err)})") from None
    return arr, None


def _read_h5_image(p: Path) -> tuple[np.ndarray, float | None]:
    """The ``image`` dataset of an ``.h5`` image written by :func:`write_image` (``stemgrains virtual -o X.h5``),
    with its ``pixel_size_nm``; any other HDF5 file (a 4D scan, a results file) is refused, saying what it is."""
    import h5py

    from .outputs import describe_file

    try:
        with h5py.File(p, "r") as f:
            if isinstance(f.get("image"), h5py.Dataset):
                arr = f["image"][()]
                size = f["image"].attrs.get("pixel_size_nm")
                return np.asarray(arr), (float(size) if size is not None else None)
    except OSError as err:
        raise FileFormatError(f"{p}: not a readable HDF5 file ({first_line(err)})") from None
    what = describe_file(p)
    hint = ("; make a virtual image of it first (stemgrains virtual)" if "4D-STEM" in what
            else "; the results file goes first, the frames after it" if what.startswith("the results of") else "")
    raise FileFormatError(f"{p}: {what}, not an image frame (an .h5 frame is an image written by stemgrains "
                          f"virtual){hint}")


def _read_tif(p: Path) -> tuple[np.ndarray, float | None]:
    try:
        import tifffile
    except ImportError:
        raise StemgrainsError(f"{p}: reading .tif needs tifffile (pip install tifffile)") from None
    try:
        with tifffile.TiffFile(p) as tf:
            arr = tf.asarray()
            size = None
            ij = tf.imagej_metadata or {}
            page = tf.pages[0]
            tags = page.tags
            if "XResolution" in tags:
                num, den = tags["XResolution"].value
                if num > 0 and den > 0:
                    per_unit = num / den  # pixels per unit
                    unit = ij.get("unit")
                    if unit is None and "ResolutionUnit" in tags:
                        ru = int(tags["ResolutionUnit"].value)
                        unit = {3: "cm"}.get(ru)
                    conv = {"cm": 1e7}.get(str(unit), None)
                    size = _scale_nm(1.0 / per_unit, unit) if conv is None else conv / per_unit
    except StemgrainsError:
        raise
    except Exception as err:
        raise FileFormatError(f"{p}: not a readable TIFF ({first_line(err)})") from None
    return arr, size


def _read_rsciio(p: Path) -> tuple[np.ndarray, float | None]:
    ext = p.suffix.lower()
    mod_name = {".dm3": "rsciio.digitalmicrograph", ".dm4": "rsciio.digitalmicrograph", ".emd": "rsciio.emd",
                ".hspy": "rsciio.hspy"}[ext]
    try:
        mod = importlib.import_module(mod_name)
    except ImportError:
        raise StemgrainsError(f"{p}: reading {ext} needs rosettasciio (pip install stemgrains[io])") from None
    try:
        sigs = mod.file_reader(str(p))
    except Exception as err:
        raise FileFormatError(f"{p}: cannot read as {ext} ({first_line(err)})") from None
    images = [s for s in sigs if np.asarray(s["data"]).ndim in (2, 3)
              and np.asarray(s["data"]).dtype.kind in "uif"]
    if not images:
        raise FileFormatError(f"{p}: no 2-D image or image stack in the file")
    s = images[0]
    arr = np.asarray(s["data"])
    axes = s.get("axes", [])
    size = _scale_nm(axes[-1].get("scale"), axes[-1].get("units")) if axes else None
    return arr, size


def read_frames(paths: list[str | os.PathLike]) -> tuple[np.ndarray, float | None, list[str]]:
    """Read an image series: several 2-D frames, or one file holding a 3-D stack ``(n, rows, cols)``.

    Returns
    -------
    frames : (n, rows, cols) float64
    pixel_size_nm : float or None
        From the first file's metadata, nm per pixel (``None`` when the file has none).
    names : list of str
        A name per frame (file name, with ``[k]`` for frames of a stack).

    Raises
    ------
    FileFormatError
        A missing or unreadable file; a file that holds no image.
    InputError
        Frames of different sizes; images that are not 2-D (or one 3-D stack).
    """
    frames: list[np.ndarray] = []
    names: list[str] = []
    size = None
    shape0 = None
    for i, path in enumerate(paths):
        p = check_file(path, "frame file")
        ext = p.suffix.lower()
        if ext == ".npy":
            arr, s = _read_npy(p)
        elif ext in (".tif", ".tiff"):
            arr, s = _read_tif(p)
        elif ext == ".h5":
            arr, s = _read_h5_image(p)
        elif ext in (".dm3", ".dm4", ".emd", ".hspy"):
            arr, s = _read_rsciio(p)
        else:
            raise FileFormatError(f"{p}: unsupported frame type {ext or '(none)'}; expected one of "
                                  f"{', '.join(FRAME_EXTENSIONS)}")
        if arr.dtype.kind not in "uif":
            raise InputError(f"{p}: image dtype {arr.dtype}; expected integers or floats")
        if i == 0:
            size = s
        if arr.ndim == 3 and len(paths) == 1:
            stack = [arr[k] for k in range(arr.shape[0])]
            names = [f"{p.name}[{k}]" for k in range(arr.shape[0])]
        elif arr.ndim == 2:
            stack = [arr]
            names.append(p.name)
        else:
            raise InputError(f"{p}: image has shape {arr.shape}; expected a 2-D frame (or one 3-D stack as the only file)")
        for a in stack:
            if shape0 is None:
                shape0 = a.shape
            elif a.shape != shape0:
                raise InputError(f"{p}: frame shape {a.shape} differs from the first frame's {shape0}; "
                                 "all frames must have the same size")
            frames.append(np.asarray(a, dtype=np.float64))
        if not np.all(np.isfinite(frames[-1])):
            raise InputError(f"{p}: image has non-finite values")
    return np.stack(frames), size, names
