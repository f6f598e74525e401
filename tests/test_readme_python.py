"""The README's Python example runs as written (from the repository root, on data_samples/)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_python_example_runs(monkeypatch):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(REPO)
    env: dict = {}
    exec(compile(code, "README.md (## Python)", "exec"), env)  # noqa: S102  (our own README)
    local, bounds = env["local"], env["bounds"]
    assert len(local.boundaries) == len(bounds.boundaries) > 0
    assert np.all(np.isfinite(np.asarray(local.boundaries["field"], dtype=float)))
    assert env["n_filled"] >= 0 and os.path.isfile(REPO / "data_samples" / "nba_sample.h5")
