"""Fixtures of the grains tests."""

from __future__ import annotations

import pytest
from synthetic_grains import synthetic_polycrystal


@pytest.fixture
def polycrystal():
    return synthetic_polycrystal()
