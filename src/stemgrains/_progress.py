"""Progress bars: tqdm's notebook bar where ipywidgets is installed, its text bar everywhere else.

``tqdm.auto`` picks the notebook bar inside Jupyter even without ipywidgets and then warns (TqdmWarning
"IProgress not found") and prints a text fallback; this module avoids that.
"""

from __future__ import annotations

from typing import Any

__all__ = ["progress_bar"]


def progress_bar(**kwargs: Any) -> Any:
    """A ``tqdm`` progress bar (keyword arguments as for ``tqdm.tqdm``)."""
    try:
        import ipywidgets  # noqa: F401

        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(**kwargs)
