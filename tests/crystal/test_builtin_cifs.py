"""`--phase au` (a bare name) resolves to the CIF shipped with the package, through the one function every command
uses (issue: index/run/calibrate refused it as 'CIF file not found' while simulate took it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemgrains.cli import main
from stemgrains.crystal import BUILTIN_CIFS, load_phase, phase_cif_text, resolve_cif
from stemgrains.errors import FileFormatError


@pytest.mark.parametrize("name", BUILTIN_CIFS)
def test_builtin_names_load_the_shipped_cif(name, data_samples):
    phase = load_phase(name)
    assert phase.name == name
    assert phase_cif_text(phase) == (data_samples / f"{name}.cif").read_text(encoding="utf-8")
    assert resolve_cif(f"{name}.cif") == resolve_cif(name)


def test_a_path_wins_and_unknown_names_are_refused(tmp_path, monkeypatch, capsys, data_samples):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "au").write_text((data_samples / "zro2_baddeleyite.cif").read_text(encoding="utf-8"))
    assert resolve_cif("au") == Path("au")  # an existing path, as given
    assert load_phase("au").point_group.name == "2/m"  # the user's file of that name, not the built-in
    with pytest.raises(FileFormatError, match="expected the path of a CIF file or a built-in phase name"):
        resolve_cif("sub/au.cif")  # a path with a folder is a path: never a built-in
    assert main(["index", str(tmp_path / "au"), "--phase", "gold", "-o", str(tmp_path / "m.h5")]) == 2
    assert capsys.readouterr().err.strip() == (
        "stemgrains index: error: gold: CIF file not found; expected the path of a CIF file or a built-in phase "
        "name (na_beta2_alumina, au, zro2_baddeleyite)")
