"""Grains: segmentation of an orientation map into a :class:`GrainMap`."""

from ._types import GrainMap

__all__ = ["GrainMap"]
