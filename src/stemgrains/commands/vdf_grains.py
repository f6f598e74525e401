"""``stemgrains vdf-grains INPUT -o OUTDIR [--results RESULTS.h5]``: grain map from virtual dark-field images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ._common import add_calibration_overrides, calibration_overrides, given_origins

NAME = "vdf-grains"
HELP = "grain map without indexing: Bragg-vector map -> reflections -> VDF images -> grains (RGB composite)"
DESCRIPTION = (
    "Find the distinct reflections in the Bragg-vector map, make one virtual dark-field image per reflection, "
    "group correlated reflections into grains and write vdf_grains.png (colour composite + labels), "
    "bragg_vector_map.png, vdf_labels.npy and vdf_grains.json to OUTDIR. With --results, the indexed boundaries "
    "are drawn over the maps and the agreement with the indexed grains (adjusted Rand index) is reported. "
    "vdf_grains.json records the input and the files written with it: a rerun on the same input replaces them, "
    "anything else of those names is refused unless --force."
)
#: the files written into OUTDIR; the JSON last, recording the input and the others (size, modification time)
OUTPUT_NAMES = ("vdf_labels.npy", "vdf_grains.png", "bragg_vector_map.png", "vdf_grains.json")
ORDER = 26


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="4D-STEM file")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--results", metavar="RESULTS.h5", default=None,
                   help="results file of INPUT with /grains and /boundaries (the results of another input: refused "
                        "unless --force)")
    p.add_argument("--disk-radius", type=float, default=2.0, metavar="PX", help="VDF disk radius, px (default %(default)g)")
    p.add_argument("--min-correlation", type=float, default=0.5, metavar="R",
                   help="reflections whose VDF images correlate at least this much are one grain (default %(default)g)")
    p.add_argument("--min-signal", type=float, default=0.25, metavar="S",
                   help="pixels with a weaker best group stay unassigned (default %(default)g)")
    p.add_argument("--memory-mb", type=float, default=128.0, metavar="MB", help="memory per block of scan rows")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace files in OUTDIR named like the outputs even when they are not this command's for "
                        "this input (default: refused; a rerun on the same input replaces its own), and use "
                        "--results of another input")
    add_calibration_overrides(p)


def run(args: argparse.Namespace) -> int:
    from .._version import __version__
    from ..io import load_4d
    from ..io.images import write_image
    from ..io.results import atomic_write_text, json_default
    from ..plot.virtual import plot_bragg_vector_map, plot_vdf_grain_map
    from ..virtual.vdf import adjusted_rand_index, vdf_grain_map
    from ..io.outputs import (FILES_WRITTEN_KEY, check_outputs, files_written_record, refuse_foreign_recorded_outputs,
                              refuse_results_of_other_data, refuse_run_folders, require_output_folder)

    out = Path(args.output)
    inputs = [args.input, args.results]
    require_output_folder(out, inputs)
    refuse_run_folders(out, "-o", "VDF grain map")
    check_outputs({f"-o ({n})": out / n for n in OUTPUT_NAMES}, inputs)
    refuse_foreign_recorded_outputs(out, OUTPUT_NAMES, args.input, record="vdf_grains.json", replace=args.force)
    if args.results:
        refuse_results_of_other_data(args.results, args.input, replace=args.force)
    ds = load_4d(args.input, **calibration_overrides(args))
    ds.metadata["calibration_origin"] = given_origins(ds, args)  # (an error names the option or file)
    _check_pixel_size(ds)
    bounds = grains = None
    if args.results:
        from ..boundaries import read_boundaries
        from ..grains import read_grains

        grains = read_grains(args.results)
        bounds = read_boundaries(args.results)
        if grains.labels.shape != tuple(ds.data.shape[:2]):  # before any work
            from ..errors import InputError

            raise InputError(f"{args.results}: grain map {grains.labels.shape} does not match the scan "
                             f"{tuple(ds.data.shape[:2])} of {args.input}")
    res = vdf_grain_map(ds, disk_radius_px=args.disk_radius, min_correlation=args.min_correlation,
                        min_signal=args.min_signal, memory_mb=args.memory_mb, progress=not args.no_progress)
    out.mkdir(parents=True, exist_ok=True)
    write_image(out / "vdf_labels.npy", res.labels)
    plot_vdf_grain_map(res, boundaries=bounds, path=out / "vdf_grains.png")
    plot_bragg_vector_map(res, path=out / "bragg_vector_map.png")
    summary = {"software": f"stemgrains {__version__}", "input": str(Path(args.input).resolve()),
               **res.parameters, "n_grains": int(res.labels.max()), "reflections_px": res.reflections,
               "groups": res.groups}
    if grains is not None:
        m = grains.labels > 0
        summary["adjusted_rand_index_vs_indexed"] = adjusted_rand_index(grains.labels[m], res.labels[m])
    summary[FILES_WRITTEN_KEY] = files_written_record(out, OUTPUT_NAMES[:-1])
    atomic_write_text(out / "vdf_grains.json", json.dumps(summary, default=json_default, indent=1))
    msg = f"{summary['n_grains']} VDF grains from {len(res.reflections)} reflections in {res.n_groups} groups"
    if not summary["n_grains"]:
        msg += (f" (no group's mean normalised VDF intensity reached --min-signal {args.min_signal:g} over "
                f"{res.parameters['min_grain_px']} connected positions: try a lower --min-signal)")
    if "adjusted_rand_index_vs_indexed" in summary:
        msg += f"; adjusted Rand index vs indexed grains {summary['adjusted_rand_index_vs_indexed']:.3f}"
    print(f"{msg} -> {out}")
    return 0


def _check_pixel_size(ds) -> None:
    """An absurd pixel size (``--q-pixel-size 5``, or one stated in the file) refused by name, as ``index`` refuses
    it (:func:`stemgrains.settings.pixel_size_refusal` with the default spots), before any work; it was worded by the
    spots' ``q_min``, an option vdf-grains does not have. Other empty q-ranges are left to the VDF's own check."""
    from ..settings import pixel_size_refusal

    if ds.calibration.q_pixel_size is not None:
        err = pixel_size_refusal({"spots": {}}, ds)
        if err is not None:
            raise err
