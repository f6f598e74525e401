"""Readers and writers: the only place that opens files.

* :func:`load_4d` — 4D-STEM cubes (project HDF5, py4DSTEM/EMD, ``.npy``, vendor files via rosettasciio),
  lazily, as :class:`~stemgrains.data.Dataset4D` ``data[scan_row, scan_col, det_row, det_col]``.
* :func:`write_4d` / :func:`create_4d` — the project HDF5 layout; :func:`load_truth`,
  :func:`load_phases_from` — ground truth and phases stored next to it.
* :func:`load_orientation_map` — ``.ang``/``.ctf``/orix ``.h5``/our results file → orix ``CrystalMap``
  (x/y in nm); :func:`write_orientation_map` — our ``/orientation`` layout; :func:`write_ang` /
  :func:`write_ctf` — EDAX ``.ang`` and Oxford ``.ctf`` exports (µm; quality columns as in the README).
* :mod:`stemgrains.io.results` — atomic results files and provenance.
* :func:`read_calibration_json` / :func:`write_calibration_json` — calibration files;
  :func:`read_results_calibration` — the calibration recorded in a results file.
"""

from ._common import H5Array
from ._project import create_4d, load_phases_from, load_truth, write_4d, write_truth
from .calibration import read_calibration_json, read_results_calibration, write_calibration_json
from .export import write_ang, write_ctf
from .fourd import load_4d, supported_extensions
from .maps import load_orientation_map, map_scan_step_nm, read_orientation_map, write_orientation_map

__all__ = [
    "load_4d",
    "supported_extensions",
    "write_4d",
    "create_4d",
    "write_truth",
    "load_truth",
    "load_phases_from",
    "load_orientation_map",
    "read_orientation_map",
    "write_orientation_map",
    "write_ang",
    "write_ctf",
    "map_scan_step_nm",
    "H5Array",
    "read_calibration_json",
    "write_calibration_json",
    "read_results_calibration",
]
