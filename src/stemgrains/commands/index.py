"""``stemgrains index INPUT --phase CIF -o OUT.h5``: orientation map of a 4D-STEM dataset.

Several inputs (files, folders, globs): ``-o OUTDIR`` gets ``OUTDIR/<name>/results.h5`` per input and the batch
summary (:mod:`stemgrains.batch`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import config
from .._relrod import BATCH_KEYS, refine_choice_text, refine_label
from ..errors import ParameterError
from ._batch import add_batch_arguments, batch_params, is_batch, run_batch_command
from ._common import PHASE_HELP, add_auto_calibrate, add_calibration_overrides, add_config_option


def reliable_line(fractions: dict[str, float], where: str) -> str:
    """One line: the share of pixels with reliability ≥ 5 and, where given, with grain_reliability ≥ 5."""
    line = f"reliability ≥ 5: {100 * fractions['reliable_fraction']:.1f} % of the patterns"
    if "grain_reliable_fraction" in fractions:
        line += (f"; with what their grains decided (grain_reliability ≥ 5): {100 * fractions['grain_reliable_fraction']:.1f} %"
                 f" ({where}{'/grain_reliability' if where.startswith('/') else ' grain_reliable_fraction'})")
    return line


#: Below this share of reliable patterns (the larger of reliability and grain_reliability ≥ 5) a map indexed with
#: a calibration that no fit confirmed gets :func:`low_reliable_hint`: a distorted detector (5 % ellipticity at 112°;
#: the file states q_pixel_size 0.0245 for 0.0256 across the long axis, 4.5 % low, and 2 % low for the mean pixel
#: size; the fit printed +4.64 %) gave 44.6 % reliable (grain_reliability 58.3 %) and no hint; fitted
#: (--auto-calibrate), 89.4 % (fresh-user review; README "Calibration" has the simulate command).
LOW_RELIABLE_FRACTION = 0.6


def low_reliable_hint(fractions: dict[str, Any], calibration: dict[str, Any] | None, tried_fit: bool = False) -> str:
    """A line suggesting a calibration fit where few patterns are reliable (:data:`LOW_RELIABLE_FRACTION`), no fit
    was tried (``tried_fit``: --auto-calibrate) and no value of ``calibration`` (a
    :func:`stemgrains.pipeline.calibration_summary`, or a summary's) came from a fit or a calibration file;
    ``""`` otherwise."""
    shares = [float(fractions[k]) for k in ("reliable_fraction", "grain_reliable_fraction")
              if fractions.get(k) is not None]
    origins = [str(v) for v in ((calibration or {}).get("origin") or {}).values()]
    fitted = tried_fit or any(v.startswith(("fitted", "calibration file")) for v in origins)
    if not shares or max(shares) >= LOW_RELIABLE_FRACTION or fitted:
        return ""
    return (f"few reliable patterns ({100 * max(shares):.0f} %): a detector calibration a few % off (pixel size, "
            "ellipticity) does this; `stemgrains calibrate` or --auto-calibrate fits one from the data")


def withdrawn_line(params: dict[str, Any], where: str) -> str:
    """One line where grain decisions were withdrawn because they did not hold at the final refinement's relrod
    width (index parameter ``grain_decisions_withdrawn``), ``""`` where none were."""
    n = int(params.get("grain_decisions_withdrawn") or 0)
    if not n:
        return ""
    return (f"grain vote: {n} grain decision{'s' if n > 1 else ''} withdrawn: made at the search's relrod width, "
            f"not held by the patterns at the final refinement's width; those pixels keep their own reliability as "
            f"grain_reliability ({where})")


def sigma_line(params: dict[str, Any], where: str) -> str:
    """``relrod width σ_s 0.01 1/Å (chosen from the data: R ≥ 5 on 0.015: 41 %, 0.01: 63 % of a subsample; WHERE)``
    from the index parameters of a map (or a run's summary), ``""`` where they hold no σ_s; where they hold the
    final refinement's width, a second line ``  final refinement: ...`` says it and how it was chosen."""
    sigma = params.get("excitation_error_sigma")
    if sigma is None:
        return ""
    how = params.get("excitation_error_sigma_source", "set")
    shares = params.get("excitation_error_sigma_confident")
    if shares:
        how += (f": R ≥ {config.SIGMA_CONFIDENT_RELIABILITY:g} on "
                + ", ".join(f"{c}: {100 * v:.0f} %" for c, v in shares.items()) + " of a subsample")
    line = f"relrod width σ_s {float(sigma):g} 1/Å ({how}; {where})"
    refine = params.get("refine_excitation_error_sigma")
    source = params.get("refine_excitation_error_sigma_source", "set")
    if source == "off":
        return f"{line}\n  final refinement: off (--no-final-refinement, or [index] final_refinement = false)"
    if refine is None:
        return line
    if source == "chosen from the data":
        text = refine_choice_text(float(refine), float(sigma), params.get("refine_excitation_error_sigma_votes"))
        return f"{line}\n  final refinement: {text}"
    return f"{line}\n  final refinement: {refine_label(refine, sigma)} ({source})"

NAME = "index"
HELP = "index every diffraction pattern of a 4D-STEM dataset (template matching) into an orientation map"
DESCRIPTION = (
    "Template matching of every pattern against kinematic templates of one or more phases: spot detection, "
    "rotation-invariant prefilter, in-plane correlation, continuous refinement of all three angles. Writes "
    "/orientation (quaternions, phase_id, correlation_index, reliability, ...) with provenance and parameters. "
    "Interrupted runs resume from finished chunks kept in OUT.h5.partial/. Several inputs (files, folders, "
    "globs): -o OUTDIR holds OUTDIR/<name>/results.h5 per input (--export-ang/--export-ctf/--figures then name "
    "files inside it), OUTDIR/batch_summary.csv, batch_summary.png and config.toml."
)
ORDER = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    # options that map to config keys default to None: given → they override --config (stemgrains.settings)
    p.add_argument("input", nargs="+", metavar="INPUT",
                   help="4D-STEM data (project .h5, py4DSTEM .h5/.emd, .npy, .mib, .blo, .app5, .dm4, EMPAD .xml); "
                        "several files, folders or globs make a batch")
    p.add_argument("--phase", action="append", required=True, metavar="CIF", help=PHASE_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="results file to write (several inputs: a folder)")
    add_config_option(p, "[calibration], [index] and [spots]")
    p.add_argument("--step", type=float, default=None, metavar="DEG", help=f"library angular step (default {config.LIBRARY_STEP_DEG:g})")
    p.add_argument("--k-max", type=float, default=None, metavar="Q", help=f"largest scattering vector used, 1/Å (default: what the detector reaches, at most {config.K_MAX_CAP:g})")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N", help="scan rows per chunk (memory, GPU batch; rounded up to whole blocks of 8 rows: the map does not depend on it; default 8)")
    p.add_argument("--n-prefilter", type=int, default=None, metavar="N",
                   help=f"templates passed by the rotation-invariant prefilter (default {config.N_PREFILTER}; raise it for sparse patterns)")
    p.add_argument("--neighbor-average-radius", type=int, default=None, metavar="N",
                   help=f"sum each pattern with the similar patterns within N scan px before indexing (default "
                        f"{config.NEIGHBOR_AVERAGE_RADIUS}; 0: every pattern alone)")
    p.add_argument("--no-neighbor-pass", action="store_true", default=None,
                   help="index every pixel on its own (skip the pass in which pixels try their neighbours' solutions)")
    p.add_argument("--no-pair-search", action="store_true", default=None,
                   help="skip the spot-pair hypotheses (orientations from pairs of detected spots, intensity-free) "
                        "tried where the template solution leaves spots unexplained")
    p.add_argument("--no-grain-vote", action="store_true", default=None,
                   help="keep every pixel's own solution (skip the grain-level decision in which pixels that cannot "
                        "tell near-tied hypotheses apart take their grain's majority solution; use it where real "
                        "twins whose patterns match their parent's are expected)")
    p.add_argument("--no-final-refinement", action="store_true", default=None,
                   help="skip the final refinement at a narrower relrod width (also one a --config file sets; chosen from the data by default; "
                        "config [index] refine_excitation_error_sigma sets it)")
    p.add_argument("--backend", choices=("cpu", "gpu"), default=None, help="compute backend (default cpu)")
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


def _print_fit(fit: Any, path: Path, figure: Path | None = None) -> None:
    from .calibrate import format_fit

    print(format_fit(fit, path, figure))


def run(args: argparse.Namespace) -> int:
    from ..settings import resolve

    cfg = resolve(args, NAME)
    if is_batch(args.input, args.output):
        from ..pipeline import check_export_names

        check_export_names(args.export_ang, args.export_ctf)
        for opt, name in (("--export-ang", args.export_ang), ("--export-ctf", args.export_ctf),
                          ("--figures", args.figures)):
            if name is not None and Path(name).name != str(name):  # the folder part would be dropped
                raise ParameterError(f"{opt} {name}: in a batch it names a file inside each input's folder of -o; "
                                     f"give a bare name ({Path(name).name})")
        outputs = {"export_ang": args.export_ang, "export_ctf": args.export_ctf, "figures": args.figures}
        return run_batch_command(args, batch_job, batch_params(args.phase, cfg, NAME, outputs=outputs), cfg)
    import numpy as np

    from ..pipeline import reliable_fractions, run_index

    res = run_index(args.input[0], args.output, args.phase, cfg, progress=not args.no_progress, scheduler=args.scheduler,
                    export_ang=args.export_ang, export_ctf=args.export_ctf, figures=args.figures, on_calibration=_print_fit,
                    replace_other=bool(getattr(args, "force", False)))
    xmap = res["xmap"]
    n = xmap.size
    ok = int((xmap.phase_id >= 0).sum())
    print(f"indexed {ok}/{n} patterns → {res['output']}")
    if "n_summed" in xmap.prop and n:
        print(f"  neighbour summation: median {np.median(xmap.prop['n_summed']):g} patterns summed per position "
              "(/orientation/n_summed)")
    if "grain_vote" in xmap.prop and n:
        n_vote = int(np.sum(xmap.prop["grain_vote"]))
        if n_vote:
            print(f"  grain vote: {n_vote} patterns ({100 * n_vote / n:.1f} %) that could not tell near-tied solutions "
                  "apart took their grain's majority solution, at reliability 0 (/orientation/grain_vote)")
    line = withdrawn_line(getattr(xmap, "parameters", None) or {}, "/parameters index grain_decisions_withdrawn")
    if line:
        print(f"  {line}")
    reliable = reliable_fractions(xmap) if n else {}  # once: it reads every pixel's reliabilities
    if n:
        print(f"  {reliable_line(reliable, '/orientation')}")
        hint = low_reliable_hint(reliable, res["calibration"], res["calibration_fit"] is not None)
        if hint:
            print(f"  {hint}")
    line = sigma_line(getattr(xmap, "parameters", None) or {}, "/parameters index")
    if line:
        print(f"  {line}")
    from ..pipeline import input_warnings

    for line in input_warnings(res["calibration"], ok / n if n else 0.0, res["phase_fit"].warnings,
                               max(reliable.values()) if n else None):
        print(line, file=sys.stderr)
    return 0


def batch_job(input_path: Path, folder: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One input of a batch (module level: it pickles for process pools and dask workers): ``folder/results.h5``
    by :func:`stemgrains.pipeline.run_index` with ``params`` from :func:`~stemgrains.commands._batch.batch_params`
    (``outputs``: the names given to ``--export-ang``/``--export-ctf``/``--figures``, made files inside
    ``folder``); returns the numbers of the batch summary (:func:`stemgrains.batch.run_batch`)."""
    import numpy as np

    from ..pipeline import input_warnings, reliable_fractions, run_index

    folder = Path(folder)
    inside = {k: (str(folder / Path(v).name) if v else None) for k, v in params.get("outputs", {}).items()}
    progress = params.get("_progress", True)
    got = run_index(str(input_path), str(folder / "results.h5"), params["_phases"], params["_config"], progress=progress,
                    on_calibration=_print_fit if params.get("_serial") else None, **inside)  # (a result: --no-progress too)
    xmap = got["xmap"]
    n = xmap.size
    used = getattr(xmap, "parameters", None) or {}
    reliable = reliable_fractions(xmap) if n else {}
    return {
        **{k: used[k] for k in BATCH_KEYS if used.get(k) is not None},
        "scan_shape": list(got["scan_shape"]),
        "patterns_per_s": got["indexed_here"] / got["index_seconds"] if got["index_seconds"] > 0 and got["indexed_here"]
        else None,
        "indexed_fraction": float((xmap.phase_id >= 0).mean()) if n else 0.0,
        "median_reliability": float(np.median(xmap.prop["reliability"])) if n else None,
        **reliable,
        "phase_fit_warnings": list(got["phase_fit"].warnings),
        "warnings": input_warnings(got["calibration"], float((xmap.phase_id >= 0).mean()) if n else 0.0,
                                   got["phase_fit"].warnings, max(reliable.values()) if n else None),
    }
