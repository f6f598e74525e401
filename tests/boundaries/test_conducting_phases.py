"""Which phases are classified (only those with conduction planes), and `classify --field-from-transport`."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.boundaries import classify_boundaries, extract_boundaries, read_classification
from stemgrains.boundaries.classify import conducting_phase_ids, local_boundary_fields
from stemgrains.cli import main
from stemgrains.crystal import has_conduction_planes, load_phase
from stemgrains.errors import InputError
from stemgrains.grains import segment_grains
from stemgrains.io import write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance
from stemgrains.transport import read_transport


def _two_grain_map(phase: Phase, shape=(8, 10)) -> CrystalMap:
    ny, nx = shape
    q = np.tile(Rotation.from_axes_angles([1, 0, 0], np.pi / 2).data, (ny, nx, 1))  # c in the map plane
    q[:, nx // 2:] = (Rotation.from_axes_angles([0, 0, 1], np.pi / 2) * Rotation(q[0, 0])).data
    rr, cc = np.divmod(np.arange(ny * nx), nx)
    return CrystalMap(rotations=Rotation(q.reshape(-1, 4)), phase_id=np.zeros(ny * nx, int), x=cc * 2.0,
                      y=rr * 2.0, phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm")


def test_only_phases_with_conduction_planes(data_samples):
    nba = load_phase(data_samples / "na_beta2_alumina.cif")
    assert has_conduction_planes(nba)  # Na, Al, O in a trigonal structure
    assert has_conduction_planes(Phase(name="Na-β-alumina", point_group="6/mmm"))  # no atoms: by name
    assert has_conduction_planes(Phase(name="beta2", point_group="-3m"))
    for name, pg in (("Magnesium", "6/mmm"), ("Titanium", "6/mmm"), ("corundum", "-3m"), ("Ni", "m-3m")):
        assert not has_conduction_planes(Phase(name=name, point_group=pg)), name
    assert not has_conduction_planes(Phase(name="beta-brass", point_group="m-3m"))  # cubic: no basal planes
    au = load_phase(data_samples / "au.cif")
    pl = PhaseList(phases=[nba, Phase(name="Magnesium", point_group="6/mmm"), au], ids=[0, 1, 2])
    assert conducting_phase_ids(pl) == [0]
    assert conducting_phase_ids(pl, "Magnesium") == [1]  # configurable
    from stemgrains.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^conducting_phases: expected at least one phase name or id of the grain "
                                             r"map \(phases 0:.* \(trigonal\), 1:Magnesium \(hexagonal\), 2:.* \(cubic\)\)"):
        conducting_phase_ids(pl, [])  # every boundary other-phase, silently


def test_hexagonal_mg_is_not_labelled_a_conductor(tmp_path, capsys):
    mg = Phase(name="Magnesium", point_group="6/mmm")
    xmap = _two_grain_map(mg)
    gm = segment_grains(xmap)
    bt = extract_boundaries(gm, xmap)
    res = classify_boundaries(gm, bt, (1, 0))
    assert len(res.boundaries) == 1
    assert res.boundaries["label"].tolist() == ["other-phase"] and not res.boundaries["conducting"].any()
    assert np.isnan(res.boundaries["theta_2d"]).all() and res.parameters["conducting_phases"] == []
    # the CLI says so, and --conducting-phase makes it classify Mg's basal planes when the user wants it
    path = tmp_path / "mg.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    assert main(["segment", str(path), "-o", str(path)]) == 0
    assert main(["classify", str(path), "--field", "1,0"]) == 0
    out = capsys.readouterr().out
    assert "no phase with Na+ conduction planes among Magnesium" in out and "other-phase" in out
    assert main(["classify", str(path), "--field", "1,0", "--conducting-phase", "Magnesium"]) == 0
    cls = read_classification(path)
    assert cls.boundaries["label"][0] != "other-phase" and bool(cls.boundaries["conducting"][0])


def test_field_from_transport(tmp_path, capsys, data_samples):
    nba = load_phase(data_samples / "na_beta2_alumina.cif")
    xmap = _two_grain_map(nba, (10, 12))
    path = tmp_path / "r.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    assert main(["segment", str(path), "-o", str(path)]) == 0
    # no /transport yet: one line, exit 2
    assert main(["classify", str(path), "--field-from-transport"]) == 2
    err = capsys.readouterr().err
    assert "no /transport" in err and len(err.strip().splitlines()) == 1
    # --field and --field-from-transport exclude each other (argparse: exit 2)
    with pytest.raises(SystemExit) as exc:
        main(["classify", str(path), "--field", "1,0", "--field-from-transport"])
    assert exc.value.code == 2
    assert main(["transport", str(path), "--electrode", "top=1", "--electrode", "bottom=0"]) == 0
    assert main(["classify", str(path), "--field-from-transport", "--figures", str(tmp_path / "f")]) == 0
    assert "under the local transport field" in capsys.readouterr().out
    # the same as classifying with the transport result's boundary fields
    from stemgrains.boundaries import read_boundaries
    from stemgrains.grains import read_grains

    tr = read_transport(path)
    gm, bt = read_grains(path), read_boundaries(path)
    local, n_filled = local_boundary_fields(tr.boundary_field, len(bt.boundaries))
    assert n_filled == 0
    # a vertical boundary with electrodes top/bottom: the field runs along it (down, +y)
    assert abs(local[0, 1]) > 0.9 * np.hypot(*local[0])
    ref = classify_boundaries(gm, bt, local)
    got = read_classification(path)
    assert got.boundaries["label"].tolist() == ref.boundaries["label"].tolist()
    np.testing.assert_allclose(got.boundaries["psi"], ref.boundaries["psi"])
    assert got.boundaries["field_index"][0] == 2  # field along the boundary
    with h5py.File(path) as f:
        assert f["classification"].attrs["specification"] == "docs/classification.md"


def test_local_boundary_fields_fill_and_errors():
    bf = np.array([[0.0, 2.0], [np.nan, np.nan], [0.0, 0.0], [0.0, 4.0]])
    local, n = local_boundary_fields(bf, 4)
    assert n == 2 and np.allclose(local[1], [0.0, 3.0]) and np.allclose(local[2], [0.0, 3.0])
    assert local_boundary_fields(np.zeros((0, 2)), 0)[0].shape == (0, 2)
    for none in (np.full((2, 2), np.nan), np.zeros((2, 2))):  # floating, or no current: no field to classify under
        with pytest.raises(InputError, match="no current reaches any boundary"):
            local_boundary_fields(none, 2)
    with pytest.raises(InputError, match=r"expected \(3, 2\)"):
        local_boundary_fields(bf, 3)


@pytest.fixture(scope="module")
def au_segmented(tmp_path_factory, data_samples):
    """A segmented two-grain Au map: classify's input with a cubic phase only."""
    au = load_phase(data_samples / "au.cif")
    xmap = _two_grain_map(au)
    path = tmp_path_factory.mktemp("au_seg") / "au_seg.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
        gm = segment_grains(xmap)
        from stemgrains.boundaries import write_boundaries
        from stemgrains.grains import write_grains

        write_grains(f, gm)
        write_boundaries(f, extract_boundaries(gm, xmap))
    return path


@pytest.mark.parametrize("value, expect", [
    ('["au"]', "[classify] conducting_phases: phase 'au' is cubic; a conducting phase must be hexagonal or trigonal"),
    ("[1]", "[classify] conducting_phases: no phase 1 in the grain map (phases 0:au (cubic))"),
])
def test_classify_names_the_config_file_and_key(au_segmented, tmp_path, capsys, value, expect):
    """Issue: `classify --config FILE` errors about conducting_phases named neither the file nor the section (run
    and segment do: `FILE: [classify] conducting_phases: ...`); and an integer phase id ([1]) was refused as not a
    string although the dumped config says "names or ids"."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[classify]\nconducting_phases = {value}\n")
    out = tmp_path / "x.h5"
    assert main(["classify", str(au_segmented), "--field", "1,0", "--config", str(cfg), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"stemgrains classify: error: {cfg}: {expect}"), err
    assert not out.exists()


def test_integer_conducting_phase_ids_in_a_config(tmp_path, capsys, data_samples):
    mg = Phase(name="Magnesium", point_group="6/mmm")
    xmap = _two_grain_map(mg)
    path = tmp_path / "mg.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[classify]\nconducting_phases = [0]\n")
    assert main(["segment", str(path), "-o", str(path)]) == 0
    assert main(["classify", str(path), "--field", "1,0", "--config", str(cfg)]) == 0
    cls = read_classification(path)
    assert bool(cls.boundaries["conducting"][0]) and cls.parameters["conducting_phases"] == [{"id": 0, "name": "Magnesium"}]
    assert main(["classify", str(path), "--field", "1,0", "--config", str(path)]) == 0  # its recorded config again
