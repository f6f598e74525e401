"""The first indexing of a process loads the numba kernels (compiles them on a fresh install: 1–2 min): where they
will be compiled a user is told so even with --no-progress (one line on stderr, once), with a progress bar in its
description; nothing is said once the kernels are loaded, nor where numba's on-disk cache holds them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import stemgrains.index.api as api
from stemgrains.cli import main
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


@pytest.fixture(scope="module")
def scan(au_scan_3x3):
    return au_scan_3x3


def test_no_progress_still_explains_the_first_use(scan, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(api, "_kernels_loaded", lambda: False)  # as in a fresh process with an empty numba cache
    monkeypatch.setattr(api, "_kernels_cached", lambda: False)
    monkeypatch.setattr(api, "_notice_given", False)
    for k in range(2):
        assert main(["index", str(scan), "--phase", AU, "--step", "3", "--no-progress", "-o",
                     str(tmp_path / f"m{k}.h5")]) == 0
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "numba kernels" in line]
        assert len(lines) == (1 if k == 0 else 0), err  # once per process
    assert "1–2 min" in api.FIRST_USE_MESSAGE and lines == []


def test_nothing_said_once_loaded(capsys, monkeypatch):
    monkeypatch.setattr(api, "_kernels_loaded", lambda: True)
    monkeypatch.setattr(api, "_notice_given", False)
    api.first_use_notice()
    assert capsys.readouterr().err == ""


def test_progress_bar_says_it_instead(capsys, monkeypatch):
    monkeypatch.setattr(api, "_kernels_loaded", lambda: False)
    monkeypatch.setattr(api, "_kernels_cached", lambda: False)
    monkeypatch.setattr(api, "_notice_given", False)

    class Bar:
        disable = False
        desc = ""

        def set_description(self, text):
            self.desc = text

    bar = Bar()
    api.first_use_notice(bar)
    assert "numba kernels" in bar.desc and capsys.readouterr().err == ""


def _notice_in_a_new_process(env: dict[str, str]) -> str:
    code = "from stemgrains.index import api; api.first_use_notice()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_said_where_numba_will_compile_not_where_its_cache_holds_the_kernels(scan, tmp_path):
    # this process indexes once: the kernels are then in numba's cache (NUMBA_CACHE_DIR, or __pycache__)
    assert main(["index", str(scan), "--phase", AU, "--step", "3", "--no-progress", "-o", str(tmp_path / "m.h5")]) == 0
    assert api._kernels_loaded()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert api.FIRST_USE_MESSAGE not in _notice_in_a_new_process(env)  # a second run: loads them in seconds
    empty = tmp_path / "numba_cache"
    empty.mkdir()
    err = _notice_in_a_new_process({**env, "NUMBA_CACHE_DIR": str(empty)})  # a fresh install: compiles
    assert err == f"stemgrains: {api.FIRST_USE_MESSAGE}\n", err
