"""Bad input gets a one-line error or a documented result, never a singular-matrix traceback (item 5)."""

from __future__ import annotations

import numpy as np
import pytest
from transport_helpers import C_Y, C_Z, make_grain_map

from stemgrains.errors import InputError, ParameterError, StemgrainsError
from stemgrains.transport import solve_transport

LR = {"left": 1.0, "right": 0.0}


@pytest.fixture
def gm():
    lab = np.ones((8, 10), np.int32)
    lab[:, 5:] = 2
    return make_grain_map(lab, [C_Y, C_Z])


@pytest.mark.parametrize("electrodes", [None, {}, [], "left", {"middle": 1.0}, [("left", 1.0, 2)], {"left": "x"}])
def test_missing_or_malformed_electrodes(gm, electrodes):
    with pytest.raises(ParameterError):
        solve_transport(gm, electrodes=electrodes)


@pytest.mark.parametrize("model", ["tensor", "resistor"])
def test_touching_electrodes_with_different_potentials(gm, model):
    with pytest.raises(InputError, match="overlap or touch"):
        solve_transport(gm, electrodes={"left": 1.0, "top": 0.0}, model=model)
    a = np.zeros((8, 10), bool)
    a[2:4, 2:4] = True
    b = np.zeros((8, 10), bool)
    b[4:6, 2:4] = True  # shares a row of pixel corners with a
    with pytest.raises(InputError, match="overlap or touch"):
        solve_transport(gm, electrodes=[(a, 1.0), (b, 0.0)], model=model)
    with pytest.raises(InputError, match="overlap or touch"):
        solve_transport(gm, electrodes=[(a, 1.0), (a, 0.0), ("right", 0.0)], model=model)


def test_touching_electrodes_at_the_same_potential_are_fine(gm):
    pad = np.zeros((8, 10), bool)
    pad[:3, :2] = True  # overlaps the left edge
    r = solve_transport(gm, electrodes={"left": ("left", 1.0), "pad": (pad, 1.0), "right": ("right", 0.0)})
    assert r.current_imbalance < 1e-9
    assert r.electrode_current("pad") > 0  # shared nodes count for the first electrode listed


@pytest.mark.parametrize("model", ["tensor", "resistor"])
def test_disconnected_region_is_reported_floating(model):
    lab = np.ones((9, 12), np.int32)
    lab[3:6, 4:8] = 2  # grain 2 inside a ring of ZrO2
    lab[2, 3:9] = 3
    lab[6, 3:9] = 3
    lab[2:7, 3] = 3
    lab[2:7, 8] = 3
    from orix.crystal_map import Phase, PhaseList

    phases = PhaseList(phases=[Phase("beta", point_group="-3m"), Phase("ZrO2", point_group="2/m")], ids=[0, 1])
    gm = make_grain_map(lab, [C_Z, C_Z, C_Z], phase_ids=[0, 0, 1], phases=phases)
    r = solve_transport(gm, electrodes=LR, model=model)
    assert r.n_floating_pixels == 12
    assert r.floating[4, 5] and not r.floating[0, 0]
    assert np.all(np.isnan(r.potential[3:6, 4:8]))
    assert np.all(np.isnan(r.potential[lab == 3]))  # blocking pixels have no potential
    assert np.all(np.isfinite(r.potential[0]))
    assert r.current_imbalance < 1e-9


def test_insulating_boundaries_cut_the_map(gm):
    inner = np.zeros((8, 10), bool)
    inner[:, 2] = True  # a second electrode inside the left grain: the right grain touches neither
    r = solve_transport(gm, electrodes=[("left", 1.0), (inner, 0.0)], gb_conductivity=0.0)
    assert r.n_floating_pixels == 40
    assert r.total_current > 0


@pytest.mark.parametrize("electrodes", [{"left": 1.0}, {"left": 1.0, "right": 1.0}, [("left", 0.5), ("top", 0.5)]])
def test_electrodes_that_drive_no_current(gm, electrodes):
    with pytest.raises(ParameterError, match="drive no current") as err:
        solve_transport(gm, electrodes=electrodes)
    assert "\n" not in str(err.value)


def test_transport_cli_one_electrode_is_an_error(tmp_path, capsys):
    from stemgrains.cli import main

    rc = main(["transport", str(tmp_path / "r.h5"), "--electrode", "left=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "drive no current" in err[0]
    with pytest.raises(InputError, match="no conducting pixel"):
        lab = np.ones((4, 4), np.int32)
        solve_transport(make_grain_map(lab, [C_Z]), electrodes=LR, unassigned="pore", blocking_phases=("beta",),
                        phases=None)


def test_electrode_on_blocking_pixels_only():
    lab = np.ones((6, 6), np.int32)
    lab[:, 0] = 0
    gm = make_grain_map(lab, [C_Z])
    with pytest.raises(InputError, match="'left' touches no conducting pixel"):
        solve_transport(gm, electrodes={"left": 1.0, "right": 0.0}, unassigned="pore", model="resistor")
    # as boundary material the unassigned column conducts
    r = solve_transport(gm, electrodes={"left": 1.0, "right": 0.0})
    assert r.total_current > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "fem"},
        {"conductivity_ratio": 0},
        {"conductivity_ratio": np.nan},
        {"gb_thickness_nm": -1},
        {"gb_conductivity": -0.1},
        {"frame": -2},
        {"frame": np.ones((3, 3), bool)},
        {"unassigned": "void"},
        {"periodic": "z"},
        {"periodic": "x"},  # the electrodes sit on the periodic edges
        {"solver": "lu"},
        {"model": "resistor", "periodic": "y"},
    ],
)
def test_bad_parameters(gm, kwargs):
    with pytest.raises(ParameterError):
        solve_transport(gm, electrodes=LR, **kwargs)


def test_bad_maps_and_masks(gm):
    with pytest.raises(InputError, match="not in the grain table"):
        solve_transport(make_grain_map(np.full((3, 3), 4), [C_Z]), electrodes=LR)
    with pytest.raises(InputError):
        solve_transport(object(), electrodes=LR)
    # it read "matches neither the map (3, 3) nor the grid (3, 3)" where the two are the same (unpadded) shape
    with pytest.raises(ParameterError, match=r"mask shape \(2, 2\), expected the map's \(8, 10\)$"):
        solve_transport(gm, electrodes=[(np.ones((2, 2), bool), 1.0)])
    with pytest.raises(ParameterError, match="boolean"):
        solve_transport(gm, electrodes=[(np.ones((8, 10)), 1.0)])
    with pytest.raises(ParameterError, match="empty"):
        solve_transport(gm, electrodes=[(np.zeros((8, 10), bool), 1.0)])


@pytest.mark.parametrize("solver", ["direct", "amg", "cg"])
def test_solvers_agree(gm, solver):
    r = solve_transport(gm, electrodes=LR, solver=solver)
    ref = solve_transport(gm, electrodes=LR, solver="direct")
    np.testing.assert_allclose(r.potential, ref.potential, atol=1e-7)
    assert r.solver["method"] == solver
    assert isinstance(r.solver["residual"], float)


def test_errors_are_stemgrains_errors():
    assert issubclass(ParameterError, StemgrainsError) and issubclass(InputError, StemgrainsError)


def test_electrode_mask_files_are_checked_and_named(tmp_path):
    """A float mask with NaN or values other than 0/1 is refused naming the file (it was read as bool, NaN as
    electrode pixels, and refused later as 'electrodes overlap or touch'); errors about a mask name its file, not
    'electrode_0'."""
    import numpy as np

    from stemgrains.errors import FileFormatError
    from stemgrains.pipeline import electrode_mask, transport_electrodes

    good = np.zeros((4, 5))
    good[:, 0] = 1
    np.save(tmp_path / "ok.npy", good)
    np.save(tmp_path / "nan.npy", np.where(good > 0, 1.0, np.nan))
    np.save(tmp_path / "half.npy", 0.5 * good)
    np.testing.assert_array_equal(electrode_mask(tmp_path / "ok.npy"), good > 0)
    for name, what in (("nan.npy", "holds NaN"), ("half.npy", "values other than 0 and 1")):
        with pytest.raises(FileFormatError, match=f"{name}: an electrode mask holds booleans or 0/1.*{what}"):
            electrode_mask(tmp_path / name)
    el = transport_electrodes({str(tmp_path / "ok.npy"): 1.0, "right": 0.0})
    assert set(el) == {str(tmp_path / "ok.npy"), "right"} and el["right"] == 0.0
    from stemgrains.transport.api import check_electrodes

    with pytest.raises(ParameterError, match=r"ok\.npy.*mask shape \(4, 5\)"):
        check_electrodes(el, (6, 6))
