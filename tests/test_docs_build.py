"""The documentation site builds with warnings as errors, and its generated parts are populated (issue #16 item 6).

Runs ``sphinx-build -W --keep-going -b html docs <tmp>`` in a subprocess (as a user or CI would) and then reads
the HTML: every public package of the API reference documents the names its ``__all__`` exports, the CLI
reference has a section with the ``--help`` text of every command, and the pages the code cites exist.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

API_PACKAGES = [
    "stemgrains", "stemgrains.index", "stemgrains.grains", "stemgrains.boundaries", "stemgrains.transport",
    "stemgrains.virtual", "stemgrains.insitu", "stemgrains.io", "stemgrains.preprocess", "stemgrains.simulate",
    "stemgrains.crystal",
]
PLOT_MODULES = ["colors", "orientation", "grains", "classification", "transport", "calibration", "virtual", "insitu"]


def _missing_doc_tools() -> list[str]:
    return [m for m in ("sphinx", "numpydoc", "myst_parser") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    missing = _missing_doc_tools()
    if missing:
        pytest.skip(f"documentation tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("docs_html")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / ".doctrees"),
         str(DOCS), str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO,
    )
    assert proc.returncode == 0, f"sphinx-build failed (warnings are errors):\n{proc.stderr[-6000:]}"
    return out


def _text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', path.read_text(encoding="utf-8")))


def test_the_conventions_page_the_code_cites_exists():
    # cited as docs/conventions.md in module docstrings (simulate, boundaries, data_dictionary, ...)
    page = (DOCS / "conventions.md").read_text(encoding="utf-8")
    for needle in ("scan_row, scan_col, det_row, det_col", "v_crystal = O * v_sample", "q_rotation_deg", "1/Å"):
        assert needle in page


@pytest.mark.parametrize("package", API_PACKAGES)
def test_api_reference_documents_every_exported_name(site, package):
    mod = importlib.import_module(package)
    ids = _ids(site / "api" / f"{package}.html")
    exported = [n for n in mod.__all__ if not n.startswith("_")]
    assert exported
    undocumented = [n for n in exported if f"{package}.{n}" not in ids]
    assert undocumented == [], f"{package}: not in the API reference: {undocumented}"


def test_api_reference_documents_the_plot_modules(site):
    ids = _ids(site / "api" / "stemgrains.plot.html")
    for name in PLOT_MODULES:
        mod = importlib.import_module(f"stemgrains.plot.{name}")
        functions = [n for n in getattr(mod, "__all__", []) if callable(getattr(mod, n))]
        assert functions, name
        assert [n for n in functions if f"stemgrains.plot.{name}.{n}" not in ids] == [], name


def test_api_reference_shows_the_docstrings(site):
    text = _text(site / "api" / "stemgrains.index.html")
    doc = importlib.import_module("stemgrains.index").index_orientations.__doc__
    first_line = " ".join(doc.strip().splitlines()[0].split())
    assert first_line[:60] in " ".join(text.split())


def test_cli_reference_has_the_help_of_every_command(site):
    from stemgrains.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    text = _text(site / "cli.html")
    ids = _ids(site / "cli.html")
    assert sub.choices
    for name, p in sub.choices.items():
        assert f"stemgrains-{name}" in ids, name
        assert f"usage: stemgrains {name}" in text, name
        for action in p._actions:
            for opt in action.option_strings:
                assert opt in text, f"stemgrains {name} {opt} missing from the CLI reference"


def test_user_pages_are_built(site):
    for page, needle in [
        ("getting-started.html", "stemgrains run data_samples/nba_sample.h5"),
        ("conventions.html", "scan_row, scan_col, det_row, det_col"),
        ("indexing.html", "Settling and reliability"),
        ("classification.html", "Type III"),
        ("data-dictionary.html", "/boundaries/segments"),
    ]:
        assert needle in _text(site / page), page
