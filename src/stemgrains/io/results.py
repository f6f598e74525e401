"""Results files: atomic writes and provenance.

Layout of a stemgrains results file (HDF5)::

    /                     attrs: software, software_version, created (UTC ISO 8601); csv_tables (JSON: the
                          --csv tables written with it, io.outputs.record_csv_tables)
    /input                attrs: path, sha256 (files < 2 GB) or shape + dtype
    /calibration          attrs: Calibration.to_attrs()
    /phases/<i>           attrs: name, space_group, point_group, cif (text)
    /parameters           attrs: <stage> = JSON text of all parameters of that stage
    /orientation/...      written by `stemgrains index`
    /grains/...           written by `stemgrains segment`
    /boundaries/...       written by `stemgrains segment` / `classify`
    /transport/...        written by `stemgrains transport`

Every write goes to a temporary file in the same folder which then replaces the target
(``os.replace``), so a crash never leaves a half-written results file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._version import __version__
from ..errors import FileFormatError

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "atomic_h5",
    "atomic_savefig",
    "update_h5",
    "file_sha256",
    "write_provenance",
    "write_parameters",
    "read_parameters",
    "read_with",
    "json_default",
]


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    return repr(obj)


def _publish(tmp: str, path: Path) -> None:
    """Give a finished temporary file the permissions of a normal new file (mkstemp makes it 0600), then rename."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """A temporary file beside ``path`` (its folder is created), renamed onto ``path`` with the permissions of a
    normal new file when the block ends without error, removed otherwise.

    The temporary name is ``.NAME.XXXX.tmp``; with ``suffix`` it is ``.STEM.XXXXsuffix`` (writers that choose
    the format by the extension keep it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    else:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` atomically (temporary file + rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def atomic_savefig(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """``fig.savefig`` to a temporary file beside ``path`` (same extension, so the format is kept), then rename.
    A ``.png`` records ``Software: stemgrains <version>`` in its text chunks, so that a figure of ours can be told
    from a user's image of the same name (:func:`stemgrains.io.outputs.refuse_foreign_figures`)."""
    path = Path(path)
    if (path.suffix or ".png").lower() == ".png":
        kwargs["metadata"] = {"Software": f"stemgrains {__version__}", **(kwargs.get("metadata") or {})}
    with atomic_path(path, path.suffix or ".png") as tmp:
        fig.savefig(tmp, **kwargs)
    return path


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Create a new HDF5 file at ``path`` atomically; yields the open (temporary) file."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["software"] = "stemgrains"
        f.attrs["software_version"] = __version__
        f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        yield f
        _annotate(f)


def _annotate(f: h5py.File) -> None:
    """``unit`` and ``description`` attributes on every dataset the data dictionary knows."""
    from ..data_dictionary import annotate_units

    annotate_units(f)


@contextlib.contextmanager
def update_h5(path: str | os.PathLike, output: str | os.PathLike | None = None) -> Iterator[h5py.File]:
    """Open a copy of an existing results file for writing; it replaces ``output`` (default: ``path``)
    atomically when the block ends without error."""
    path = Path(path)
    out = Path(output) if output is not None else path
    require_results_file(path)
    with atomic_path(out) as tmp:
        shutil.copyfile(path, tmp)
        try:
            f = h5py.File(tmp, "r+")
        except OSError as err:
            raise FileFormatError(f"{path}: not a readable HDF5 results file ({err})") from None
        with f:
            f.attrs["software_version"] = __version__
            yield f
            _annotate(f)


def read_with(h5file: Any, reader: Any) -> Any:
    """``reader(group, source)`` on an open h5py file/group, or on the results file at a path opened read-only;
    a missing or unreadable file is a one-line :class:`FileFormatError` naming it."""
    if isinstance(h5file, h5py.Group):
        return reader(h5file, str(h5file.file.filename))
    path = Path(h5file)
    require_results_file(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise FileFormatError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        return reader(f, str(path))


def refuse_folder(path: Path, expected: str) -> None:
    """One line where ``path`` is a folder, naming what was ``expected`` and, in a run folder, its results file."""
    if path.is_dir():
        inner = path / "results.h5"
        hint = f"; the results of the run there are {inner}" if inner.is_file() else ""
        raise FileFormatError(f"{path}: is a folder; expected {expected}{hint}")


def require_results_file(path: str | os.PathLike) -> None:
    """Refuse, in one line saying what it is instead, a path that is no results file of ours: missing, a folder (a
    run folder: its ``results.h5`` named), an ``.ang``/``.ctf`` map, a CIF, an image, a 4D-STEM scan or a virtual
    image in HDF5 (a ``/data`` of 4 dimensions, an ``/image`` without ``/orientation``)."""
    p = Path(path)
    refuse_folder(p, "a results file (.h5)")
    if not p.is_file():
        raise FileFormatError(f"{p}: results file not found")
    ext = p.suffix.lower()
    if ext in (".ang", ".ctf"):
        raise FileFormatError(f"{p}: is an orientation map ({ext}), not a results file; segment it first "
                              f"(stemgrains segment {p.name} -o RESULTS.h5)")
    kinds = {".cif": "a crystal structure (CIF)", ".png": "an image", ".tif": "an image", ".tiff": "an image",
             ".npy": "a NumPy array", ".json": "a JSON file", ".csv": "a table (CSV)", ".toml": "a config file (TOML)"}
    if ext in kinds:
        raise FileFormatError(f"{p}: is {kinds[ext]}, not a results file (.h5)")
    try:
        with h5py.File(p, "r") as f:
            if "orientation" in f:
                return
            data = f.get("data")
            if isinstance(data, h5py.Dataset) and data.ndim == 4:
                raise FileFormatError(f"{p}: is a 4D-STEM scan (shape {tuple(data.shape)}), not a results file; "
                                      "index it first (stemgrains index, or run)")
            if "image" in f:
                raise FileFormatError(f"{p}: is a virtual image, not a results file")
    except OSError:
        return  # not HDF5: the reader says so


def file_sha256(path: str | os.PathLike, limit_bytes: int = 2 * 1024**3) -> str | None:
    """SHA-256 of a file, or ``None`` if it is larger than ``limit_bytes`` (shape/dtype recorded instead)."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size > limit_bytes:
        return None
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_provenance(
    f: h5py.File,
    *,
    input_path: str | os.PathLike | None = None,
    input_description: dict[str, Any] | None = None,
    calibration: Any = None,
    phases: Any = None,
    calibration_origin: dict[str, str] | None = None,
) -> None:
    """Record input path + checksum (or shape/dtype), calibration and phases (CIF text) in ``f``;
    ``calibration_origin`` (per calibration field, where its value came from: ``Dataset4D.metadata``
    ``calibration_origin``) as the JSON attribute ``origin`` of ``/calibration``."""
    grp = f.require_group("input")
    if input_path is not None:
        grp.attrs["path"] = str(Path(input_path).resolve())  # absolute: found again from any working folder
        digest = file_sha256(input_path)
        if digest:
            grp.attrs["sha256"] = digest
    for k, v in (input_description or {}).items():
        grp.attrs[k] = json.dumps(v, default=json_default) if isinstance(v, (list, dict)) else v
    if calibration is not None:
        cal = f.require_group("calibration")
        for k, v in calibration.to_attrs().items():
            cal.attrs[k] = v
        if calibration_origin:
            cal.attrs["origin"] = json.dumps(calibration_origin, sort_keys=True)
    if phases is not None:
        from ..crystal import write_phases

        write_phases(f, phases)


def write_parameters(f: h5py.File, stage: str, params: dict[str, Any]) -> None:
    """Store all parameters of a stage as JSON text under ``/parameters`` attrs."""
    grp = f.require_group("parameters")
    grp.attrs[stage] = json.dumps(params, default=json_default, sort_keys=True)


def read_parameters(f: h5py.File, stage: str) -> dict[str, Any] | None:
    grp = f.get("parameters")
    if grp is None or stage not in grp.attrs:
        return None
    return json.loads(grp.attrs[stage])
