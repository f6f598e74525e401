"""`segment`, `classify` and `transport -o OUT.h5` never replace the results of another input (nor a file that is
not ours) unless --force: one line naming the file, the input that made it and --force, exit status 2, the file
untouched. The same command on the same input into the same file replaces it (how a step is redone)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from synthetic_grains import synthetic_polycrystal

from stemgrains.cli import main
from stemgrains.io import write_orientation_map
from stemgrains.io.outputs import recorded_input
from stemgrains.io.results import atomic_h5, write_provenance


def _results(path, data_file, seed):
    """A results file with /orientation made from ``data_file`` (recorded in /input, as `index` does), or
    recording no input when ``data_file`` is None (the Python API without provenance)."""
    # a phase with Na+ conduction planes (trigonal, a beta-alumina's name): `transport` models only such maps
    xmap, _, _ = synthetic_polycrystal(shape=(12, 14), n_grains=3, seed=seed, point_group="-3m")
    xmap.phases[0].name = "beta_alumina"
    with atomic_h5(path) as f:
        if data_file is not None:
            write_provenance(f, input_path=data_file)
        write_orientation_map(f, xmap)
    return path


def _refused(capsys, argv, out, recorded):
    before = out.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(out) in err[0] and "--force" in err[0] and "Traceback" not in err[0]
    assert (f"another input ({recorded})" in err[0]) if recorded else "not a results file" in err[0]
    assert out.read_bytes() == before


@pytest.fixture()
def two_inputs(tmp_path):
    a, b = tmp_path / "scan_a.h5", tmp_path / "scan_b.h5"
    a.write_bytes(b"scan a")
    b.write_bytes(b"scan b")
    return _results(tmp_path / "res_a.h5", a, 0), _results(tmp_path / "res_b.h5", b, 1), a.resolve(), b.resolve()


def test_segment_classify_transport_keep_other_inputs_results(tmp_path, capsys, two_inputs):
    res_a, res_b, a, b = two_inputs
    seg, cls, tr = tmp_path / "seg.h5", tmp_path / "cls.h5", tmp_path / "tr.h5"
    seg_b = tmp_path / "seg_b.h5"
    assert main(["segment", str(res_b), "-o", str(seg_b), "--min-size", "1"]) == 0

    steps = [
        (seg, ["segment", "{src}", "-o", str(seg), "--min-size", "1"], res_a, res_b),
        (cls, ["classify", "{src}", "--field", "1,0", "-o", str(cls)], seg, seg_b),
        (tr, ["transport", "{src}", "--electrode", "left=1", "--electrode", "right=0", "-o", str(tr)], seg, seg_b),
    ]
    for out, argv, mine, other in steps:
        cmd = [str(mine) if x == "{src}" else x for x in argv]
        assert main(cmd) == 0, cmd
        assert recorded_input(out) == str(a)
        assert main(cmd) == 0  # the same input again: its own results are replaced
        other_cmd = [str(other) if x == "{src}" else x for x in argv]
        _refused(capsys, other_cmd, out, str(a))
        assert recorded_input(out) == str(a)
    # a file that is not a results file: refused as well, whatever the command
    notes = tmp_path / "notes.h5"
    notes.write_bytes(b"my notes")
    _refused(capsys, ["segment", str(res_a), "-o", str(notes)], notes, None)
    _refused(capsys, ["classify", str(seg), "--field", "1,0", "-o", str(notes)], notes, None)
    _refused(capsys, ["transport", str(seg), "--electrode", "left=1", "--electrode", "right=0", "-o", str(notes)],
             notes, None)
    # an output of another kind recording the same input: a virtual image of scan a is no results file
    from stemgrains.io.images import write_image

    image = write_image(tmp_path / "bf.h5", np.ones((12, 14)), input_path=a)
    assert recorded_input(image) == str(a)
    _refused(capsys, ["segment", str(res_a), "-o", str(image)], image, None)
    # --force replaces them
    for out, argv, _, other in steps:
        assert main([str(other) if x == "{src}" else x for x in argv] + ["--force"]) == 0
        assert recorded_input(out) == str(b)
    # updating the results file in place (no -o, or -o naming it) is what the commands do: never refused
    assert main(["classify", str(seg_b), "--field", "0,1"]) == 0
    assert main(["transport", str(seg_b), "--electrode", "top=1", "--electrode", "bottom=0", "-o", str(seg_b)]) == 0
    # a folder as -o: one line
    (tmp_path / "folder").mkdir()
    capsys.readouterr()
    assert main(["segment", str(res_a), "-o", str(tmp_path / "folder")]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_results_without_provenance_record_their_source(tmp_path, capsys):
    """A results file written without /input (Python API): its copy records the file it was made from, so the
    same command again replaces it, while another such file is refused."""
    src = _results(tmp_path / "res.h5", None, 0)
    other = _results(tmp_path / "other.h5", None, 1)
    out = tmp_path / "seg.h5"
    assert recorded_input(src) is None
    assert main(["segment", str(src), "-o", str(out), "--min-size", "1"]) == 0
    assert recorded_input(out) == str(src.resolve())
    assert main(["segment", str(src), "-o", str(out), "--min-size", "1"]) == 0
    _refused(capsys, ["segment", str(other), "-o", str(out), "--min-size", "1"], out, str(src.resolve()))
    with h5py.File(src, "r") as f:  # the source itself is not modified
        assert "input" not in f


def test_index_keeps_later_stages_of_the_same_input(tmp_path, capsys, data_samples):
    """`index -o` onto a results file of the same input that also holds grains (segment, classify, transport) used
    to replace it, dropping them; it is refused in one line unless --force."""
    from stemgrains.io import load_4d, write_4d

    # the input: 3 × 3 positions cut from the sample (the guard looks at the recorded input path, and the run that
    # --force lets through then indexes 9 patterns, not the sample's 1600)
    ds = load_4d(data_samples / "nba_sample.h5")
    data = str(write_4d(tmp_path / "data.h5", np.asarray(ds.data[:3, :3]), ds.calibration))
    out = _results(tmp_path / "res.h5", data, seed=3)
    with h5py.File(out, "a") as f:
        f.create_group("grains").create_dataset("label", data=np.ones((2, 2), np.int32))
    before = out.read_bytes()
    argv = ["index", data, "--phase", str(data_samples / "na_beta2_alumina.cif"), "-o", str(out), "--step", "3",
            "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "also holds the grains of this input" in err[0] and "--force" in err[0], err
    assert out.read_bytes() == before
    assert main(argv + ["--force"]) == 0
    with h5py.File(out, "r") as f:
        assert "orientation" in f and "grains" not in f


def test_segment_keeps_the_later_stages_of_the_same_input(tmp_path, capsys, data_samples):
    """`segment -o` onto a file of the same input holding a classification used to drop it (fresh-user test)."""
    data = str(data_samples / "nba_sample.h5")
    src = _results(tmp_path / "map.h5", data, seed=3)  # index-only results of the input
    out = _results(tmp_path / "full.h5", data, seed=3)
    with h5py.File(out, "a") as f:
        f.create_group("classification").create_dataset("x", data=np.zeros(2))
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["segment", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "also holds the classification of this input" in err[0], err
    assert out.read_bytes() == before
    assert main(["segment", str(src), "-o", str(out), "--force"]) == 0


def test_segment_again_drops_the_classification_and_transport_of_the_earlier_boundaries(tmp_path, capsys, data_samples):
    """Segmenting a results file again makes new boundaries (other ids): its classification and transport were of
    the earlier ones, and `classify --field-from-transport`, `series` and `compare` read them by boundary id. The
    new file keeps neither (fresh-user test: a 14-row classification stayed beside 1 boundary), says so, and a
    file of the same input holding them is not replaced silently."""
    data = str(data_samples / "nba_sample.h5")
    src = _results(tmp_path / "map.h5", data, seed=3)
    assert main(["segment", str(src), "-o", str(src)]) == 0
    assert main(["classify", str(src), "--field", "1,0", "-o", str(src)]) == 0
    assert main(["transport", str(src), "--electrode", "left=1", "--electrode", "right=0", "-o", str(src)]) == 0
    capsys.readouterr()
    out = tmp_path / "coarse.h5"
    assert main(["segment", str(src), "-o", str(out), "--threshold", "65"]) == 0
    printed = capsys.readouterr().out
    assert "classification and transport of map.h5 not kept" in printed, printed
    with h5py.File(out, "r") as f:
        assert "classification" not in f and "transport" not in f and "grains" in f and "boundaries" in f
        assert "classify" not in f["parameters"].attrs and "transport" not in f["parameters"].attrs
    from stemgrains.settings import read_config

    # nor does its recorded config (`config --from`): the dropped stages' keys described results it no longer has
    assert "[classify]" not in read_config(out) and "[transport]" not in read_config(out)
    assert "low_angle_deg = 15.0" in read_config(out)  # segment's own part is recorded
    assert "[classify]" in read_config(src) and "[transport]" in read_config(src)
    with h5py.File(src, "r") as f:
        assert "classification" in f and "transport" in f  # the input keeps its own
    # classify of the new file: a field from a transport model is asked for, and there is none
    assert main(["classify", str(out), "--field-from-transport", "-o", str(out)]) == 2
    assert "transport" in capsys.readouterr().err
    # the same segment onto a file of the same input that holds a classification: refused, then --force
    full = tmp_path / "full.h5"
    full.write_bytes(src.read_bytes())
    before = full.read_bytes()
    assert main(["segment", str(src), "-o", str(full), "--threshold", "65"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classification" in err[0] and "--force" in err[0], err
    assert full.read_bytes() == before
    # in place: the file's own stale stages go, and it says so
    assert main(["segment", str(src), "-o", str(src), "--threshold", "65"]) == 0
    assert "not kept" in capsys.readouterr().out
    with h5py.File(src, "r") as f:
        assert "classification" not in f and "transport" not in f
