"""Boundaries: extraction, misorientation, CSL and conduction-plane classification."""

from ._classify_pair import BEHAVIOURS, LABELS, OTHER_PHASE
from ._io import read_boundaries, write_boundaries
from ._types import BoundaryTable, check_boundaries_of
from .classify import (
    BoundaryClassification,
    classify_boundaries,
    classify_pair,
    local_boundary_fields,
    read_classification,
    write_classification,
    write_classification_csv,
)
from .csl import brandon_tolerance_deg, coincidence_index, csl_misorientations, match_csl
from .extract import extract_boundaries, pixel_pairs, triple_junctions
from .misorientation import SpecialMisorientation, disorientation, parse_special, random_disorientation_angles

__all__ = [
    "LABELS",
    "BEHAVIOURS",
    "OTHER_PHASE",
    "BoundaryTable",
    "check_boundaries_of",
    "extract_boundaries",
    "pixel_pairs",
    "triple_junctions",
    "read_boundaries",
    "write_boundaries",
    "disorientation",
    "parse_special",
    "SpecialMisorientation",
    "random_disorientation_angles",
    "csl_misorientations",
    "coincidence_index",
    "match_csl",
    "brandon_tolerance_deg",
    "classify_pair",
    "classify_boundaries",
    "local_boundary_fields",
    "BoundaryClassification",
    "read_classification",
    "write_classification",
    "write_classification_csv",
]
