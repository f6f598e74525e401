"""The test tree has no __init__.py files (tests import sibling helpers by name), so every test module needs a
unique basename: pytest refuses to collect two modules of the same name."""

from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("*.py") if p.name != "conftest.py")
    assert [n for n, c in names.items() if c > 1] == []
