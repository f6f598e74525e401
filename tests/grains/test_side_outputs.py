"""Side outputs (`segment`/`classify --csv` and the `*.segments.csv` beside, `index --export-ang/--export-ctf`)
follow the rule of `-o`: the right extension, never a file that is not ours unless --force (one line saying what
the file is, exit status 2, checked before any work); `segment`/`classify`/`transport -o` write HDF5 only."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from synthetic_grains import synthetic_polycrystal

from stemgrains.cli import main
from stemgrains.errors import ParameterError
from stemgrains.io import load_orientation_map, write_orientation_map
from stemgrains.io.export import write_ang, write_ctf
from stemgrains.io.outputs import describe_file, is_our_csv, recorded_input, refuse_foreign_side_output
from stemgrains.io.results import atomic_h5, write_provenance

CIF_TEXT = b"data_nba\n_cell_length_a 5.6\n_cell_length_c 33.5\n"


def _results(path, data_file, seed=0):
    xmap, _, _ = synthetic_polycrystal(shape=(12, 14), n_grains=3, seed=seed)
    with atomic_h5(path) as f:
        write_provenance(f, input_path=data_file)
        write_orientation_map(f, xmap)
    return path


def _one_line(capsys, argv, *needles):
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    for n in needles:
        assert str(n) in err[0], (n, err[0])
    return err[0]


@pytest.fixture()
def seg(tmp_path):
    scan = tmp_path / "scan_a.h5"
    scan.write_bytes(b"scan a")
    res = _results(tmp_path / "res.h5", scan)
    out = tmp_path / "seg.h5"
    assert main(["segment", str(res), "-o", str(out), "--min-size", "1"]) == 0
    return res, out


def test_csv_never_replaces_a_file_that_is_not_ours(tmp_path, capsys, seg):
    res, segmented = seg
    # a CIF given as --csv: refused by its extension, untouched, nothing written beside it
    cif = tmp_path / "na_beta2_alumina.cif"
    cif.write_bytes(CIF_TEXT)
    cls = tmp_path / "cls.h5"
    _one_line(capsys, ["classify", segmented, "--field", "1,0", "-o", cls, "--csv", cif], "--csv", cif, ".csv")
    assert cif.read_bytes() == CIF_TEXT and not (tmp_path / "na_beta2_alumina.segments.csv").exists()
    assert not cls.exists()  # refused before any work
    # an unrelated CSV: refused, saying what it is
    mine = tmp_path / "mycsv.csv"
    mine.write_text("name,value\na,1\n")
    out = tmp_path / "sg6.h5"
    msg = _one_line(capsys, ["segment", res, "-o", out, "--csv", mine], "--csv", mine, "--force")
    assert "CSV file not written by stemgrains" in msg
    assert mine.read_text() == "name,value\na,1\n" and not out.exists()
    assert not (tmp_path / "mycsv.segments.csv").exists()
    # the segment table beside it is guarded the same way
    other = tmp_path / "b.segments.csv"
    other.write_text("x,y\n")
    _one_line(capsys, ["segment", res, "-o", out, "--csv", tmp_path / "b.csv"], "--csv (segments)", other)
    assert other.read_text() == "x,y\n" and not (tmp_path / "b.csv").exists()
    # our own tables are replaced by the same command again; --force replaces a foreign one
    table = tmp_path / "t.csv"
    for _ in range(2):
        assert main(["segment", str(res), "-o", str(out), "--csv", str(table), "--min-size", "1"]) == 0
    assert is_our_csv(table, "boundaries/boundaries") and is_our_csv(tmp_path / "t.segments.csv", "boundaries/segments")
    assert main(["segment", str(res), "-o", str(out), "--csv", str(mine), "--min-size", "1", "--force"]) == 0
    assert is_our_csv(mine, "boundaries/boundaries")
    # classify's table onto segment's: another table of ours, refused (named), then classify's own replaced
    msg = _one_line(capsys, ["classify", out, "--field", "1,0", "-o", cls, "--csv", table], "--csv", table)
    assert "boundary table (segment --csv)" in msg
    ctable = tmp_path / "c.csv"
    for _ in range(2):
        assert main(["classify", str(out), "--field", "1,0", "-o", str(cls), "--csv", str(ctable)]) == 0
    assert is_our_csv(ctable, "classification/boundaries")
    assert is_our_csv(tmp_path / "c.segments.csv", "classification/segments")


def test_results_outputs_are_hdf5(tmp_path, capsys, seg):
    res, segmented = seg
    for argv in (["segment", res, "-o", tmp_path / "adf2.png", "--force"],
                 ["segment", res, "-o", tmp_path / "newseg.txt"],
                 ["classify", segmented, "--field", "1,0", "-o", tmp_path / "c.txt"],
                 ["transport", segmented, "--electrode", "left=1", "--electrode", "right=0", "-o", tmp_path / "t.png"]):
        _one_line(capsys, argv, "-o", argv[argv.index("-o") + 1], ".h5")
        assert not argv[argv.index("-o") + 1].exists()
    assert main(["segment", str(res), "-o", str(tmp_path / "ok.hdf5"), "--min-size", "1"]) == 0


def test_refusal_says_what_the_file_is(tmp_path, capsys, data_samples, seg):
    from stemgrains.io import load_4d, write_4d
    from stemgrains.io.images import write_image

    res, segmented = seg
    ds = load_4d(data_samples / "nba_sample.h5")
    scan = write_4d(tmp_path / "cube.h5", np.asarray(ds.data[:2, :3]), ds.calibration)
    image = write_image(tmp_path / "adf.h5", np.ones((2, 3)), input_path=scan)
    msg = _one_line(capsys, ["segment", res, "-o", image], "-o", image, "--force", "not a results file")
    assert f"a virtual image of {scan.resolve()}" in msg
    msg = _one_line(capsys, ["classify", segmented, "--field", "1,0", "-o", scan], "-o", scan, "not a results file")
    assert "a 4D-STEM scan (shape (2, 3," in msg
    png = write_image(tmp_path / "adf.png", np.ones((2, 3)), input_path=scan)
    assert describe_file(png) == f"a virtual image of {scan.resolve()}"
    # virtual -o onto a results file: named as the results of its input
    msg = _one_line(capsys, ["virtual", scan, "--bf", "3", "-o", segmented], "-o", segmented, "not an image")
    assert "the results of" in msg


def _xmap():
    xmap, _, _ = synthetic_polycrystal(shape=(5, 6), n_grains=2, seed=3)
    return xmap


@pytest.mark.parametrize("ext", ["ang", "ctf"])
def test_exports_record_their_input_and_read_back(tmp_path, ext):
    xmap = _xmap()
    src, other = tmp_path / "s" / "a.h5", tmp_path / "s" / "b2.h5"
    writer = write_ang if ext == "ang" else write_ctf
    path = writer(tmp_path / f"m.{ext}", xmap, source=src)
    assert recorded_input(path) == str(src.resolve())
    back = load_orientation_map(path)
    assert back.shape == xmap.shape and np.array_equal(back.phase_id >= 0, xmap.phase_id >= 0)
    plain = writer(tmp_path / f"p.{ext}", xmap)
    assert recorded_input(plain) is None
    assert path.read_text().replace(path.read_text().splitlines()[1 if ext == "ctf" else 0] + "\n", "") \
        .replace(f"Prj\tm", "Prj\tp") == plain.read_text()
    option = f"--export-{ext}"
    refuse_foreign_side_output(path, option, input_path=src)  # ours, same input: replaced
    with pytest.raises(ParameterError, match=f"another input \\({src.resolve()}\\)"):
        refuse_foreign_side_output(path, option, input_path=other)
    with pytest.raises(ParameterError, match="not written by stemgrains"):
        refuse_foreign_side_output(plain, option, input_path=src)
    refuse_foreign_side_output(plain, option, input_path=src, replace=True)


def test_index_refuses_a_foreign_export_before_any_work(tmp_path, capsys, data_samples):
    from stemgrains.io import load_4d, write_4d

    ds = load_4d(data_samples / "nba_sample.h5")
    scan = write_4d(tmp_path / "a.h5", np.asarray(ds.data[:2, :2]), ds.calibration)
    cif = str(data_samples / "na_beta2_alumina.cif")
    vendor = tmp_path / "vendor.ang"
    vendor.write_text("# TEM_PIXperUM 1.0\n# hand-made\n0 0 0 0 0 1 1 0 0\n")
    out = tmp_path / "ia6.h5"
    msg = _one_line(capsys, ["index", scan, "--phase", cif, "-o", out, "--no-progress", "--export-ang", vendor],
                    "--export-ang", vendor, "--force")
    assert "not written by stemgrains" in msg
    assert vendor.read_text().startswith("# TEM_PIXperUM") and not out.exists()
    assert not (tmp_path / "ia6.h5.partial").exists()
    _one_line(capsys, ["index", scan, "--phase", cif, "-o", out, "--export-ctf", tmp_path / "x.txt"],
              "--export-ctf", ".ctf")
    # an export of another input (its header names it)
    b2 = tmp_path / "b2.ctf"
    write_ctf(b2, _xmap(), source=tmp_path / "s" / "b2.h5")
    before = b2.read_bytes()
    _one_line(capsys, ["index", scan, "--phase", cif, "-o", out, "--export-ctf", b2],
              "--export-ctf", b2, str((tmp_path / "s" / "b2.h5").resolve()))
    assert b2.read_bytes() == before and not out.exists()
    with h5py.File(scan) as f:  # the input is untouched
        assert "orientation" not in f
