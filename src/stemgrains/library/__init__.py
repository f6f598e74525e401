"""Template libraries: beam directions over the fundamental sector, in-plane rotations, kinematic spot lists;
cached on disk by content hash."""

from .cache import cache_key, default_cache_dir, load_cached, save_cached
from .sampling import (
    base_rotations,
    beam_directions,
    direction_covering_radius_deg,
    in_plane_angles,
    orientation_covering_radius_deg,
    orientation_grid,
)
from .templates import TemplateLibrary, build_library, laue_proper_group

__all__ = [
    "TemplateLibrary",
    "build_library",
    "laue_proper_group",
    "beam_directions",
    "base_rotations",
    "in_plane_angles",
    "orientation_grid",
    "direction_covering_radius_deg",
    "orientation_covering_radius_deg",
    "cache_key",
    "default_cache_dir",
    "load_cached",
    "save_cached",
]
