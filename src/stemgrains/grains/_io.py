"""GrainMap ⇄ HDF5 (group ``grains``: ``labels``, ``table``, attrs ``scan_step_nm``, ``parameters``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
from orix.crystal_map import Phase, PhaseList

from .._table import Table
from ..crystal import read_phases, write_phases
from ..errors import FileFormatError
from ..io.results import atomic_h5, json_default, update_h5
from ._types import GRAIN_COLUMNS, GrainMap

__all__ = ["write_grains", "read_grains"]

GROUP = "grains"


def _lattice_record(phases: Any) -> dict[str, Any]:
    """Lattice parameters and space group of each phase (kept beside the CIF so phases without one keep
    their lattice: .ang/.ctf phases have no atoms and thus no CIF text)."""
    out = {}
    for pid, p in phases:
        if pid < 0:
            continue
        lat = p.structure.lattice
        out[str(pid)] = {
            "abc_deg": [lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma],
            "space_group": p.space_group.number if p.space_group is not None else None,
            "point_group": p.point_group.name if p.point_group is not None else None,
            "name": p.name,
        }
    return out


def _restore_lattices(phases: PhaseList, record: dict[str, Any]) -> PhaseList:
    ids, out = [], []
    for pid, p in phases:
        rec = record.get(str(pid))
        if rec is not None and (p.structure is None or len(p.structure) == 0):
            from diffpy.structure import Lattice, Structure

            kw: dict[str, Any] = {"name": rec["name"], "structure": Structure(lattice=Lattice(*rec["abc_deg"]))}
            if rec["space_group"] is not None:
                kw["space_group"] = int(rec["space_group"])
            else:
                kw["point_group"] = rec["point_group"]
            p = Phase(**kw)
        ids.append(pid)
        out.append(p)
    return PhaseList(phases=out, ids=ids)


def _write(f: h5py.Group, grain_map: GrainMap) -> None:
    if GROUP in f:
        del f[GROUP]
    g = f.create_group(GROUP)
    g.create_dataset("labels", data=grain_map.labels, compression="gzip", shuffle=True)
    grain_map.table.to_hdf5(g.create_group("table"))
    g.attrs["scan_step_nm"] = float(grain_map.scan_step_nm)
    g.attrs["parameters"] = json.dumps(grain_map.parameters, default=json_default, sort_keys=True)
    g.attrs["phase_lattices"] = json.dumps(_lattice_record(grain_map.phases), default=json_default)
    root = f.file
    if grain_map.phases is not None and "phases" not in root:
        write_phases(root, grain_map.phases)


def write_grains(h5file: str | os.PathLike | h5py.Group, grain_map: GrainMap) -> None:
    """Write a GrainMap into group ``/grains`` of a results file (replacing an existing one).

    Parameters
    ----------
    h5file
        An open, writable h5py file/group, or a path: an existing file is updated atomically (copy + replace), a
        missing one is created. The phases go to ``/phases`` when the file has none.
    grain_map
        The grains to write.
    """
    if isinstance(h5file, h5py.Group):
        _write(h5file, grain_map)
        return
    path = Path(h5file)
    ctx = update_h5(path) if path.exists() else atomic_h5(path)
    with ctx as f:
        _write(f, grain_map)


def _read(f: h5py.Group, source: str) -> GrainMap:
    if GROUP not in f:
        raise FileFormatError(f"{source}: no /{GROUP} group (run `stemgrains segment` first)")
    g = f[GROUP]
    try:
        labels = g["labels"][()]
        table = Table.from_hdf5(g["table"])
    except KeyError as err:
        raise FileFormatError(f"{source}: /{GROUP} is incomplete ({err})") from None
    missing = [c for c in GRAIN_COLUMNS if c not in table]
    if missing:
        raise FileFormatError(f"{source}: /{GROUP}/table lacks columns {missing}")
    phases = read_phases(f.file, source=source) if "phases" in f.file else None
    if phases is not None and "phase_lattices" in g.attrs:
        phases = _restore_lattices(phases, json.loads(g.attrs["phase_lattices"]))
    params = json.loads(g.attrs.get("parameters", "{}"))
    return GrainMap(labels=labels, table=table, phases=phases,
                    scan_step_nm=float(g.attrs.get("scan_step_nm", 1.0)), parameters=params)


def read_grains(h5file: str | os.PathLike | h5py.Group) -> GrainMap:
    """Read the GrainMap written by :func:`write_grains` (path or open h5py file/group)."""
    from ..io.results import read_with

    return read_with(h5file, _read)
