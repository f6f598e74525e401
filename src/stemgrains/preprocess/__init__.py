"""Preprocessing: direct-beam centre, background, calibrated rotation/flip/ellipticity, spot detection, polar transform;
calibration from the data (:func:`calibrate`)."""

from .api import SpotParams, detect_spots, direct_beam_center, pattern_centers, polar_transform, radial_background
from .calibrate import CalibrationFit, apply_calibration_fit, calibrate

__all__ = [
    "SpotParams", "detect_spots", "direct_beam_center", "pattern_centers", "polar_transform", "radial_background", "calibrate", "CalibrationFit",
    "apply_calibration_fit",
]
