"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ParameterError
from ..settings import check_calibration_value, check_option_range, parse_numbers, parse_pair  # noqa: F401  (the commands import them from here)


def add_calibration_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "calibration overrides (precedence: these options > --calibration FILE > the data file; conventions in README, 'Calibration')"
    )
    g.add_argument("--calibration", default=None, metavar="FILE.json",
                   help="calibration JSON (from `stemgrains calibrate`, or hand-written with the HDF5 attribute names)")
    g.add_argument("--q-pixel-size", type=float, default=None, metavar="Q", help="detector pixel size, 1/Å per pixel")
    g.add_argument("--voltage", type=float, default=None, metavar="KV", help="accelerating voltage, kV")
    g.add_argument("--center", default=None, metavar="ROW,COL", help="direct-beam centre on the detector, pixels")
    g.add_argument("--scan-step", type=float, default=None, metavar="NM", help="scan step, nm")
    g.add_argument("--q-rotation", type=float, default=None, metavar="DEG",
                   help="rotation bringing the detector axes into the scan (sample) frame, degrees from +x toward +y")
    g.add_argument("--q-flip", action="store_true", default=None, help="the camera image is transposed relative to the scan")
    g.add_argument("--ellipticity", default=None, metavar="RATIO,ANGLE",
                   help="elliptical distortion: axis ratio and the long axis' angle on the detector (deg from +col toward +row)")
    g.add_argument("--affine", default=None, metavar="A11,A12,A21,A22",
                   help="general detector distortion acting on offsets (dcol, drow): measured = A · ideal")


def add_auto_calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auto-calibrate", action="store_true", default=None,
                   help="fit pixel size, ellipticity and beam centre from the data first (as `stemgrains calibrate`); "
                        "the fit is written next to the output as *calibration.json and recorded in the results; its "
                        "figure calibration.png goes with the other figures (index: into --figures DIR, else "
                        "OUT.calibration.png beside OUT.h5)")


def given_origins(ds: Any, args: argparse.Namespace) -> dict[str, str]:
    """The calibration origins of ``ds`` (loaded with :func:`calibration_overrides` of ``args``, a command without
    the config machinery: info, vdf-grains) with each ``"override"`` said where it was given: ``"command line"``
    for a typed option (which wins over the file), ``"calibration file PATH"`` for a ``--calibration`` value."""
    typed = set(calibration_overrides(argparse.Namespace(**{**vars(args), "calibration": None})))
    from_file = f"calibration file {args.calibration}" if getattr(args, "calibration", None) else "command line"
    return {k: (("command line" if k in typed else from_file) if v == "override" else v)
            for k, v in ds.metadata.get("calibration_origin", {}).items()}


def calibration_overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if getattr(args, "calibration", None):
        from ..io.calibration import read_calibration_json

        out.update(read_calibration_json(args.calibration))
    flags = {
        "q_pixel_size": getattr(args, "q_pixel_size", None),
        "accelerating_voltage_kV": getattr(args, "voltage", None),
        "scan_step_nm": getattr(args, "scan_step", None),
        "q_rotation_deg": getattr(args, "q_rotation", None),
        "q_flip": getattr(args, "q_flip", None),
    }
    if getattr(args, "center", None):
        flags["center"] = parse_pair(args.center, "--center")
    if getattr(args, "ellipticity", None):
        flags["ellipticity"] = parse_pair(args.ellipticity, "--ellipticity")
    if getattr(args, "affine", None):
        flags["affine"] = parse_numbers(args.affine, "--affine", 4, "A11,A12,A21,A22")
    for key, opt in (("q_pixel_size", "--q-pixel-size"), ("accelerating_voltage_kV", "--voltage"), ("scan_step_nm", "--scan-step")):
        v = flags[key]
        if v is not None and not (v > 0 and v < float("inf")):
            raise ParameterError(f"{opt} expects a finite positive number, got {v:g}")
    if flags["accelerating_voltage_kV"] is not None:  # its range, named as the commands with a config name it
        check_option_range("calibration.accelerating_voltage_kV", flags["accelerating_voltage_kV"])
    for key, opt in (("center", "--center"), ("q_rotation_deg", "--q-rotation"), ("ellipticity", "--ellipticity"),
                     ("affine", "--affine")):
        if flags.get(key) is not None:
            check_calibration_value(key, flags[key], opt)
    out.update({k: v for k, v in flags.items() if v is not None})
    return out


def add_config_option(p: argparse.ArgumentParser, sections: str) -> None:
    """``--config FILE`` (TOML, or a results file whose recorded config is reused); see stemgrains.settings."""
    p.add_argument("--config", default=None, metavar="FILE.toml",
                   help=f"parameters from a config file (`stemgrains config --dump` writes one; a results .h5 or a "
                        f"run's config.toml repeats that run); this command reads {sections}; options given here "
                        "override the file")


def name_config_origin(err: ParameterError, args: argparse.Namespace, section: str, key: str,
                       dest: str) -> ParameterError:
    """An error about the config key ``[section] key`` (message ``key: ...``) named by where the value came from:
    the CLI names the option (``dest``) where it was typed (:func:`stemgrains.cli._option_names`); otherwise the
    config file and key (``FILE: [section] key: ...``), as the checks of the file itself do."""
    msg = str(err)
    if getattr(args, dest, None) is None and getattr(args, "config", None) and msg.startswith(f"{key}:"):
        return ParameterError(f"{args.config}: [{section}] {msg}")
    return err


def name_special_origin(err: ParameterError, args: argparse.Namespace) -> ParameterError:
    """An error about ``[grains] special`` (message ``special: ...``) named by where the value came from: the
    CLI names ``--special`` where it was typed (:func:`stemgrains.cli._option_names`); otherwise the config file
    and key (``FILE: [grains] special: ...``)."""
    return name_config_origin(err, args, "grains", "special", "special")


#: help of ``--phase`` (index, run, calibrate): a CIF path or the name of a CIF shipped with the package
#: (:data:`stemgrains.crystal.BUILTIN_CIFS`, resolved by :func:`stemgrains.crystal.resolve_cif`)
PHASE_HELP = "phase CIF, or a built-in name: au, na_beta2_alumina, zro2_baddeleyite (repeat for several phases)"
