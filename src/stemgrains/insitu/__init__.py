"""In-situ image series (e.g. HAADF under bias) against the grain-boundary map: registration to the map and
between frames, differential images, appearing features (filaments), their sites (boundary segment with its
label and behaviour, triple junction, interior, electrode interface, map edge) and the enrichment per label."""

from .api import EVENT_COLUMNS, SeriesResult, analyse_series, load_sites, map_image_from_results, write_series
from .detect import Event, detect_events, differential_images
from .register import (
    DriftRegistration,
    FrameTransform,
    phase_correlation,
    register_drift,
    register_series,
    register_to_map,
    shift_image,
)
from .sites import SITES, SiteMap, enrichment

__all__ = [
    "analyse_series", "SeriesResult", "EVENT_COLUMNS", "load_sites", "map_image_from_results", "write_series",
    "FrameTransform", "DriftRegistration", "phase_correlation", "register_drift", "register_series", "register_to_map", "shift_image",
    "Event", "detect_events", "differential_images", "SiteMap", "SITES", "enrichment",
]
