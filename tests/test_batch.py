"""Batches of `index`/`run` (stemgrains.batch): inputs, names, skip/resume, failures, --jobs and --scheduler."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains import batch as B
from stemgrains.batch import expand_inputs, format_result, input_checksum, plan_outputs, read_summary, run_batch
from stemgrains.cli import main
from stemgrains.errors import ParameterError
from stemgrains.simulate import sample_cif, simulate_polycrystal

AU = str(sample_cif("au"))
INDEX = ["--phase", AU, "--step", "4", "--no-progress"]
RUN = ["--phase", AU, "--step", "4", "--field", "1,0", "--min-size", "1", "--no-figures", "--no-progress"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Two tiny Au scans (3 x 4, 64² detector, two grains each) and a copy of one truncated to 20 kB."""
    d = tmp_path_factory.mktemp("batch_scans")
    for name, seed in (("a", 1), ("b", 2)):
        simulate_polycrystal(d / f"{name}.h5", phases=[AU], scan_shape=(3, 4), detector_shape=(64, 64), n_grains=2,
                             seed=seed, dose=1e4, progress=False)
    (d / "c.h5").write_bytes((d / "b.h5").read_bytes()[:20000])
    return d


def _inputs(scans, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for n in ("a", "b", "c"):
        shutil.copy(scans / f"{n}.h5", d / f"{n}.h5")
    return d


def _rows(out):
    return {Path(r["output"]).name: r for r in read_summary(out / B.SUMMARY_CSV)}


def _orientation(path):
    with h5py.File(path) as f:
        return {k: f["orientation"][k][()] for k in ("quaternions", "phase_id", "correlation_index", "reliability")}


# ------------------------------------------------------------------------------------------------ inputs
def _touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_expand_inputs_files_folders_globs(tmp_path):
    a = _touch(tmp_path / "d" / "a.npy")
    b = _touch(tmp_path / "d" / "b.mib")
    _touch(tmp_path / "d" / "notes.txt")
    _touch(tmp_path / "d" / ".hidden.npy")
    _touch(tmp_path / "d" / "out.h5.partial" / "rows_000000_000001.npz")
    sub = _touch(tmp_path / "d" / "sub" / "c.npy")
    with h5py.File(tmp_path / "d" / "results.h5", "w") as f:  # our own output: not an input
        f.create_group("orientation")
    with h5py.File(tmp_path / "d" / "scan.h5", "w") as f:
        f.create_dataset("data", data=np.zeros((1, 1, 2, 2)))
    folder = expand_inputs([tmp_path / "d"])
    assert [p.name for p in folder] == ["a.npy", "b.mib", "scan.h5"]
    assert [p.name for p in expand_inputs([tmp_path / "d"], recursive=True)] == ["a.npy", "b.mib", "scan.h5", "c.npy"]
    # a quoted glob the shell did not expand; duplicates (also via another item) kept once, first place
    assert expand_inputs([str(tmp_path / "d" / "*.npy"), str(a), str(b)]) == [a, b]
    assert expand_inputs([str(tmp_path / "**" / "c.npy")], recursive=True) == [sub]
    # an explicit file is taken whatever its extension (its reader reports what it cannot read)
    assert expand_inputs([tmp_path / "d" / "notes.txt"]) == [tmp_path / "d" / "notes.txt"]
    for bad, what in ((tmp_path / "nothing*.h5", "matches no 4D-STEM file"), (tmp_path / "missing.h5", "no such file"),
                      (tmp_path / "d" / "sub2", "no such file")):
        with pytest.raises(ParameterError, match=what) as err:
            expand_inputs([str(bad)])
        assert "\n" not in str(err.value) and str(bad) in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="--recursive"):
        expand_inputs([tmp_path / "empty"])


def test_plan_outputs_resolves_collisions_deterministically(tmp_path):
    files = [tmp_path / "x" / "run1" / "scan.h5", tmp_path / "x" / "run2" / "scan.h5", tmp_path / "x" / "run2" / "scan.npy",
             tmp_path / "y" / "other.h5", tmp_path / "y" / "my scan.h5"]
    names = [p.name for p in plan_outputs(files, tmp_path / "out")]
    assert names == ["run1_scan", "run2_scan_h5", "run2_scan_npy", "other", "my_scan"]
    assert len({n.lower() for n in names}) == len(names)
    # the same names whatever the order
    rev = [p.name for p in plan_outputs(files[::-1], tmp_path / "out")]
    assert rev == names[::-1]
    # same stem, different parents deep down
    deep = [tmp_path / "p" / "a" / "s" / "scan.h5", tmp_path / "q" / "a" / "s" / "scan.h5"]
    assert [p.name for p in plan_outputs(deep, tmp_path)] == ["p_a_s_scan", "q_a_s_scan"]
    with pytest.raises(ParameterError):
        plan_outputs([files[0], files[0]], tmp_path)


def test_input_checksum_follows_content(tmp_path, monkeypatch):
    a = _touch(tmp_path / "a.npy", bytes(range(256)) * 4096)
    c0 = input_checksum(a)
    assert c0.startswith("sha256:") and input_checksum(a) == c0
    data = bytearray(a.read_bytes())
    data[500_000] ^= 1  # same size, one bit in the middle
    a.write_bytes(bytes(data))
    assert input_checksum(a) != c0
    # a Merlin .mib is checked with its .hdr
    mib = _touch(tmp_path / "s.mib", b"frames")
    hdr = _touch(tmp_path / "s.hdr", b"header 1")
    c1 = input_checksum(mib)
    hdr.write_bytes(b"header 2")
    assert input_checksum(mib) != c1
    # large files are sampled: first/last blocks and evenly spaced blocks
    monkeypatch.setattr(B, "FULL_HASH_BYTES", 1 << 16)
    monkeypatch.setattr(B, "_EDGE_BYTES", 1 << 12)
    monkeypatch.setattr(B, "_SAMPLE_BYTES", 1 << 10)
    big = _touch(tmp_path / "big.npy", np.random.default_rng(0).bytes(1 << 20))
    c2 = input_checksum(big)
    assert c2.startswith("sha256-sampled:")
    data = bytearray(big.read_bytes())
    data[-1] ^= 1
    big.write_bytes(bytes(data))
    assert input_checksum(big) != c2


# ------------------------------------------------------------------------------------------------ runner
def _job_ok(src: Path, folder: Path, params: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.txt").write_text(src.read_text() + str(params["k"]))
    if "boom" in src.read_text():
        raise ValueError("boom inside\nsecond line")
    if "stop" in src.read_text() and not params.get("_let_through"):
        raise KeyboardInterrupt
    return {"scan_shape": [2, 3], "indexed_fraction": 0.5, "patterns_per_s": 10.0,
            "behaviour_fraction": {"blocking": 0.25, "other-phase": 0.75}}


def test_run_batch_records_failures_skips_and_resumes(tmp_path):
    ins = [_touch(tmp_path / "in" / f"{n}.npy", t.encode()) for n, t in (("a", "A"), ("b", "boom"), ("c", "stop"))]
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_batch(ins, out, _job_ok, {"k": 1}, progress=False)
    rows = _rows(out)  # the summary exists after an interrupt: finished inputs recorded, the rest pending
    assert rows["a"]["status"] == "done" and rows["a"]["behaviour_fraction_blocking"] == "0.25"
    assert rows["b"]["status"] == "failed" and rows["b"]["reason"] == "ValueError: boom inside"
    assert rows["c"]["status"] == "pending"
    assert (out / "b" / "batch_error.txt").read_text().count("Traceback") == 1  # a bug keeps its traceback
    assert json.loads((out / "c" / B.DONE_MARKER).read_text())["state"] == "started"
    # the checkpoint of an interrupted input with the same content and parameters is kept
    _touch(out / "c" / ".checkpoint" / "rows_000000_000001.npz")
    res = run_batch(ins, out, _job_ok, {"k": 1, "_let_through": True}, progress=False)
    assert [r["status"] for r in res.rows] == ["skipped", "failed", "done"]
    assert res.rows[0]["indexed_percent"] == 50.0  # a skipped input keeps its numbers
    assert (out / "c" / ".checkpoint").exists() and not res.ok and len(res.failed) == 1
    # other parameters: redone, stale checkpoints removed first
    _touch(out / "c" / ".checkpoint" / "rows_000000_000001.npz")
    res = run_batch(ins, out, _job_ok, {"k": 2, "_let_through": True}, progress=False)
    assert [r["status"] for r in res.rows] == ["done", "failed", "done"]
    assert (out / "a" / "out.txt").read_text() == "A2" and not (out / "c" / ".checkpoint").exists()
    # other content under the same name: redone; --force redoes the rest
    ins[0].write_text("Z")
    res = run_batch(ins, out, _job_ok, {"k": 2}, progress=False, force=False)
    assert [r["status"] for r in res.rows[::2]] == ["done", "skipped"]
    res = run_batch(ins, out, _job_ok, {"k": 2, "_let_through": True}, progress=False, force=True)
    assert [r["status"] for r in res.rows[::2]] == ["done", "done"]
    params = json.loads((out / B.PARAMETERS_JSON).read_text())
    assert params["parameters"]["k"] == 2 and params["outputs"] == ["a", "b", "c"]
    assert (out / B.SUMMARY_PNG).stat().st_size > 0


def test_sigma_per_scan_is_printed_and_in_the_summary(tmp_path):
    """Each scan's relrod width σ_s and how it was found: on its progress line, in its summary row (also when
    skipped later), and counted in the batch's report."""
    import io

    def job(src: Path, folder: Path, params: dict) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        chosen = "b" in src.name
        return {"scan_shape": [2, 3], "indexed_fraction": 1.0, "excitation_error_sigma": 0.01 if chosen else 0.015,
                "excitation_error_sigma_source": "chosen from the data" if chosen else "set"}

    ins = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in ("a", "b", "c")]
    log = io.StringIO()
    res = run_batch(ins, tmp_path / "out", job, {}, log=log)
    lines = [x for x in log.getvalue().splitlines() if ": done in" in x]
    assert len(lines) == 3 and "relrod width σ_s 0.01 1/Å (chosen from the data) →" in lines[1]
    assert "relrod width σ_s 0.015 1/Å (set) →" in lines[0]
    rows = _rows(tmp_path / "out")
    assert [rows[n]["excitation_error_sigma"] for n in "abc"] == ["0.015", "0.01", "0.015"]
    assert rows["b"]["excitation_error_sigma_source"] == "chosen from the data"
    assert format_result(res).splitlines()[1] == ("  relrod width σ_s: 0.01 1/Å (chosen from the data) for 1 scan; "
                                                  "0.015 1/Å (set) for 2 scans (per scan: column "
                                                  "excitation_error_sigma)")
    res = run_batch(ins, tmp_path / "out", job, {}, progress=False)
    assert [r["status"] for r in res.rows] == ["skipped"] * 3 and res.rows[1]["excitation_error_sigma"] == 0.01


def test_final_refinement_per_scan_is_printed_and_in_the_summary(tmp_path):
    """Each scan's final refinement (its width and how it was found, or off): on its progress line with a colon as
    single runs print it, in its summary row (refine_excitation_error_sigma and _source), and counted in the
    batch's report, off included."""
    import io

    finals = {"a": (0.007, "chosen from the data"), "b": (None, "off"), "c": (0.015, "chosen from the data"),
              "d": (0.015, "the search's: the set width 0.02 1/Å is wider than σ_s 0.015 1/Å, not applied")}

    def job(src: Path, folder: Path, params: dict) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        width, how = finals[src.stem]
        return {"scan_shape": [2, 3], "indexed_fraction": 1.0, "excitation_error_sigma": 0.015,
                "excitation_error_sigma_source": "set", "refine_excitation_error_sigma": width,
                "refine_excitation_error_sigma_source": how}

    ins = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in "abcd"]
    log = io.StringIO()
    res = run_batch(ins, tmp_path / "out", job, {}, log=log)
    lines = [x for x in log.getvalue().splitlines() if ": done in" in x]
    assert ", final refinement: at 0.007 1/Å →" in lines[0] and ", final refinement: off →" in lines[1]
    assert "final refinement" not in lines[2]  # none: σ_s kept
    assert ", final refinement: none (the search's: the set width 0.02 1/Å is wider than σ_s 0.015 1/Å, not " \
           "applied) →" in lines[3]
    rows = _rows(tmp_path / "out")
    assert [rows[n]["refine_excitation_error_sigma"] for n in "abc"] == ["0.007", "", "0.015"]
    assert [rows[n]["refine_excitation_error_sigma_source"] for n in "abc"] == ["chosen from the data", "off",
                                                                                 "chosen from the data"]
    assert format_result(res).splitlines()[2] == (
        "  final refinement: at 0.007 1/Å for 1 scan; none for 1 scan; none (the search's: the set width 0.02 1/Å is "
        "wider than σ_s 0.015 1/Å, not applied) for 1 scan; off for 1 scan (per scan: columns "
        "refine_excitation_error_sigma and refine_excitation_error_sigma_source)")
    res = run_batch(ins, tmp_path / "out", job, {}, progress=False)  # skipped: the rows read back from the CSV
    assert [r["status"] for r in res.rows] == ["skipped"] * 4 and res.rows[1]["refine_excitation_error_sigma_source"] == "off"
    assert "off for 1 scan" in format_result(res)


def test_no_progress_keeps_the_line_per_input(tmp_path):
    """progress=False (--no-progress) removes progress bars, not results: every input still gets its line (done,
    with its folder; skipped; failed, with the reason)."""
    import io

    ins = [_touch(tmp_path / "in" / f"{n}.npy", t.encode()) for n, t in (("a", "A"), ("b", "boom"))]
    log = io.StringIO()
    run_batch(ins, tmp_path / "out", _job_ok, {"k": 1}, progress=False, log=log)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith(f"[1/2] {ins[0]}: done in ") and lines[0].endswith(f"→ {tmp_path / 'out' / 'a'}")
    assert lines[1] == f"[2/2] {ins[1]}: failed: ValueError: boom inside", lines
    log = io.StringIO()
    run_batch(ins[:1], tmp_path / "out", _job_ok, {"k": 1}, progress=False, log=log)
    assert log.getvalue() == f"[1/1] {ins[0]}: skipped (done before, same content and parameters)\n"


def test_run_batch_refuses_a_folder_it_did_not_write(tmp_path):
    src = _touch(tmp_path / "in" / "a.npy", b"A")
    _touch(tmp_path / "out" / "a" / "precious.txt")
    res = run_batch([src, _touch(tmp_path / "in" / "b.npy", b"B")], tmp_path / "out", _job_ok, {"k": 1}, progress=False)
    assert [r["status"] for r in res.rows] == ["failed", "done"] and "--force" in res.rows[0]["reason"]
    assert (tmp_path / "out" / "a" / "precious.txt").exists()
    with pytest.raises(ParameterError, match="--jobs"):
        run_batch([src], tmp_path / "out2", _job_ok, {"k": 1}, jobs=0)


def test_summary_figure_is_readable_for_many_inputs(tmp_path):
    from stemgrains.plot.batch import plot_batch_summary

    rng = np.random.default_rng(0)
    rows = [{"output": f"scan_{i:02d}", "status": ("done", "skipped", "failed")[i % 3], "indexed_percent": rng.uniform(50, 100),
             "patterns_per_s": rng.uniform(100, 300), "median_reliability": rng.uniform(0, 40),
             "behaviour_fraction_blocking": 0.3, "behaviour_fraction_transmitting": 0.7} for i in range(50)]
    for n in (1, 3, 50):
        fig = plot_batch_summary(rows[:n])
        w, h = fig.get_size_inches()
        assert h >= 0.25 * n and h < 20 and w < 16
        assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [r["output"] for r in rows[:n]]
    assert plot_batch_summary(rows[:3], tmp_path / "s.png").stat().st_size > 1000
    # a map without boundaries (a 3 x 3 scan of one grain): its row of the length fractions said nothing
    rows[1] = {**rows[1], "behaviour_fraction_blocking": 0.0, "behaviour_fraction_transmitting": 0.0}
    fig = plot_batch_summary(rows[:3])
    assert [t.get_text() for t in fig.axes[-1].texts] == ["no boundaries", "failed"]
    assert fig.axes[2].get_title() == "median reliability (of 100)"  # its axis runs to 100, not to the data


# ------------------------------------------------------------------------------------------------ CLI
def _check_sigma(row, results, printed):
    """The relrod width σ_s a scan of a batch was indexed with, and how it was found, are its summary row's
    excitation_error_sigma(_source) and printed on its line: those its results file records (/parameters index)."""
    with h5py.File(results) as f:
        used = json.loads(f["parameters"].attrs["index"])
    sigma, how = used["excitation_error_sigma"], used["excitation_error_sigma_source"]
    assert float(row["excitation_error_sigma"]) == pytest.approx(sigma) and row["excitation_error_sigma_source"] == how
    line = [x for x in printed.splitlines() if x.startswith("  relrod width σ_s: ")]  # the batch's last lines
    assert len(line) == 1 and f"{sigma:g} 1/Å ({how}) for " in line[0], printed  # (per scan: test_sigma_per_scan)


def test_cli_run_batch_with_a_corrupt_input(scans, tmp_path, capsys):
    """The acceptance: two complete folders, the failure's reason, non-zero status; again: the two skipped,
    the third retried; a changed parameter redoes them."""
    d = _inputs(scans, tmp_path)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    assert main(["run", str(d), *RUN, "-o", str(out)]) == 1
    first = time.perf_counter() - t0
    printed = capsys.readouterr().out
    assert "2 done, 0 skipped, 1 failed" in printed and "c.h5" in printed
    for n in "ab":  # --no-progress: no bars, but a line per scan saying where its results are
        assert any(x.startswith("[") and f"{n}.h5: done in " in x and x.endswith(f"→ {out / n}")
                   for x in printed.splitlines()), printed
    assert any("c.h5: failed: " in x and "truncated or corrupt" in x for x in printed.splitlines()), printed
    rows = _rows(out)
    for n in ("a", "b"):
        assert rows[n]["status"] == "done" and rows[n]["scan_rows"] == "3" and rows[n]["scan_cols"] == "4"
        assert float(rows[n]["indexed_percent"]) > 50 and float(rows[n]["patterns_per_s"]) > 0
        assert int(rows[n]["n_grains"]) >= 1 and rows[n]["behaviour_fraction_other_phase"] != ""
        _check_sigma(rows[n], out / n / "results.h5", printed)
        man = json.loads((out / n / "stemgrains_run.json").read_text())
        assert man["complete"] and "results.h5" in man["files"] and (out / n / "summary.json").is_file()
    assert rows["c"]["status"] == "failed" and "truncated or corrupt" in rows["c"]["reason"]
    assert "c.h5" in rows["c"]["reason"] and "\n" not in rows["c"]["reason"]
    mtime = (out / "a" / "results.h5").stat().st_mtime_ns

    t0 = time.perf_counter()
    assert main(["run", str(d / "*.h5"), *RUN, "-o", str(out)]) == 1  # the same inputs as a glob
    again = time.perf_counter() - t0
    rows = _rows(out)
    assert [rows[n]["status"] for n in "abc"] == ["skipped", "skipped", "failed"]
    assert rows["a"]["n_grains"] != "" and (out / "a" / "results.h5").stat().st_mtime_ns == mtime
    assert again < first
    print(f"batch of 3 (run): first {first:.1f} s, again {again:.1f} s")

    # the corrupt input repaired: only it runs
    shutil.copy(scans / "b.h5", d / "c.h5")
    assert main(["run", str(d), *RUN, "-o", str(out)]) == 0
    assert [_rows(out)[n]["status"] for n in "abc"] == ["skipped", "skipped", "done"]
    # a changed parameter: redone (the folder is the batch's: replaced without --overwrite)
    assert main(["run", str(d), *RUN, "--threshold", "3", "-o", str(out)]) == 0
    assert [_rows(out)[n]["status"] for n in "abc"] == ["done", "done", "done"]
    assert (out / "a" / "results.h5").stat().st_mtime_ns != mtime
    # the batch's effective config is in the batch folder and in each input's results (the option's value)
    from stemgrains.settings import load_config

    assert load_config(out / "config.toml")["grains"]["threshold_deg"] == 3.0
    assert load_config(out / "a" / "results.h5")["grains"]["threshold_deg"] == 3.0


def test_cli_index_batch_force_content_and_one_input(scans, tmp_path, capsys):
    d = _inputs(scans, tmp_path)
    (d / "c.h5").unlink()
    out = tmp_path / "out"
    assert main(["index", str(d / "a.h5"), str(d / "b.h5"), *INDEX, "--export-ang", "map.ang", "-o", str(out)]) == 0
    rows = _rows(out)
    assert rows["a"]["status"] == "done" and rows["a"]["n_grains"] == "" and (out / "a" / "map.ang").is_file()
    printed = capsys.readouterr().out
    for n in "ab":
        _check_sigma(rows[n], out / n / "results.h5", printed)
    ref = _orientation(out / "a" / "results.h5")
    # the same content under the other name: b is redone, a skipped; --force redoes a with the same result
    shutil.copy(d / "a.h5", d / "b.h5")
    assert main(["index", str(d), *INDEX, "--export-ang", "map.ang", "-o", str(out)]) == 0
    assert [_rows(out)[n]["status"] for n in "ab"] == ["skipped", "done"]
    assert main(["index", str(d), *INDEX, "--export-ang", "map.ang", "-o", str(out), "--force"]) == 0
    assert [_rows(out)[n]["status"] for n in "ab"] == ["done", "done"]
    for n in "ab":
        got = _orientation(out / n / "results.h5")
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    # one file: exactly as before (a results file, no batch files)
    single = tmp_path / "one.h5"
    assert main(["index", str(d / "a.h5"), *INDEX, "-o", str(single)]) == 0
    assert "indexed 12/12 patterns" in capsys.readouterr().out and single.is_file()
    assert not (tmp_path / B.SUMMARY_CSV).exists()
    # bad command lines: one line, status 2
    assert main(["index", str(d / "nothing*.h5"), str(d / "a.h5"), *INDEX, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing*.h5" in err[0]


def test_cli_index_batch_with_a_config_file(scans, tmp_path):
    """--config applies to every input; the fingerprint is the config sections index reads and the CIFs'
    content: a [grains] change, the CIF moved, or the batch's own config.toml given back skip the inputs; an
    option over the file that changes the effective config redoes them."""
    from stemgrains.settings import load_config

    d = _inputs(scans, tmp_path)
    (d / "c.h5").unlink()
    out = tmp_path / "out"
    cfg = tmp_path / "params.toml"
    cfg.write_text("[index]\nstep_deg = 4.0\nmin_peaks = 3\n[grains]\nthreshold_deg = 3.0\n")
    assert main(["index", str(d), "--phase", AU, "--config", str(cfg), "--no-progress", "-o", str(out)]) == 0
    rec = load_config(out / "config.toml")
    assert rec.keys() == {"calibration", "index", "spots"} and rec["index"]["min_peaks"] == 3
    for n in "ab":
        assert load_config(out / n / "results.h5")["index"] == rec["index"]
    assert json.loads((out / B.PARAMETERS_JSON).read_text())["parameters"]["config"]["index"]["min_peaks"] == 3
    moved = tmp_path / "elsewhere" / "au.cif"
    moved.parent.mkdir()
    shutil.copy(AU, moved)
    cfg.write_text("[index]\nstep_deg = 4.0\nmin_peaks = 3\n[grains]\nthreshold_deg = 9.0\n")
    assert main(["index", str(d), "--phase", str(moved), "--config", str(cfg), "--no-progress", "-o", str(out)]) == 0
    assert [_rows(out)[n]["status"] for n in "ab"] == ["skipped", "skipped"]
    repeat = tmp_path / "repeat.toml"
    shutil.copy(out / "config.toml", repeat)
    assert main(["index", str(d), "--phase", AU, "--config", str(repeat), "--no-progress", "-o", str(out)]) == 0
    assert [_rows(out)[n]["status"] for n in "ab"] == ["skipped", "skipped"]
    # an option over the file changes the effective config: redone
    assert main(["index", str(d), "--phase", AU, "--config", str(repeat), "--n-prefilter", "300", "--no-progress",
                 "-o", str(out)]) == 0
    assert [_rows(out)[n]["status"] for n in "ab"] == ["done", "done"]
    assert load_config(out / "a" / "results.h5")["index"]["n_prefilter"] == 300


@pytest.mark.slow
def test_jobs_give_the_serial_result(scans, tmp_path):
    d = _inputs(scans, tmp_path)
    (d / "c.h5").unlink()
    assert main(["index", str(d), *INDEX, "-o", str(tmp_path / "serial")]) == 0
    assert main(["index", str(d), *INDEX, "-o", str(tmp_path / "pool"), "--jobs", "2"]) == 0
    for n in "ab":
        a, b = _orientation(tmp_path / "serial" / n / "results.h5"), _orientation(tmp_path / "pool" / n / "results.h5")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [r["status"] for r in read_summary(tmp_path / "pool" / B.SUMMARY_CSV)] == ["done", "done"]


def test_scheduler_gives_the_serial_result(scans, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed not installed (extra 'dist')")
    from distributed import LocalCluster

    d = _inputs(scans, tmp_path)
    assert main(["index", str(d), *INDEX, "-o", str(tmp_path / "serial")]) == 1
    assert main(["run", str(d / "a.h5"), *RUN, "-o", str(tmp_path / "run_serial")]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        rc = main(["index", str(d), *INDEX, "-o", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address])
        # one input: `run` sends the indexing's chunks to the cluster
        assert main(["run", str(d / "a.h5"), *RUN, "-o", str(tmp_path / "run_dask"), "--scheduler",
                     cluster.scheduler_address]) == 0
    assert rc == 1
    a, b = _orientation(tmp_path / "run_serial" / "results.h5"), _orientation(tmp_path / "run_dask" / "results.h5")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rows = _rows(tmp_path / "dask")
    assert [rows[n]["status"] for n in "abc"] == ["done", "done", "failed"] and "truncated" in rows["c"]["reason"]
    for n in "ab":
        a, b = _orientation(tmp_path / "serial" / n / "results.h5"), _orientation(tmp_path / "dask" / n / "results.h5")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_every_summary_column_is_in_the_data_dictionary():
    from stemgrains.data_dictionary import BATCH_SUMMARY

    for col in B.SUMMARY_COLUMNS:
        key = ("label_fraction_<label>" if col.startswith("label_fraction_") else
               "behaviour_fraction_<behaviour>" if col.startswith("behaviour_fraction_") else col)
        assert key in BATCH_SUMMARY, col
    assert len(B.SUMMARY_COLUMNS) == 22 + 13 + 5  # 12 labels + other-phase, 4 behaviours + other-phase


#: the batch command in a child process that interrupts itself (SIGINT, as Ctrl-C) right after the second chunk of
#: the input named in argv[1] is checkpointed: where the interrupt lands is the test's choice, not the machine's load
_INTERRUPT_AFTER_TWO_CHUNKS = """
import os, signal, sys
from stemgrains import _chunks
save, seen = _chunks.ChunkCheckpoint.save, []
def interrupting_save(self, r0, r1, arrays):
    save(self, r0, r1, arrays)
    if sys.argv[1] in self.folder.parts:
        seen.append((r0, r1))
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGINT)
_chunks.ChunkCheckpoint.save = interrupting_save
from stemgrains.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_interrupted_batch_resumes(scans, tmp_path):
    """Ctrl-C mid-batch: status 130, the summary has the finished input and the rest pending; the same command
    skips the finished input and completes the interrupted one from its chunks, identical to an uninterrupted run."""
    import subprocess
    import sys

    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(scans / "a.h5", d / "a.h5")
    # three chunks of 8 rows (--chunk-rows is rounded up to whole blocks of 8): interrupted after the second
    simulate_polycrystal(d / "big.h5", phases=[AU], scan_shape=(24, 6), detector_shape=(64, 64), n_grains=3, seed=4,
                         dose=1e4, progress=False)
    out = tmp_path / "out"
    args = ["index", str(d), *INDEX, "--chunk-rows", "1", "-o", str(out)]
    partial = out / "big" / "results.h5.partial"
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_AFTER_TWO_CHUNKS, "big", *args], capture_output=True,
                          timeout=600)
    err = proc.stderr.decode()
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    rows = _rows(out)
    assert rows["a"]["status"] == "done" and rows["big"]["status"] == "pending"
    kept = sorted(p.name for p in partial.glob("rows_*.npz"))
    assert kept == ["rows_000000_000008.npz", "rows_000008_000016.npz"]
    # the same command again: in this process (only the interrupted run needs a process of its own)
    assert main(args) == 0
    rows = _rows(out)
    assert rows["a"]["status"] == "skipped" and rows["big"]["status"] == "done"
    assert main(["index", str(d / "big.h5"), *INDEX, "--chunk-rows", "1", "-o", str(tmp_path / "ref.h5")]) == 0
    a, b = _orientation(tmp_path / "ref.h5"), _orientation(out / "big" / "results.h5")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ------------------------------------------------------------------------------------------------ shared folders
def _single_run_folder(folder: Path, src: Path) -> None:
    """A finished single `run` folder (manifest listing what it wrote) without running the pipeline."""
    from stemgrains.io.outputs import finish_run_folder, prepare_run_folder

    manifest = prepare_run_folder(folder, src)
    for name in ("results.h5", "config.toml", "summary.json", "extra_figure.png"):
        (folder / name).write_text(name)
    finish_run_folder(folder, manifest, [folder / n for n in ("results.h5", "config.toml", "summary.json",
                                                              "extra_figure.png")])


def test_batch_and_single_run_folders_exclude_each_other(tmp_path):
    from stemgrains.io.outputs import REPLACED, RUN_MANIFEST, finish_run_folder, prepare_run_folder

    ins = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in "ab"]
    single = tmp_path / "single"
    _single_run_folder(single, ins[0])
    before = sorted(p.name for p in single.iterdir())
    with pytest.raises(ParameterError, match=f"single run on .*a.npy .*{RUN_MANIFEST}.*--overwrite"):
        run_batch(ins, single, _job_ok, {"k": 1}, progress=False)
    assert sorted(p.name for p in single.iterdir()) == before and (single / "config.toml").read_text() == "config.toml"
    with pytest.raises(ParameterError, match="would delete the input .*summary.json"):  # an input among them: never
        run_batch([single / "summary.json", ins[1]], single, _job_ok, {"k": 1}, progress=False, overwrite=True)
    assert sorted(p.name for p in single.iterdir()) == before
    # --overwrite: the single run's files go first (kept aside until the batch finishes), the batch's come
    seen = []

    def job(src: Path, folder: Path, params: dict) -> dict:
        seen.append(sorted(p.name for p in (single / REPLACED).iterdir()))
        return _job_ok(src, folder, params)

    res = run_batch(ins, single, job, {"k": 1}, progress=False, config_toml="# batch\n", overwrite=True)
    assert seen[0] == sorted(before), seen
    assert res.ok and sorted(p.name for p in single.iterdir()) == sorted(
        ["a", "b", B.SUMMARY_CSV, B.SUMMARY_PNG, B.PARAMETERS_JSON, B.CONFIG_TOML])
    assert (single / B.CONFIG_TOML).read_text() == "# batch\n"

    # the converse: a single run into a batch folder is refused; with overwrite the batch's files and subfolders go
    batch = tmp_path / "batch"
    run_batch(ins, batch, _job_ok, {"k": 1}, progress=False, config_toml="# batch\n")
    _touch(batch / "notes.txt", b"mine")
    before = sorted(p.name for p in batch.iterdir())
    with pytest.raises(ParameterError, match="folder of a batch .*2 input.*--overwrite"):
        prepare_run_folder(batch, ins[1])
    assert sorted(p.name for p in batch.iterdir()) == before
    inside = _touch(batch / "a" / "scan.npy", b"data")
    with pytest.raises(ParameterError, match="would delete the batch subfolder .*holds the input"):
        prepare_run_folder(batch, inside, overwrite=True)
    assert sorted(p.name for p in batch.iterdir()) == before and inside.is_file()
    inside.unlink()
    # files stemgrains did not write in the subfolders (the fake job's out.txt, a user's notes): never deleted
    with pytest.raises(ParameterError, match=r"would delete .*out.txt \(and 1 more\), which stemgrains did not write"):
        prepare_run_folder(batch, ins[1], overwrite=True)
    assert sorted(p.name for p in batch.iterdir()) == before and (batch / "b" / "out.txt").is_file()
    for n in "ab":  # as a real job's output
        (batch / n / "out.txt").rename(batch / n / "results.h5")
    m = prepare_run_folder(batch, ins[1], overwrite=True)  # the batch's files kept aside until the run finishes
    assert sorted(p.name for p in batch.iterdir()) == [REPLACED, "notes.txt", RUN_MANIFEST]
    assert sorted(p.name for p in (batch / REPLACED).iterdir()) == sorted(
        ["a", "b", B.SUMMARY_CSV, B.SUMMARY_PNG, B.PARAMETERS_JSON, B.CONFIG_TOML])
    finish_run_folder(batch, m, [])
    assert sorted(p.name for p in batch.iterdir()) == ["notes.txt", RUN_MANIFEST]


def test_cli_refuses_mixing_a_batch_and_a_single_run(scans, tmp_path, capsys):
    """Exit status 2 and one line, nothing written, before any work (no input is indexed)."""
    single, batch = tmp_path / "single", tmp_path / "batch"
    _single_run_folder(single, scans / "a.h5")
    run_batch([scans / "a.h5", scans / "b.h5"], batch, _job_ok_h5, {"k": 1}, progress=False)
    before = {p: p.stat().st_mtime_ns for p in single.rglob("*")}
    capsys.readouterr()
    assert main(["run", str(scans / "a.h5"), str(scans / "b.h5"), *RUN, "-o", str(single)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(single) in err[0] and "--overwrite" in err[0], err
    assert {p: p.stat().st_mtime_ns for p in single.rglob("*")} == before
    assert main(["index", str(scans / "a.h5"), str(scans / "b.h5"), *INDEX, "-o", str(single)]) == 2
    assert "single run" in capsys.readouterr().err
    # one input into a batch's folder is that batch with one input (its subfolder; the others untouched)
    a_before = {p: p.stat().st_mtime_ns for p in (batch / "a").rglob("*")}
    assert main(["run", str(scans / "b.h5"), *RUN, "-o", str(batch)]) == 0
    assert _rows(batch)["b"]["status"] == "done" and (batch / "b" / "results.h5").is_file()
    assert {p: p.stat().st_mtime_ns for p in (batch / "a").rglob("*")} == a_before


def _job_ok_h5(src: Path, folder: Path, params: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.txt").write_text(f"{src}{params['k']}")
    return {"scan_shape": [3, 4]}


def test_batches_of_other_inputs_share_a_folder(tmp_path):
    """A second batch of other inputs keeps the first's rows and subfolders; a subfolder holding another input's
    results (same name, other path and content) is never replaced, not even with force."""
    first = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in "ab"]
    out = tmp_path / "out"
    run_batch(first, out, _job_ok, {"k": 1}, progress=False)
    res = run_batch([_touch(tmp_path / "in" / "c.npy", b"c")], out, _job_ok, {"k": 2}, progress=False)
    assert [r["output"] for r in res.rows] == [str(out / "c")] and res.ok
    rows = _rows(out)
    assert [rows[n]["status"] for n in "abc"] == ["done", "done", "done"]
    assert rows["a"]["indexed_percent"] == "50" and rows["a"]["scan_rows"] == "2"
    rec = json.loads((out / B.PARAMETERS_JSON).read_text())
    assert sorted(rec["outputs"]) == ["a", "b", "c"] and rec["parameters"]["k"] == 2
    assert (out / "a" / "out.txt").read_text() == "a1"
    # the first batch again: its inputs are skipped, c's row stays
    res = run_batch(first, out, _job_ok, {"k": 1}, progress=False)
    assert [r["status"] for r in res.rows] == ["skipped", "skipped"] and len(read_summary(out / B.SUMMARY_CSV)) == 3
    # another input under the name b: the first free name (b_2); b's results kept
    other = _touch(tmp_path / "in2" / "b.npy", b"other b")
    res = run_batch([other, _touch(tmp_path / "in2" / "d.npy", b"d")], out, _job_ok, {"k": 1}, progress=False)
    assert [r["status"] for r in res.rows] == ["done", "done"] and res.rows[0]["output"] == str(out / "b_2")
    assert (out / "b" / "out.txt").read_text() == "b1" and (out / "b_2" / "out.txt").read_text() == "other b1"
    # a folder holding another input that no record lists (moved there by hand) fails, even with force, naming
    # the folder and the input it holds
    shutil.copytree(out / "b", out / "e")
    for force in (False, True):
        res = run_batch([_touch(tmp_path / "in2" / "e.npy", b"e")], out, _job_ok, {"k": 1}, progress=False,
                        force=force)
        assert [r["status"] for r in res.rows] == ["failed"]
        assert str(out / "e") in res.rows[0]["reason"] and str(first[1].resolve()) in res.rows[0]["reason"]
        assert (out / "e" / "out.txt").read_text() == "b1"
    statuses = sorted((r["input"], r["status"]) for r in read_summary(out / B.SUMMARY_CSV))
    assert statuses == sorted([(str(first[0]), "skipped"), (str(first[1]), "skipped"), (str(tmp_path / "in" / "c.npy"), "done"),
                               (str(other), "done"), (str(tmp_path / "in2" / "d.npy"), "done"),
                               (str(tmp_path / "in2" / "e.npy"), "failed")])
    # the same content moved elsewhere is the same input (skipped, not refused)
    moved = _touch(tmp_path / "moved" / "a.npy", b"a")
    assert [r["status"] for r in run_batch([moved], out, _job_ok, {"k": 1}, progress=False).rows] == ["skipped"]


def test_one_input_into_a_batch_folder_is_a_batch(scans, tmp_path, capsys):
    """`index A -o BATCH` (and run) into the folder of a batch is that batch with one input: skipped when done,
    redone with --force in its subfolder (not refused, nor the whole batch replaced)."""
    from stemgrains.commands._batch import is_batch

    d = _inputs(scans, tmp_path)
    a, b = d / "a.h5", d / "b.h5"
    out = tmp_path / "maps"
    argv = [*INDEX, "-o", str(out)]
    assert main(["index", str(a), str(b), *argv]) == 0
    assert is_batch([str(a)], str(out)) and not is_batch([str(a)], str(tmp_path / "m.h5"))
    capsys.readouterr()
    assert main(["index", str(a), *argv]) == 0
    assert "[1/1]" in capsys.readouterr().out and _rows(out)["a"]["status"] == "skipped"
    assert main(["index", str(a), *argv, "--force"]) == 0
    assert _rows(out)["a"]["status"] == "done" and (out / "b" / "results.h5").is_file()


def test_results_gone_or_edited_are_redone_and_changes_said(tmp_path):
    """A done input is skipped only while its folder holds what the job wrote (sizes recorded in the marker); a
    changed input, a failed one and a moved one are said and recorded."""
    import io

    ins = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in "abc"]
    out = tmp_path / "out"
    run_batch(ins, out, _job_ok, {"k": 1}, progress=False)
    assert json.loads((out / "a" / B.DONE_MARKER).read_text())["files"] == {"out.txt": [2]}
    (out / "a" / "out.txt").unlink()
    (out / "b" / "out.txt").write_text("b1 with my notes")
    log = io.StringIO()
    res = run_batch(ins, out, _job_ok, {"k": 1}, progress=False, log=log)
    assert [r["status"] for r in res.rows] == ["done", "done", "skipped"], log.getvalue()
    assert "results changed since they were written (out.txt gone): redone" in log.getvalue()
    assert "(out.txt edited): redone" in log.getvalue() and (out / "a" / "out.txt").read_text() == "a1"
    copies = list((out / "b").glob("out.edited-*.txt"))  # the user's version, kept before the job replaced it
    assert len(copies) == 1 and copies[0].read_text() == "b1 with my notes" and "your version is kept as" in log.getvalue()
    assert (out / "b" / "out.txt").read_text() == "b1"
    lines = log.getvalue().splitlines()  # why it is redone, then its result
    assert lines[0].endswith("(out.txt gone): redone") and lines[1].startswith(f"[1/3] {ins[0]}: done")
    # another content at the same path: said; a failure: the marker says so
    ins[2].write_text("boom")
    log = io.StringIO()
    res = run_batch(ins, out, _job_ok, {"k": 1}, progress=False, log=log)
    assert "its content changed since its results in" in log.getvalue() and res.rows[2]["status"] == "failed"
    assert json.loads((out / "c" / B.DONE_MARKER).read_text())["state"] == "failed"
    # a moved input keeps its folder (and its row), whatever name it would get now
    moved = tmp_path / "elsewhere" / "renamed.npy"
    moved.parent.mkdir()
    ins[0].rename(moved)
    res = run_batch([moved], out, _job_ok, {"k": 1}, progress=False)
    assert [(Path(r["output"]).name, r["status"]) for r in res.rows] == [("a", "skipped")]
    rows = read_summary(out / B.SUMMARY_CSV)
    assert sorted(Path(r["output"]).name for r in rows) == ["a", "b", "c"]
    assert sorted(json.loads((out / B.PARAMETERS_JSON).read_text())["outputs"]) == ["a", "b", "c"]


def test_earlier_inputs_with_other_parameters_are_said(tmp_path):
    import io

    ins = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in "ab"]
    out = tmp_path / "out"
    run_batch(ins[:1], out, _job_ok, {"k": 1}, progress=False)
    log = io.StringIO()
    run_batch(ins[1:], out, _job_ok, {"k": 2}, progress=False, log=log)
    assert "note: 1 earlier input(s) of" in log.getvalue() and "other parameters" in log.getvalue()
    log = io.StringIO()
    run_batch(ins[1:], out, _job_ok, {"k": 2}, progress=False, log=log)  # the record is this batch's now
    assert "note:" not in log.getvalue()
    log = io.StringIO()
    run_batch(ins[1:], out, _job_ok, {"k": 3}, progress=False, log=log)
    assert "b.npy: its results in" in log.getvalue() and "were made with other parameters: they are replaced" in log.getvalue()
    assert all(Path(r["input"]).is_absolute() for r in read_summary(out / B.SUMMARY_CSV))
    # the summary says which rows ran with which parameters (the record holds the newest batch's fingerprint)
    params = {Path(r["output"]).name: r["parameters"] for r in read_summary(out / B.SUMMARY_CSV)}
    assert params["b"] == json.loads((out / B.PARAMETERS_JSON).read_text())["fingerprint"] == B.params_fingerprint({"k": 3})
    assert params["a"] == B.params_fingerprint({"k": 1}) != params["b"]
    run_batch(ins[1:], out, _job_ok, {"k": 3}, progress=False)  # a skipped input keeps its fingerprint
    assert {Path(r["output"]).name: r["parameters"] for r in read_summary(out / B.SUMMARY_CSV)} == params


def test_a_batch_into_an_h5_name_is_refused(scans, tmp_path, capsys):
    d = _inputs(scans, tmp_path)
    rc = main(["index", str(d / "a.h5"), str(d / "b.h5"), *INDEX, "-o", str(tmp_path / "maps.h5")])
    err = capsys.readouterr().err
    assert rc == 2 and "several inputs write a folder" in err and not (tmp_path / "maps.h5").exists()


def _job_warns(src: Path, folder: Path, params: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.txt").write_text("x")
    return {"scan_shape": [1, 1], "warnings": ["note: scan step 1 nm is the default"]}


def test_a_skipped_input_repeats_its_warnings(tmp_path):
    import io

    ins = [_touch(tmp_path / "in" / "a.npy", b"a")]
    run_batch(ins, tmp_path / "out", _job_warns, {"k": 1}, progress=False)
    log = io.StringIO()
    res = run_batch(ins, tmp_path / "out", _job_warns, {"k": 1}, progress=False, log=log)
    assert res.rows[0]["status"] == "skipped"
    assert "skipped (done before, same content and parameters)\n    note: scan step 1 nm is the default" in log.getvalue()
    assert "1 with a calibration note (the lines under their results above" in format_result(res)


def test_lines_come_in_input_order(tmp_path):
    """A serial batch prints the line of an input skipped before running in its place, not before the others."""
    import io

    ins = [_touch(tmp_path / "in" / f"{n}.npy", n.encode()) for n in "abc"]
    out = tmp_path / "out"
    run_batch(ins[1:2], out, _job_ok, {"k": 1}, progress=False)
    log = io.StringIO()
    res = run_batch(ins, out, _job_ok, {"k": 1}, progress=False, log=log)
    assert [r["status"] for r in res.rows] == ["done", "skipped", "done"]
    heads = [line.split(" ", 1)[0] for line in log.getvalue().splitlines() if line.startswith("[")]
    assert heads == ["[1/3]", "[2/3]", "[3/3]"], log.getvalue()


def test_an_input_keeps_its_folder_whatever_the_other_inputs(tmp_path):
    """plan_outputs names depend on the batch's other inputs (a1.h5 beside a1.npy is a1_h5); a later batch with
    more or fewer inputs finds an input in the folder it got first (skipped, not redone into a new folder)."""
    h5, npy = _touch(tmp_path / "in" / "a1.h5", b"h"), _touch(tmp_path / "in" / "a1.npy", b"n")
    out = tmp_path / "out"
    res = run_batch([h5, npy], out, _job_ok, {"k": 1}, progress=False)
    assert [Path(r["output"]).name for r in res.rows] == ["a1_h5", "a1_npy"]
    res = run_batch([h5], out, _job_ok, {"k": 1}, progress=False)
    assert [(Path(r["output"]).name, r["status"]) for r in res.rows] == [("a1_h5", "skipped")]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a1_h5", "a1_npy"]
    # the other way round: first alone (a1), then beside its namesake
    out2 = tmp_path / "out2"
    run_batch([npy], out2, _job_ok, {"k": 1}, progress=False)
    res = run_batch([h5, npy], out2, _job_ok, {"k": 1}, progress=False)
    assert [(Path(r["output"]).name, r["status"]) for r in res.rows] == [("a1_h5", "done"), ("a1", "skipped")]
    # a new input whose planned name is an earlier input's folder gets the first free name
    out3 = tmp_path / "out3"
    run_batch([h5], out3, _job_ok, {"k": 1}, progress=False)  # a1
    res = run_batch([_touch(tmp_path / "other" / "a1.h5", b"o")], out3, _job_ok, {"k": 1}, progress=False)
    assert [(Path(r["output"]).name, r["status"]) for r in res.rows] == [("a1_2", "done")]
    assert (out3 / "a1" / "out.txt").read_text() == "h1"
    assert B.keep_earlier_folders(tmp_path / "none", [h5], [tmp_path / "none" / "x"]) == [tmp_path / "none" / "x"]


@pytest.mark.parametrize("command, bad, named", [
    ("run", ["--phase", "nope.cif"], "nope.cif"),
    ("run", ["--phase", "NOT_A_CIF"], "a.h5"),
    ("run", ["--field", "0,0"], "field"),
    ("run", ["--calibration", "nope.json"], "nope.json"),
    ("run", ["--electrode", "left=1", "--electrode", "right=1"], "potential"),
    ("index", ["--phase", "nope.cif"], "nope.cif"),
    ("index", ["--calibration", "nope.json"], "nope.json"),
])
def test_cli_batch_checks_the_command_line_up_front(tmp_path, capsys, command, bad, named):
    """One line naming the file or parameter, exit status 2, nothing created — as with one input (the inputs are
    never opened)."""
    d = tmp_path / "in"
    for n in "ab":
        _touch(d / f"{n}.h5", b"not read")
    bad = [str(d / "a.h5") if b == "NOT_A_CIF" else b for b in bad]
    argv = [command, str(d), *(RUN if command == "run" else INDEX), *bad, "-o", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    print(err)
    assert len(err) == 1 and named in err[0] and not (tmp_path / "out").exists(), err


def test_fingerprint_takes_named_files_by_content(tmp_path):
    """Byte-identical copies of the calibration JSON and of an electrode mask give the same fingerprint; other
    content another one; the jobs still get the paths."""
    from stemgrains.commands._batch import batch_params
    from stemgrains.settings import default_config

    cal = {n: tmp_path / f"cal{n}.json" for n in (2, 3, 4)}
    for n, text in ((2, '{"q_pixel_size": 0.02}'), (3, '{"q_pixel_size": 0.02}'), (4, '{"q_pixel_size": 0.03}')):
        cal[n].write_text(text)
    masks = {n: tmp_path / f"m{n}.npy" for n in (1, 2, 3)}
    for n, v in ((1, 0), (2, 0), (3, 1)):
        m = np.zeros((3, 4), bool)
        m[:, v] = True
        np.save(masks[n], m)

    def fp(c, m):
        cfg = default_config()
        cfg["calibration"]["file"] = str(cal[c])
        cfg["classify"]["field"] = [1.0, 0.0]
        cfg["transport"]["electrodes"] = {str(masks[m]): 1.0, "right": 0.0}
        p = batch_params([AU], cfg, "run")
        assert p["_config"]["calibration"]["file"] == str(cal[c])  # what the jobs run with
        return B.params_fingerprint(p)

    assert fp(2, 1) == fp(3, 1) == fp(3, 2)
    assert fp(4, 1) != fp(2, 1) and fp(2, 3) != fp(2, 1)


def test_a_batch_of_another_command_is_refused(scans, tmp_path, capsys):
    """An `index` batch into a `run` batch's folder would replace each input's full results by an orientation map."""
    out = tmp_path / "runbatch"
    out.mkdir()
    (out / "batch_parameters.json").write_text(json.dumps({"parameters": {"command": "run"}, "inputs": [],
                                                           "outputs": []}))
    rc = main(["index", str(scans / "a.h5"), str(scans / "b.h5"), *INDEX, "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "is the batch folder of `stemgrains run`" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["batch_parameters.json"]


def test_summary_row_carries_the_uncertain_c_axis_share():
    """run's share of boundary length resting on an uncertain c axis becomes c_axis_uncertain_percent (empty when
    nothing was judged, e.g. a cubic phase)."""
    assert B._row_from({"c_axis_uncertain_fraction": 0.25})["c_axis_uncertain_percent"] == 25.0
    assert "c_axis_uncertain_percent" not in B._row_from({"c_axis_uncertain_fraction": None})


@pytest.mark.parametrize("cmd", ["index", "run"])
def test_a_subfolder_without_its_marker_is_redone_not_refused(scans, tmp_path, capsys, cmd):
    """Deleting an input's batch_done.json made the next batch refuse the subfolder as foreign ('holds files this
    batch did not write'), though its results were this input's. Now a run folder whose manifest records this content
    and these parameters, complete and unchanged, is skipped (it was computed again in full), and other such folders
    are redone with a line saying why; a folder of someone else's files is still refused."""
    d = tmp_path / "in"
    d.mkdir()
    for n in "ab":
        shutil.copy(scans / f"{n}.h5", d / f"{n}.h5")
    out = tmp_path / "out"
    args = [cmd, str(d), *(INDEX if cmd == "index" else RUN), "-o", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    (out / "a" / B.DONE_MARKER).unlink()
    before = _rows(out)["a"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = _rows(out)
    if cmd == "run":  # its run manifest records this content and these parameters, complete: not computed again
        assert any(f"{d / 'a.h5'}: skipped ({out / 'a'} lost its {B.DONE_MARKER}, but its run manifest" in x
                   for x in lines), lines
        assert rows["a"]["status"] == "skipped" and rows["a"]["n_grains"] == before["n_grains"]
        assert rows["a"]["indexed_percent"] == before["indexed_percent"]
        assert json.loads((out / "a" / B.DONE_MARKER).read_text())["state"] == "done"
        # a results file changed since: nothing vouches for the folder, it is redone
        (out / "a" / B.DONE_MARKER).unlink()
        with open(out / "a" / "boundaries.csv", "a") as f:
            f.write("\n")
        assert main(args) == 0
        lines = capsys.readouterr().out.splitlines()
        rows = _rows(out)
    assert any(f"{d / 'a.h5'}: {out / 'a'} holds its results but no {B.DONE_MARKER}" in x and x.endswith("redone")
               for x in lines), lines
    assert rows["a"]["status"] == "done" and rows["b"]["status"] == "skipped"
    assert json.loads((out / "a" / B.DONE_MARKER).read_text())["state"] == "done"
    # someone else's files in the subfolder of an input: still refused
    shutil.rmtree(out / "b")
    (out / "b").mkdir()
    (out / "b" / "notes.txt").write_text("mine")
    assert main(args) == 1
    assert "holds files this batch did not write" in _rows(out)["b"]["reason"]
    assert (out / "b" / "notes.txt").read_text() == "mine"


def _job_fast_or_slow(src: Path, folder: Path, params: dict) -> dict:
    """A job for the process pool: done at once, or (an input whose text is "slow") busy for a minute."""
    folder.mkdir(parents=True, exist_ok=True)
    if src.read_text() == "slow":
        time.sleep(60)
    (folder / "out.txt").write_text(src.read_text())
    return {"scan_shape": [1, 1]}


def test_ctrl_c_stops_a_pool_batch_at_once(tmp_path, capfd):
    """Ctrl-C during `--jobs 2` used to wait for the running jobs (a whole job's time), let the workers start the
    queued ones, and leave those that finished meanwhile as 'pending'. Now the workers are ended at once, what
    finished is recorded as done, and no worker outlives the batch."""
    import multiprocessing
    import signal
    import threading

    ins = [_touch(tmp_path / "in" / f"{n}.txt", text.encode()) for n, text in (("a", "fast"), ("b", "slow"),
                                                                               ("c", "slow"), ("d", "slow"))]
    out = tmp_path / "out"
    timer = threading.Timer(10, lambda: os.kill(os.getpid(), signal.SIGINT))  # after the workers started (spawn)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch(ins, out, _job_fast_or_slow, {"k": 1}, jobs=2, progress=False)
    finally:
        timer.cancel()
    assert time.perf_counter() - t0 < 50  # not the 60 s of the running slow job
    assert multiprocessing.active_children() == []
    rows = _rows(out)
    assert rows["a"]["status"] == "done" and (out / "a" / "out.txt").read_text() == "fast"
    assert [rows[n]["status"] for n in "bcd"] == ["pending"] * 3 and not (out / "c" / "out.txt").exists()
    assert "leaked semaphore" not in capfd.readouterr().err


def test_temporaries_of_an_ended_worker_are_removed_on_the_rerun(tmp_path):
    """A worker ended while writing (Ctrl-C in a --jobs batch) leaves its atomic-write temporary files
    (.phase_fit.XXXXXXXX.png); the rerun of that input removes them, and nothing else."""
    ins = [_touch(tmp_path / "in" / "a.npy", b"a")]
    out = tmp_path / "out"
    run_batch(ins, out, _job_ok, {"k": 1}, progress=False)
    marker = json.loads((out / "a" / B.DONE_MARKER).read_text())
    (out / "a" / B.DONE_MARKER).write_text(json.dumps(dict(marker, state="started")))  # interrupted
    stale = [_touch(out / "a" / n, b"half") for n in (".phase_fit.a04dyy_t.png", ".results.h5.k2j4_9zq.tmp")]
    mine = _touch(out / "a" / ".notes.txt", b"mine")
    res = run_batch(ins, out, _job_ok, {"k": 1}, progress=False)
    assert res.rows[0]["status"] == "done" and not any(p.exists() for p in stale) and mine.read_bytes() == b"mine"


def test_a_failure_that_names_its_input_relatively_is_not_named_twice(tmp_path, monkeypatch):
    """'failed: /abs/bad.h5: bad.h5: q_pixel_size 5 ...': the reason named the input as given (relative)."""
    from stemgrains.batch import _names_input

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.h5").write_bytes(b"")
    assert _names_input("bad.h5: q_pixel_size 5: expected ...", tmp_path / "bad.h5")
    assert _names_input(f"{tmp_path / 'bad.h5'}: truncated", tmp_path / "bad.h5")
    assert not _names_input("other.h5: truncated", tmp_path / "bad.h5")
    assert not _names_input("expected a value: got 3", tmp_path / "bad.h5")
