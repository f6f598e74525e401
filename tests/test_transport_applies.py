"""The ionic transport model describes Na+ conduction in the conduction planes: `run` on a map without a conducting
phase (cubic Au) skips it with one line saying why, records that, and writes no transport output; the `transport`
command refuses such a map (one line, exit status 2)."""

from __future__ import annotations

import json

import h5py
import pytest

from stemgrains.cli import main


@pytest.mark.parametrize("field", [["--field", "1,0"], []])
def test_run_skips_transport_without_a_conducting_phase(au_scan_3x3, tmp_path, capsys, field):
    out = tmp_path / "r"
    assert main(["run", str(au_scan_3x3), "--phase", "au", *field, "--electrode", "left=1", "--electrode", "right=0",
                 "--min-size", "1", "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    why = "the transport model was skipped: no conducting phase (with Na+ conduction planes) among au (cubic)"
    assert f"  {why}" in printed, printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transport"] == {"skipped": True, "reason": why}
    assert "transport_total_current" not in summary and summary["classification"]["applies"] is False
    assert not list(out.glob("transport_*.png")) and (out / "grains_ipf.png").is_file()
    with h5py.File(out / "results.h5") as f:
        assert "transport" not in f and "grains" in f and "classification" in f
        assert json.loads(f["parameters"].attrs["run"])["transport_skipped"] == why
    # with or without --field, no field is used: nothing conducts (a given --field is recorded as given, not used)
    assert summary["field_source"].startswith("none (no conducting phase")
    with h5py.File(out / "results.h5") as f:
        assert json.loads(f["classification"].attrs["parameters"])["field"] is None
        assert json.loads(f["parameters"].attrs["run"])["field"] == ([1.0, 0.0] if field else None)


def test_run_without_a_conducting_phase_needs_no_field(au_scan_3x3, tmp_path, capsys):
    """A map with nothing to classify (cubic Au) runs with neither --field nor --electrode, and records no field:
    none in the classification's parameters, NaN in the CSV's field columns, no arrow on the behaviour map. A phase
    with conduction planes still needs one (one line, exit status 2, nothing created)."""
    out = tmp_path / "r"
    assert main(["run", str(au_scan_3x3), "--phase", "au", "--min-size", "1", "-o", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["field_source"].startswith("none (no conducting phase") and summary["classification"]["applies"] is False
    with h5py.File(out / "results.h5") as f:
        assert json.loads(f["classification"].attrs["parameters"])["field"] is None
        import numpy as np

        assert np.isnan(f["classification/segments/field"][()]).all()
    header = (out / "boundaries.csv").read_text().splitlines()[0].split(",")
    for row in (out / "boundaries.csv").read_text().splitlines()[1:]:
        cells = dict(zip(header, row.split(",")))
        assert cells["field_0"] == "nan" and cells["field_1"] == "nan" and cells["label"] == "other-phase"
    capsys.readouterr()
    nba = tmp_path / "nba"
    assert main(["run", str(au_scan_3x3), "--phase", "na_beta2_alumina", "-o", str(nba), "--no-progress"]) == 2
    assert "give an applied field direction" in capsys.readouterr().err and not nba.exists()


def test_classify_without_a_conducting_phase_needs_no_field(au_scan_3x3, tmp_path, capsys):
    """`classify` as `run`: a cubic map needs no --field (nothing is classified; no field recorded) and its line
    does not suggest --conducting-phase, which a cubic phase cannot be."""
    res = tmp_path / "m.h5"
    assert main(["index", str(au_scan_3x3), "--phase", "au", "-o", str(res), "--no-progress"]) == 0
    assert main(["segment", str(res), "-o", str(res), "--min-size", "1"]) == 0
    capsys.readouterr()
    assert main(["classify", str(res)]) == 0
    printed = capsys.readouterr().out
    assert "under no field (none given, none needed)" in printed and "--conducting-phase" not in printed
    with h5py.File(res) as f:
        assert json.loads(f["classification"].attrs["parameters"])["field"] is None
    # a field given is not used (as run): none recorded, and --field-from-transport needs no transport model
    for given in (["--field", "1,0"], ["--field-from-transport"]):
        assert main(["classify", str(res), *given, "--csv", str(tmp_path / "b.csv")]) == 0
        printed = capsys.readouterr().out
        assert "under no field (none needed: nothing conducts; the one given is not used)" in printed, printed
        with h5py.File(res) as f:
            assert json.loads(f["classification"].attrs["parameters"])["field"] is None
        header, *rows = (tmp_path / "b.csv").read_text().splitlines()
        cells = [dict(zip(header.split(","), r.split(","))) for r in rows]
        assert all(c["field_0"] == "nan" and c["psi"] == "nan" for c in cells)


def test_transport_command_refuses_a_map_without_a_conducting_phase(au_scan_3x3, tmp_path, capsys):
    res = tmp_path / "m.h5"
    assert main(["index", str(au_scan_3x3), "--phase", "au", "-o", str(res), "--no-progress"]) == 0
    assert main(["segment", str(res), "-o", str(res), "--min-size", "1"]) == 0
    capsys.readouterr()
    assert main(["transport", str(res), "--electrode", "left=1", "--electrode", "right=0",
                 "--figures", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err == (f"stemgrains transport: error: {res}: the transport model needs a conducting phase: no conducting "
                   "phase (with Na+ conduction planes) among au (cubic)\n")
    with h5py.File(res) as f:
        assert "transport" not in f
    assert not (tmp_path / "f").exists()


def test_run_where_no_pixel_is_indexed_says_so(tmp_path, capsys):
    # blank patterns: nothing indexed, so the map has no phase at all; the reason is that, not "among no phase"
    import numpy as np

    data = tmp_path / "zero.npy"
    np.save(data, np.zeros((3, 3, 64, 64), np.uint16))
    out = tmp_path / "r"
    assert main(["run", str(data), "--phase", "na_beta2_alumina", "--q-pixel-size", "0.025", "--step", "4", "--field", "1,0",
                 "--electrode", "left=1", "--electrode", "right=0", "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    why = "the transport model was skipped: no pixel was indexed"
    assert f"  {why}" in printed and "  the conduction-plane classification does not apply: no pixel was indexed" in printed, printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transport"] == {"skipped": True, "reason": why}
    assert summary["classification"]["note"] == "the conduction-plane classification does not apply: no pixel was indexed"


def test_a_field_on_a_map_where_nothing_conducts_is_not_a_new_parameter(au_scan_3x3, tmp_path, capsys):
    """`run` on Au with --field, then without (or with another): the field is not used, so the run is the same
    and already complete instead of refused as one with other parameters."""
    out = tmp_path / "r"
    base = ["run", str(au_scan_3x3), "--phase", "au", "--min-size", "1", "--no-figures", "-o", str(out), "--no-progress"]
    assert main([*base, "--field", "1,0"]) == 0
    capsys.readouterr()
    for again in ([], ["--field", "0,1"]):
        assert main([*base, *again]) == 0
        assert "already complete" in capsys.readouterr().out


def test_run_says_what_the_transport_model_gave(nba_sample_run, capsys):
    """`run` with electrodes printed no line about the transport model it ran (only where it was skipped)."""
    import json

    from stemgrains.commands.run import print_summary

    out, _ = nba_sample_run
    summary = json.loads((out / "summary.json").read_text())
    print_summary({"summary": summary}, str(out))
    assert "transport:" not in capsys.readouterr().out  # this run had no electrodes
    print_summary({"summary": dict(summary, transport_total_current=0.0123)}, str(out))
    said = capsys.readouterr().out
    assert "  transport: total current 0.0123 σ_ip·V per unit lamella thickness" in said
    assert "in no grain and carry current" not in said  # this map's pixels are in grains
    # a map whose pixels are mostly in no grain (a fresh user's 3 x 3 run: "0 grains", then a total current without
    # a word): the current is the boundary material's
    inv = dict(summary["invalid_pixels"], n_unassigned=summary["invalid_pixels"]["n_pixels"])
    print_summary({"summary": dict(summary, transport_total_current=0.0123, invalid_pixels=inv, n_grains=0)}, str(out))
    n = inv["n_pixels"]
    assert f"  note: {n} of {n} pixels are in no grain and carry current as boundary material" in capsys.readouterr().out
    # pores carry nothing: no such note; a conductivity given for them is named
    for how, said in (("pore", None), (0.2, "as the conductivity given for them (0.2 σ_ip")):
        print_summary({"summary": dict(summary, transport_total_current=0.0123, invalid_pixels=inv, n_grains=0,
                                       transport_unassigned=how)}, str(out))
        got = capsys.readouterr().out
        assert (said in got) if said else ("in no grain and carry current" not in got), got


def test_info_of_a_runs_results_says_what_it_holds(nba_sample_run, capsys):
    """`info results.h5` of a run did not mention its grains, boundaries or classification."""
    import json

    from stemgrains.cli import main

    out, _ = nba_sample_run
    summary = json.loads((out / "summary.json").read_text())
    assert main(["info", str(out / "results.h5")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("also holds:"))
    assert f"{summary['n_grains']} grains, {summary['n_boundaries']} boundaries, classification" in line
    assert "transport" not in line.split("(")[0]  # this run had no electrodes
    assert line.endswith("(written by run)")  # it named segment, classify, transport



def test_run_says_why_no_current_flows(au_scan_3x3, tmp_path, capsys):
    """Electrodes that no conducting path joins: `run` printed a total current of 0 without a word, where `transport`
    warns; now it gives the same reason (summary.json transport_note, :func:`stemgrains.pipeline.transport_summary`),
    and where no --field was given it says plainly that the labels are under an assumed +x (it said "classified under
    field none (... labels under +x ...)")."""
    from stemgrains.commands.run import print_summary
    from stemgrains.pipeline import NO_CURRENT_FIELD, NO_CURRENT_NOTE

    out = tmp_path / "r"
    assert main(["run", str(au_scan_3x3), "--phase", "na_beta2_alumina", "--field", "1,0", "--min-size", "1",
                 "--electrode", "left=1", "--electrode", "right=0", "-o", str(out), "--no-progress"]) == 0
    assert "no current flows" not in capsys.readouterr().err  # a current flows here
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transport_total_current"] > 0 and "transport_note" not in summary
    summary.update(transport_total_current=0.0, transport_note=NO_CURRENT_NOTE, field_source=NO_CURRENT_FIELD)
    print_summary({"summary": summary}, str(out))
    err = capsys.readouterr().err
    assert "warning: no current flows between the electrodes: no conducting path joins them" in err, err
    assert "labelled under a field along +x, assumed" in err and "field none" not in err
