"""Small public file helpers shared by the readers, the command line, the config files and batches: a file's
signature (first bytes), opening an HDF5 file read-only with one-line errors, an exception's first line."""

from __future__ import annotations

from pathlib import Path

import h5py

from ..errors import FileFormatError

__all__ = ["HDF5_SIGNATURE", "NPY_SIGNATURE", "first_line", "file_signature", "open_h5"]

#: the 8 bytes every HDF5 file starts with
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: the 6 bytes every ``.npy`` file starts with
NPY_SIGNATURE = b"\x93NUMPY"


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception message, or its type name."""
    for line in str(err).splitlines():
        line = line.strip()
        if line:
            return line
    return type(err).__name__


def file_signature(path: Path, n: int = 8) -> bytes:
    """The first ``n`` bytes of a file (empty on a read error)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only, turning every failure into a one-line FileFormatError."""
    if file_signature(path) != HDF5_SIGNATURE:
        raise FileFormatError(f"{path}: not an HDF5 file (no HDF5 signature)")
    try:
        return h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError for truncation, others for deeper corruption
        raise FileFormatError(f"{path}: cannot open as HDF5, the file is truncated or corrupt ({first_line(err)})") from None
