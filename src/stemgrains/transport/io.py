"""Write / read a :class:`TransportResult` under ``/transport`` of a results file.

Layout::

    /transport            attrs: model, scan_step_nm, map_window, solver (JSON), parameters (JSON),
                                 boundary_field_kind ("table" | "pairs")
      potential, field, current_density, sigma, labels, region, floating, [node_potential]
      electrodes/ faces/ boundaries/ [segments/]     (Table.to_hdf5)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .._table import Table
from ..errors import FileFormatError
from ..io.results import atomic_h5, json_default, update_h5, write_parameters
from ._types import TransportResult

__all__ = ["write_transport", "read_transport"]

_ARRAYS = ("potential", "field", "current_density", "sigma", "labels", "region", "floating")
_TABLES = ("electrodes", "faces", "boundaries")


def _write(f: h5py.File, result: TransportResult) -> None:
    if "transport" in f:
        del f["transport"]
    g = f.create_group("transport")
    for name in _ARRAYS:
        g.create_dataset(name, data=np.asarray(getattr(result, name)), compression="gzip", compression_opts=4)
    if result.node_potential is not None:
        g.create_dataset("node_potential", data=result.node_potential, compression="gzip", compression_opts=4)
    for name in _TABLES:
        getattr(result, name).to_hdf5(g.create_group(name))
    if result.segments is not None:
        result.segments.to_hdf5(g.create_group("segments"))
    g.attrs["model"] = result.model
    g.attrs["scan_step_nm"] = float(result.scan_step_nm)
    g.attrs["map_window"] = np.asarray(result.map_window, dtype=np.int64)
    g.attrs["solver"] = json.dumps(result.solver, default=json_default, sort_keys=True)
    g.attrs["parameters"] = json.dumps(result.parameters, default=json_default, sort_keys=True)
    g.attrs["boundary_field_kind"] = "pairs" if isinstance(result.boundary_field, dict) else "table"
    if isinstance(f, h5py.File):
        write_parameters(f, "transport", result.parameters)


def write_transport(h5file: Any, result: TransportResult) -> None:
    """Write ``result`` to group ``/transport`` (replacing it) and its parameters to ``/parameters``.

    Parameters
    ----------
    h5file
        An open, writable ``h5py.File``, or a path: an existing results file is updated atomically,
        a new one is created.
    result
        The solution.
    """
    if isinstance(h5file, (h5py.File, h5py.Group)):
        _write(h5file, result)
        return
    path = Path(os.fspath(h5file))
    ctx = update_h5(path) if path.is_file() else atomic_h5(path)
    with ctx as f:
        _write(f, result)


def read_transport(h5file: Any) -> TransportResult:
    """Read a :class:`TransportResult` written by :func:`write_transport` (open h5py file or path)."""
    if not isinstance(h5file, (h5py.File, h5py.Group)):
        path = Path(os.fspath(h5file))
        if not path.is_file():
            raise FileFormatError(f"{path}: results file not found")
        with h5py.File(path, "r") as f:
            return read_transport(f)
    if "transport" not in h5file:
        raise FileFormatError(f"{getattr(h5file, 'filename', 'results file')}: no /transport group")
    g = h5file["transport"]
    arrays = {name: g[name][()] for name in _ARRAYS}
    tables = {name: Table.from_hdf5(g[name]) for name in _TABLES}
    btab = tables["boundaries"]
    if g.attrs.get("boundary_field_kind", "table") == "pairs":
        bf: Any = {
            (int(a), int(b)): tuple(map(float, fld))
            for a, b, fld in zip(btab["grain_a"], btab["grain_b"], btab["field"])
        }
    else:
        bf = np.asarray(btab["field"], dtype=np.float64)
    for t in tables.values():
        if "name" in t and t["name"].dtype.kind == "S":
            t["name"] = np.char.decode(t["name"], "utf-8")
    return TransportResult(
        **arrays,
        node_potential=g["node_potential"][()] if "node_potential" in g else None,
        **tables,
        boundary_field=bf,
        segments=Table.from_hdf5(g["segments"]) if "segments" in g else None,
        scan_step_nm=float(g.attrs["scan_step_nm"]),
        map_window=tuple(int(v) for v in g.attrs["map_window"]),
        model=str(g.attrs["model"]),
        solver=json.loads(g.attrs["solver"]),
        parameters=json.loads(g.attrs["parameters"]),
    )
