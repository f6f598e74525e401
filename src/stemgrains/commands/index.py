"""``stemgrains index INPUT --phase CIF -o OUT.h5``: orientation map of a 4D-STEM dataset.

Several inputs (files, folders, globs): ``-o OUTDIR`` gets ``OUTDIR/<name>/results.h5`` per input and the batch
summary (:mod:`stemgrains.batch`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from .. import config
from ._batch import add_batch_arguments, file_sha256s, is_batch, run_batch_command
from ._common import add_auto_calibrate, add_calibration_overrides, calibration_overrides

NAME = "index"
HELP = "index every diffraction pattern of a 4D-STEM dataset (template matching) into an orientation map"
DESCRIPTION = (
    "Template matching of every pattern against kinematic templates of one or more phases: spot detection, "
    "rotation-invariant prefilter, in-plane correlation, continuous refinement of all three angles. Writes "
    "/orientation (quaternions, phase_id, correlation_index, reliability, ...) with provenance and parameters. "
    "Interrupted runs resume from finished chunks kept in OUT.h5.partial/. Several inputs (files, folders, "
    "globs): -o OUTDIR holds OUTDIR/<name>/results.h5 per input (--export-ang/--export-ctf/--figures then name "
    "files inside it), OUTDIR/batch_summary.csv and batch_summary.png."
)
ORDER = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="+", metavar="INPUT",
                   help="4D-STEM data (project .h5, py4DSTEM .h5/.emd, .npy, .mib, .blo, .app5, .dm4, EMPAD .xml); "
                        "several files, folders or globs make a batch")
    p.add_argument("--phase", action="append", required=True, metavar="CIF", help="phase CIF (repeat for several phases)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="results file to write (several inputs: a folder)")
    p.add_argument("--step", type=float, default=config.LIBRARY_STEP_DEG, metavar="DEG", help="library angular step (default %(default)g)")
    p.add_argument("--k-max", type=float, default=None, metavar="Q", help=f"largest scattering vector used, 1/Å (default: what the detector reaches, at most {config.K_MAX_CAP:g})")
    p.add_argument("--chunk-rows", type=int, default=8, metavar="N", help="scan rows per chunk (default %(default)d)")
    p.add_argument("--n-prefilter", type=int, default=config.N_PREFILTER, metavar="N",
                   help="templates passed by the rotation-invariant prefilter (default %(default)d; raise it for sparse patterns)")
    p.add_argument("--no-neighbor-pass", action="store_true",
                   help="index every pixel on its own (skip the pass in which pixels try their neighbours' solutions)")
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address: chunks of scan rows (one input) or whole inputs (several) run on its workers")
    p.add_argument("--export-ang", metavar="OUT.ang", default=None,
                   help="also write an EDAX TSL .ang (µm; IQ = correlation index, CI = reliability/100)")
    p.add_argument("--export-ctf", metavar="OUT.ctf", default=None,
                   help="also write an Oxford .ctf (µm; BC = 255 x correlation index, BS = 2.55 x reliability)")
    p.add_argument("--figures", metavar="DIR", default=None, help="write the IPF map, correlation-index and reliability maps there")
    p.add_argument("--no-progress", action="store_true")
    add_calibration_overrides(p)
    add_auto_calibrate(p)
    add_batch_arguments(p)


def resolve_params(args: argparse.Namespace) -> dict:
    """Every parameter of one input's run, JSON-able (keys starting with ``_`` do not change the results)."""
    from pathlib import Path as _P

    phases = [str(_P(c).resolve()) if _P(c).exists() else c for c in args.phase]
    return dict(
        phases=phases, phase_sha256=file_sha256s(phases), calibration=calibration_overrides(args),
        index=dict(step_deg=args.step, k_max=args.k_max, chunk_rows=args.chunk_rows, n_prefilter=args.n_prefilter,
                   neighbor_pass=not args.no_neighbor_pass),
        auto_calibrate=bool(args.auto_calibrate), backend=args.backend, export_ang=args.export_ang,
        export_ctf=args.export_ctf, figures=args.figures, _progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    params = resolve_params(args)
    if is_batch(args.input):
        return run_batch_command(args, batch_job, params)
    got = run_one(args.input[0], args.output, dict(params, _scheduler=args.scheduler))
    xmap, out = got["xmap"], got["output"]
    n = xmap.size
    ok = int((xmap.phase_id >= 0).sum())
    print(f"indexed {ok}/{n} patterns → {out}")
    if ok == 0:
        print("warning: no pattern was indexed (fewer than min_peaks spots everywhere, or no solution above "
              "min_correlation): check the calibration (--q-pixel-size, centre) and the phase", file=sys.stderr)
    for w in got["phase_fit"].warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def batch_job(input_path: Path, folder: Path, params: dict) -> dict:
    """One input of a batch: ``folder/results.h5`` (exports and figures named by the options, inside ``folder``);
    returns the numbers of the batch summary (see :func:`stemgrains.batch.run_batch`)."""
    folder = Path(folder)
    inside = {k: (str(folder / Path(params[k]).name) if params.get(k) else None) for k in ("export_ang", "export_ctf", "figures")}
    got = run_one(input_path, folder / "results.h5", dict(params, **inside))
    xmap = got["xmap"]
    n = xmap.size
    return {
        "scan_shape": list(got["scan_shape"]),
        "patterns_per_s": n / got["index_seconds"] if got["index_seconds"] > 0 else None,
        "indexed_fraction": float((xmap.phase_id >= 0).mean()) if n else 0.0,
        "median_reliability": float(np.median(xmap.prop["reliability"])) if n else None,
        "phase_fit_warnings": list(got["phase_fit"].warnings),
    }


def run_one(input_path: str | Path, output: str | Path, params: dict) -> dict:
    """Index one input into ``output`` (a results file) with resolved ``params`` (:func:`resolve_params`).

    Returns ``xmap``, ``output``, ``scan_shape``, ``index_seconds`` (wall time of the indexing of this call),
    ``phase_fit`` (:class:`~stemgrains.index.quality.PhaseFitReport`) and ``calibration_fit`` (or None).
    """
    import time

    from ..crystal import load_phase
    from ..index import index_orientations
    from ..index.api import IndexParams
    from ..index.results import write_index_results
    from ..io import load_4d

    from ..io.outputs import check_outputs

    out = Path(output)
    check_outputs({"-o": out, "--export-ang": params.get("export_ang"), "--export-ctf": params.get("export_ctf"),
                   "-o (checkpoint)": out.with_name(out.name + ".partial")}, [input_path, *params["phases"]])
    phases = [load_phase(c) for c in params["phases"]]
    ds = load_4d(input_path, **params.get("calibration", {}))
    index_params = dict(params["index"])
    IndexParams(**index_params)  # validate before any work
    fit = None
    if params.get("auto_calibrate"):
        from ..preprocess.calibrate import run_auto_calibration
        from .calibrate import format_fit

        cal_json = out.with_name(out.stem + ".calibration.json")
        ds, fit = run_auto_calibration(ds, phases, index_params, cal_json, cal_json.with_suffix(".png"))
        print(format_fit(fit, cal_json))
    client = None
    scheduler = params.get("_scheduler")
    if scheduler:
        from ..distributed import _import_distributed

        try:
            client = _import_distributed().Client(scheduler, timeout="20s")
        except OSError as err:
            from ..errors import StemgrainsError

            raise StemgrainsError(f"--scheduler {scheduler}: cannot connect ({err})") from None
    ckpt = out.with_name(out.name + ".partial")
    t0 = time.perf_counter()
    try:
        xmap = index_orientations(ds, phases, checkpoint_dir=ckpt, progress=params.get("_progress", True),
                                  backend=params.get("backend", "cpu"), client=client, **index_params)
    finally:
        if client is not None:
            client.close()
    index_seconds = time.perf_counter() - t0
    params_out = dict(xmap.parameters, **({"calibration_fit": fit.to_dict()} if fit is not None else {}))
    write_index_results(out, xmap, ds, phases, params_out, export_ang=params.get("export_ang"),
                        export_ctf=params.get("export_ctf"))
    shutil.rmtree(ckpt, ignore_errors=True)
    if params.get("figures"):
        from ..plot.orientation import save_orientation_figures

        save_orientation_figures(xmap, params["figures"])
    from ..index.quality import phase_fit_check

    return {"xmap": xmap, "output": out, "scan_shape": tuple(ds.scan_shape), "index_seconds": index_seconds,
            "phase_fit": phase_fit_check(xmap), "calibration_fit": fit}
