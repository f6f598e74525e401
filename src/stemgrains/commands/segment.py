"""``stemgrains segment INPUT -o OUT.h5``: grains and grain boundaries of an orientation map."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import config
from ..errors import ParameterError
from ._common import add_config_option, name_special_origin

NAME = "segment"
HELP = "segment an orientation map into grains and extract boundaries (misorientation, CSL, special)"
DESCRIPTION = (
    "Segment an orientation map (our results file, or .ang/.ctf) into grains (disorientation threshold, "
    "4-connectivity), extract the grain boundaries split into straight segments, their misorientation, CSL Σ "
    "(Brandon) and user-defined special misorientations; write /grains and /boundaries (a copy of a results "
    "file, or a new file for .ang/.ctf input)."
)
ORDER = 50


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="results file with /orientation, or an .ang/.ctf map")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="results file to write")
    add_config_option(p, "[grains] and [calibration] scan_step_nm")
    # options that map to config keys default to None: given → they override --config (stemgrains.settings)
    p.add_argument("--threshold", type=float, default=None, metavar="DEG",
                   help=f"grain threshold: disorientation between neighbours, degrees (default {config.GRAIN_THRESHOLD_DEG:g})")
    p.add_argument("--min-size", type=int, default=None, metavar="N",
                   help=f"smallest grain, pixels (default {config.MIN_GRAIN_SIZE_PX:d})")
    p.add_argument("--min-reliability", type=float, default=None, metavar="R",
                   help="pixels with reliability below R are invalid")
    p.add_argument("--reliability-prop", choices=("reliability", "grain_reliability", "c_axis_reliability"), default=None,
                   help="the property --min-reliability judges: grain_reliability also keeps the pixels whose "
                        "grain decided a tie their own pattern leaves open; c_axis_reliability keeps the pixels whose "
                        "c axis (conduction planes) is fixed even where the beam twin or 60° turn about c is not "
                        "(default: reliability)")
    p.add_argument("--min-correlation", type=float, default=None, metavar="C",
                   help="pixels with correlation index below C are invalid")
    p.add_argument("--small-grains", choices=("unassign", "merge"), default=None,
                   help="small grains and invalid pixels: leave unassigned (0) or merge into neighbours")
    p.add_argument("--scan-step", type=float, default=None, metavar="NM", help="override the scan step, nm")
    p.add_argument("--low-angle", type=float, default=None, metavar="DEG",
                   help=f"low/high angle boundary limit, degrees (default {config.LOW_ANGLE_DEG:g})")
    p.add_argument("--special", action="append", default=None, metavar="NAME:ANGLE:U,V,W:TOL",
                   help="special misorientation (repeatable): name, angle (deg), axis [uvw] or [UVTW] (hexagonal/trigonal), tolerance "
                        "(deg), e.g. twin:86.3:1,1,-2,0:5")
    frame = p.add_mutually_exclusive_group()  # --hex-x-astar with --hex-frame x-a contradicts: refused
    frame.add_argument("--hex-frame", choices=("auto", "x-a", "x-astar"), default=None,
                   help="crystal frame of hexagonal/trigonal orientations in the file: auto (default) = the vendor's "
                        "convention (Oxford .ctf: x || a*, rotated 30° about c into orix's x || a; others x || a), "
                        "or force x-a / x-astar")
    frame.add_argument("--hex-x-astar", dest="hex_frame", action="store_const", const="x-astar",
                   help="same as --hex-frame x-astar")
    p.add_argument("--csv", metavar="OUT.csv", default=None,
                   help="write the boundary table there (and the segment table to OUT.segments.csv)")
    p.add_argument("--figures", metavar="DIR", default=None,
                   help="write grains_ipf.png, grains_random.png, misorientation_histogram.png there")
    p.add_argument("--force", action="store_true",
                   help="replace OUT.h5 (and the --csv tables) even when it holds the results of another input or "
                        "is not ours (default: refused; the same input's results are replaced)")


def run(args: argparse.Namespace) -> int:

    from ..pipeline import invalid_line, invalid_pixels, run_segment
    from ..settings import resolve

    src = Path(args.input)
    try:
        got = run_segment(src, args.output, resolve(args, NAME), csv=args.csv, figures=args.figures,
                          replace_other=args.force)
    except ParameterError as err:
        raise name_special_origin(err, args) from None
    xmap, grain_map, boundaries, out = (got[k] for k in ("xmap", "grain_map", "boundaries", "output"))
    b = boundaries.boundaries
    total = float(b["length_nm"].sum()) if len(b) else 0.0
    print(f"{grain_map.n_grains} grains, {len(b)} boundaries ({len(boundaries.segments)} segments, "
          f"{total:.1f} nm), {len(boundaries.triple_junctions)} triple junctions -> {out}")
    print(f"  {invalid_line(invalid_pixels(grain_map))}")
    if got.get("dropped"):
        print(f"  {' and '.join(got['dropped'])} of {src.name} not kept: computed from its earlier grains and "
              f"boundaries (run classify{' and transport' if 'transport' in got['dropped'] else ''} on {out.name} again)")
    if getattr(xmap, "resampled_from", None):
        print(f"  {src.name}: hexagonal grid resampled to a square grid of step {grain_map.scan_step_nm:g} nm "
              "(nearest neighbour)")
    specials = boundaries.special_summary()
    for name, sp in specials.items():
        print(f"  special {name}: {sp['n_boundaries']} boundaries, {sp['length_nm']:.1f} nm "
              f"({100 * sp['length_fraction']:.1f} % of boundary length; column special of the tables)")
    if len(specials) > 1:
        print("  (a boundary within the tolerance of several specials counts under the closest only)")
    return 0
