"""stemgrains: 4D-STEM orientation maps → grains → grain boundaries → Na⁺ conduction-plane classification.

Conventions (array order, sample frame, orientation convention, units, calibration fields) are stated once in
docs/conventions.md; every docstring follows them.
"""

from ._version import __version__
from .data import Calibration, Dataset4D
from .errors import StemgrainsError

__all__ = ["__version__", "Calibration", "Dataset4D", "StemgrainsError"]
