"""Compare a series of scans of the same area: registration to the first scan, grains matched across the series
(one series id per physical grain), per-grain orientation change, per-boundary change (issue #17).

* :func:`compare_results` → :class:`Comparison`; :func:`load_scan` reads one scan (segmenting it when needed).
* :func:`write_comparison` writes ``grains_matched.csv``, ``boundaries_changed.csv``, ``compare.h5``,
  ``compare.json`` and the figures (:mod:`stemgrains.plot.compare`).
* :mod:`stemgrains.compare.register`: turns/flips of the scan grid and the shift, from the IPF colours.
"""

from .api import BOUNDARY_COLUMNS, GRAIN_COLUMNS, Comparison, ScanResults, compare_results, load_scan
from .register import PIXEL_OPS, PixelOp, Registration, parse_op
from .write import output_names, stale_outputs, write_comparison

__all__ = [
    "compare_results",
    "load_scan",
    "Comparison",
    "ScanResults",
    "GRAIN_COLUMNS",
    "BOUNDARY_COLUMNS",
    "PixelOp",
    "PIXEL_OPS",
    "Registration",
    "parse_op",
    "write_comparison",
    "output_names",
    "stale_outputs",
]
