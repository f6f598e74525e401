"""`compare -o OUTDIR` replaces only its own outputs for the same scans (issue: grains_matched.csv and the other
fixed-name files replaced whatever stood there): a user's file, the outputs of other scans or a table edited since
are refused before any work, one line naming -o and the file, exit 2, unless --force; a rerun on the same scans
works."""

from __future__ import annotations

import pytest
from compare_helpers import two_scans
from file_helpers import file_tree

from stemgrains.cli import main
from stemgrains.crystal import load_phase


@pytest.fixture(scope="module")
def scans(tmp_path_factory, data_samples):
    nba = load_phase(data_samples / "na_beta2_alumina.cif")
    p1, p2, *_ = two_scans(tmp_path_factory.mktemp("scans"), nba, shape=(16, 16), n_grains=5, offset=(2, -1))
    return str(p1), str(p2)


def _refused(capsys, out, name: str, what: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"stemgrains compare: error: -o {out}: {name} there is {what}"), err[0]
    assert err[0].endswith("choose another folder, or give --force to replace it")


@pytest.mark.parametrize("name, text, what", [
    ("grains_matched.csv", "a,b\n1,2\n", "a CSV file not written by stemgrains"),
    ("boundaries_changed.csv", "my notes\n", "a CSV file not written by stemgrains"),
    ("compare.json", '{"mine": 1}\n', "a JSON file not written by stemgrains"),
])
def test_a_users_file_is_refused_before_any_work(scans, tmp_path, capsys, name, text, what):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / name).write_text(text)
    before = file_tree(out)
    assert main(["compare", *scans, "-o", str(out), "--no-figures"]) == 2
    _refused(capsys, out, name, what)
    assert file_tree(out) == before  # nothing written, the user's file untouched
    assert main(["compare", *scans, "-o", str(out), "--no-figures", "--force"]) == 0
    assert (out / name).read_text() != text


def test_rerun_other_scans_and_edited_tables(scans, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *scans, "-o", str(out), "--no-figures"]) == 0
    assert main(["compare", *scans, "-o", str(out), "--no-figures"]) == 0  # the same scans again: replaced
    capsys.readouterr()
    before = file_tree(out)
    assert main(["compare", scans[1], scans[0], "-o", str(out), "--no-figures"]) == 2  # other scans (order)
    _refused(capsys, out, "grains_matched.csv", "a table beside the compare.h5 of other inputs (")
    assert file_tree(out) == before
    with open(out / "boundaries_changed.csv", "a") as fh:  # a table edited since
        fh.write("my extra row\n")
    assert main(["compare", *scans, "-o", str(out), "--no-figures"]) == 2
    _refused(capsys, out, "boundaries_changed.csv", "a table that the compare.h5 there does not list as written")
    assert main(["compare", *scans, "-o", str(out), "--no-figures", "--force"]) == 0
    assert "my extra row" not in (out / "boundaries_changed.csv").read_text()
    assert main(["compare", *scans, "-o", str(out), "--no-figures"]) == 0


def test_rerun_after_the_folder_was_moved_or_copied(scans, tmp_path, capsys):
    """The tables are recorded by name in the folder: a moved (or `cp -p` copied) folder is still this command's
    for the same scans; an older compare.h5 keyed by absolute path is still read."""
    import json
    import shutil

    import h5py

    out = tmp_path / "cmpA"
    assert main(["compare", *scans, "-o", str(out), "--no-figures"]) == 0
    moved = tmp_path / "cmpA_mv"
    out.rename(moved)
    assert main(["compare", *scans, "-o", str(moved), "--no-figures"]) == 0
    copied = tmp_path / "cmpA_cp"
    shutil.copytree(moved, copied)  # copy2: size and modification time kept, as `cp -p`
    assert main(["compare", *scans, "-o", str(copied), "--no-figures"]) == 0
    with h5py.File(copied / "compare.h5", "a") as f:  # as written before: absolute paths
        rec = json.loads(f.attrs["csv_tables"])
        assert sorted(rec) == ["boundaries_changed.csv", "grains_matched.csv"]
        f.attrs["csv_tables"] = json.dumps({str(copied / k): v for k, v in rec.items()})
    capsys.readouterr()
    assert main(["compare", *scans, "-o", str(copied), "--no-figures"]) == 0, capsys.readouterr().err


def test_figures_of_an_earlier_comparison_are_removed(scans, tmp_path, capsys):
    """Three scans, then two with --force (or a rerun): the figures of the three that the new run does not write
    are removed, as `run --overwrite` removes what the earlier run wrote; a user's image of such a name stays."""
    import shutil

    from PIL import Image

    out = tmp_path / "cmp3"
    third = tmp_path / "s3.h5"
    shutil.copyfile(scans[0], third)
    assert main(["compare", *scans, str(third), "-o", str(out)]) == 0
    three = {p.name for p in out.iterdir()}
    assert {"grain_rotation_1-2.png", "boundary_changes_2-3.png", "grains_matched.png"} <= three
    (out / "boundary_changes_2-3.png").unlink()
    Image.new("RGB", (2, 2)).save(out / "boundary_changes_2-3.png")  # the user's own image of that name
    assert main(["compare", *scans, "-o", str(out), "--force", "--no-figures"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "boundaries_changed.csv", "boundary_changes_2-3.png", "compare.h5", "compare.json", "grains_matched.csv"]


def test_output_folder_that_is_a_file(scans, tmp_path, capsys):
    """Issue: `-o afile` said "afile: File exists", `-o B.h5` (an input) "-o (grains_matched.csv) B.h5/...: lies
    inside the input file"."""
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    assert main(["compare", *scans, "-o", str(afile)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"stemgrains compare: error: -o {afile}: is a file (a .txt file not written by stemgrains), not a "
                   "folder; give an output folder"]
    assert main(["compare", *scans, "-o", scans[1]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"stemgrains compare: error: -o {scans[1]}: is the input file "), err
    assert err[0].endswith("not an output folder; give an output folder")
