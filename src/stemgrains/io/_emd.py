"""py4DSTEM / EMD 1.0 files (``.h5``/``.emd`` written by ``py4DSTEM.save``), read lazily.

``py4DSTEM.read`` loads the whole cube into memory, so the cube itself is opened with h5py (kept on
disk) and only the calibration is read with emdfile's own metadata reader (``emdfile.Metadata.from_h5``),
the layer py4DSTEM builds on.

Axis mapping. py4DSTEM's ``DataCube.data`` is indexed ``[Rx, Ry, Qx, Qy]``, where py4DSTEM's "x" is the
*first array axis* (shown vertically by py4DSTEM's own displays). So, as arrays::

    scan_row = Rx,  scan_col = Ry,  det_row = Qx,  det_col = Qy

and the cube is used as stored, without transposing; only the names differ (py4DSTEM's x is our row axis,
which is our sample y). Calibration: ``Q_pixel_size`` with ``Q_pixel_units`` ``A^-1`` (or ``nm^-1``,
divided by 10; or ``mrad``, converted with the wavelength) → ``q_pixel_size``; ``R_pixel_size`` with
``R_pixel_units`` ``nm`` (or ``A``) → ``scan_step_nm``; ``qx0_mean``/``qy0_mean`` → ``center = (row, col)``.
py4DSTEM's ``QR_rotation_degrees``/``QR_flip`` use py4DSTEM's frame conventions and are *not* converted:
they are kept in ``metadata`` and ``q_rotation_deg``/``q_flip`` must be given explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from ..data import Dataset4D, file_wavelength
from ..errors import FileFormatError, InputError
from ._common import H5Array, as_4d, build_calibration, clean_overrides, finite_or_none, first_line, scalar_attr

FORMAT_NAME = "py4DSTEM EMD 1.0"


def is_emd(f: h5py.File) -> bool:
    """True for an EMD 1.0 file (root attributes ``emd_group_type = 'file'`` and ``version_major``)."""
    return scalar_attr(f.attrs, "emd_group_type") == "file" and "version_major" in f.attrs


def _datacubes(f: h5py.File) -> list[str]:
    """HDF5 paths of the EMD array groups holding a 4-D ``data`` dataset (DataCubes first)."""
    found: list[tuple[int, str]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and scalar_attr(obj.attrs, "emd_group_type") == "array":
            d = obj.get("data")
            if isinstance(d, h5py.Dataset) and d.ndim in (3, 4):
                rank = 0 if scalar_attr(obj.attrs, "python_class") == "DataCube" else 1
                found.append((rank, "/" + name))

    f.visititems(visit)
    return [p for _, p in sorted(found)]


def _calibration_group(f: h5py.File, array_path: str) -> h5py.Group | None:
    """The ``metadatabundle/calibration`` group of the array or of its nearest ancestor."""
    parts = array_path.strip("/").split("/")
    for n in range(len(parts), -1, -1):
        g = f.get("/" + "/".join(parts[:n] + ["metadatabundle", "calibration"]))
        if isinstance(g, h5py.Group):
            return g
    return None


def _q_pixel_size(value: Any, units: Any, voltage_kV: float | None, source: str = "EMD file") -> float | None:
    v = finite_or_none(value)
    if v is None:
        return None
    u = str(units or "").strip().replace(" ", "").lower()
    if u in ("a^-1", "1/a", "å^-1", "1/å", "a-1"):
        return v
    if u in ("nm^-1", "1/nm", "nm-1"):
        return v / 10.0
    if u in ("mrad", "mrads") and voltage_kV is not None:
        return v * 1e-3 / file_wavelength(voltage_kV, source)
    return None  # 'pixels' or unknown: not calibrated


def read_emd(f: h5py.File, path: Path, overrides: dict[str, Any], dataset: str | None = None) -> Dataset4D:
    """A lazy :class:`Dataset4D` over a DataCube of an open EMD 1.0 file."""
    from emdfile import Metadata

    source = str(path)
    cubes = _datacubes(f)
    if dataset is not None:
        key = "/" + dataset.strip("/")
        if key not in cubes:
            raise InputError(f"{source}: no EMD data cube at {dataset!r}; found {', '.join(cubes) or 'none'}")
        cube = key
    elif not cubes:
        raise FileFormatError(f"{source}: EMD file holds no 4-D data cube (no EMD array group with 4-D 'data')")
    else:
        cube = cubes[0]
    dset = f[cube + "/data"]
    data = as_4d(H5Array(dset, f"{source}:{cube}"), source)

    params: dict[str, Any] = {}
    cal_group = _calibration_group(f, cube)
    if cal_group is not None:
        try:
            params = dict(Metadata.from_h5(cal_group)._params)
        except Exception as err:  # emdfile asserts / raises bare Exception on malformed metadata
            raise FileFormatError(f"{source}: cannot read the py4DSTEM calibration ({first_line(err)})") from None

    clean = clean_overrides(overrides)
    voltage = finite_or_none(clean.get("accelerating_voltage_kV"))
    found: dict[str, Any] = {}
    qpx = _q_pixel_size(params.get("Q_pixel_size"), params.get("Q_pixel_units"), voltage, str(path))
    if qpx is not None:
        found["q_pixel_size"] = qpx
    rpx = finite_or_none(params.get("R_pixel_size"))
    r_units = str(params.get("R_pixel_units") or "").strip().lower()
    if rpx is not None and r_units == "nm":
        found["scan_step_nm"] = rpx
    elif rpx is not None and r_units in ("a", "å", "angstrom"):
        found["scan_step_nm"] = rpx / 10.0
    qx0, qy0 = finite_or_none(params.get("qx0_mean")), finite_or_none(params.get("qy0_mean"))
    if qx0 is not None and qy0 is not None:
        found["center"] = (qx0, qy0)  # Qx is the detector row axis
    cal, origin = build_calibration(source, found, overrides)
    data[0, 0]  # fail fast on a damaged file
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "emd_path": cube,
        "calibration_origin": origin,
        "axis_mapping": "scan_row=Rx, scan_col=Ry, det_row=Qx, det_col=Qy (as stored)",
    }
    for key in ("QR_rotation_degrees", "QR_flip", "Q_pixel_units", "R_pixel_units"):
        if key in params and params[key] is not None:
            v = params[key]
            meta[f"py4dstem_{key}"] = v.item() if hasattr(v, "item") else v
    if len(cubes) > 1:
        meta["other_datacubes"] = [c for c in cubes if c != cube]
    return Dataset4D(data=data, calibration=cal, metadata=meta, source=source)
