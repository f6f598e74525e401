"""``stemgrains series RESULTS.h5 FRAME [FRAME ...] -o OUTDIR``: an in-situ image series against the boundary map."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ._common import parse_pair

NAME = "series"
HELP = "in-situ image series: register to the map, differential images, appearing features -> boundary sites"
DESCRIPTION = (
    "Register frame 0 to the orientation map (scale from the pixel sizes; translation and, with --max-rotation, "
    "rotation by correlation with a virtual ADF image of the 4D input recorded in RESULTS.h5, or --offset), later "
    "frames to frame 0 (drift), form differential images (frame k - frame 0), detect appearing features of either "
    "contrast, attribute each to a boundary segment (with its label and behaviour), triple junction, grain "
    "interior, electrode interface or map edge, and count events per label and behaviour against a uniform "
    "distribution along the boundary length (exact binomial test). Writes events.csv, enrichment.csv, series.h5 "
    "and event_sites.png, montage.png, enrichment.png to OUTDIR."
)
ORDER = 75


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="RESULTS.h5", help="results file with /grains, /boundaries (and /classification)")
    p.add_argument("frames", metavar="FRAME", nargs="+",
                   help="2-D frames (.npy, .tif, .h5 images of stemgrains virtual, .dm3/.dm4, Velox .emd, .hspy) in time "
                        "order, or one 3-D stack")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--frame-pixel-size", type=float, default=None, metavar="NM",
                   help="frame pixel size, nm (overrides the file's metadata)")
    p.add_argument("--times", default=None, metavar="T0,T1,...", help="time of each frame (default: frame index)")
    p.add_argument("--offset", default=None, metavar="X_NM,Y_NM",
                   help="map position of the centre of frame pixel (0, 0), nm (skips the correlation); write --offset=-4,-8 "
                        "when X is negative")
    p.add_argument("--rotation", type=float, default=0.0, metavar="DEG",
                   help="frame rotation in the map frame with --offset, degrees from +x toward +y (default 0)")
    p.add_argument("--max-rotation", type=float, default=0.0, metavar="DEG",
                   help="search rotations within +-DEG (1 degree steps) when registering by correlation (default 0)")
    p.add_argument("--tolerance", type=float, default=3.0, metavar="NM",
                   help="an event within this distance of a site belongs to it, nm (default %(default)g)")
    p.add_argument("--n-sigma", type=float, default=5.0, metavar="N",
                   help="detection threshold, robust standard deviations of the differential image (default %(default)g)")
    p.add_argument("--smooth", type=float, default=1.5, metavar="PX",
                   help="Gaussian smoothing of the differential images, frame pixels (default %(default)g)")
    p.add_argument("--min-area", type=float, default=None, metavar="NM2", help="smallest event, nm² (default 4 pixels)")
    p.add_argument("--min-frames", type=int, default=2, metavar="N",
                   help="an event must be seen in at least N frames (default %(default)s)")
    p.add_argument("--interface", default=None, metavar="EDGE[,EDGE]",
                   help="map edges that are electrode interfaces (left,right,top,bottom; 'none'); default the "
                        "electrodes of the transport stage")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--force", action="store_true",
                   help="replace files in OUTDIR named like the outputs even when they are not this command's for "
                        "these inputs (default: refused; a rerun on the same inputs replaces its own)")


def run(args: argparse.Namespace) -> int:
    from ..insitu import FrameTransform, analyse_series, load_sites, map_image_from_results, write_series
    from ..io.images import read_frames

    results = Path(args.results)
    from ..io.results import require_results_file

    require_results_file(results)
    from ..insitu.api import series_output_names
    from ..io.outputs import check_outputs, record_folder, refuse_foreign_folder_outputs, require_output_folder

    args.output = str(record_folder(args.output, "series.h5", "series"))  # -o DIR/series.h5 of ours: DIR
    require_output_folder(args.output, [results, *args.frames])
    check_outputs({"-o": Path(args.output)}, [results, *args.frames])
    refuse_foreign_folder_outputs(args.output, series_output_names(not args.no_figures), [results, *args.frames],
                                  record="series.h5", group="series", replace=args.force)
    for name, v, ok, want in (
            ("--tolerance", args.tolerance, args.tolerance > 0, "a distance > 0 (nm)"),
            ("--n-sigma", args.n_sigma, args.n_sigma > 0, "a number > 0"),
            ("--smooth", args.smooth, args.smooth > 0, "a width > 0 (px)"),
            ("--min-frames", args.min_frames, args.min_frames >= 1, "a whole number ≥ 1"),
            ("--max-rotation", args.max_rotation, 0 <= args.max_rotation <= 180, "degrees in [0, 180]")):
        if not (np.isfinite(v) and ok):  # it said "out of range: 0.0" without the range
            raise ParameterError(f"{name} expects {want}, got {v:g}")
    interface = None
    if args.interface is not None:
        interface = () if args.interface.strip().lower() == "none" else tuple(
            s.strip() for s in args.interface.split(",") if s.strip())
    sites = load_sites(results, interface)
    frames, size, names = read_frames(args.frames)
    _note_other_scans(results, args.frames)
    if len(frames) < 2:
        raise ParameterError(f"an in-situ series needs at least 2 frames (frame 0 is the reference), got "
                             f"{len(frames)} ({', '.join(args.frames)})")
    pixel = args.frame_pixel_size if args.frame_pixel_size is not None else size
    if pixel is None:
        raise ParameterError(f"{args.frames[0]}: no pixel size in the file; give --frame-pixel-size NM")
    if not (np.isfinite(pixel) and pixel > 0):
        raise ParameterError(f"--frame-pixel-size must be a positive number of nm, got {pixel!r}")
    times = None
    if args.times is not None:
        try:
            times = [float(s) for s in args.times.split(",")]
        except ValueError:
            raise ParameterError(f"--times expects numbers separated by commas, got {args.times!r}") from None
        if len(times) != len(frames):
            raise ParameterError(f"--times has {len(times)} values but there are {len(frames)} frames")
        if not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
            raise ParameterError(f"--times must be finite and strictly increasing (frames in time order), got "
                                 f"{args.times!r}")
    transform = map_image = step = None
    how = ""
    if args.offset is not None:
        offset = parse_pair(args.offset, "--offset")
        if not all(np.isfinite(offset)) or not np.isfinite(args.rotation):
            raise ParameterError(f"--offset/--rotation expect finite numbers (nm, degrees), got --offset {args.offset} "
                                 f"--rotation {args.rotation:g}")
        transform = FrameTransform(float(pixel), float(args.rotation), offset)
        how = f"offset ({transform.offset_nm[0]:g}, {transform.offset_nm[1]:g}) nm given"
    else:
        found = map_image_from_results(results)
        if found is None:
            raise ParameterError(f"{results}: no virtual ADF image to register frame 0 on ({_why_no_map_image(results)}); "
                                 "give --offset X_NM,Y_NM (map position of frame pixel (0, 0))")
        map_image, step, src = found
        how = f"registered on a virtual ADF image of {src}"
    rot = np.arange(-args.max_rotation, args.max_rotation + 0.5, 1.0) if args.max_rotation > 0 else (0.0,)
    result = analyse_series(frames, float(pixel), sites, transform=transform, map_image=map_image,
                            map_image_step_nm=step, rotations_deg=rot,
                            times=times, tolerance_nm=args.tolerance, smooth_px=args.smooth, n_sigma=args.n_sigma,
                            min_area_nm2=args.min_area, min_frames=args.min_frames)
    out = Path(args.output)
    write_series(out, result, sites, names=names, figures=not args.no_figures, inputs=[results, *args.frames])
    for line in result.warnings:  # doubtful drift registrations, one line each naming the frame
        print(f"warning: {line}", file=sys.stderr)
    t = result.transform
    if map_image is not None:
        how += f" (offset ({t.offset_nm[0]:.2f}, {t.offset_nm[1]:.2f}) nm, rotation {t.rotation_deg:g}°, r = {t.score:.3f})"
    ev = result.events
    sites_found = {s: int(np.sum(np.asarray(ev["site"]) == s)) for s in ("boundary", "triple_junction", "interior",
                                                                           "interface", "edge")}
    # the largest drift's length (it printed the largest single component: 2.5 px of a 3.1 px drift)
    print(f"{len(frames)} frames, max drift {np.hypot(*np.asarray(result.drift_px).T).max():.1f} px; frame 0 {how}")
    left_out = result.parameters.get("frames_left_out", [])
    if left_out:
        print(f"frame{'s' if len(left_out) > 1 else ''} {', '.join(map(str, left_out))} left out of the event "
              f"detection and statistics (doubtful drift registration; recorded in series.h5)")
    print(f"{len(ev)} event{'' if len(ev) == 1 else 's'}: " + ", ".join(f"{k} {v}" for k, v in sites_found.items())
          + f" -> {out}")
    n_drop = int(result.parameters.get("features_dropped_min_frames", 0))
    if n_drop:
        print(f"note: {n_drop} feature{'s' if n_drop > 1 else ''} seen in fewer than --min-frames "
              f"{result.parameters['min_frames']} frames left out as noise (not in events.csv)", file=sys.stderr)
    if result.parameters.get("coverage_note"):
        print(f"note: {result.parameters['coverage_note']}", file=sys.stderr)
    if not any(str(v) for v in sites.segments["label"]):  # the labels of a classification (empty without one)
        print(f"note: {results} holds no classification, so enrichment.csv counts the sites only (no label or "
              "behaviour rows); run stemgrains classify on it first for those")
    return 0


def _note_other_scans(results: Path, frames: list[str]) -> None:
    """A note when frames record a 4D input (virtual images do) other than the one the map was made from: allowed
    (a later scan of the same area), but the user should know the series is placed on another scan's map."""
    from ..io.outputs import recorded_input

    source = recorded_input(results)
    if not source:
        return
    others: dict[str, list[str]] = {}
    for fr in dict.fromkeys(frames):
        rec = recorded_input(fr)
        if rec and Path(rec).resolve() != Path(source).resolve():
            others.setdefault(rec, []).append(Path(fr).name)
    for rec, names in others.items():
        print(f"note: {', '.join(names)} {'was' if len(names) == 1 else 'were'} made from {rec}, the map from {source}: "
              "the series is placed on the map as if they showed the same area", file=sys.stderr)


def _why_no_map_image(results: Path) -> str:
    """Why :func:`~stemgrains.insitu.map_image_from_results` found no 4D scan behind ``results``, in words."""
    from ..insitu.api import recorded_input_files
    from ..io.outputs import describe_file

    rec, files = recorded_input_files(results)
    if rec is None:
        return "it records no input"
    if files:
        return f"its input {files[0]} is {describe_file(files[0])}, not a 4D scan"
    return f"its input {rec} is not found"
