"""End-to-end orchestration: 4D-STEM data → orientation map → grains → boundaries → (transport) → classification.

One results file (``results.h5``) collects every stage; figures and tables go next to it. Indexing, the long
stage, is chunked and resumable (finished chunks are kept in ``OUTDIR/.checkpoint`` until the run completes);
every file is written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["run_pipeline"]


def _unit2(v: Any, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.shape != (2,) or not np.all(np.isfinite(a)) or np.hypot(*a) == 0:
        raise ParameterError(f"{name} must be a non-zero in-plane vector (x, y), got {v!r}")
    return a / np.hypot(*a)


def run_pipeline(
    input_path: str | os.PathLike,
    phases: list[Any],
    outdir: str | os.PathLike,
    *,
    field: Any = None,
    electrodes: Any = None,
    index_params: dict[str, Any] | None = None,
    segment_params: dict[str, Any] | None = None,
    boundary_params: dict[str, Any] | None = None,
    classify_params: dict[str, Any] | None = None,
    transport_params: dict[str, Any] | None = None,
    calibration_overrides: dict[str, Any] | None = None,
    auto_calibrate: bool = False,
    figures: bool = True,
    progress: bool = True,
    backend: str = "cpu",
    client: Any = None,
    overwrite: bool = False,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every stage on one dataset.

    Parameters
    ----------
    input_path
        4D-STEM data (anything :func:`stemgrains.io.load_4d` reads).
    phases
        CIF paths or orix ``Phase`` objects.
    outdir
        Output folder (created).
    field
        Applied in-plane field direction (x, y) for the classification. If ``None`` and ``electrodes`` are given,
        each boundary is classified under its local field from the transport model.
    electrodes
        Transport electrodes, e.g. ``{"left": 1.0, "right": 0.0}``; ``None`` skips the transport model.
    overwrite
        Replace the results of another run found in ``outdir`` (see :func:`stemgrains.io.outputs.prepare_run_folder`);
        without it such a folder is refused. An interrupted run of the same input resumes either way.
    auto_calibrate
        Fit the detector calibration from the data first (:func:`stemgrains.preprocess.calibrate.calibrate`),
        written to ``calibration.json`` (+ ``calibration.png``) and used where the fit is ok.
    boundary_params
        Keyword arguments of :func:`stemgrains.boundaries.extract_boundaries` (``low_angle_deg``, ``special``).
    config
        The resolved config these parameters came from (:mod:`stemgrains.settings`); recorded in ``results.h5``
        (``/parameters`` attribute ``config``) and written to ``outdir/config.toml``.

    Returns
    -------
    dict
        Paths of everything written, a summary (counts, label and behaviour length fractions) and
        ``index_seconds``, the wall time of the indexing stage (of this call: chunks resumed from a checkpoint
        are not timed).
    """
    from .boundaries import classify_boundaries, extract_boundaries, write_boundaries, write_classification, write_classification_csv
    from .crystal import load_phase
    from .grains import segment_grains, write_grains
    from .index import index_orientations
    from .index.quality import phase_fit_check
    from .index.results import write_index_results
    from .io import load_4d
    from .io.results import atomic_write_text, update_h5, write_parameters

    if field is None and electrodes is None:
        raise ParameterError("give an applied field direction (field=(x, y), CLI --field X,Y) or transport electrodes")
    global_field = _unit2(field, "field") if field is not None else None
    from .io.outputs import finish_run_folder, prepare_run_folder

    outdir = Path(outdir)
    phases = [load_phase(p) if isinstance(p, (str, os.PathLike)) else p for p in phases]
    ds = load_4d(input_path, **(calibration_overrides or {}))
    ds.calibration.require_q_pixel_size(ds.source)  # before the folder is claimed
    manifest = prepare_run_folder(outdir, input_path, overwrite=overwrite)
    results = outdir / "results.h5"
    written: dict[str, Any] = {"results": results}
    calib_fit = None
    if auto_calibrate:
        from .preprocess.calibrate import run_auto_calibration

        ds, calib_fit = run_auto_calibration(ds, phases, index_params, outdir / "calibration.json",
                                             outdir / "calibration.png" if figures else None)
        written.update(calibration=outdir / "calibration.json", calibration_fit=calib_fit)

    # 1. orientation map (resumable)
    ckpt = outdir / ".checkpoint"
    t_index = time.perf_counter()
    xmap = index_orientations(ds, phases, checkpoint_dir=ckpt, progress=progress, backend=backend, client=client, **(index_params or {}))
    written["index_seconds"] = time.perf_counter() - t_index
    write_index_results(results, xmap, ds, phases, xmap.parameters)
    shutil.rmtree(ckpt, ignore_errors=True)

    # 2. grains and boundaries
    seg = dict(segment_params or {})
    grain_map = segment_grains(xmap, **seg)
    boundaries = extract_boundaries(grain_map, xmap, **(boundary_params or {}))

    # 3. transport (optional) → local fields
    transport = None
    if electrodes is not None:
        from .transport import solve_transport, write_transport

        transport = solve_transport(grain_map, grain_map.phases, electrodes, boundaries=boundaries, **(transport_params or {}))

    # 4. classification
    if global_field is not None:
        used_field: Any = global_field
        field_source = "applied"
    else:
        from .boundaries.classify import local_boundary_fields

        # boundaries no current reaches: the mean field direction of the map (as classify --field-from-transport)
        used_field, _ = local_boundary_fields(transport.boundary_field, len(boundaries.boundaries))
        field_source = "transport (local field per boundary)"
    cls = classify_boundaries(grain_map, boundaries, used_field, **(classify_params or {}))

    with update_h5(results) as f:
        write_grains(f, grain_map)
        write_boundaries(f, boundaries)
        write_classification(f, cls)
        if transport is not None:
            write_transport(f, transport)
        write_parameters(f, "run", {"field": field, "field_source": field_source, "electrodes": electrodes, "segment": seg,
                                    "boundaries": boundary_params or {}, "classify": classify_params or {}, "transport": transport_params or {}})
        if calib_fit is not None:
            write_parameters(f, "calibrate", calib_fit.to_dict())
        if config is not None:
            from .settings import config_to_toml, write_config

            write_config(f, config, "run")
    if config is not None:
        header = f"effective config of the run on {Path(input_path).resolve()}; --config this file repeats it"
        atomic_write_text(outdir / "config.toml", config_to_toml(config, header=header))
        written["config"] = outdir / "config.toml"
    write_classification_csv(outdir / "boundaries.csv", cls, level="boundaries")
    write_classification_csv(outdir / "segments.csv", cls, level="segments")
    written["tables"] = [outdir / "boundaries.csv", outdir / "segments.csv"]

    if figures:
        from .plot.classification import plot_boundary_behaviour, plot_boundary_table, plot_grain_traces
        from .plot.grains import save_grain_figures
        from .plot.orientation import save_orientation_figures

        figs = list(save_orientation_figures(xmap, outdir))
        figs += list(save_grain_figures(outdir, grain_map, boundaries))
        plot_grain_traces(grain_map, path=outdir / "grain_traces.png")
        plot_boundary_behaviour(grain_map, boundaries, cls, global_field if global_field is not None else None, path=outdir / "boundary_behaviour.png")
        plot_boundary_table(cls, path=outdir / "boundary_table.png")
        figs += [outdir / "grain_traces.png", outdir / "boundary_behaviour.png", outdir / "boundary_table.png"]
        if transport is not None:
            from .plot.transport import save_transport_figures

            figs += list(save_transport_figures(transport, outdir).values())
        written["figures"] = figs

    summary = {
        "input": str(Path(input_path).resolve()),
        "scan_shape": list(ds.scan_shape),
        "indexed_fraction": float(np.mean(xmap.phase_id >= 0)),
        "median_correlation_index": float(np.median(xmap.prop["correlation_index"])),
        "median_reliability": float(np.median(xmap.prop["reliability"])),
        "phase_fit": phase_fit_check(xmap).as_dict(),
        "n_grains": int(grain_map.n_grains),
        "n_boundaries": int(len(boundaries.boundaries)),
        "field_source": field_source,
        "classification": cls.summary(),
    }
    if transport is not None:
        summary["transport_total_current"] = float(transport.total_current)
        summary["transport_total_current_unit"] = "sigma_ip*V per unit lamella thickness (x sigma_ip [S/m] x thickness [m] = A)"
    atomic_write_text(outdir / "summary.json", json.dumps(summary, indent=2, default=str))
    written["summary"] = summary
    calib_files = [outdir / "calibration.json", outdir / "calibration.png"] if "calibration" in written else []
    finish_run_folder(outdir, manifest, [results, *written["tables"], *written.get("figures", []), outdir / "summary.json",
                                         *[f for f in calib_files if f.exists()], *([written["config"]] if config is not None else [])])
    return written
