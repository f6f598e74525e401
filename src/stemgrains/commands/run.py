"""``stemgrains run INPUT --phase CIF --field X,Y -o OUTDIR``: the whole pipeline on one dataset."""

from __future__ import annotations

import argparse
import sys

from .. import config
from ..errors import ParameterError
from ._common import add_auto_calibrate, add_calibration_overrides, calibration_overrides, parse_pair

NAME = "run"
HELP = "index → grains → boundaries → (transport) → conduction-plane classification, with figures and tables"
DESCRIPTION = (
    "Run every stage on one 4D-STEM dataset and write OUTDIR/results.h5 (orientation, grains, boundaries, "
    "classification, transport), boundaries.csv, segments.csv, summary.json and the figures. Give the applied "
    "field with --field X,Y; with --electrode the ionic transport model runs too and, without --field, each "
    "boundary is classified under its local field."
)
ORDER = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="4D-STEM data file")
    p.add_argument("--phase", action="append", required=True, metavar="CIF", help="phase CIF (repeat for several)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--field", default=None, metavar="X,Y", help="applied in-plane field direction, sample frame (x right, y down)")
    p.add_argument("--electrode", action="append", default=[], metavar="WHERE=V",
                   help="transport electrode: left|right|top|bottom or a mask .npy, = potential (repeat)")
    p.add_argument("--step", type=float, default=config.LIBRARY_STEP_DEG, metavar="DEG", help="library step (default %(default)g)")
    p.add_argument("--k-max", type=float, default=None, metavar="Q", help=f"largest scattering vector, 1/Å (default: what the detector reaches, at most {config.K_MAX_CAP:g})")
    p.add_argument("--threshold", type=float, default=config.GRAIN_THRESHOLD_DEG, metavar="DEG", help="grain threshold (default %(default)g)")
    p.add_argument("--min-size", type=int, default=config.MIN_GRAIN_SIZE_PX, metavar="N", help="smallest grain, px (default %(default)d)")
    p.add_argument("--min-reliability", type=float, default=None, metavar="R", help="pixels below this reliability are unassigned")
    p.add_argument("--delta", type=float, default=config.TYPE_TOLERANCE_DEG, metavar="DEG", help="type tolerance (default %(default)g)")
    p.add_argument("--ratio", type=float, default=config.CONDUCTIVITY_RATIO, help="σ_ip/σ_op (default %(default)g)")
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--overwrite", action="store_true",
                   help="OUTDIR holds another run's results: delete the files that run wrote, then run")
    p.add_argument("--no-progress", action="store_true")
    add_calibration_overrides(p)
    add_auto_calibrate(p)


def parse_electrodes(items: list[str]) -> dict | None:
    if not items:
        return None
    out = {}
    for it in items:
        where, sep, v = it.partition("=")
        if where.strip() in out:
            raise ParameterError(f"--electrode {where.strip()} is given twice ({where.strip()}={out[where.strip()]:g} and {it!r}); give each electrode once")
        try:
            out[where.strip()] = float(v)
        except ValueError:
            raise ParameterError(f"--electrode expects WHERE=POTENTIAL (e.g. left=1), got {it!r}") from None
        if not sep or not where.strip():
            raise ParameterError(f"--electrode expects WHERE=POTENTIAL (e.g. left=1), got {it!r}")
    from ..transport.api import require_potential_difference

    require_potential_difference(list(out.items()))  # before hours of indexing
    if any(k.endswith(".npy") for k in out):
        import numpy as np

        return [(np.load(k) if k.endswith(".npy") else k, v) for k, v in out.items()]
    return out


def run(args: argparse.Namespace) -> int:
    from ..pipeline import run_pipeline

    field = parse_pair(args.field, "--field") if args.field else None
    out = run_pipeline(
        args.input,
        args.phase,
        args.output,
        field=field,
        electrodes=parse_electrodes(args.electrode),
        index_params=dict(step_deg=args.step, k_max=args.k_max),
        segment_params=dict(threshold_deg=args.threshold, min_grain_size=args.min_size, min_reliability=args.min_reliability),
        classify_params=dict(type_tolerance_deg=args.delta, conductivity_ratio=args.ratio),
        transport_params=dict(conductivity_ratio=args.ratio) if args.electrode else None,
        calibration_overrides=calibration_overrides(args),
        auto_calibrate=args.auto_calibrate,
        figures=not args.no_figures,
        progress=not args.no_progress,
        backend=args.backend,
        overwrite=args.overwrite,
    )
    s = out["summary"]
    if "calibration_fit" in out:
        from .calibrate import format_fit

        print(format_fit(out["calibration_fit"], out["calibration"]))
    print(f"{s['n_grains']} grains, {s['n_boundaries']} boundaries, indexed {100 * s['indexed_fraction']:.1f}% → {args.output}")
    for k, v in s["classification"].get("behaviour", {}).items() if isinstance(s["classification"].get("behaviour"), dict) else []:
        print(f"  {k}: {v}")
    if s["indexed_fraction"] == 0:
        print("warning: no pattern was indexed (fewer than min_peaks spots everywhere, or no solution above "
              "min_correlation): check the calibration (--q-pixel-size, centre) and the phase", file=sys.stderr)
    for w in s.get("phase_fit", {}).get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    return 0
