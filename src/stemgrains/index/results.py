"""Writing an indexing run into a results file (the one function both `index` and `run` use)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_index_results"]


def write_index_results(path: str | os.PathLike, xmap: Any, dataset: Any, phases: list, params: dict[str, Any],
                        export_ang: str | os.PathLike | None = None, export_ctf: str | os.PathLike | None = None,
                        config: str | None = None) -> Path:
    """Write ``/orientation`` (quaternions, phase_id, correlation_index, reliability, phase_reliability, n-best
    candidates, spot counts, beam centres), provenance (input path + checksum, shape/dtype, calibration, phases
    with CIF text) and all parameters, atomically. Optionally export an EDAX .ang and/or an Oxford .ctf
    (:mod:`stemgrains.io.export`: µm, quality columns from correlation index and reliability). ``config``: TOML
    text of the resolved config's indexing sections (:func:`stemgrains.settings.config_text`), recorded as the
    ``/parameters`` attribute ``config``."""
    from orix.crystal_map import PhaseList

    from .._grid import map_shape
    from ..io import write_orientation_map
    from ..io.results import atomic_h5, write_parameters, write_provenance

    path = Path(path)
    ny, nx = map_shape(xmap)  # (1, n) / (n, 1) / (1, 1) scans too: orix gives those a 1-D or 0-D shape
    src = dataset.source if dataset.source and os.path.isfile(str(dataset.source)) else None
    with atomic_h5(path) as f:
        write_provenance(f, input_path=src, input_description=dataset.describe(), calibration=dataset.calibration,
                         phases=PhaseList(phases=phases, ids=list(range(len(phases)))),
                         calibration_origin=dataset.metadata.get("calibration_origin"))
        write_orientation_map(f, xmap)
        g = f["orientation"]
        for name in ("n_peaks", "center_row", "center_col"):
            if name in xmap.prop and name not in g:
                g.create_dataset(name, data=np.asarray(xmap.prop[name]).reshape(ny, nx))
        if "candidate_scores" in xmap.prop and "candidate_scores" not in g:
            cs = np.asarray(xmap.prop["candidate_scores"])
            k = cs.shape[1]
            g.create_dataset("candidate_scores", data=cs.reshape(ny, nx, k))
            g.create_dataset("candidate_quaternions", data=np.asarray(xmap.prop["candidate_quaternions"]).reshape(ny, nx, k, 4))
        write_parameters(f, "index", params)
        if config is not None:
            f.require_group("parameters").attrs["config"] = config
        from .quality import phase_fit_check, write_phase_fit

        write_phase_fit(g, phase_fit_check(xmap))
    if export_ang is not None:
        from ..io.export import write_ang

        write_ang(export_ang, xmap, source=src)
    if export_ctf is not None:
        from ..io.export import write_ctf

        write_ctf(export_ctf, xmap, accelerating_voltage_kV=dataset.calibration.accelerating_voltage_kV,
                  source=src)
    return path
