"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from ..errors import ParameterError


def parse_pair(text: str, name: str) -> tuple[float, float]:
    """Parse ``"A,B"`` into two floats, or raise a one-line ParameterError naming the option."""
    try:
        a, b = (float(s) for s in text.split(","))
    except (ValueError, AttributeError):
        raise ParameterError(f"{name} expects two numbers separated by a comma, got {text!r}") from None
    return a, b


def add_calibration_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("calibration overrides (take precedence over the file)")
    g.add_argument("--q-pixel-size", type=float, default=None, metavar="Q", help="detector pixel size, 1/Å per pixel")
    g.add_argument("--voltage", type=float, default=None, metavar="KV", help="accelerating voltage, kV")
    g.add_argument("--center", default=None, metavar="ROW,COL", help="direct-beam centre on the detector, pixels")
    g.add_argument("--scan-step", type=float, default=None, metavar="NM", help="scan step, nm")


def calibration_overrides(args: argparse.Namespace) -> dict:
    out = {
        "q_pixel_size": getattr(args, "q_pixel_size", None),
        "accelerating_voltage_kV": getattr(args, "voltage", None),
        "scan_step_nm": getattr(args, "scan_step", None),
    }
    if getattr(args, "center", None):
        out["center"] = parse_pair(args.center, "--center")
    return {k: v for k, v in out.items() if v is not None}
