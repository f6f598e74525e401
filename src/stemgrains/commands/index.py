"""``stemgrains index INPUT --phase CIF -o OUT.h5``: orientation map of a 4D-STEM dataset."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .. import config
from ._common import add_auto_calibrate, add_calibration_overrides, calibration_overrides

NAME = "index"
HELP = "index every diffraction pattern of a 4D-STEM dataset (template matching) into an orientation map"
DESCRIPTION = (
    "Template matching of every pattern against kinematic templates of one or more phases: spot detection, "
    "rotation-invariant prefilter, in-plane correlation, continuous refinement of all three angles. Writes "
    "/orientation (quaternions, phase_id, correlation_index, reliability, ...) with provenance and parameters. "
    "Interrupted runs resume from finished chunks kept in OUT.h5.partial/."
)
ORDER = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="4D-STEM data (project .h5, py4DSTEM .h5/.emd, .npy, .mib, .blo, .app5, .dm4, EMPAD .xml)")
    p.add_argument("--phase", action="append", required=True, metavar="CIF", help="phase CIF (repeat for several phases)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="results file to write")
    p.add_argument("--step", type=float, default=config.LIBRARY_STEP_DEG, metavar="DEG", help="library angular step (default %(default)g)")
    p.add_argument("--k-max", type=float, default=None, metavar="Q", help=f"largest scattering vector used, 1/Å (default: what the detector reaches, at most {config.K_MAX_CAP:g})")
    p.add_argument("--chunk-rows", type=int, default=8, metavar="N", help="scan rows per chunk (default %(default)d)")
    p.add_argument("--n-prefilter", type=int, default=config.N_PREFILTER, metavar="N",
                   help="templates passed by the rotation-invariant prefilter (default %(default)d; raise it for sparse patterns)")
    p.add_argument("--no-neighbor-pass", action="store_true",
                   help="index every pixel on its own (skip the pass in which pixels try their neighbours' solutions)")
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="dask.distributed scheduler address")
    p.add_argument("--export-ang", metavar="OUT.ang", default=None,
                   help="also write an EDAX TSL .ang (µm; IQ = correlation index, CI = reliability/100)")
    p.add_argument("--export-ctf", metavar="OUT.ctf", default=None,
                   help="also write an Oxford .ctf (µm; BC = 255 x correlation index, BS = 2.55 x reliability)")
    p.add_argument("--figures", metavar="DIR", default=None, help="write the IPF map, correlation-index and reliability maps there")
    p.add_argument("--no-progress", action="store_true")
    add_calibration_overrides(p)
    add_auto_calibrate(p)


def run(args: argparse.Namespace) -> int:
    from ..crystal import load_phase
    from ..index import index_orientations
    from ..index.api import IndexParams
    from ..index.results import write_index_results
    from ..io import load_4d

    from ..io.outputs import check_outputs

    out = Path(args.output)
    check_outputs({"-o": out, "--export-ang": args.export_ang, "--export-ctf": args.export_ctf,
                   "-o (checkpoint)": out.with_name(out.name + ".partial")}, [args.input, *args.phase])
    phases = [load_phase(c) for c in args.phase]
    ds = load_4d(args.input, **calibration_overrides(args))
    params = dict(step_deg=args.step, k_max=args.k_max, chunk_rows=args.chunk_rows, n_prefilter=args.n_prefilter,
                  neighbor_pass=not args.no_neighbor_pass)
    IndexParams(**params)  # validate before any work
    fit = None
    if args.auto_calibrate:
        from ..preprocess.calibrate import run_auto_calibration
        from .calibrate import format_fit

        cal_json = out.with_name(out.stem + ".calibration.json")
        ds, fit = run_auto_calibration(ds, phases, params, cal_json, cal_json.with_suffix(".png"))
        print(format_fit(fit, cal_json))
    client = None
    if args.scheduler:
        from ..distributed import _import_distributed

        try:
            client = _import_distributed().Client(args.scheduler, timeout="20s")
        except OSError as err:
            from ..errors import StemgrainsError

            raise StemgrainsError(f"--scheduler {args.scheduler}: cannot connect ({err})") from None
    ckpt = out.with_name(out.name + ".partial")
    xmap = index_orientations(ds, phases, checkpoint_dir=ckpt, progress=not args.no_progress, backend=args.backend, client=client, **params)
    params_out = dict(xmap.parameters, **({"calibration_fit": fit.to_dict()} if fit is not None else {}))
    write_index_results(out, xmap, ds, phases, params_out, export_ang=args.export_ang, export_ctf=args.export_ctf)
    shutil.rmtree(ckpt, ignore_errors=True)
    if args.figures:
        from ..plot.orientation import save_orientation_figures

        save_orientation_figures(xmap, args.figures)
    n = xmap.size
    ok = int((xmap.phase_id >= 0).sum())
    print(f"indexed {ok}/{n} patterns → {out}")
    if ok == 0:
        print("warning: no pattern was indexed (fewer than min_peaks spots everywhere, or no solution above "
              "min_correlation): check the calibration (--q-pixel-size, centre) and the phase", file=sys.stderr)
    from ..index.quality import phase_fit_check

    for w in phase_fit_check(xmap).warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
