"""Vendor 4D-STEM files through rosettasciio (optional extra ``stemgrains[io]``), read lazily.

=========  ===========================  ======================================================
extension  rosettasciio plugin          notes
=========  ===========================  ======================================================
.mib       ``rsciio.quantumdetector``   Merlin raw (+ .hdr); lazy memmap; no calibration in file
.blo       ``rsciio.blockfile``         NanoMegas ASTAR; scan step in nm; detector axes in cm
                                        (camera pixel size, not reciprocal space) → not calibrated
.app5      ``rsciio.topspin``           NanoMegas TopSpin; rosettasciio reads it into memory
                                        (no lazy support); detector units "Angle" → not calibrated
.dm3/.dm4  ``rsciio.digitalmicrograph`` Gatan; reciprocal axes in 1/nm are used
.xml       ``rsciio.empad``             EMPAD (.xml + .raw)
.hspy      ``rsciio.hspy``              HyperSpy/pyxem HDF5 (also an HDF5 file of any extension
                                        whose root holds ``Experiments``); axes calibrations used
.zspy      ``rsciio.zspy``              HyperSpy/pyxem zarr (a folder or zip store)
.emd       ``rsciio.emd``               Thermo Fisher Velox EMD (an HDF5 ``.emd`` that is not EMD 1.0)
=========  ===========================  ======================================================

Metadata: rosettasciio returns the file's header (``original_metadata``) and, for some plugins, a
``mapping`` from header entries to HyperSpy's metadata tree; the mapping is applied here as HyperSpy does
(.blo: ``Beam_energy`` → ``Acquisition_instrument.TEM.beam_energy`` in kV, ``Camera_length`` → camera length
in cm, ``Scan_rotation``). TopSpin .app5 files carry no mapping: the gun voltage
(``HardwareSettings.GunHighVoltage``, V) and camera length (``DiffractionCameraLength``) are read from the
header. The voltage becomes ``accelerating_voltage_kV``; camera length, scan rotation and the detector axes'
scale and units are reported in ``metadata`` (a camera length is not a reciprocal calibration without the
detector pixel size, so it does not set ``q_pixel_size``).

Axis order: rosettasciio returns arrays in HyperSpy order, navigation axes first (``y, x``), then signal
axes (``ky, kx``), i.e. already ``(scan_row, scan_col, det_row, det_col)``; the axes' ``navigate`` and
``index_in_array`` fields are checked and the array transposed (lazily) if the navigation axes are not first.
A file whose scan is stored as a flat list of frames (navigation 1-D) needs ``scan_shape=(rows, cols)``.

Calibration from the axes: navigation scale in nm/µm/Å → ``scan_step_nm``; signal scale in 1/nm or 1/Å
(reciprocal lengths without 2π) → ``q_pixel_size`` in 1/Å; in rad/mrad → ``q_pixel_size`` = angle / λ when
the beam energy is known (file metadata or override). Anything else (cm, "Angle", no units) counts as
not calibrated. Overrides always win.
"""

from __future__ import annotations

import gc
import importlib
import warnings
from pathlib import Path
from typing import Any

from ..data import Dataset4D, file_wavelength
from ..errors import FileFormatError, ParameterError, StemgrainsError
from ._common import EXPECTED_4D, as_4d, build_calibration, clean_overrides, finite_or_none, first_line, not_4d_message

#: extension → (rosettasciio module, format name)
PLUGINS: dict[str, tuple[str, str]] = {
    ".mib": ("rsciio.quantumdetector", "Quantum Detectors Merlin (.mib)"),
    ".blo": ("rsciio.blockfile", "NanoMegas ASTAR blockfile (.blo)"),
    ".app5": ("rsciio.topspin", "NanoMegas TopSpin (.app5)"),
    ".dm3": ("rsciio.digitalmicrograph", "Gatan DigitalMicrograph (.dm3)"),
    ".dm4": ("rsciio.digitalmicrograph", "Gatan DigitalMicrograph (.dm4)"),
    ".xml": ("rsciio.empad", "EMPAD (.xml + .raw)"),
    ".hspy": ("rsciio.hspy", "HyperSpy/pyxem (.hspy)"),
    ".zspy": ("rsciio.zspy", "HyperSpy/pyxem zarr (.zspy)"),
}
#: HDF5 layouts recognised by content and read with rosettasciio: name → (module, format name)
HDF5_PLUGINS: dict[str, tuple[str, str]] = {
    "hspy": ("rsciio.hspy", "HyperSpy/pyxem HDF5"),
    "velox": ("rsciio.emd", "Thermo Fisher Velox EMD"),
}

_LENGTH_TO_NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "μm": 1e3, "micron": 1e3, "å": 0.1, "a": 0.1, "angstrom": 0.1, "pm": 1e-3}
_RECIPROCAL_TO_INV_A = {
    "1/nm": 0.1,
    "nm^-1": 0.1,
    "nm-1": 0.1,
    "1/å": 1.0,
    "1/a": 1.0,
    "å^-1": 1.0,
    "a^-1": 1.0,
    "a-1": 1.0,
    "1/angstrom": 1.0,
}
_ANGLE_TO_RAD = {"rad": 1.0, "mrad": 1e-3, "mrads": 1e-3}


def _rsciio_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise StemgrainsError(
            f"reading this format needs rosettasciio ({name}); install it with: pip install stemgrains[io]"
        ) from None


def _norm_units(units: Any) -> str:
    return str(units or "").strip().replace(" ", "").replace("Å", "å").lower()


def _beam_energy_kV(metadata: dict[str, Any]) -> float | None:
    try:
        return finite_or_none(metadata["Acquisition_instrument"]["TEM"]["beam_energy"])
    except (KeyError, TypeError):
        return None


def _get_path(tree: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def mapped_metadata(signal: dict[str, Any]) -> dict[str, Any]:
    """The signal's ``metadata`` with its plugin's ``mapping`` from ``original_metadata`` applied (as HyperSpy
    does when it loads a file); entries already in ``metadata`` are kept."""
    import copy

    meta = copy.deepcopy(signal.get("metadata") or {})
    original = signal.get("original_metadata") or {}
    for src, target in (signal.get("mapping") or {}).items():
        value = _get_path(original, src)
        if value is None:
            continue
        dest, fn = (target if isinstance(target, tuple) else (target, None))
        try:
            value = fn(value) if fn is not None else value
        except Exception:  # a malformed header entry: leave it out of the metadata
            continue
        node = meta
        keys = dest.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(keys[-1], value)
    return meta


def instrument_metadata(meta: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """Voltage (kV), camera length and scan rotation from mapped metadata, plus vendor headers without a mapping
    (TopSpin ``HardwareSettings``)."""
    out: dict[str, Any] = {}
    tem = _get_path(meta, "Acquisition_instrument.TEM") or {}
    if isinstance(tem, dict):
        if finite_or_none(tem.get("beam_energy")) is not None:
            out["voltage_kV"] = finite_or_none(tem["beam_energy"])
        if finite_or_none(tem.get("camera_length")) is not None:
            out["camera_length"] = finite_or_none(tem["camera_length"])
        if finite_or_none(tem.get("rotation")) is not None:
            out["scan_rotation_deg"] = finite_or_none(tem["rotation"])
    hw = original.get("HardwareSettings") if isinstance(original, dict) else None
    if isinstance(hw, dict):
        v = finite_or_none(hw.get("GunHighVoltage"))
        if "voltage_kV" not in out and v is not None and v > 0:
            out["voltage_kV"] = v / 1000.0  # volts
        cl = finite_or_none(hw.get("DiffractionCameraLength"))
        if "camera_length" not in out and cl is not None:
            out["camera_length"] = cl
    return out


def calibration_from_axes(
    axes: list[dict[str, Any]], voltage_kV: float | None, source: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Calibration fields from rosettasciio axes dicts (already in array order).

    Returns ``(found, notes)``: the calibration fields found and a dict of raw axis units/scales for metadata.
    """
    nav = [a for a in axes if a.get("navigate", True)]
    sig = [a for a in axes if not a.get("navigate", True)]
    found: dict[str, Any] = {}
    notes: dict[str, Any] = {
        "navigation_units": [str(a.get("units") or "") for a in nav],
        "navigation_scales": [float(a.get("scale", 1.0)) for a in nav],
        "signal_units": [str(a.get("units") or "") for a in sig],
        "signal_scales": [float(a.get("scale", 1.0)) for a in sig],
    }
    steps = []
    for a in nav:
        f = _LENGTH_TO_NM.get(_norm_units(a.get("units")))
        s = finite_or_none(a.get("scale"))
        if f is not None and s is not None and s > 0:
            steps.append(s * f)
    if len(steps) == len(nav) and steps:
        if max(steps) > min(steps) * 1.01:
            notes["scan_steps_nm_rows_cols"] = steps
            raise ParameterError(
                f"{source}: scan steps differ along rows and columns ({steps[0]:g} vs {steps[-1]:g} nm); "
                "square scan pixels are required: resample, or give scan_step_nm to override"
            )
        found["scan_step_nm"] = steps[-1]
    qs = []
    for a in sig:
        u = _norm_units(a.get("units"))
        s = finite_or_none(a.get("scale"))
        if s is None or s <= 0:
            continue
        if u in _RECIPROCAL_TO_INV_A:
            qs.append(s * _RECIPROCAL_TO_INV_A[u])
        elif u in _ANGLE_TO_RAD and voltage_kV is not None:
            qs.append(s * _ANGLE_TO_RAD[u] / file_wavelength(voltage_kV, source))
    if len(qs) == len(sig) == 2:
        if max(qs) > min(qs) * 1.01:
            raise ParameterError(
                f"{source}: detector pixels are not square in q ({qs[0]:g} vs {qs[1]:g} 1/Å); give q_pixel_size "
                "and an ellipticity correction"
            )
        found["q_pixel_size"] = qs[-1]
    return found, notes


def _array_order(data: Any, axes: list[dict[str, Any]], source: str) -> tuple[Any, list[dict[str, Any]]]:
    """Transpose (lazily) so navigation axes come first, in array order; return data and ordered axes."""
    def position(a: dict[str, Any], k: int) -> int:
        i = a.get("index_in_array")
        return k if i is None else int(i)  # HyperSpy files list axes in array order without an index

    axes = [dict(a, index_in_array=position(a, k)) for k, a in enumerate(axes)]
    ordered = sorted(axes, key=lambda a: a["index_in_array"])
    nav = [a for a in ordered if a.get("navigate", True)]
    sig = [a for a in ordered if not a.get("navigate", True)]
    if len(sig) != 2:
        raise FileFormatError(not_4d_message(source, tuple(data.shape), len(nav), len(sig)))
    perm = [a["index_in_array"] for a in nav + sig]
    if perm != list(range(len(perm))):
        data = data.transpose(perm)
    return data, nav + sig


def pick_signal(signals: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """The first signal with 2 detector axes and at least one navigation axis (a 4D-STEM cube)."""
    for s in signals:
        axes = s.get("axes", [])
        n_sig = sum(1 for a in axes if not a.get("navigate", True))
        if n_sig == 2 and len(axes) >= 3:
            return s
    shapes = [tuple(getattr(s.get("data"), "shape", ())) for s in signals]
    if len(signals) == 1:  # say what the one dataset is instead
        axes = signals[0].get("axes", [])
        n_sig = sum(1 for a in axes if not a.get("navigate", True))
        raise FileFormatError(not_4d_message(source, shapes[0], len(axes) - n_sig, n_sig, reshapable=False))
    raise FileFormatError(f"{source}: no 4D-STEM data cube among its {len(signals)} datasets (shapes {shapes}); "
                          f"{EXPECTED_4D}")


def dataset_from_signal(
    signal: dict[str, Any],
    source: str,
    format_name: str,
    overrides: dict[str, Any],
    scan_shape: tuple[int, int] | None = None,
) -> Dataset4D:
    """Convert one rosettasciio signal dict to a :class:`Dataset4D` (axis order, calibration, shape check)."""
    data = signal["data"]
    axes = list(signal.get("axes", []))
    data, axes = _array_order(data, axes, source)
    metadata = mapped_metadata(signal)
    original = signal.get("original_metadata") or {}
    instrument = instrument_metadata(metadata, original)
    clean = clean_overrides(overrides)
    file_kV = instrument.get("voltage_kV")
    voltage = finite_or_none(clean.get("accelerating_voltage_kV")) or file_kV
    found, notes = calibration_from_axes(axes, voltage, source)
    if file_kV is not None:
        found["accelerating_voltage_kV"] = file_kV
    data = as_4d(data, source, scan_shape)
    cal, origin = build_calibration(source, found, overrides)
    meta = {"format": format_name, "calibration_origin": origin, "lazy": hasattr(data, "dask"), **notes}
    for key in ("camera_length", "scan_rotation_deg"):
        if key in instrument:
            meta[key] = instrument[key]
    general = metadata.get("General", {}) if isinstance(metadata, dict) else {}
    if isinstance(general, dict) and general.get("title"):
        meta["title"] = str(general["title"])
    return Dataset4D(data=data, calibration=cal, metadata=meta, source=source)


def read_vendor(
    path: Path,
    overrides: dict[str, Any],
    scan_shape: tuple[int, int] | None = None,
    dataset: str | None = None,
    plugin: tuple[str, str] | None = None,
) -> Dataset4D:
    """Read a vendor file with rosettasciio (lazy where the plugin supports it); ``plugin`` = (module, format
    name) overrides the choice by extension (HDF5 files recognised by content)."""
    ext = path.suffix.lower()
    modname, format_name = plugin if plugin is not None else PLUGINS[ext]
    mod = _rsciio_module(modname)
    source = str(path)
    kwargs: dict[str, Any] = {"lazy": True}
    if ext == ".app5":
        kwargs = {"show_progressbar": False}  # rosettasciio reads TopSpin files into memory
        if dataset is not None:
            kwargs["dataset_path"] = dataset
    failure = None
    with warnings.catch_warnings():
        # some plugins leave their file handle open when they fail on a damaged file; it is closed (with a
        # ResourceWarning) when the exception is released below
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            if modname in ("rsciio.hspy", "rsciio.zspy", "rsciio.emd"):
                warnings.simplefilter("ignore")  # version notes of HyperSpy files, Velox detector warnings
            signals = mod.file_reader(str(path), **kwargs)
        except StemgrainsError:
            raise
        except Exception as err:  # each plugin raises its own types on damaged input
            failure = first_line(err)
        if failure is not None:
            gc.collect()
    if failure is not None:
        raise FileFormatError(f"{source}: cannot read as {format_name} ({failure})")
    if isinstance(signals, dict):
        signals = [signals]
    if not signals:
        raise FileFormatError(f"{source}: no datasets in the file")
    return dataset_from_signal(pick_signal(signals, source), source, format_name, overrides, scan_shape)
