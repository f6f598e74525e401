"""Boundaries: extraction, misorientation, CSL and conduction-plane classification."""

from ._types import BoundaryTable

__all__ = ["BoundaryTable"]
