"""Small helpers of the output-guard tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path


def cube_file(path: Path) -> Path:
    """A 2 × 3 scan of 8 × 8 float32 patterns (values 0…383) with a q pixel size: the smallest 4D input."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8))
        d.attrs["q_pixel_size"] = 0.02
    return path


def file_tree(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file and folder below ``folder`` with its size and modification time (folders: None)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns))
            for p in sorted(folder.rglob("*"))}
