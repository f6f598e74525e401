"""A short ``repr`` for the result dataclasses: ``print(grains)`` in a notebook dumped every array (a fresh user's
script printed 221 lines for a grain map and a transport result)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._table import Table

__all__ = ["compact_repr"]

_MAX_FIELD_CHARS = 60


def _field_text(value: Any) -> str:
    """One field: arrays by shape and dtype, long mappings and sequences by their length, others by their repr cut
    to :data:`_MAX_FIELD_CHARS` characters."""
    if isinstance(value, np.ndarray):
        return f"<{' × '.join(map(str, value.shape)) or 'scalar'} {value.dtype}>"
    text = repr(value)
    if len(text) <= _MAX_FIELD_CHARS and "\n" not in text:
        return text
    if isinstance(value, Table):
        return f"<Table of {len(value)} rows>"
    if isinstance(value, dict):
        return f"<dict of {len(value)} keys>"
    if isinstance(value, (list, tuple)):
        return f"<{type(value).__name__} of {len(value)}>"
    names = getattr(value, "names", None)  # an orix PhaseList
    if names is not None and not callable(names):
        return f"<{type(value).__name__} {list(names)}>"
    return f"<{type(value).__name__}>"


def compact_repr(obj: Any) -> str:
    """``ClassName(field=..., ...)`` of a dataclass instance on one line, each field as :func:`_field_text` gives
    it (``__repr__`` of the public result types)."""
    parts = [f"{f.name}={_field_text(getattr(obj, f.name))}" for f in dataclasses.fields(obj) if f.repr]
    return f"{type(obj).__name__}({', '.join(parts)})"
