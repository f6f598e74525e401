"""Orientation mapping: template library × patterns → orix CrystalMap."""

from .api import ChunkResult, IndexParams, index_orientations, index_patterns

__all__ = ["IndexParams", "index_orientations", "index_patterns", "ChunkResult"]
