"""The test tree has no __init__.py files (tests import sibling helpers by name), so every test module needs a
unique basename: pytest refuses to collect two modules of the same name."""

from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("*.py") if p.name != "conftest.py")
    assert [n for n, c in names.items() if c > 1] == []


def test_unusable_output_paths_are_one_line_errors(tmp_path, capsys):
    """A file where an output folder should be, and outputs onto inputs, for the commands added last."""
    from pathlib import Path

    from stemgrains.cli import main

    repo = Path(__file__).resolve().parents[1]
    sample = repo / "data_samples" / "nba_sample.h5"
    cif = repo / "data_samples" / "na_beta2_alumina.cif"
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    before = sample.stat().st_size
    cases = [
        ["virtual", str(sample), "--bf", "6", "-o", str(sample)],
        ["calibrate", str(sample), "--phase", str(cif), "-o", str(cif)],
        ["virtual", str(sample), "--bf", "6", "-o", str(blocker / "x.png")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error" in err[0], (argv, err)  # refused before any work: no progress bar either
    assert sample.stat().st_size == before and cif.read_text().startswith(("#", "data_")) or "_cell" in cif.read_text()
    assert main([]) == 2
