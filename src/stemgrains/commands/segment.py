"""``stemgrains segment INPUT -o OUT.h5``: grains and grain boundaries of an orientation map."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import config
from ..errors import FileFormatError, ParameterError
from ._common import add_config_option

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
    p.add_argument("--min-correlation", type=float, default=None, metavar="C",
                   help="pixels with correlation index below C are invalid")
    p.add_argument("--small-grains", choices=("unassign", "merge"), default=None,
                   help="small grains and invalid pixels: leave unassigned (0) or merge into neighbours")
    p.add_argument("--scan-step", type=float, default=None, metavar="NM", help="override the scan step, nm")
    p.add_argument("--low-angle", type=float, default=None, metavar="DEG",
                   help=f"low/high angle boundary limit, degrees (default {config.LOW_ANGLE_DEG:g})")
    p.add_argument("--special", action="append", default=None, metavar="NAME:ANGLE:U,V,W:TOL",
                   help="special misorientation (repeatable): name, angle (deg), axis [uvw] or [UVTW], tolerance "
                        "(deg), e.g. twin:86.3:1,1,-2,0:5")
    p.add_argument("--hex-frame", choices=("auto", "x-a", "x-astar"), default=None,
                   help="crystal frame of hexagonal/trigonal orientations in the file: auto (default) = the vendor's "
                        "convention (Oxford .ctf: x || a*, rotated 30° about c into orix's x || a; others x || a), "
                        "or force x-a / x-astar")
    p.add_argument("--hex-x-astar", dest="hex_frame", action="store_const", const="x-astar",
                   help="same as --hex-frame x-astar")
    p.add_argument("--csv", metavar="OUT.csv", default=None,
                   help="write the boundary table there (and the segment table to OUT.segments.csv)")
    p.add_argument("--figures", metavar="DIR", default=None,
                   help="write grains_ipf.png, grains_random.png, misorientation_histogram.png there")


def load_map(path: Path, hex_frame: str = "auto") -> tuple[Any, bool]:
    """The orientation map of ``path`` and whether the file is one of our results files (the one place to
    swap the reader)."""
    from ..io import load_orientation_map
    from ..io._common import HDF5_SIGNATURE, file_signature

    if not path.is_file():
        raise FileFormatError(f"{path}: file not found")
    ours = file_signature(path) == HDF5_SIGNATURE
    return load_orientation_map(path, hex_frame=hex_frame), ours


def run(args: argparse.Namespace) -> int:
    from ..boundaries._io import write_boundaries
    from ..boundaries.extract import extract_boundaries
    from ..boundaries.misorientation import parse_special
    from ..grains import segment_grains, write_grains
    from ..io.outputs import check_outputs
    from ..io.results import atomic_h5, update_h5, write_parameters, write_provenance
    from ..settings import resolve, write_config

    cfg = resolve(args, NAME)
    g = cfg["grains"]
    src = Path(args.input)
    out = Path(args.output)
    specials = [parse_special(s) for s in g["special"]]
    xmap, ours = load_map(src, g["hex_frame"])
    csv_out = Path(args.csv) if args.csv else None
    check_outputs({"--csv": csv_out, "--csv (segments)": csv_out.with_suffix(".segments.csv") if csv_out else None},
                  [src, out])
    if not ours:
        check_outputs({"-o": out}, [src])
    grain_map = segment_grains(
        xmap,
        threshold_deg=g["threshold_deg"],
        min_grain_size=g["min_grain_size"],
        min_correlation=g["min_correlation"],
        min_reliability=g["min_reliability"],
        small_grains=g["small_grains"],
        scan_step_nm=cfg["calibration"]["scan_step_nm"],
    )
    grain_map.parameters["hex_frame"] = getattr(xmap, "hex_frame", "x || a (as stored)")
    grain_map.parameters["resampled_from"] = getattr(xmap, "resampled_from", None)  # HexGrid .ang → square grid
    boundaries = extract_boundaries(grain_map, xmap, low_angle_deg=g["low_angle_deg"], special=specials)
    params = {"grains": grain_map.parameters, "boundaries": boundaries.parameters, "input": str(src)}
    if out.resolve() == src.resolve() and not ours:
        raise ParameterError(f"-o {out}: would overwrite the input map; choose another output file")
    if ours:
        ctx = update_h5(src, out)
    else:
        ctx = atomic_h5(out)
    with ctx as f:
        if not ours:
            from ..io import write_orientation_map

            write_provenance(f, input_path=src, phases=xmap.phases)
            write_orientation_map(f, xmap)
        write_grains(f, grain_map)
        write_boundaries(f, boundaries)
        write_parameters(f, "segment", params)
        write_config(f, cfg, NAME)
    if args.csv:
        csv = Path(args.csv)
        boundaries.boundaries.to_csv(csv)
        boundaries.segments.to_csv(csv.with_suffix(".segments.csv"))
    if args.figures:
        from ..plot.grains import save_grain_figures

        save_grain_figures(args.figures, grain_map, boundaries)
    b = boundaries.boundaries
    total = float(b["length_nm"].sum()) if len(b) else 0.0
    print(f"{grain_map.n_grains} grains, {len(b)} boundaries ({len(boundaries.segments)} segments, "
          f"{total:.1f} nm), {len(boundaries.triple_junctions)} triple junctions -> {out}")
    if getattr(xmap, "resampled_from", None):
        print(f"  {src.name}: hexagonal grid resampled to a square grid of step {grain_map.scan_step_nm:g} nm "
              "(nearest neighbour)")
    for s in specials:
        frac = float(b["length_nm"][b["special"] == s.name].sum()) / total if total else 0.0
        print(f"  {s.name}: {int((b['special'] == s.name).sum())} boundaries, {100 * frac:.1f} % of boundary length")
    return 0
