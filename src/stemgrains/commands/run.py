"""``stemgrains run INPUT --phase CIF --field X,Y -o OUTDIR``: the whole pipeline on one dataset."""

from __future__ import annotations

import argparse
import sys

from .. import config
from ..errors import ParameterError
from ._batch import add_batch_arguments, file_sha256s, is_batch, run_batch_command
from ._common import add_auto_calibrate, add_calibration_overrides, calibration_overrides, parse_pair

NAME = "run"
HELP = "index → grains → boundaries → (transport) → conduction-plane classification, with figures and tables"
DESCRIPTION = (
    "Run every stage on one 4D-STEM dataset and write OUTDIR/results.h5 (orientation, grains, boundaries, "
    "classification, transport), boundaries.csv, segments.csv, summary.json and the figures. Give the applied "
    "field with --field X,Y; with --electrode the ionic transport model runs too and, without --field, each "
    "boundary is classified under its local field. Several inputs (files, folders, globs): -o OUTDIR holds one "
    "such folder per input, OUTDIR/batch_summary.csv and batch_summary.png."
)
ORDER = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="+", metavar="INPUT", help="4D-STEM data file; several files, folders or globs make a batch")
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
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address: the indexing's chunks (one input) or whole inputs (several) run on its workers")
    add_calibration_overrides(p)
    add_auto_calibrate(p)
    add_batch_arguments(p)


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


def resolve_params(args: argparse.Namespace) -> dict:
    """Every parameter of one input's run, JSON-able (keys starting with ``_`` do not change the results)."""
    from pathlib import Path

    phases = [str(Path(c).resolve()) if Path(c).exists() else c for c in args.phase]
    return dict(
        phases=phases, phase_sha256=file_sha256s(phases),
        field=parse_pair(args.field, "--field") if args.field else None,
        electrodes=parse_electrodes(args.electrode),
        index=dict(step_deg=args.step, k_max=args.k_max),
        segment=dict(threshold_deg=args.threshold, min_grain_size=args.min_size, min_reliability=args.min_reliability),
        classify=dict(type_tolerance_deg=args.delta, conductivity_ratio=args.ratio),
        transport=dict(conductivity_ratio=args.ratio) if args.electrode else None,
        calibration=calibration_overrides(args), auto_calibrate=bool(args.auto_calibrate),
        figures=not args.no_figures, backend=args.backend, _progress=not args.no_progress,
    )


def run_one(input_path, output, params: dict) -> dict:
    """The whole pipeline on one input into the folder ``output`` (:func:`stemgrains.pipeline.run_pipeline`'s
    dict); ``params`` from :func:`resolve_params` (``_overwrite``, ``_scheduler`` optional)."""
    from ..pipeline import run_pipeline

    client = None
    if params.get("_scheduler"):
        from ..distributed import _import_distributed
        from ..errors import StemgrainsError

        try:
            client = _import_distributed().Client(params["_scheduler"], timeout="20s")
        except OSError as err:
            raise StemgrainsError(f"--scheduler {params['_scheduler']}: cannot connect ({err})") from None
    try:
        return run_pipeline(
            input_path, params["phases"], output, field=params["field"], electrodes=params["electrodes"],
            index_params=params["index"], segment_params=params["segment"], classify_params=params["classify"],
            transport_params=params["transport"], calibration_overrides=params["calibration"],
            auto_calibrate=params["auto_calibrate"], figures=params["figures"], progress=params.get("_progress", True),
            backend=params["backend"], client=client, overwrite=params.get("_overwrite", False),
        )
    finally:
        if client is not None:
            client.close()


def batch_job(input_path, folder, params: dict) -> dict:
    """One input of a batch (its folder belongs to the batch: an earlier run there is replaced); returns the
    numbers of the batch summary (see :func:`stemgrains.batch.run_batch`)."""
    out = run_one(input_path, folder, dict(params, _overwrite=True))
    s = out["summary"]
    n = int(s["scan_shape"][0]) * int(s["scan_shape"][1])
    cls = s.get("classification", {})
    return {
        "scan_shape": list(s["scan_shape"]),
        "patterns_per_s": n / out["index_seconds"] if out.get("index_seconds") else None,
        "indexed_fraction": s["indexed_fraction"], "median_reliability": s["median_reliability"],
        "phase_fit_warnings": list(s.get("phase_fit", {}).get("warnings", [])),
        "n_grains": s["n_grains"], "n_boundaries": s["n_boundaries"],
        "label_fraction": cls.get("label_fraction", {}), "behaviour_fraction": cls.get("behaviour_fraction", {}),
    }


def run(args: argparse.Namespace) -> int:
    params = resolve_params(args)
    if is_batch(args.input):
        return run_batch_command(args, batch_job, params)
    out = run_one(args.input[0], args.output, dict(params, _overwrite=args.overwrite, _scheduler=args.scheduler))
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
