"""Boundary tables, results files, CLI and figures; end to end on a simulated lamella (issue 6 acceptance)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation
from transport_helpers import C_Z, boundary_table_from_labels, make_grain_map, random_c_axes, voronoi_labels

from stemgrains.cli import main
from stemgrains.grains import segment_grains, write_grains
from stemgrains.plot.transport import boundary_segments, save_transport_figures
from stemgrains.transport import read_transport, solve_transport, write_transport

LR = {"left": 1.0, "right": 0.0}


@pytest.fixture(scope="module")
def voronoi_map():
    lab = voronoi_labels((36, 48), 12, seed=7)
    return make_grain_map(lab, random_c_axes(12, seed=8), 2.0)


@pytest.mark.parametrize("reverse, swap", [(False, False), (True, False), (False, True)])
def test_boundary_field_follows_the_boundary_table(voronoi_map, reverse, swap):
    bt = boundary_table_from_labels(voronoi_map.labels, 2.0, reverse_order=reverse, swap_ab=swap)
    r = solve_transport(voronoi_map, electrodes=LR, boundaries=bt)
    free = solve_transport(voronoi_map, electrodes=LR)
    assert r.boundary_field.shape == (len(bt.boundaries), 2)
    for i, (a, b) in enumerate(zip(bt.boundaries["grain_a"], bt.boundaries["grain_b"])):
        key = (min(a, b), max(a, b))
        np.testing.assert_allclose(r.boundary_field[i], free.boundary_field[key], rtol=1e-9)
        j = np.flatnonzero((free.boundaries["grain_a"] == key[0]) & (free.boundaries["grain_b"] == key[1]))[0]
        sign = -1.0 if a > b else 1.0  # current and mismatch are from the table's grain_a to grain_b
        assert r.boundaries["current"][i] == pytest.approx(sign * free.boundaries["current"][j], rel=1e-9, abs=1e-15)
        assert r.boundaries["boundary_id"][i] == bt.boundaries["boundary_id"][i]
    # one segment per boundary here: segment results equal boundary results
    assert r.segments is not None and len(r.segments) == len(bt.segments)
    order = np.argsort(r.segments["boundary_id"])
    np.testing.assert_allclose(r.segments["field"][order], r.boundary_field[np.argsort(r.boundaries["boundary_id"])])
    np.testing.assert_array_equal(r.segments["n_faces"][order] * 2.0, bt.segments["length_nm"][order])


def test_boundary_current_balances_grain_currents():
    """Three grains in series: the same current crosses both boundaries and equals the electrode current."""
    lab = np.ones((10, 30), np.int32)
    lab[:, 10:20] = 2
    lab[:, 20:] = 3
    c = [[np.cos(0.3), np.sin(0.3), 0.1], C_Z, [np.cos(1.9), np.sin(1.9), 0.5]]
    r = solve_transport(make_grain_map(lab, c), electrodes=LR)
    np.testing.assert_allclose(r.boundaries["current"], r.total_current, rtol=1e-8)
    assert np.all(r.boundaries["field"][:, 0] > 0)


def test_classification_accepts_the_boundary_fields(voronoi_map):
    classify = pytest.importorskip("stemgrains.boundaries.classify")
    if not hasattr(classify, "classify_boundaries"):
        pytest.skip("classify_boundaries not available yet")
    bt = boundary_table_from_labels(voronoi_map.labels, 2.0)
    r = solve_transport(voronoi_map, electrodes=LR, boundaries=bt)
    assert np.all(np.isfinite(r.boundary_field)) and np.all(np.linalg.norm(r.boundary_field, axis=1) > 0)
    assert r.boundary_field.dtype == np.float64


def test_write_read_roundtrip(tmp_path, voronoi_map):
    bt = boundary_table_from_labels(voronoi_map.labels, 2.0)
    for boundaries in (None, bt):
        r = solve_transport(voronoi_map, electrodes=LR, boundaries=boundaries, frame=2)
        path = tmp_path / f"t{boundaries is None}.h5"
        write_transport(path, r)
        back = read_transport(path)
        np.testing.assert_array_equal(back.potential, r.potential)
        np.testing.assert_array_equal(back.node_potential, r.node_potential)
        np.testing.assert_array_equal(back.boundaries["current"], r.boundaries["current"])
        assert back.map_window == r.map_window and back.model == r.model
        assert back.electrode_current("left") == r.electrode_current("left")
        if boundaries is None:
            assert back.boundary_field == r.boundary_field
        else:
            np.testing.assert_array_equal(back.boundary_field, r.boundary_field)
            assert len(back.segments) == len(r.segments)
        with h5py.File(path, "r") as f:
            assert "transport" in f.attrs["parameters"] if "parameters" in f.attrs else "transport" in f["parameters"].attrs


def simulated_lamella(path, seed=0):
    """A Na-β″-alumina lamella: Voronoi grains with random orientations, 1 ° noise, a ZrO2 grain; segmented."""
    rng = np.random.default_rng(seed)
    shape = (40, 64)
    lab = voronoi_labels(shape, 14, seed=seed)
    q = rng.normal(size=(14, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    qq = q[lab - 1].reshape(-1, 4)
    phase_id = np.where(lab == 5, 1, 0)  # one zirconia grain
    phases = PhaseList(phases=[Phase("na_beta2_alumina", point_group="-3m"), Phase("ZrO2", point_group="2/m")],
                       ids=[0, 1])
    rr, cc = np.indices(shape)
    xmap = CrystalMap(rotations=Rotation(qq), phase_id=phase_id.ravel(), x=cc.ravel() * 2.0, y=rr.ravel() * 2.0,
                      phase_list=phases, scan_unit="nm")
    gm = segment_grains(xmap, min_grain_size=2)
    write_grains(path, gm)
    return gm


def test_cli_end_to_end_on_a_simulated_lamella(tmp_path, capsys):
    src = tmp_path / "lamella.h5"
    gm = simulated_lamella(src)
    out = tmp_path / "out.h5"
    figs = tmp_path / "figs"
    rc = main(["transport", str(src), "--electrode", "left=1", "--electrode", "right=0", "--frame", "2",
               "-o", str(out), "--figures", str(figs)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "conductance:" in text
    # the unit as `run` prints it (it read "sigma_ip*V" here, "σ_ip·V per unit lamella thickness" there)
    assert text.count("σ_ip·V per unit lamella thickness") == 2 and "sigma_ip" not in text
    r = read_transport(out)
    assert r.current_imbalance < 1e-8
    assert np.all(np.isfinite(r.crop(r.potential))[r.crop(r.region) == 1])
    assert np.sum(r.crop(r.region) == 0) > 0  # the zirconia grain blocks
    assert np.all(np.isnan(r.crop(r.potential))[r.crop(r.region) == 0])
    fields = r.boundary_field
    assert len(fields) == len(r.boundaries) > 5
    assert all(np.isfinite(v).all() for v in fields.values())
    for name in ("current", "potential", "mismatch"):
        p = figs / f"transport_{name}.png"
        assert p.is_file() and p.stat().st_size > 10_000
    with h5py.File(src, "r") as f:
        assert "transport" not in f  # -o leaves the input alone
    assert gm.n_grains >= 10


def test_cli_errors(tmp_path, capsys):
    src = tmp_path / "lamella.h5"
    simulated_lamella(src, seed=1)
    assert main(["transport", str(src)]) == 2
    assert "--electrode is required" in capsys.readouterr().err
    assert main(["transport", str(src), "--electrode", "left=1", "--electrode", "top=0"]) == 2
    assert "overlap or touch" in capsys.readouterr().err
    assert main(["transport", str(src), "--electrode", "middle=1"]) == 2
    assert main(["transport", str(tmp_path / "missing.h5"), "--electrode", "left=1"]) == 2
    mask = np.zeros((40, 64), bool)
    mask[10:20, 30:34] = True
    np.save(tmp_path / "pad.npy", mask)
    assert main(["transport", str(src), "--electrode", "left=1", "--electrode", f"{tmp_path / 'pad.npy'}=0",
                 "--model", "resistor"]) == 0
    assert read_transport(src).model == "resistor"


def test_boundary_segments_of_a_bicrystal():
    lab = np.ones((3, 4))
    lab[:, 2:] = 2
    seg = boundary_segments(lab, 2.0)
    assert seg.shape == (3, 2, 2)
    np.testing.assert_allclose(seg[:, :, 0], 4.0)


def test_figures_for_both_models(tmp_path, voronoi_map):
    for model in ("tensor", "resistor"):
        r = solve_transport(voronoi_map, electrodes=LR, model=model)
        paths = save_transport_figures(r, tmp_path / model)
        assert sorted(paths) == ["current", "mismatch", "potential"]
        assert all(p.stat().st_size > 10_000 for p in paths.values())


@pytest.mark.parametrize("model", ["tensor", "resistor"])
def test_no_current_between_unconnected_electrodes_is_zero_not_noise(model):
    """Grains 1 | pore (unassigned) | 2 | 3 between the electrodes: no current flows. The solve leaves ~1e-15 V/nm;
    it used to be read as a local field (classify --field-from-transport labelled every boundary under a
    direction of round-off, fresh-user test). Now field, currents and boundary fields are exactly 0, and the
    local field refuses to classify under them."""
    from stemgrains.boundaries.classify import local_boundary_fields
    from stemgrains.errors import InputError

    lab = np.ones((8, 30), np.int32)
    lab[:, 8:12] = 0  # unassigned: a pore
    lab[:, 12:20] = 2
    lab[:, 20:] = 3
    c = [[np.cos(0.3), np.sin(0.3), 0.1], C_Z, [np.cos(1.9), np.sin(1.9), 0.5]]
    bt = boundary_table_from_labels(lab, 1.0)
    r = solve_transport(make_grain_map(lab, c), electrodes=LR, boundaries=bt, model=model, unassigned="pore")
    assert r.total_current == 0 and r.conductance == 0
    f = r.field[np.isfinite(r.field)]
    assert np.all(f == 0) and np.all(r.boundary_field == 0)
    with pytest.raises(InputError, match="no current reaches any boundary.*--field"):
        local_boundary_fields(r.boundary_field, len(bt.boundaries))
    from stemgrains.plot.transport import plot_current_density

    texts = [t.get_text() for t in plot_current_density(r).axes[0].texts]
    assert any(t.startswith("no current flows between the electrodes") for t in texts), texts
    # connected: the same map without the pore carries current, and its boundaries a field
    lab[:, 8:12] = 1
    r = solve_transport(make_grain_map(lab, c), electrodes=LR, boundaries=boundary_table_from_labels(lab, 1.0),
                        model=model)
    assert r.total_current > 0 and np.all(np.linalg.norm(r.boundary_field, axis=1) > 0)


def test_run_without_field_on_a_map_no_current_crosses_says_the_classification_does_not_apply():
    """Second fresh-user round: `run` with electrodes and no --field on such a map printed 'transmitting 100 %'
    under an invented +x field, with summary.json saying the classification applied."""
    from types import SimpleNamespace

    from stemgrains.pipeline import _classification_summary, _run_transport_stage

    lab = np.ones((8, 30), np.int32)
    lab[:, 8:12] = 0
    lab[:, 12:20] = 2
    lab[:, 20:] = 3
    gm = make_grain_map(lab, [[np.cos(0.3), np.sin(0.3), 0.1], C_Z, [np.cos(1.9), np.sin(1.9), 0.5]])
    bt = boundary_table_from_labels(lab, 1.0)
    transport, skipped, field, source = _run_transport_stage(gm, bt, LR, {"unassigned": "pore"}, {}, None)
    assert transport.total_current == 0 and skipped is None and source.startswith("+x, assumed (no current flows")
    from stemgrains.pipeline import transport_summary

    assert transport_summary(transport)["transport_note"].startswith("no current flows between the electrodes")
    cls = SimpleNamespace(parameters={"conducting_phases": [{"id": 0, "name": "na_beta2_alumina"}]},
                          summary=lambda: {"behaviour_fraction": {"transmitting": 1.0}})
    summary = _classification_summary(cls, gm, source)
    assert summary["applies"] is False and "no current flows between the electrodes" in summary["note"]
    assert _classification_summary(cls, gm, "applied")["applies"] is True


def test_electrodes_are_marked_outside_the_data(voronoi_map, tmp_path):
    """The electrode labels were drawn over the map (over the current near the electrode); the mismatch figure
    filled grains with pastel hues that read as mismatch colours. Now each edge electrode is a dark bar outside the
    frame (no red or blue: the colour scales use them), named with its potential under the title (a mask by its
    file name), and the grains are grey; a wide map's colour bar lies under it."""
    from matplotlib.colors import to_rgb

    from stemgrains.plot.transport import plot_boundary_mismatch, plot_current_density, plot_potential

    r = solve_transport(voronoi_map, electrodes=LR)
    for plot in (plot_current_density, plot_potential, plot_boundary_mismatch):
        fig = plot(r)
        ax = fig.axes[0]
        assert not [t.get_text() for t in ax.texts if " V" in t.get_text()]  # nothing written over the data
        assert "electrodes (bars on their edges): left 1 V, right 0 V" in ax.get_title()
        fig.canvas.draw()
        frame = ax.get_window_extent()
        bars = [ln for ln in ax.lines if ln.get_linewidth() == 4]
        assert len(bars) == 2 and all(np.ptp(to_rgb(ln.get_color())) == 0 for ln in bars)  # grey, not a hue
        xs = sorted(ln.get_transform().transform(np.c_[ln.get_xdata(), ln.get_ydata()])[:, 0].mean() for ln in bars)
        assert xs[0] < frame.x0 and xs[1] > frame.x1
    grains = plot_boundary_mismatch(r).axes[0].images[0]
    rgb = grains.cmap(np.linspace(0, 1, 7))[:, :3]
    assert np.allclose(rgb, rgb[:, :1])  # greys: no hue competes with the mismatch colours
    # a mask electrode is named by its file name, and is no bar
    ny, nx = voronoi_map.labels.shape
    mask = np.zeros((ny, nx), bool)
    mask[ny // 2, nx // 2] = True
    r = solve_transport(voronoi_map, electrodes={"left": 1.0, str(tmp_path / "mid.npy"): (mask, 0.0)})
    ax = plot_potential(r).axes[0]
    assert ax.get_title().replace("\n", " ").endswith("left 1 V, mid.npy 0 V (mask)") and str(tmp_path) not in ax.get_title()
    assert len([ln for ln in ax.lines if ln.get_linewidth() == 4]) == 1


def test_the_mismatch_figure_of_a_map_without_boundaries_says_so():
    """A one-grain strip: the mismatch figure showed grey fills with no colour bar and no word."""
    from stemgrains.plot.transport import plot_boundary_mismatch

    lab = np.ones((1, 12), np.int32)
    r = solve_transport(make_grain_map(lab, [[np.cos(0.3), np.sin(0.3), 0.1]]), electrodes=LR)
    ax = plot_boundary_mismatch(r).axes[0]
    assert any(t.get_text().startswith("no grain boundary in the conducting region") for t in ax.texts)
