"""Synthetic polycrystal 4D-STEM datasets with known truth (tests, demos, benchmarks)."""

from ._microstructure import paint_disks, random_quaternions, scatter_quaternions, voronoi_labels
from ._render import render_pattern, render_patterns
from .polycrystal import SimulatedScan, default_q_pixel_size, simulate_patterns, simulate_polycrystal
from .presets import PRESETS, SAMPLE_CIFS, preset_parameters, sample_cif, standard_dataset

__all__ = [
    "simulate_polycrystal",
    "simulate_patterns",
    "SimulatedScan",
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
