"""The first indexing of a process loads the numba kernels (compiles them on a fresh install: 2–3 min): where they
will be compiled a user is told so even with --no-progress (one line on stderr, once), with a progress bar in its
description; nothing is said once the kernels are loaded, nor where numba's on-disk cache holds them."""

from __future__ import annotations

import pytest

import stemgrains.index.api as api
from stemgrains.cli import main
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


@pytest.fixture(scope="module")
def scan(au_scan_3x3):
    return au_scan_3x3


@pytest.fixture(autouse=True)
def no_parallel_compile(monkeypatch):
    """The notice as where the kernels cannot be compiled in parallel processes (tests/test_precompile.py tests
    that path)."""
    import stemgrains._precompile as pc

    monkeypatch.setattr(pc, "_done", True)


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
    assert "2–3 min" in api.FIRST_USE_MESSAGE and lines == []


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


def test_said_where_numba_will_compile_not_where_its_cache_holds_the_kernels(scan, tmp_path, monkeypatch, capsys):
    # this process indexes once: the kernels are then in numba's cache (NUMBA_CACHE_DIR, or __pycache__)
    assert main(["index", str(scan), "--phase", AU, "--step", "3", "--no-progress", "-o", str(tmp_path / "m.h5")]) == 0
    assert api._kernels_loaded()
    assert api._kernels_cached()  # what a second run (a new process with this cache) checks: it loads them in seconds
    capsys.readouterr()
    monkeypatch.setattr(api, "_kernels_loaded", lambda: False)  # as in a new process ...
    monkeypatch.setattr(api, "_notice_given", False)
    api.first_use_notice()
    assert capsys.readouterr().err == ""  # ... whose cache holds them: nothing said
    files = api._cpu.index_chunk._cache._cache_file  # ... whose cache is empty (a fresh install): numba compiles
    monkeypatch.setattr(files, "_index_path", str(tmp_path / "empty" / "index_chunk.nbi"))
    assert not api._kernels_cached()
    api.first_use_notice()
    assert capsys.readouterr().err == f"stemgrains: {api.FIRST_USE_MESSAGE}\n"


def test_said_before_the_final_refinement_choice_where_sigma_is_set(tmp_path, capsys, monkeypatch):
    """With σ_s set, the first kernels run in the final refinement's choice on a subsample (scans of ≥ 64
    patterns): the notice comes before it (a fresh user saw 20 s of silence first)."""
    from stemgrains.simulate import simulate_polycrystal

    src = simulate_polycrystal(tmp_path / "s.h5", phases=[AU], scan_shape=(8, 8), detector_shape=(48, 48),
                               n_grains=2, seed=2, progress=False)
    monkeypatch.setattr(api, "_kernels_loaded", lambda: False)
    monkeypatch.setattr(api, "_kernels_cached", lambda: False)
    monkeypatch.setattr(api, "_notice_given", False)
    said_before = []
    real = api.choose_refine_sigma

    def spy(*args, **kwargs):
        said_before.append(api._notice_given)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "choose_refine_sigma", spy)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[index]\nexcitation_error_sigma = 0.015\n")
    assert main(["index", str(src), "--phase", AU, "--step", "4", "--no-progress", "--config", str(cfg), "-o",
                 str(tmp_path / "m.h5")]) == 0
    assert said_before == [True]
    assert capsys.readouterr().err.count(api.FIRST_USE_MESSAGE) == 1
