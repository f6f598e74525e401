"""Preprocessing: direct-beam centre, background, calibrated rotation/flip/ellipticity, spot detection, polar transform."""

from .api import SpotParams, detect_spots, direct_beam_center, polar_transform, radial_background

__all__ = ["SpotParams", "detect_spots", "direct_beam_center", "polar_transform", "radial_background"]
