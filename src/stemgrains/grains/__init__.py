"""Grains: segmentation of an orientation map into a :class:`GrainMap`."""

from ._io import read_grains, write_grains
from ._types import GRAIN_COLUMNS, GRAIN_COLUMNS_OPTIONAL, GrainMap
from .segment import astar_to_a_frame, c_axis_geometry, grain_table, laue_rotations, segment_grains

__all__ = [
    "GrainMap",
    "GRAIN_COLUMNS",
    "GRAIN_COLUMNS_OPTIONAL",
    "segment_grains",
    "grain_table",
    "c_axis_geometry",
    "laue_rotations",
    "write_grains",
    "read_grains",
    "astar_to_a_frame",
]
