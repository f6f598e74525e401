"""Virtual detectors (bright field, ADF, masks, virtual dark field) and VDF grain maps, streamed over scan rows.

>>> from stemgrains.virtual import virtual_image, annulus            # doctest: +SKIP
>>> adf = virtual_image(load_4d("scan.h5"), annulus(20, 60))         # (scan_row, scan_col)
"""

from .api import chunk_rows_for, estimate_center, pattern_centers, virtual_image, virtual_images
from .detectors import Detector, annulus, bright_field, dark_field, mask_detector

__all__ = [
    "Detector",
    "bright_field",
    "annulus",
    "dark_field",
    "mask_detector",
    "virtual_image",
    "virtual_images",
    "estimate_center",
    "pattern_centers",
    "chunk_rows_for",
]
