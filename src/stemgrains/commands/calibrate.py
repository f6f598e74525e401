"""``stemgrains calibrate INPUT --phase CIF -o calibration.json``: detector calibration from the data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import config
from ..errors import ParameterError
from ._common import PHASE_HELP, add_calibration_overrides, add_config_option

NAME = "calibrate"
HELP = "fit the detector pixel size, elliptical distortion and beam centre from the data (rings and/or orientations)"
DESCRIPTION = (
    "Fits the detector calibration from the patterns: the rings of the Bragg-vector map against the phase's ring "
    "radii (polycrystals), then a joint least-squares fit of the distortion with the orientations of a few indexed "
    "patterns (also one or two grains). Writes the calibration with uncertainties as JSON (use it with `stemgrains "
    "index --calibration FILE`) and a diagnostic figure. The camera rotation and flip are kept as given: "
    "diffraction of one phase cannot fix them (README, 'Calibration'). A uniform lattice-parameter error of the CIF "
    "is absorbed by the pixel size."
)
ORDER = 15


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="4D-STEM data file")
    p.add_argument("--phase", action="append", required=True, metavar="CIF", help=PHASE_HELP)
    p.add_argument("-o", "--output", required=True, metavar="calibration.json", help="calibration JSON to write")
    # options that map to [calibrate] config keys default to None: given → they override --config
    add_config_option(p, "[calibration], [calibrate] and [spots]")
    p.add_argument("--method", choices=("auto", "rings", "orientations"), default=None,
                   help="rings (many grains), orientations (any number of grains) or auto: both (default)")
    p.add_argument("--k-max", type=float, default=None, metavar="Q",
                   help=f"largest scattering vector used, 1/Å (default {config.CALIBRATE_K_MAX:g})")
    p.add_argument("--max-patterns", type=int, default=None, metavar="N",
                   help="patterns of the subsample searched for spots (default 1024)")
    p.add_argument("--n-index", type=int, default=None, metavar="N", help="patterns indexed for the joint fit (default 16)")
    p.add_argument("--max-index", type=int, default=None, metavar="N",
                   help="while the pixel size or axis ratio is uncertain by more than 0.5 %%, the joint fit is repeated with "
                        "twice as many patterns, up to N (default 64; N ≤ --n-index: one round)")
    p.add_argument("--no-confirm", action="store_true", default=None,
                   help="apply a precise fit without checking that it indexes a subsample better than the stated "
                        "calibration (default: check; a fit that does not is 'unconfirmed' and not applied)")
    p.add_argument("--neighbor-average-radius", type=int, default=None, metavar="N",
                   help="sum each pattern with the similar patterns within N scan px, as `index` does (default "
                        f"{config.NEIGHBOR_AVERAGE_RADIUS}; 0: every pattern alone)")
    p.add_argument("--figure", metavar="PNG", default=None, help="diagnostic figure (default: next to the JSON, *.png)")
    p.add_argument("--no-figure", action="store_true")
    p.add_argument("--force", action="store_true",
                   help="replace an existing -o/--figure file that is not a calibration of this input")
    p.add_argument("--no-progress", action="store_true", help="no line on stderr as each step starts")
    add_calibration_overrides(p)


def run(args: argparse.Namespace) -> int:
    from ..crystal import load_phase
    from ..io.calibration import write_calibration_json
    from ..preprocess.calibrate import calibrate

    from ..io.outputs import check_outputs, refuse_foreign_calibration
    from ..settings import calibrate_options, check_q_range, load_calibrated, name_pixel_size_origin, resolve

    cfg = resolve(args, NAME)  # [calibrate] of --config < the options given; [calibration]; [spots]
    out = Path(args.output)
    figure = None if args.no_figure else Path(args.figure or out.with_suffix(".png"))
    check_outputs({"-o": out, "--figure": figure}, [args.input, *args.phase, cfg["calibration"].get("file"), args.config])
    if out.suffix.lower() != ".json":
        raise ParameterError(f"-o {out}: a calibration is written as JSON; give a .json file")
    # an existing file is replaced only when it is a calibration (or its figure) of this same input
    refuse_foreign_calibration([out], args.input, option="-o", replace=args.force)
    refuse_foreign_calibration([figure], args.input, option="--figure", replace=args.force)
    phases = [load_phase(c) for c in args.phase]
    # lazy: an unreadable input creates nothing
    ds = load_calibrated(args.input, cfg["calibration"])
    ds.calibration.require_q_pixel_size(str(args.input))  # one line naming the file (was: 'calibration: ...')
    for note in ds.metadata.get("calibration_notes", []):  # e.g. a --calibration pixel size of another voltage
        print(note, file=sys.stderr)
    c = cfg["calibrate"]
    index_params = {"k_max": c["k_max"], "neighbor_average_radius": c["neighbor_average_radius"],
                    "spots": dict(cfg["spots"])}
    try:  # an empty q-range, named by what was given (--k-max 0.05 below the default q_min), before any work
        check_q_range(index_params, ds.calibration, ds.detector_shape)
    except ParameterError as err:  # the k_max of calibrate is [calibrate] k_max, not the indexing's
        err = name_pixel_size_origin(err, ds)  # a pixel size named by where it came from
        raise ParameterError(str(err).replace("[index] k_max", "[calibrate] k_max", 1)) from None
    for f in (out, figure):
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)  # an unusable output folder fails here, before the work
    options = calibrate_options(cfg)
    say = None if args.no_progress else (lambda line: print(line, file=sys.stderr, flush=True))
    fit = calibrate(ds, phases, index_params=index_params, log=say, **options)
    # the options the fit ran with, in the JSON's report
    fit.diagnostics["options"] = dict(options, k_max=c["k_max"], neighbor_average_radius=c["neighbor_average_radius"])
    write_calibration_json(out, fit, input_path=args.input, detector_shape=ds.detector_shape)
    if not args.no_figure:
        from ..plot.calibration import plot_calibration

        plot_calibration(fit, figure, input_path=args.input)
    print(format_fit(fit, out, figure))
    return 0


def format_fit(fit, out, figure=None) -> str:
    """One paragraph for the terminal: the fit written to ``out`` (JSON) and ``figure`` (its PNG, where drawn)."""
    where = f"{out}" + (f", figure {figure}" if figure is not None else "")
    if not fit.ok and not fit.values:
        return f"calibration undetermined ({fit.reason}); stated calibration kept → {where}"
    head = f"calibration ({fit.method}) → {where}" if fit.ok else \
        f"calibration {fit.status} → {where}: {fit.reason}; the stated calibration is kept" + \
        (" (--no-confirm applies a precise fit without this check)" if fit.status == "unconfirmed" else "") + \
        ". The fit gave:"
    lines = [
        head,
        *pixel_size_lines(fit),
        f"  beam centre (row, col) {fit.center['row']:.2f}, {fit.center['col']:.2f}"
        + (f"; drift over the scan {fit.center['drift_px']:.2f} px" if "drift_px" in fit.center else ""),
    ]
    check = fit.diagnostics.get("confirmation")
    if fit.ok and check:  # the test it passed (README, 'Calibration')
        lines.append(f"  confirmed: {check['reliable_fitted']} of {check['patterns']} subsample patterns indexed with "
                     f"reliability ≥ {config.SIGMA_CONFIDENT_RELIABILITY:g} with the fit, {check['reliable_stated']} with the stated "
                     "calibration")
    rounds = fit.diagnostics.get("orientations", {}).get("patterns_indexed", [])
    if len(rounds) > 1:
        lines.append(f"  joint fit: {' → '.join(map(str, rounds))} patterns indexed (fewer left the pixel size or "
                     "ratio uncertain by more than 0.5 %)")
    lines += [f"  note: {n}" for n in fit.notes]
    return "\n".join(lines)


def stated_mean_pixel_size(cal) -> float:
    """Mean pixel size (1/Å per px, √ of the pixel area in q) of a calibration: ``q_pixel_size`` over
    √(ellipticity ratio · |det affine|) (docs/conventions.md, "Detector calibration")."""
    ratio = cal.ellipticity[0] if cal.ellipticity is not None else 1.0
    det = abs(cal.affine[0] * cal.affine[3] - cal.affine[1] * cal.affine[2]) if cal.affine is not None else 1.0
    return cal.q_pixel_size / (ratio * det) ** 0.5


def pixel_size_lines(fit) -> list[str]:
    """The printed pixel size and ellipticity of a fit, each percentage named for what it is: the change of the
    mean pixel size (√ of the pixel area: the isotropic change) from the stated calibration's mean; the calibration's
    ``q_pixel_size`` (across the ellipse's long axis) and its change from the stated one; the ellipticity as the
    stretch along the long axis (ratio − 1, %). It read 'q_pixel_size ... (stated 0.0245, +4.64 %)', which users
    took for the isotropic change (+2.13 % there, with a 4.96 % ellipticity)."""
    v, u = fit.values, fit.uncertainty
    st, st_mean = fit.stated.q_pixel_size, stated_mean_pixel_size(fit.stated)
    mean_sigma = f" ± {u['q_pixel_size_mean']:.2g}" if u.get("q_pixel_size_mean") is not None else ""
    return [
        f"  mean pixel size (√ pixel area) {v['q_pixel_size_mean']:.6g}{mean_sigma} 1/Å per px: "
        f"{100 * (v['q_pixel_size_mean'] / st_mean - 1):+.2f} % from the stated {st_mean:.6g} (the isotropic change)",
        f"  q_pixel_size (across the ellipse's long axis) {v['q_pixel_size']:.6g} ± {u['q_pixel_size']:.2g} 1/Å per px: "
        f"{100 * (v['q_pixel_size'] / st - 1):+.2f} % from the stated {st:.6g}",
        f"  ellipticity {v['ellipticity_ratio']:.4f} ± {u['ellipticity_ratio']:.4f} ({100 * (v['ellipticity_ratio'] - 1):.2f} % "
        f"longer along the axis), axis at {v['ellipticity_angle_deg']:.1f} ± {u['ellipticity_angle_deg']:.1f}° "
        "(detector frame, from +col toward +row)",
    ]
