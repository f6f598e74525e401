"""``stemgrains classify RESULTS.h5 --field X,Y``: conduction-plane classification of the grain boundaries."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import config
from ..errors import FileFormatError, ParameterError, StemgrainsError
from ._common import add_config_option

NAME = "classify"
HELP = "classify grain boundaries by how Na+ conduction planes meet them under a field (Type I/II/III a/b 1/2)"
DESCRIPTION = (
    "Read grains and boundaries from a results file (written by `stemgrains segment`), label every boundary "
    "segment and boundary (docs/classification.md: Type I/II/III, a/b, field index 1/2; behaviour parallel/"
    "transmitting/blocking/depleting) and write them under /classification. The field is one direction "
    "(--field) or, with --field-from-transport, each boundary's local field from `stemgrains transport`. "
    "Columns and units: docs/data-dictionary.md."
)
ORDER = 60


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="RESULTS.h5", help="results file with /grains and /boundaries")
    add_config_option(p, "[classify]")
    # options that map to config keys default to None: given → they override --config (stemgrains.settings)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--field", metavar="X,Y",
                     help="in-plane field direction (Na+ drift), x right, y down, e.g. 1,0; only the direction counts")
    src.add_argument("--field-from-transport", action="store_true", default=None,
                     help="classify each boundary under its local field, the one `stemgrains transport` wrote "
                          "into RESULTS.h5 (/transport/boundary_field); boundaries no current reaches take the "
                          "mean field direction of the map")
    p.add_argument("-o", "--output", metavar="OUT.h5", default=None,
                   help="write a copy with /classification there (default: update RESULTS.h5 in place)")
    p.add_argument("--delta", type=float, default=None, metavar="DEG",
                   help=f"type tolerance: Type I if θ <= delta, II if θ >= 90 - delta (default {config.TYPE_TOLERANCE_DEG:g})")
    p.add_argument("--flat-tol", type=float, default=None, metavar="DEG",
                   help=f"a grain is flat (no trace) if alpha < this (default {config.FLAT_TOLERANCE_DEG:g})")
    p.add_argument("--ratio", type=float, default=None, metavar="R",
                   help=f"in-plane / out-of-plane conductivity (default {config.CONDUCTIVITY_RATIO:g})")
    p.add_argument("--basis", choices=("trace", "3d"), default=None,
                   help="misorientation used for the type: trace (theta_2d) or 3d (theta_3d) (default trace)")
    p.add_argument("--tau-flow", type=float, default=None, metavar="T",
                   help=f"flux below which a boundary is 'parallel', units of sigma_ip|E| (default {config.TAU_FLOW:g})")
    p.add_argument("--r-block", type=float, default=None, metavar="R",
                   help=f"|r| at or above which a boundary is blocking/depleting (default {config.R_BLOCK:g})")
    p.add_argument("--conducting-phase", action="append", default=None, metavar="NAME",
                   help="conducting phase name or id (repeatable; default: the phases with Na+ conduction planes, "
                        "Na-beta''- and Na-beta-alumina; boundaries of other phases are labelled other-phase)")
    p.add_argument("--csv", metavar="OUT.csv", default=None,
                   help="also write the per-boundary table there, and the per-segment table next to it "
                        "(OUT.segments.csv)")
    p.add_argument("--figures", metavar="DIR", default=None,
                   help="write grain_traces.png, boundary_behaviour.png and boundary_table.png there")


def _phase_arg(text: str) -> str | int:
    return int(text) if text.strip().lstrip("-").isdigit() else text


def _transport_boundary_field(results: Path):
    """The local field per boundary that `stemgrains transport` wrote into a results file (one-line errors)."""
    import h5py

    from ..io._common import open_h5
    from ..transport.io import read_transport

    with open_h5(results) as f:
        if "transport" not in f:
            raise FileFormatError(f"{results}: no /transport; run `stemgrains transport {results} --electrode ...` "
                                  "first, or give --field X,Y")
        if not isinstance(f["transport"], h5py.Group):
            raise FileFormatError(f"{results}: /transport is not a group")
        bf = read_transport(f).boundary_field
    if isinstance(bf, dict):
        raise FileFormatError(f"{results}: /transport holds fields per grain pair, not per boundary; rerun "
                              "`stemgrains transport` on this file (it has /boundaries now)")
    return bf


def run(args: argparse.Namespace) -> int:
    from ..settings import resolve, write_config

    cfg = resolve(args, NAME)
    c = cfg["classify"]
    if c["field_from_transport"] and c["field"] is not None:
        raise ParameterError("[classify] field and field_from_transport are both set; keep one")
    if not c["field_from_transport"] and c["field"] is None:
        raise ParameterError("give the field: --field X,Y or --field-from-transport (or [classify] field / "
                             "field_from_transport in --config)")
    results = Path(args.results)
    if not results.is_file():
        raise FileFormatError(f"{results}: results file not found")
    from ..boundaries.classify import classify_boundaries, write_classification, write_classification_csv
    from ..io.results import update_h5

    try:
        from ..boundaries import read_boundaries
        from ..grains import read_grains
    except ImportError as err:
        raise StemgrainsError(f"this installation cannot read grains/boundaries from results files ({err})") from None

    from ..io.outputs import check_outputs

    csv_out = Path(args.csv) if args.csv else None
    check_outputs({"--csv": csv_out, "--csv (segments)": csv_out.with_suffix(".segments.csv") if csv_out else None},
                  [results, args.output])
    grain_map = read_grains(results)
    boundaries = read_boundaries(results)
    if c["field_from_transport"]:
        from ..boundaries.classify import local_boundary_fields

        field, n_filled = local_boundary_fields(_transport_boundary_field(results), len(boundaries.boundaries),
                                                source=str(results))
        fx = fy = None
    else:
        fx, fy = c["field"]
        if fx == 0.0 and fy == 0.0:
            raise ParameterError("--field must be a non-zero direction, got 0,0")
        field, n_filled = (fx, fy), 0
    phases = None if c["conducting_phases"] is None else [_phase_arg(s) for s in c["conducting_phases"]]
    result = classify_boundaries(
        grain_map,
        boundaries,
        field,
        conducting_phases=phases,
        conductivity_ratio=c["conductivity_ratio"],
        type_tolerance_deg=c["type_tolerance_deg"],
        flat_tolerance_deg=c["flat_tolerance_deg"],
        basis=c["basis"],
        tau_flow=c["tau_flow"],
        r_block=c["r_block"],
    )
    out = Path(args.output) if args.output else results
    with update_h5(results, out) as f:
        write_classification(f, result)
        write_config(f, cfg, NAME)
    if args.csv:
        csv_path = Path(args.csv)
        write_classification_csv(csv_path, result, level="boundaries")
        write_classification_csv(csv_path.with_suffix(".segments.csv"), result, level="segments")
    if args.figures:
        from ..plot.classification import plot_boundary_behaviour, plot_boundary_table, plot_grain_traces

        fig_dir = Path(args.figures)
        fig_dir.mkdir(parents=True, exist_ok=True)
        plot_grain_traces(grain_map, flat_tolerance_deg=c["flat_tolerance_deg"], path=fig_dir / "grain_traces.png")
        plot_boundary_behaviour(grain_map, boundaries, result, None if fx is None else (fx, fy),
                                path=fig_dir / "boundary_behaviour.png")
        plot_boundary_table(result, path=fig_dir / "boundary_table.png")

    summary = result.summary()
    n_b = len(result.boundaries)
    under = (f"field ({fx:g}, {fy:g})" if fx is not None else
             "the local transport field" + (f" ({n_filled} boundaries without current: mean field)" if n_filled else ""))
    print(f"classified {n_b} boundaries ({len(result.segments)} segments, "
          f"{summary['total_length_nm']:.1f} nm) under {under} -> {out}")
    if not result.parameters["conducting_phases"] and n_b:
        names = ", ".join(p.name for i, p in grain_map.phases if i >= 0)
        print(f"  no phase with Na+ conduction planes among {names}: every boundary is other-phase "
              "(name one with --conducting-phase)")
    for name, frac in summary["behaviour_fraction"].items():
        if frac > 0:
            print(f"  {name:<13} {100 * frac:5.1f} % of boundary length")
    return 0
