"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STEMGRAINS_SHARED", REPO.parent / "shared")) / "data"
DATA_SAMPLES = REPO / "data_samples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (third-party files); skips the test when it is not there."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared/data not present at {SHARED} (third-party test files live only there)")
    return SHARED


@pytest.fixture(scope="session")
def data_samples() -> Path:
    return DATA_SAMPLES
