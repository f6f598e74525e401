"""``print()`` of a result in a notebook gives one short line (a grain map and a transport result printed 221 lines
of arrays)."""

from __future__ import annotations

import numpy as np

from stemgrains._repr import compact_repr
from stemgrains._table import Table
from stemgrains.grains import GrainMap


def test_a_grain_map_prints_in_one_line_with_arrays_by_shape():
    labels = np.ones((300, 400), np.int32)
    gm = GrainMap(labels, Table({"id": np.arange(1, 201)}), None, 2.0, {f"k{i}": i for i in range(30)})
    text = repr(gm)
    assert "\n" not in text and len(text) < 200, text
    assert text == ("GrainMap(labels=<300 × 400 int32>, table=Table(200 rows: id), phases=None, scan_step_nm=2.0, "
                    "parameters=<dict of 30 keys>)")
    assert str(gm) == text


def test_compact_repr_keeps_short_values_and_names_long_ones():
    from dataclasses import dataclass

    @dataclass
    class R:
        a: object
        b: object
        c: object

    assert compact_repr(R([1, 2], list(range(100)), "x" * 100)) == "R(a=[1, 2], b=<list of 100>, c=<str>)"
