"""``stemgrains compare RESULTS_1.h5 RESULTS_2.h5 [...] -o OUTDIR``: a series of scans of the same area."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import config
from ..errors import ParameterError
from ._common import parse_pair

NAME = "compare"
HELP = "compare scans of the same area: registration, grains matched across scans, orientation and boundary changes"
DESCRIPTION = (
    "Register every scan to the first (a turn of the scan grid by a multiple of 90 degrees or a flip, and an integer "
    "shift, from the correlation of the IPF colours; or --shift), match grains across the series by overlap and "
    "orientation (one series id per physical grain; appeared, vanished, split, merged), and report per grain the "
    "orientation change (disorientation, c-axis tilt), centroid shift and area change, and per boundary whether it "
    "appeared, vanished, moved, or changed label or behaviour. Inputs: results files of `run`/`segment`, run "
    "folders, or index-only results / .ang / .ctf maps (segmented on the fly with --threshold). Writes "
    "grains_matched.csv, boundaries_changed.csv, compare.h5, compare.json and figures to OUTDIR."
)
ORDER = 78


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", metavar="RESULTS", nargs="+",
                   help="results files (or run folders, index-only results, .ang/.ctf maps); the first is the reference")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--shift", action="append", default=None, metavar="ROW,COL",
                   help="shift of a later scan, scan pixels: reference pixel (r, c) is that scan's pixel (r + ROW, "
                        "c + COL) after --rotation; once per later scan, in order (skips the correlation); write "
                        "--shift=-3,2 when ROW is negative")
    p.add_argument("--rotation", default="auto", metavar="OP",
                   help="turn of the later scans' grid: auto (default: try the 8 turns and flips), none, rot90, "
                        "rot180, rot270, or flip+rotNN (the specimen turned over about x); rotNN counts numpy.rot90 "
                        "quarter turns, counter-clockwise as displayed")
    p.add_argument("--max-angle", type=float, default=0.0, metavar="DEG",
                   help="also search small rotations of the later scans within +-DEG (0.5 degree steps, refined to "
                        "0.05 degrees; nearest-neighbour re-gridding); default 0: none")
    p.add_argument("--angle", action="append", default=None, metavar="DEG",
                   help="with --shift: the rotation of a later scan's content, degrees from +x toward +y about scan "
                        "1's centre (once per later scan)")
    p.add_argument("--min-overlap", type=float, default=0.25, metavar="F",
                   help="least common indexed area, fraction of the smaller map (default %(default)g); refused below")
    p.add_argument("--min-agreement", type=float, default=config.COMPARE_MIN_AGREEMENT, metavar="F",
                   help="least fraction of the common pixels that agree in orientation (within --max-rotation) at the "
                        "placement found (default %(default)g); below it the scans are taken for different areas and "
                        "refused (with --shift: a warning)")
    p.add_argument("--min-iou", type=float, default=0.2, metavar="F",
                   help="least intersection over union of two grains to match them (default %(default)g)")
    p.add_argument("--max-rotation", type=float, default=15.0, metavar="DEG",
                   help="largest orientation change of a matched grain, degrees (default %(default)g)")
    p.add_argument("--move-tolerance", type=float, default=0.5, metavar="PX",
                   help="a boundary has moved when its traces lie more than this apart on average, scan pixels "
                        "(default %(default)g)")
    p.add_argument("--threshold", type=float, default=config.GRAIN_THRESHOLD_DEG, metavar="DEG",
                   help="grain threshold for inputs without grains, degrees (default %(default)g)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--force", action="store_true",
                   help="replace files in OUTDIR named like the outputs even when they are not this command's for "
                        "these scans (default: refused; a rerun on the same scans replaces its own)")


def run(args: argparse.Namespace) -> int:
    from ..compare import compare_results, output_names, stale_outputs, write_comparison
    from ..compare.api import resolve_input
    from ..io.outputs import (check_outputs, record_folder, refuse_foreign_folder_outputs, refuse_run_folders,
                              require_output_folder)

    if len(args.inputs) < 2:
        raise ParameterError(f"compare needs at least two scans, got {len(args.inputs)}")
    inputs = [resolve_input(p) for p in args.inputs]
    for k in range(1, len(inputs)):  # a scan compared with itself ran without a word: every grain "matched"
        same = [j for j in range(k) if Path(inputs[j]).resolve() == Path(inputs[k]).resolve()]
        if same:
            print(f"note: scan {k + 1} ({inputs[k]}) is the same file as scan {same[0] + 1}: its grains match by "
                  "construction", file=sys.stderr)
    out = record_folder(args.output, "compare.h5", "compare", "scans")  # -o DIR/compare.h5 of ours: DIR
    require_output_folder(out, inputs)  # a file (an input, say) given as OUTDIR
    names = output_names(len(inputs), figures=not args.no_figures)
    refuse_run_folders(out, "-o", "comparison")  # the folder named, rather than its first file
    check_outputs({f"-o ({n})": out / n for n in names}, inputs)
    refuse_foreign_folder_outputs(out, names, inputs, record="compare.h5", group="compare", attr="scans",
                                  replace=args.force)
    stale = stale_outputs(out, names)
    shifts = None
    if args.shift is not None:
        if len(args.shift) != len(inputs) - 1:
            raise ParameterError(f"--shift given {len(args.shift)} times; give it once per later scan "
                                 f"({len(inputs) - 1})")
        shifts = []
        for text in args.shift:
            r, c = parse_pair(text, "--shift")
            if r != int(r) or c != int(c):
                raise ParameterError(f"--shift expects whole scan pixels ROW,COL, got {text!r}")
            shifts.append((int(r), int(c)))
    angles = None
    if args.angle is not None:
        if shifts is None or len(args.angle) != len(inputs) - 1:
            raise ParameterError("--angle goes with --shift, once per later scan")
        try:
            angles = [float(a) for a in args.angle]
        except ValueError:
            raise ParameterError(f"--angle expects degrees, got {args.angle!r}") from None
    rotation = args.rotation
    if shifts is not None and str(rotation).lower() == "auto":
        rotation = "none"
    comp = compare_results(inputs, rotation=rotation, shifts=shifts, min_overlap_fraction=args.min_overlap,
                           min_agreement=args.min_agreement, min_iou=args.min_iou, max_rotation_deg=args.max_rotation,
                           move_tolerance_px=args.move_tolerance, threshold_deg=args.threshold,
                           max_angle_deg=args.max_angle, angles_deg=angles)
    for p in stale:  # figures of an earlier comparison the new one does not write (after the work succeeded)
        p.unlink(missing_ok=True)
    names = comp.names
    write_comparison(out, comp, figures=not args.no_figures)
    for line in comp.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for k, (path, segmented) in enumerate(zip(comp.paths, comp.parameters["segmented_here"])):
        if segmented:
            print(f"  {path}: no grains in the file; segmented here (threshold {args.threshold:g}°)")
    for k in range(1, len(comp.paths)):
        r = comp.registrations[k]
        ncc = f"NCC {r.score:.3f}" if r.score == r.score else "no correlation peak"
        # the rival is the best other correlation peak; tied shifts of the plateau are no peaks (a crop inside one
        # grain read "best rival 0 %" beside "NOT UNIQUE")
        how = "given" if r.given else (f"{ncc}, best rival peak {100 * r.runner_up:.0f} % as many agreeing px"
                                       if r.unique or not r.n_tied else ncc)
        how += "" if r.unique else (f"; NOT UNIQUE: {r.n_tied} other shifts agree as well, see the warning" if r.n_tied
                                    else "; NOT UNIQUE, see the warning")
        turn = f", rotated {r.angle_deg:+.2f}°" if r.angle_deg else ""
        print(f"scan {k + 1} ({names[k]}) on scan 1 ({names[0]}): {r.op.name}{turn}, shift ({r.shift[0]}, "
              f"{r.shift[1]}) px ({how}); {r.overlap_px} px in common, {100 * r.agreement:.0f} % of them agree within "
              f"{args.threshold:g}°")
    for c in comp.summary()["comparisons"]:
        grains = ", ".join(f"{v} {k}" for k, v in c["grains"].items()) or "none"
        bounds = ", ".join(f"{v} {k}" for k, v in c["boundaries"].items()) or "none"
        mx = c["max_disorientation_deg"]
        print(f"scan {c['scan_from']} -> {c['scan_to']}: grains {grains}"
              + (f" (largest orientation change {mx:.2f}°)" if mx is not None else ""))
        print(f"  boundaries {bounds}")
    print(f"-> {out}")
    return 0
