"""Sphinx configuration of the stemgrains documentation.

Build: ``pip install -e ".[docs]" && sphinx-build -W --keep-going docs docs/_build/html`` (tests/test_docs_build.py
runs the same build with warnings as errors).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# document the checkout, not whatever stemgrains happens to be installed
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")

import stemgrains  # noqa: E402

project = "stemgrains"
author = "stemgrains developers"
copyright = "stemgrains developers, GPL-3.0-or-later"
release = stemgrains.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "stemgrains_cli",
    "stemgrains_constants",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# ----------------------------------------------------------------------------------------------- MyST
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
# The generated part of data-dictionary.md puts its tables under "###" headings directly below the page title
# (the page is also read on GitHub, where that is fine); MyST's heading-level check is the only thing it trips.
suppress_warnings = ["myst.header"]

# ----------------------------------------------------------------------------------------------- autodoc
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc shows the types; the signatures keep the hints
autodoc_preserve_defaults = True
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# ----------------------------------------------------------------------------------------------- HTML
html_theme = "alabaster"
html_title = f"stemgrains {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "4D-STEM orientation maps → grains → boundaries → Na⁺ conduction-plane classification",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
