"""BoundaryTable ⇄ HDF5 (group ``boundaries``: ``segments``, ``boundaries``, ``pairs``, ``triple_junctions``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py

from .._table import Table
from ..errors import FileFormatError
from ..io.results import atomic_h5, json_default, update_h5
from ._types import BoundaryTable

__all__ = ["write_boundaries", "read_boundaries"]

GROUP = "boundaries"
_PARTS = ("segments", "boundaries", "pairs", "triple_junctions")


def _write(f: h5py.Group, table: BoundaryTable) -> None:
    if GROUP in f:
        del f[GROUP]
    g = f.create_group(GROUP)
    for name in _PARTS:
        getattr(table, name).to_hdf5(g.create_group(name))
    g.attrs["parameters"] = json.dumps(table.parameters, default=json_default, sort_keys=True)


def write_boundaries(h5file: str | os.PathLike | h5py.Group, boundary_table: BoundaryTable) -> None:
    """Write a BoundaryTable into group ``/boundaries`` (replacing an existing one): an open writable h5py
    file/group, or a path (an existing file is updated atomically, a missing one created)."""
    if isinstance(h5file, h5py.Group):
        _write(h5file, boundary_table)
        return
    path = Path(h5file)
    with (update_h5(path) if path.exists() else atomic_h5(path)) as f:
        _write(f, boundary_table)


def _read(f: h5py.Group, source: str) -> BoundaryTable:
    if GROUP not in f:
        raise FileFormatError(f"{source}: no /{GROUP} group (run `stemgrains segment` first)")
    g = f[GROUP]
    missing = [p for p in _PARTS if p not in g]
    if missing:
        raise FileFormatError(f"{source}: /{GROUP} lacks {missing}")
    parts = {p: Table.from_hdf5(g[p]) for p in _PARTS}
    return BoundaryTable(**parts, parameters=json.loads(g.attrs.get("parameters", "{}")))


def read_boundaries(h5file: str | os.PathLike | h5py.Group) -> BoundaryTable:
    """Read the BoundaryTable written by :func:`write_boundaries` (path or open h5py file/group)."""
    from ..io.results import read_with

    return read_with(h5file, _read)
