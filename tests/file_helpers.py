"""Small helpers of the output-guard tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path


def cube_file(path: Path, det: int = 8, q: float = 0.02) -> Path:
    """A 2 × 3 scan of ``det`` × ``det`` float32 patterns (values 0, 1, …) with a q pixel size: the smallest 4D
    input (8 × 8 by default). ``index``/``run`` refuse an 8 × 8 detector's q-range before their output checks:
    tests of those give ``det=32, q=0.05`` (spots from 0.5 to 0.8 1/Å)."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=np.arange(2 * 3 * det * det, dtype=np.float32).reshape(2, 3, det, det))
        d.attrs["q_pixel_size"] = q
    return path


def file_tree(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file and folder below ``folder`` with its size and modification time (folders: None)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns))
            for p in sorted(folder.rglob("*"))}
