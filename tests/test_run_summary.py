"""What `stemgrains run` (and :func:`stemgrains.pipeline.run_pipeline`) reports first: the misorientation and CSL
character every map has; the conduction-plane classes only where a conducting phase is in the map (issue: a cubic
Au run led with twelve Type I/II/III classes, all 0)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.boundaries import extract_boundaries
from stemgrains.cli import main
from stemgrains.grains import segment_grains
from stemgrains.simulate import sample_cif


def test_cubic_run_leads_with_misorientation_and_says_the_classification_does_not_apply(au_scan_3x3, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", str(au_scan_3x3), "--phase", str(sample_cif("au")), "--field", "1,0", "--no-progress",
                 "--no-figures", "--min-size", "1", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    mis = [i for i, ln in enumerate(lines) if ln.startswith("  misorientation: median ")]
    note = [i for i, ln in enumerate(lines) if "conduction-plane classification does not apply" in ln]
    assert len(mis) == 1 and len(note) == 1 and mis[0] < note[0], lines
    assert "no conducting phase (with Na+ conduction planes) among au (cubic)" in lines[note[0]]
    summary = json.loads((out / "summary.json").read_text())
    keys = list(summary)
    assert keys.index("misorientation") < keys.index("classification")
    m, c = summary["misorientation"], summary["classification"]
    assert 0 < m["median_deg"] <= 62.8 and m["low_angle_deg"] == 15.0 and 0 <= m["low_angle_length_fraction"] <= 1
    assert list(c)[:3] == ["applies", "conducting_phases", "note"] and c["applies"] is False
    assert c["label_fraction"]["other-phase"] == pytest.approx(1.0)  # the same keys as for a conducting map


def test_misorientation_summary_is_length_weighted():
    """Three stripes of a cubic phase, A | B | C: A-B a Σ3 (60° about [111]), B-C a 10° low-angle boundary."""
    ny, nx = 6, 9
    a = Rotation.from_axes_angles([0, 0, 1], 0.0)
    b = a * Rotation.from_axes_angles([1, 1, 1], np.pi / 3)
    c = b * Rotation.from_axes_angles([0, 0, 1], np.radians(10))
    q = np.tile(a.data, (ny, nx, 1))
    q[:, 3:6] = b.data
    q[:, 6:] = c.data
    rr, cc = np.divmod(np.arange(ny * nx), nx)
    xmap = CrystalMap(rotations=Rotation(q.reshape(-1, 4)), phase_id=np.zeros(ny * nx, int), x=cc * 2.0, y=rr * 2.0,
                      phase_list=PhaseList(phases=[Phase(name="Ni", point_group="m-3m")], ids=[0]), scan_unit="nm")
    gm = segment_grains(xmap, min_grain_size=1)
    bt = extract_boundaries(gm, xmap)
    m = bt.misorientation_summary()
    b = bt.boundaries
    length = np.asarray(b["length_nm"])
    total = length.sum()
    sigma = np.asarray(b["csl_sigma"])
    assert m["csl_length_fraction"]["3"] == pytest.approx(length[sigma == 3].sum() / total)
    assert m["low_angle_length_fraction"] == pytest.approx(length[np.asarray(b["low_angle"])].sum() / total)
    assert 0 < m["csl_length_fraction"]["3"] < 1 and 0 < m["low_angle_length_fraction"] < 1
    assert m["median_deg"] == pytest.approx(np.median(np.asarray(b["misorientation_deg"])))


def test_run_counts_the_pixels_its_cuts_leave_out(au_scan_3x3, tmp_path, capsys):
    """`run` says (as `segment` does) how many pixels are invalid (not indexed, or below a cut) and how many are
    in no grain, and summary.json records it, with or without a cut."""
    base = ["run", str(au_scan_3x3), "--phase", str(sample_cif("au")), "--field", "1,0", "--no-progress", "--no-figures",
            "--min-size", "1"]
    assert main([*base, "--min-reliability", "0", "--reliability-prop", "grain_reliability", "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    inv = json.loads((tmp_path / "a" / "summary.json").read_text())["invalid_pixels"]
    assert inv["n_pixels"] == 9 and inv["cuts"] == ["grain_reliability < 0"] and 0 <= inv["n_unassigned"] <= 9
    assert f"  {inv['n_invalid']} of 9 pixels invalid (not indexed, or grain_reliability < 0); {inv['n_unassigned']} in no grain" in out
    assert main([*base, "-o", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    inv = json.loads((tmp_path / "b" / "summary.json").read_text())["invalid_pixels"]
    assert inv["cuts"] == [] and inv["min_grain_size"] == 1
    assert f"  {inv['n_invalid']} of 9 pixels invalid (not indexed); {inv['n_unassigned']} in no grain (invalid, or in grains of fewer than 1 px)" in out


@pytest.mark.parametrize("given, note", [
    ([], "note: accelerating voltage 300 kV and scan step 1 nm are defaults: the input does not state them (give "
         "--voltage, --scan-step if the experiment differs"),
    (["--voltage", "200"], "note: scan step 1 nm is a default: the input does not state it (give --scan-step"),
    (["--voltage", "200", "--scan-step", "2"], None),
])
def test_calibration_defaults_are_said_and_recorded(tmp_path, capsys, given, note):
    """A .npy states no calibration: the voltage and scan step a run falls back on are named in one note on stderr
    (not where the user gave them) and recorded with their origin in summary.json."""
    data = tmp_path / "scan.npy"
    np.save(data, np.random.default_rng(0).poisson(1.0, (3, 3, 32, 32)).astype(np.uint16))
    out = tmp_path / "r"
    assert main(["run", str(data), "--phase", "au", "--q-pixel-size", "0.05", "--step", "4", *given, "-o", str(out),
                 "--no-progress", "--no-figures"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert (notes == []) if note is None else (len(notes) == 1 and notes[0].startswith(note)), err
    cal = json.loads((out / "summary.json").read_text())["calibration"]
    assert cal["q_pixel_size"] == 0.05 and cal["origin"]["q_pixel_size"] == "command line"
    assert cal["origin"]["accelerating_voltage_kV"] == ("command line" if given else "default")
    assert cal["scan_step_nm"] == (2.0 if len(given) == 4 else 1.0)


def test_a_failed_phase_fit_is_said_with_the_classification(tmp_path, capsys):
    """Au patterns indexed with the Na-β″ CIF: the phase-fit check fails, and the classification that follows says
    so where it is reported (summary.json classification.warning, the line before the label fractions); a right
    phase gets no such warning (test_phase_fit's data_samples run)."""
    from stemgrains.pipeline import PHASE_FIT_FAILED
    from stemgrains.simulate import simulate_polycrystal

    src = tmp_path / "au6.h5"
    simulate_polycrystal(src, phases=[str(sample_cif("au"))], scan_shape=(6, 6), detector_shape=(64, 64), n_grains=2,
                         seed=7, dose=1e4, progress=False)
    out = tmp_path / "r"
    assert main(["run", str(src), "--phase", "na_beta2_alumina", "--field", "1,0", "--step", "4", "--min-size", "1",
                 "-o", str(out), "--no-progress", "--no-figures"]) == 0
    printed = capsys.readouterr().out.splitlines()
    s = json.loads((out / "summary.json").read_text())
    assert s["phase_fit"]["ok"] is False and s["classification"]["applies"] is True
    assert s["classification"]["warning"] == PHASE_FIT_FAILED
    at = printed.index(f"  {PHASE_FIT_FAILED}:")
    assert printed[at + 1].startswith("  conduction-plane classification: ")


@pytest.mark.parametrize("command", ["index", "run"])
def test_a_batch_says_each_inputs_calibration_note_and_warnings(tmp_path, capsys, command):
    """In a batch the note on defaulted calibration values and the warnings (no pattern indexed, phase fit) of
    each input are printed under that input's line, as one input's `index`/`run` prints them."""
    from stemgrains.pipeline import NO_PATTERN_INDEXED

    rng = np.random.default_rng(3)
    for name in ("a", "b"):  # noise: nothing to index, and no voltage or scan step stated
        np.save(tmp_path / f"{name}.npy", rng.poisson(1.0, (3, 3, 32, 32)).astype(np.uint16))
    out = tmp_path / "batch"
    assert main([command, str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--phase", "au", "--q-pixel-size", "0.05",
                 "--step", "4", *(["--min-size", "1", "--no-figures"] if command == "run" else []), "-o", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    for name in ("a", "b"):
        at = next(i for i, line in enumerate(printed) if f"{name}.npy: done" in line)
        under = printed[at + 1:at + 3]
        assert under[0].startswith("    note: accelerating voltage 300 kV and scan step 1 nm are defaults"), printed
        assert under[1] == f"    {NO_PATTERN_INDEXED}", printed
    # counted in the batch's last lines, and kept in the summary CSV
    assert ("  of the scans: 2 with warnings, 2 with a calibration note (the lines under their results above; column "
            "warnings of batch_summary.csv, ! in batch_summary.png)") in printed
    import csv

    with open(out / "batch_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(NO_PATTERN_INDEXED in r["warnings"] and r["warnings"].startswith("note: ") for r in rows)


@pytest.mark.parametrize("command", ["index", "run"])
def test_the_calibration_record_says_where_each_given_value_came_from(tmp_path, capsys, command):
    """summary.json (run) and the results file's provenance (index) tell a value given on the command line from
    one of a --config file's [calibration] and one of a --calibration JSON, instead of "override" for all three."""
    import h5py

    data = tmp_path / "scan.npy"
    np.save(data, np.random.default_rng(0).poisson(1.0, (3, 3, 32, 32)).astype(np.uint16))
    (tmp_path / "cal.json").write_text(json.dumps({"q_pixel_size": 0.05}))
    (tmp_path / "p.toml").write_text("[calibration]\naccelerating_voltage_kV = 200.0\n")
    out = tmp_path / ("r" if command == "run" else "m.h5")
    extra = ["--min-size", "1", "--no-figures"] if command == "run" else []
    assert main([command, str(data), "--phase", "au", "--calibration", str(tmp_path / "cal.json"), "--config",
                 str(tmp_path / "p.toml"), "--scan-step", "2", "--step", "4", *extra, "-o", str(out),
                 "--no-progress"]) == 0
    if command == "run":
        origin = json.loads((out / "summary.json").read_text())["calibration"]["origin"]
    else:
        with h5py.File(out) as f:
            origin = json.loads(f["calibration"].attrs["origin"])
        capsys.readouterr()
        assert main(["info", str(out)]) == 0  # info shows what the map was indexed with, and where each came from
        assert ("calibration: indexed with q pixel size 0.05 1/Å [calibration file "
                f"{tmp_path / 'cal.json'}], 200 kV [config], scan step 2 nm [command line], centre found per pattern "
                "[default]") in capsys.readouterr().out  # the centre (and a flip, an affine) were left out
    assert origin["q_pixel_size"] == f"calibration file {tmp_path / 'cal.json'}"
    assert origin["accelerating_voltage_kV"] == "config" and origin["scan_step_nm"] == "command line"
    assert origin["q_rotation_deg"] == "default"
    if command == "run":  # the values too, not only their origins
        cal = json.loads((out / "summary.json").read_text())["calibration"]
        assert cal["q_rotation_deg"] == 0.0 and cal["q_flip"] is False and cal["ellipticity"] is None
        assert cal["affine"] is None and (cal["center"] is None or len(cal["center"]) == 2)


def test_a_map_with_nothing_reliable_is_warned_about(tmp_path, capsys):
    """Noise indexes a few patterns at reliability ~0 (too few patterns for the phase-fit check's counts): `index`
    warns that nothing is reliable, and input_warnings says it only where patterns were indexed."""
    import h5py

    from stemgrains.pipeline import NO_PATTERN_INDEXED, NONE_RELIABLE, input_warnings

    data = tmp_path / "noise.npy"
    np.save(data, np.random.default_rng(1).poisson(3.0, (6, 6, 64, 64)).astype(np.uint16))
    out = tmp_path / "m.h5"
    assert main(["index", str(data), "--phase", "au", "--q-pixel-size", "0.03", "--step", "4", "-o", str(out),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    with h5py.File(out) as f:
        indexed = (f["orientation/phase_id"][()] >= 0).sum()
        rel = f["orientation/reliability"][()]
    assert indexed > 0 and (rel < 5).all()  # the case (noise: a few spurious solutions, none reliable)
    assert NONE_RELIABLE in err
    assert input_warnings({}, 0.5, [], 0.0) == [NONE_RELIABLE]
    assert input_warnings({}, 0.0, [], 0.0) == [NO_PATTERN_INDEXED] and input_warnings({}, 0.5, [], 0.01) == []


def test_a_blank_scan_says_its_relrod_width_was_not_chosen_from_the_data(tmp_path, capsys):
    """With no subsample pattern indexed reliably under any candidate width nothing was chosen: the record and
    the printed line say the default was kept."""
    import h5py

    from stemgrains.index.api import NO_SIGMA_EVIDENCE

    data = tmp_path / "blank.npy"
    np.save(data, np.zeros((8, 8, 64, 64), np.uint16))
    out = tmp_path / "m.h5"
    assert main(["index", str(data), "--phase", "au", "--q-pixel-size", "0.03", "--step", "4", "-o", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    with h5py.File(out) as f:
        params = json.loads(f["parameters"].attrs["index"])
    assert params["excitation_error_sigma_source"] == NO_SIGMA_EVIDENCE
    assert f"({NO_SIGMA_EVIDENCE}: R ≥ 5 on 0.015: 0 %, 0.01: 0 % of a subsample" in printed


def test_the_figures_of_an_empty_map_say_why_they_are_empty(tmp_path):
    """A blank scan: phase_fit.png and boundary_behaviour.png say that nothing was indexed instead of showing
    empty panels."""
    from stemgrains.io import load_orientation_map
    from stemgrains.plot.orientation import plot_phase_fit

    data = tmp_path / "blank.npy"
    np.save(data, np.zeros((6, 6, 64, 64), np.uint16))
    out = tmp_path / "r"
    assert main(["run", str(data), "--phase", "au", "--q-pixel-size", "0.03", "-o", str(out), "--no-progress"]) == 0
    assert (out / "boundary_behaviour.png").is_file() and (out / "phase_fit.png").is_file()
    fig = plot_phase_fit(load_orientation_map(out / "results.h5"))
    assert any(t.get_text().startswith("no pattern was indexed") for t in fig.axes[1].texts)
    from stemgrains.boundaries import read_boundaries, read_classification
    from stemgrains.grains import read_grains
    from stemgrains.plot.classification import plot_boundary_behaviour

    res = out / "results.h5"
    fig = plot_boundary_behaviour(read_grains(res), read_boundaries(res), read_classification(res))
    assert any(t.get_text().startswith("no grain: no pixel was indexed") for t in fig.axes[0].texts)


def test_few_reliable_patterns_with_an_unfitted_calibration_suggest_a_fit():
    """A scan with a distorted detector (ellipticity 1.05, pixel size 4.6 % off, not stated) indexed 44.6 %
    reliable and said nothing; --auto-calibrate gave 89.4 %."""
    from stemgrains.commands.index import low_reliable_hint

    stated = {"origin": {"q_pixel_size": "file", "ellipticity": "default"}}
    hint = low_reliable_hint({"reliable_fraction": 0.446, "grain_reliable_fraction": 0.45}, stated)
    assert hint.startswith("few reliable patterns (45 %): a detector calibration a few % off") and "--auto-calibrate" in hint
    assert low_reliable_hint({"reliable_fraction": 0.446, "grain_reliable_fraction": 0.9}, stated) == ""  # enough
    fitted = {"origin": {"q_pixel_size": "fitted (rings+orientations)", "ellipticity": "fitted (rings)"}}
    assert low_reliable_hint({"reliable_fraction": 0.3}, fitted) == ""  # a fit was made: it does not help
    assert low_reliable_hint({"reliable_fraction": 0.3}, {"origin": {"q_pixel_size": "calibration file c.json"}}) == ""
    assert low_reliable_hint({"reliable_fraction": 0.3}, stated, tried_fit=True) == ""  # --auto-calibrate kept it


def test_index_computes_the_reliable_fractions_once(au_scan_3x3, tmp_path, capsys, monkeypatch):
    """`index` computed pipeline.reliable_fractions three times for one map (the printed line, the hint and the
    warnings); once is enough, and what it prints is the same."""
    import stemgrains.pipeline as pipeline

    calls = []
    real = pipeline.reliable_fractions

    def counted(xmap):
        calls.append(1)
        return real(xmap)

    monkeypatch.setattr(pipeline, "reliable_fractions", counted)
    assert main(["index", str(au_scan_3x3), "--phase", "au", "--step", "3", "--no-progress",
                 "-o", str(tmp_path / "m.h5")]) == 0
    assert len(calls) == 1
    assert "reliability ≥ 5: " in capsys.readouterr().out
