"""Empty, header-only or garbled .ang/.ctf maps and a folder given as a CIF: the project's own one-line errors,
no library warnings (pytest turns any warning into a failure here)."""

from __future__ import annotations

import pytest

from stemgrains.cli import main
from stemgrains.errors import FileFormatError
from stemgrains.io import load_orientation_map

ANG_HEADER = "# TEM_PIXperUM 1.0\n# Phase 1\n# MaterialName Pd\n# Symmetry 43\n# GRID: SqrGrid\n# XSTEP: 0.002\n"
CTF_HEADER = ("Channel Text File\nPrj\tx\nXCells\t2\nYCells\t2\nXStep\t0.3\nYStep\t0.3\nPhases\t1\n"
              "3.2;3.2;5.2\t90;90;120\tMagnesium\t9\t194\n")
CASES = {
    "zero.ang": ("", "no data points"),
    "header_only.ang": (ANG_HEADER, "no data points"),
    "garbled.ang": (ANG_HEADER + "1.0 2.0 abc 0 0 0 0 0\n", "cannot read as an .ang map"),
    "short_rows.ang": (ANG_HEADER + "1 2\n3 4\n", "its data rows have 2 columns; an .ang map has at least 8"),
    "five_columns.ang": (ANG_HEADER + "0 0 0 0 0\n0 0 0 1 0\n", "its data rows have 5 columns"),
    "header_only.ctf": (CTF_HEADER + "Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS\n", "no data points"),
    "no_columns.ctf": (CTF_HEADER, "no 'Phase X Y"),
    "garbled.ctf": (CTF_HEADER + "Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS\n1\tx\n",
                    "cannot read as a .ctf map"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_maps_one_line(tmp_path, name):
    text, match = CASES[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FileFormatError, match=match) as err:
        load_orientation_map(path)
    msg = str(err.value)
    assert name in msg and "\n" not in msg and "tuple index" not in msg


@pytest.mark.parametrize("command", ["info", "segment"])
def test_bad_map_cli(tmp_path, capsys, command):
    path = tmp_path / "empty.ang"
    path.write_text(ANG_HEADER)
    args = [command, str(path)] + (["-o", str(tmp_path / "o.h5")] if command == "segment" else [])
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "empty.ang" in err[0] and "no data points" in err[0]
    assert "Warning" not in captured.err


def test_folder_as_phase(tmp_path, capsys):
    (tmp_path / "cifs").mkdir()
    rc = main(["index", str(tmp_path / "scan.h5"), "--phase", str(tmp_path / "cifs"), "-o", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is a folder; expected a CIF file" in err[0]


@pytest.mark.parametrize("name, hint", [("au.cif", "--phase"), ("scan.hdr", ".mib"), ("map.ang", "segment")])
def test_wrong_kind_of_file_for_4d_data(tmp_path, name, hint):
    from stemgrains.io import load_4d

    (tmp_path / name).write_text("x")
    with pytest.raises(FileFormatError, match=hint):
        load_4d(tmp_path / name)


@pytest.mark.parametrize("ext", [".ang", ".ctf"])
def test_truncated_map_is_one_line(tmp_path, capsys, ext):
    """A map with fewer data rows than its header's grid (a copy cut short) used to end in a numpy reshape
    traceback in `segment`, `compare` and `info`."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grains"))
    from synthetic_grains import synthetic_polycrystal

    from stemgrains.io.export import write_ang, write_ctf

    xmap, _, _ = synthetic_polycrystal(shape=(6, 5), n_grains=3, seed=1)
    full = tmp_path / f"full{ext}"
    (write_ang if ext == ".ang" else write_ctf)(full, xmap)
    lines = full.read_text().splitlines()
    cut = tmp_path / f"cut{ext}"
    cut.write_text("\n".join(lines[:-4]) + "\n")
    assert load_orientation_map(full).size == 30
    with pytest.raises(FileFormatError, match=r"26 data rows for the 6 x 5 grid its header states \(30 points\)"):
        load_orientation_map(cut)
    for argv in (["segment", str(cut), "-o", str(tmp_path / "o.h5")], ["info", str(cut)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"cut{ext}" in err[0] and "truncated" in err[0], err


def test_ang_phase_named_by_material_name_and_formula_recognised(tmp_path):
    """orix names .ang phases by their Formula: 'MaterialName Beta-alumina' with 'Formula X' became phase 'X',
    labelled other-phase everywhere (fresh-user test). The MaterialName is the name now; a phase known only by a
    formula holding Na, Al and O (NaAl11O17) has conduction planes too."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grains"))
    from synthetic_grains import synthetic_polycrystal

    from stemgrains.crystal import has_conduction_planes
    from stemgrains.io.export import write_ang

    xmap, _, _ = synthetic_polycrystal(shape=(6, 5), n_grains=3, seed=1, point_group="-3m")
    full = write_ang(tmp_path / "m.ang", xmap)
    text = full.read_text().splitlines()

    def variant(name, material, formula):
        out = []
        for ln in text:
            if ln.startswith("# MaterialName"):
                ln = f"# MaterialName  {material}"
            elif ln.startswith("# Formula"):
                ln = f"# Formula  {formula}"
            out.append(ln)
        path = tmp_path / name
        path.write_text("\n".join(out) + "\n")
        return load_orientation_map(path)

    m = variant("a.ang", "Beta-alumina", "X")
    ph = [p for i, p in m.phases if i >= 0][0]
    assert ph.name == "Beta-alumina" and has_conduction_planes(ph)
    m = variant("b.ang", "NaAl11O17", "NaAl11O17")
    ph = [p for i, p in m.phases if i >= 0][0]
    assert ph.name == "NaAl11O17" and has_conduction_planes(ph)
    m = variant("c.ang", "Nickel", "Ni")
    assert not has_conduction_planes([p for i, p in m.phases if i >= 0][0])


@pytest.mark.parametrize("ext", [".ang", ".ctf"])
def test_truncated_map_names_the_grid_its_header_states(tmp_path, capsys, ext):
    """A map cut short (fresh-user report: `head -n 1000 map.ang`) said "971 data rows for the 25 x 40 grid its
    header states (1000 points)" of a 40 x 40 header: the grid its x/y coordinates reach, not the header's. A
    cut at the end of a row was read silently as a smaller map; a cut mid-row passed on numpy's hint about
    `usecols`. All three: one line naming the file, exit status 2."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grains"))
    from synthetic_grains import synthetic_polycrystal

    from stemgrains.io.export import write_ang, write_ctf

    xmap, _, _ = synthetic_polycrystal(shape=(6, 5), n_grains=3, seed=1)
    full = (write_ang if ext == ".ang" else write_ctf)(tmp_path / f"full{ext}", xmap)
    text = full.read_text()
    lines = text.splitlines()
    n_head = len(lines) - 30
    cases = {
        "mid_grid": ("\n".join(lines[:n_head + 18]) + "\n",
                     r"18 data rows for the 6 x 5 grid its header states \(30 points\); the file is truncated"),
        "row_end": ("\n".join(lines[:n_head + 15]) + "\n",
                    r"15 data rows for the 6 x 5 grid its header states \(30 points\); the file is truncated"),
        "mid_row": ("\n".join(lines[:n_head + 20]) + "\n" + lines[n_head + 20][:len(lines[n_head + 20]) // 2],
                    r"its last data row is incomplete \(\d of \d+ values; the file is truncated\?\)"),
    }
    for name, (cut_text, match) in cases.items():
        cut = tmp_path / f"{name}{ext}"
        cut.write_text(cut_text)
        with pytest.raises(FileFormatError, match=match):
            load_orientation_map(cut)
        assert main(["info", str(cut)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"stemgrains info: error: {cut}: "), err
        assert "usecols" not in err[0] and "numpy" not in err[0]
