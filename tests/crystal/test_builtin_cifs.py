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
        "stemgrains index: error: gold: CIF file not found; did you mean au? expected the path of a CIF file or a "
        "built-in phase name (na_beta2_alumina, au, zro2_baddeleyite)")
    with pytest.raises(FileFormatError, match="^'': expected the path of a CIF file .*got an empty name$"):
        resolve_cif("")  # used to say '.: is a folder'



def test_a_folder_named_like_a_builtin_phase_does_not_hide_it(tmp_path, monkeypatch):
    """A data folder `au/` in the working directory used to make `--phase au` fail ('is a folder')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "au").mkdir()
    assert resolve_cif("au") != Path("au") and load_phase("au").point_group.name == "m-3m"


def test_a_builtin_name_is_fingerprinted_by_the_cifs_content(data_samples):
    """--phase au and --phase PATH/au.cif (the same content) are the same parameters of a run or batch: the same
    fingerprint, so a finished run is recognised whichever was typed."""
    from stemgrains.batch import params_fingerprint
    from stemgrains.commands._batch import batch_params
    from stemgrains.settings import default_config

    cfg = default_config()
    by_name, by_path = batch_params(["au"], cfg, "index"), batch_params([str(data_samples / "au.cif")], cfg, "index")
    assert by_name["phase_sha256"] == by_path["phase_sha256"] and by_name["phase_sha256"][0]
    assert params_fingerprint(by_name) == params_fingerprint(by_path)
    assert by_name["_phases"] == [str(resolve_cif("au").resolve())]


def test_the_phase_help_names_the_builtin_cifs():
    from stemgrains.commands._common import PHASE_HELP

    assert all(n in PHASE_HELP for n in BUILTIN_CIFS)  # the help of --phase (index, run, calibrate) lists them all


@pytest.mark.parametrize("typed, meant", [("na_beta2", "na_beta2_alumina"), ("zro2", "zro2_baddeleyite"),
                                          ("au.cf", "au.cif"), ("na_beta2_alumnia", "na_beta2_alumina"),
                                          ("gold", "au"), ("Zirconia", "zro2_baddeleyite")])
def test_a_near_miss_says_which_phase_was_meant(typed, meant, tmp_path, monkeypatch):
    """`--phase na_beta2` listed the built-in names but did not say which one was meant."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "au.cif").write_text("")  # a CIF of the working directory is a candidate too
    with pytest.raises(FileFormatError, match=f"^{typed}: CIF file not found; did you mean {meant}\\? expected the "):
        resolve_cif(typed)


def test_a_near_miss_in_a_folder_names_that_folders_cif(data_samples):
    typed = data_samples / "na_beta2.cif"
    with pytest.raises(FileFormatError, match=f"did you mean {data_samples / 'na_beta2_alumina.cif'}\\?"):
        resolve_cif(typed)
    with pytest.raises(FileFormatError) as err:  # nothing close: no guess
        resolve_cif(data_samples / "quartz.cif")
    assert "did you mean" not in str(err.value)


def test_a_monoclinic_b_unique_cif_is_compared_under_its_own_two_fold(tmp_path):
    """orix's 2/m has its 2-fold along c* (c-unique); ZrO₂ (P2₁/c, b-unique) had its symmetry about the wrong axis:
    two orientations 180° about b apart (one orientation) came out 180° apart, and an indexed scan of our own
    simulator scored 16 % within 2° of its truth. The cell is relabelled a b c → c a b (c-unique)."""
    import numpy as np
    from orix.quaternion import Rotation

    from stemgrains.boundaries import disorientation
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d, load_truth
    from stemgrains.simulate import simulate_polycrystal

    ph = load_phase("zro2_baddeleyite")
    lat = ph.structure.lattice
    assert np.allclose(lat.abcABG(), (5.3173, 5.1505, 5.2116, 90, 90, 99.23), atol=1e-3)  # b-unique a b c, β
    q = Rotation.random(5)
    along_b = Rotation.from_axes_angles([0, 0, 1], np.pi) * q  # the old b is the new c, along e3
    assert np.allclose(disorientation(q.data, along_b.data, ph)[0], 0, atol=1e-6)
    assert np.all(disorientation(q.data, (Rotation.from_axes_angles([0, 1, 0], np.pi) * q).data, ph)[0] > 1)
    # the same relabelling on reading the CIF text back (results files store it)
    again = load_phase(resolve_cif("zro2_baddeleyite"))
    assert np.allclose(again.structure.lattice.abcABG(), lat.abcABG())
    path = tmp_path / "zr.h5"
    simulate_polycrystal(path, phases=[ph], scan_shape=(8, 8), detector_shape=(64, 64), n_grains=3, seed=3,
                         progress=False)
    xmap = index_orientations(load_4d(path), [ph], progress=False)
    ang = disorientation(xmap.rotations.data, load_truth(path)["quaternions"].reshape(-1, 4), ph)[0]
    assert np.mean(ang < 2) >= 0.95, np.round(ang, 1)
