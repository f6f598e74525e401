"""A small column table (structure of arrays) that writes to CSV and HDF5; no pandas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["Table"]


class Table:
    """Ordered, equal-length numpy columns. Columns may be 2-D (``n × k``); CSV spreads them as ``name_0..``.

    >>> t = Table({"id": [1, 2], "length_nm": [3.0, 4.5]})
    >>> len(t), t["length_nm"][1]
    (2, 4.5)
    """

    def __init__(self, columns: Mapping[str, Any] | None = None) -> None:
        self._cols: dict[str, np.ndarray] = {}
        for k, v in (columns or {}).items():
            self[k] = v

    # -- mapping interface -------------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if not self._cols else len(next(iter(self._cols.values())))

    def __getitem__(self, key: str) -> np.ndarray:
        return self._cols[key]

    def __setitem__(self, key: str, value: Any) -> None:
        arr = np.asarray(value)
        if arr.ndim == 0:
            raise InputError(f"table column {key!r} must be 1-D or 2-D, got a scalar")
        if self._cols and key not in self._cols and len(arr) != len(self):
            raise InputError(f"table column {key!r} has length {len(arr)}, expected {len(self)}")
        self._cols[key] = arr

    def __contains__(self, key: object) -> bool:
        return key in self._cols

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def keys(self) -> list[str]:
        return list(self._cols)

    def items(self):
        return self._cols.items()

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self._cols)})"

    def select(self, mask_or_index: Any) -> "Table":
        """Rows selected by a boolean mask or an index array."""
        return Table({k: v[mask_or_index] for k, v in self._cols.items()})

    def row(self, i: int) -> dict[str, Any]:
        return {k: (v[i].tolist() if v.ndim > 1 else v[i].item()) for k, v in self._cols.items()}

    # -- I/O ---------------------------------------------------------------------------------------
    def to_csv(self, path_or_buffer: Any = None, float_format: str = "{:.6g}") -> str | None:
        """Write CSV (2-D columns are spread into ``name_0``, ``name_1`` …). Returns text if no path."""
        header: list[str] = []
        cols: list[np.ndarray] = []
        for k, v in self._cols.items():
            if v.ndim == 1:
                header.append(k)
                cols.append(v)
            else:
                for j in range(v.shape[1]):
                    header.append(f"{k}_{j}")
                    cols.append(v[:, j])
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for i in range(len(self)):
            row = []
            for c in cols:
                x = c[i]
                if isinstance(x, (float, np.floating)):
                    row.append(float_format.format(float(x)))
                elif isinstance(x, bytes):
                    row.append(x.decode())
                else:
                    row.append(x.item() if hasattr(x, "item") else x)
            w.writerow(row)
        text = buf.getvalue()
        if path_or_buffer is None:
            return text
        if hasattr(path_or_buffer, "write"):
            path_or_buffer.write(text)
        else:
            from .io.results import atomic_write_text

            atomic_write_text(path_or_buffer, text)
        return None

    def to_hdf5(self, group: Any) -> None:
        """Write each column as a dataset of an (open, writable) h5py group."""
        for k, v in self._cols.items():
            if k in group:
                del group[k]
            if v.dtype.kind == "U":
                group.create_dataset(k, data=np.char.encode(v, "utf-8") if v.size else np.zeros(v.shape, dtype="S1"))
                group[k].attrs["encoding"] = "utf-8"
            else:
                group.create_dataset(k, data=v)
        group.attrs["columns"] = np.array([s.encode() for s in self._cols])

    @classmethod
    def from_hdf5(cls, group: Any) -> "Table":
        names = [c.decode() if isinstance(c, bytes) else str(c) for c in group.attrs.get("columns", list(group))]
        out = {}
        for k in names:
            arr = group[k][()]
            if group[k].attrs.get("encoding") == "utf-8":
                arr = np.char.decode(arr, "utf-8")
            out[k] = arr
        return cls(out)
