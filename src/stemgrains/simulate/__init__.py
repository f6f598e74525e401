"""Synthetic polycrystal 4D-STEM datasets with known truth (tests, demos, benchmarks).

One interface, several engines (``engine=`` of :func:`simulate_polycrystal` / :func:`simulate_patterns`, CLI
``--engine``): ``"kinematic"`` (ours), ``"py4dstem"`` (py4DSTEM's kinematic ``Crystal``), ``"abtem"`` (abTEM
multislice). The microstructure, truth and file layout do not depend on the engine.
"""

from ._microstructure import paint_disks, random_quaternions, scatter_quaternions, voronoi_labels
from ._render import render_pattern, render_patterns
from ._orientations import c_axis_quaternion, designed_orientations, zone_axis_quaternion
from .polycrystal import ENGINES, SimulatedScan, default_q_pixel_size, simulate_patterns, simulate_polycrystal
from .presets import PRESETS, SAMPLE_CIFS, preset_parameters, sample_cif, standard_dataset

__all__ = [
    "simulate_polycrystal",
    "simulate_patterns",
    "SimulatedScan",
    "ENGINES",
    "zone_axis_quaternion",
    "c_axis_quaternion",
    "designed_orientations",
    "standard_dataset",
    "preset_parameters",
    "sample_cif",
    "PRESETS",
    "SAMPLE_CIFS",
    "render_pattern",
    "render_patterns",
    "default_q_pixel_size",
    "voronoi_labels",
    "paint_disks",
    "random_quaternions",
    "scatter_quaternions",
]
