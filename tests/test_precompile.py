"""The first run after an install compiles the recorded numba kernels in parallel processes
(stemgrains._precompile): the record names existing kernels with the signatures a run uses, the workers fill an
empty cache that a new process then loads, and nothing is done where it cannot help."""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import sys

import pytest
from numba.core.registry import CPUDispatcher

import stemgrains._precompile as pc
from stemgrains.cli import main
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


def test_the_record_names_existing_kernels_with_parseable_signatures():
    items = pc.load_signatures()
    assert len(items) >= 15, "the record (python -m stemgrains._precompile_record) is missing"
    names = set()
    for it in items:
        disp = pc._dispatcher(it)
        assert isinstance(disp, CPUDispatcher), it["name"]
        sig = pc._signature(it)
        params = inspect.signature(disp.py_func).parameters.values()
        required = sum(p.default is inspect.Parameter.empty for p in params)
        assert required <= len(sig) <= len(params), it["name"]
        assert float(it["seconds"]) > 0
        names.add(it["name"])
    assert {"index_chunk", "rescore_chunk", "refine_chunk", "pair_hypotheses", "detect_spots_chunk"} <= names


_USED = """
import json, sys
from stemgrains.cli import main
from stemgrains.index import _cpu, _pairs
assert main(["index", sys.argv[1], "--phase", sys.argv[2], "--step", "3", "--no-progress", "-o", sys.argv[3]]) == 0
used = [(d.py_func.__module__, d.py_func.__qualname__, [repr(t) for t in sig])
        for d in (_cpu.index_chunk, _cpu.rescore_chunk, _cpu.refine_chunk, _cpu.quick_candidates, _pairs.pair_hypotheses)
        for sig in d.signatures]
print("USED " + json.dumps(used))
"""


def test_the_record_holds_the_signatures_an_index_run_uses(au_scan_3x3, tmp_path):
    # in a process of its own: this one has called the kernels with other arguments in other tests
    res = subprocess.run([sys.executable, "-c", _USED, str(au_scan_3x3), AU, str(tmp_path / "m.h5")],
                         capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("USED ")]
    assert res.returncode == 0 and lines, res.stderr[-2000:]
    recorded = {(it["module"], it["name"], tuple(it["signature"])) for it in pc.load_signatures()}
    used = [(m, n, tuple(sig)) for m, n, sig in json.loads(lines[-1][5:])]
    assert {"index_chunk", "rescore_chunk", "refine_chunk"} <= {n for _, n, _ in used}
    for key in used:
        assert key in recorded, f"{key[1]}{key[2]} is not recorded: python -m stemgrains._precompile_record"


def test_shares_balance_the_recorded_seconds():
    items = [{"name": str(k), "seconds": s} for k, s in enumerate([10, 8, 7, 3, 2, 2, 1])]
    shares = pc._shares(items, 3)
    loads = sorted(sum(it["seconds"] for it in s) for s in shares)
    assert loads == [10, 11, 12] and sum(len(s) for s in shares) == len(items)  # LPT: longest first, least loaded
    assert len(pc._shares(items[:2], 4)) == 2  # no empty shares


@pytest.mark.slow  # ~45 s: the worker compiles orix's import-time kernels into its empty cache too
def test_workers_fill_an_empty_cache_that_a_new_process_loads(tmp_path, monkeypatch):
    # one worker: the cache it fills is empty, and a second would compile orix's import-time gufuncs into it at the
    # same time (precompile_kernels imports them in the calling process first, whose cache is the workers' one)
    cheap = sorted(pc.load_signatures(), key=lambda it: it["seconds"])[:1]
    monkeypatch.setattr(pc, "load_signatures", lambda: cheap)
    monkeypatch.setattr(pc, "_is_cached", lambda it: False)  # this process's cache holds them; the workers' is empty
    monkeypatch.setattr(pc, "_done", False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    log = io.StringIO()
    out = pc.precompile_kernels(log=log, processes=2)
    assert out is not None and out["kernels"] == 1 and out["failed"] == [] and out["processes"] == 1, out
    assert "compiling 1 numba kernel in 1 process," in log.getvalue() and "compiled in" in log.getvalue()
    assert pc.precompile_kernels(log=log, processes=2) is None  # once per process
    check = ("import json, sys; import stemgrains._precompile as pc; "
             "print(json.dumps([pc._is_cached(it) for it in json.loads(sys.argv[1])]))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-c", check, json.dumps(cheap)], env=env, capture_output=True, text=True)
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [True], res.stderr
    res = subprocess.run([sys.executable, "-c", check, json.dumps(cheap)], capture_output=True, text=True,
                         env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "other")))
    assert json.loads(res.stdout.strip().splitlines()[-1]) == [False], res.stderr


@pytest.mark.parametrize("env, processes", [("1", None), (None, 1), ("abc", None), ("0", None)])
def test_nothing_done_with_one_process(monkeypatch, env, processes):
    monkeypatch.setattr(pc, "_is_cached", lambda it: False)
    monkeypatch.setattr(pc, "_done", False)
    if env is None:
        monkeypatch.delenv(pc.ENV_PROCESSES, raising=False)
    else:
        monkeypatch.setenv(pc.ENV_PROCESSES, env)
    log = io.StringIO()
    assert pc.precompile_kernels(log=log, processes=processes) is None
    if env in ("abc", "0"):  # said, then one process
        assert log.getvalue() == (f"stemgrains: {pc.ENV_PROCESSES}={env}: expected a whole number ≥ 1; the kernels "
                                  "compile in this process\n")
    else:
        assert log.getvalue() == ""


def test_a_signature_that_fails_is_left_to_the_first_call(tmp_path, monkeypatch):
    bad = dict(pc.load_signatures()[0], signature=["float64"])  # wrong number of arguments
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    (name, _, err), = pc._compile_share([bad])
    assert name.endswith(bad["name"]) and err and "\n" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")
def test_cache_writes_wait_for_the_lock(tmp_path, monkeypatch):
    """A worker's write to numba's cache (index and data file) waits while another holds the lock."""
    import fcntl
    import threading

    from numba.core import caching

    monkeypatch.setattr(caching.IndexDataCacheFile, "save", caching.IndexDataCacheFile.save)  # restored after
    lock = tmp_path / "lock"
    pc._locked_cache_writes(str(lock))
    assert caching.IndexDataCacheFile.save._stemgrains_locked
    pc._locked_cache_writes(str(lock))  # once: not wrapped twice
    cache_file = caching.IndexDataCacheFile(str(tmp_path), "kernel", ("stamp", 1))
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        t = threading.Thread(target=cache_file.save, args=(("sig",), b"code"))
        t.start()
        t.join(0.5)
        assert t.is_alive() and cache_file._load_index() == {}  # waiting
        fcntl.flock(held, fcntl.LOCK_UN)
    t.join(5)
    assert not t.is_alive() and cache_file.load(("sig",)) == b"code"


def test_the_workers_do_not_run_the_callers_script_again(tmp_path):
    """A user's script that indexed on a fresh install ran two more times, its indexing included: the workers were a
    multiprocessing "spawn" pool, whose children import the caller's ``__main__`` again. Each worker is now a
    process of its own (``python -m stemgrains._precompile``)."""
    marks = tmp_path / "marks.txt"
    script = tmp_path / "user_script.py"
    script.write_text(
        "import os\n"
        f"with open({str(marks)!r}, 'a') as fh:\n"
        "    fh.write(f'{os.getpid()}\\n')\n"
        "import stemgrains._precompile as pc\n"
        "cheap = sorted(pc.load_signatures(), key=lambda it: it['seconds'])[:2]\n"
        "pc.load_signatures = lambda: cheap\n"
        "pc._is_cached = lambda it: False\n"
        "out = pc.precompile_kernels(processes=2)\n"
        "print('kernels', out and out['kernels'], 'processes', out and out['processes'])\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert res.returncode == 0, res.stderr
    assert "kernels 2 processes 2" in res.stdout, (res.stdout, res.stderr)
    assert len(marks.read_text().split()) == 1, marks.read_text()  # the script ran once
