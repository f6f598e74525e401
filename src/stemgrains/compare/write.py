"""Write a :class:`~stemgrains.compare.api.Comparison`: ``grains_matched.csv``, ``boundaries_changed.csv``,
``compare.h5`` (registration, series-id maps, both tables, parameters; the warnings and, per scan, whether its
placement is unique as JSON attributes of ``/compare``), ``compare.json`` (summary) and the
figures. Every file is written atomically (temporary name + rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._table import Table
from ..io.outputs import is_figure_of_ours, record_csv_tables, recorded_inputs
from ..io.results import atomic_h5, atomic_write_text, json_default
from .api import Comparison, registration_record

__all__ = ["write_comparison", "output_names", "stale_outputs", "GROUP"]

GROUP = "compare"


def output_names(n_scans: int, figures: bool = True) -> list[str]:
    """File names :func:`write_comparison` writes for ``n_scans`` scans (figures per comparison carry a
    ``_J-K`` suffix when there are more than two scans)."""
    names = ["grains_matched.csv", "boundaries_changed.csv", "compare.h5", "compare.json"]
    if figures:
        names.append("grains_matched.png")
        for k in range(2, n_scans + 1):
            suffix = "" if n_scans == 2 else f"_{k - 1}-{k}"
            names += [f"grain_rotation{suffix}.png", f"boundary_changes{suffix}.png"]
    return names


def stale_outputs(outdir: str | os.PathLike, names: list[str]) -> list[Path]:
    """The files of an earlier comparison in ``outdir`` that a new one writing ``names`` would leave behind (e.g.
    ``grain_rotation_2-3.png`` of three scans beside the figures of two): the names the ``compare.h5`` there
    records as written (attribute ``files``; older files: :func:`output_names` for the scans it records), not in
    ``names``, that are figures of ours (:func:`stemgrains.io.outputs.is_figure_of_ours`). Nothing when the
    folder holds no ``compare.h5`` of ours; never a user's file."""
    out = Path(outdir)
    scans = recorded_inputs(out / "compare.h5", GROUP, "scans") if (out / "compare.h5").is_file() else None
    if scans is None:
        return []
    try:
        import h5py

        with h5py.File(out / "compare.h5", "r") as f:
            before = json.loads(f[GROUP].attrs["files"])
    except Exception:  # noqa: BLE001 - an older compare.h5: what it wrote follows from its scans
        before = output_names(len(scans), figures=True)
    doomed = []
    for n in before if isinstance(before, list) else []:
        p = out / str(n)
        if str(n) not in names and Path(str(n)).name == str(n) and p.suffix.lower() == ".png" and p.is_file() \
                and not p.is_symlink() and is_figure_of_ours(p):
            doomed.append(p)
    return doomed


def registration_table(comparison: Comparison) -> Table:
    """One row per scan: ``scan``, ``rotation``, ``quarter_turns``, ``flip``, ``shift_row``, ``shift_col``,
    ``angle_deg``, ``score``,
    ``runner_up``, ``overlap_px``, ``agreement``, ``given``."""
    recs = [registration_record(r) for r in comparison.registrations]

    def col(key: str, dtype: Any, default: Any = np.nan) -> np.ndarray:
        return np.array([default if r[key] is None else r[key] for r in recs], dtype=dtype)

    return Table({
        "scan": np.arange(1, len(recs) + 1),
        "rotation": np.array([r["rotation"] for r in recs], dtype=str),
        "quarter_turns": col("quarter_turns", np.int64),
        "flip": col("flip", bool),
        "shift_row": np.array([r["shift_row_col_px"][0] for r in recs], dtype=np.int64),
        "shift_col": np.array([r["shift_row_col_px"][1] for r in recs], dtype=np.int64),
        "angle_deg": col("angle_deg", float),
        "score": col("score", float),
        "runner_up": col("runner_up", float),
        "overlap_px": col("overlap_px", np.int64),
        "agreement": col("agreement", float),
        "given": col("given", bool),
    })


def write_comparison(outdir: str | os.PathLike, comparison: Comparison, *, figures: bool = True) -> list[Path]:
    """Write everything into ``outdir`` (created if missing); returns the paths written.

    The caller checks beforehand that no output is an input (:func:`stemgrains.io.outputs.check_outputs`)."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    comparison.grains.to_csv(out / "grains_matched.csv")
    comparison.boundaries.to_csv(out / "boundaries_changed.csv")
    written += [out / "grains_matched.csv", out / "boundaries_changed.csv"]
    with atomic_h5(out / "compare.h5") as f:
        g = f.create_group(GROUP)
        g.attrs["scans"] = json.dumps([str(p.resolve()) for p in comparison.paths])
        g.attrs["files"] = json.dumps(output_names(len(comparison.paths), figures))  # what stale_outputs removes
        record_csv_tables(f, [out / "grains_matched.csv", out / "boundaries_changed.csv"])  # what `compare` may replace
        g.attrs["parameters"] = json.dumps(comparison.parameters, default=json_default, sort_keys=True)
        g.attrs["scan_step_nm"] = float(comparison.scan_step_nm)
        g.attrs["warnings"] = json.dumps(list(comparison.warnings))  # e.g. a placement that is not unique
        g.attrs["placement_unique"] = json.dumps([bool(r.unique) for r in comparison.registrations])
        g.create_dataset("series_labels", data=comparison.series_labels, compression="gzip", shuffle=True)
        g.create_dataset("covered", data=comparison.covered, compression="gzip")
        registration_table(comparison).to_hdf5(g.create_group("registration"))
        comparison.grains.to_hdf5(g.create_group("grains"))
        comparison.boundaries.to_hdf5(g.create_group("boundaries"))
    written.append(out / "compare.h5")
    summary = comparison.summary()
    summary["parameters"] = comparison.parameters
    atomic_write_text(out / "compare.json", json.dumps(summary, indent=2, default=json_default) + "\n")
    written.append(out / "compare.json")
    if figures:
        from ..plot.compare import plot_boundary_changes, plot_grain_rotation, plot_matched_grains

        n = len(comparison.paths)
        plot_matched_grains(comparison, path=out / "grains_matched.png")
        written.append(out / "grains_matched.png")
        for k in range(2, n + 1):
            suffix = "" if n == 2 else f"_{k - 1}-{k}"
            plot_grain_rotation(comparison, k, path=out / f"grain_rotation{suffix}.png")
            plot_boundary_changes(comparison, k, path=out / f"boundary_changes{suffix}.png")
            written += [out / f"grain_rotation{suffix}.png", out / f"boundary_changes{suffix}.png"]
    return written
