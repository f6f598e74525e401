"""Figures that read (one IPF key, keys drawn the right way round, nm axes, boundaries on pixel edges, no
colliding text at several map shapes), the data dictionary, the classification spec and the notebook setup
(issue #14 item 6)."""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from orix.crystal_map import CrystalMap, PhaseList
from orix.quaternion import Rotation

from stemgrains.boundaries import classify_boundaries, extract_boundaries
from stemgrains.cli import main
from stemgrains.crystal import load_phase
from stemgrains.data_dictionary import GROUPS, describe
from stemgrains.dictionary_page import render_markdown
from stemgrains.grains import segment_grains
from stemgrains.io import write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance
from stemgrains.plot.classification import plot_boundary_behaviour, plot_grain_traces
from stemgrains.plot.colors import grain_ipf_colors, ipf_color_key, ipf_key_image, orientation_colors
from stemgrains.plot.grains import grain_colors, plot_grain_map
from stemgrains.plot.orientation import ipf_colors, plot_orientation_map

REPO = Path(__file__).resolve().parents[1]
STEP = 2.0


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _voronoi_xmap(shape, n, phase, seed=3):
    rng = np.random.default_rng(seed)
    ny, nx = shape
    seeds = rng.uniform([0, 0], [ny, nx], size=(n, 2))
    rr, cc = np.indices(shape)
    lab = np.argmin((rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2, axis=-1)
    gq = rng.normal(size=(n, 4))
    gq /= np.linalg.norm(gq, axis=1, keepdims=True)
    r, c = np.divmod(np.arange(ny * nx), nx)
    return CrystalMap(rotations=Rotation(gq[lab].reshape(-1, 4)), phase_id=np.zeros(ny * nx, int), x=c * STEP,
                      y=r * STEP, phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm",
                      prop={"correlation_index": rng.random(ny * nx), "reliability": 30 * rng.random(ny * nx)})


def _stages(xmap):
    gm = segment_grains(xmap, min_grain_size=2)
    bt = extract_boundaries(gm, xmap)
    return gm, bt, classify_boundaries(gm, bt, (1.0, 0.0))


# ---------------------------------------------------------------------------------------------- one key
def test_one_ipf_key_for_every_figure(nba):
    xmap = _voronoi_xmap((12, 16), 4, nba)
    gm, _, _ = _stages(xmap)
    pix = ipf_colors(xmap)  # orientation_ipf_z.png
    by_id = grain_colors(gm, "ipf")  # grains_ipf.png
    by_row = grain_ipf_colors(gm)  # grain_traces.png, boundary_behaviour.png
    key = ipf_color_key(nba)
    from orix.quaternion import Orientation

    direct = key.orientation2color(Orientation(xmap.rotations, symmetry=nba.point_group.laue)).reshape(12, 16, 3)
    np.testing.assert_allclose(pix, direct, atol=1e-12)
    for row, gid in enumerate(np.asarray(gm.table["id"]).tolist()):
        inside = gm.labels == gid
        np.testing.assert_allclose(pix[inside], np.broadcast_to(by_row[row], pix[inside].shape), atol=1e-6)
        np.testing.assert_allclose(by_id[gid], by_row[row], atol=1e-12)
    # symmetry-equivalent orientations: the same colour
    s = nba.point_group.laue.proper_subgroup.data
    q = Rotation.random(20).data
    np.testing.assert_allclose(orientation_colors((Rotation(s[2]) * Rotation(q)).data, nba), orientation_colors(q, nba),
                               atol=1e-9)
    # not finite → grey, not a crash
    assert np.allclose(orientation_colors([[np.nan] * 4], nba), 0.6)


def _key_axes(fig):
    return [ax for ax in fig.axes if ax.name == "ipf"]


def _check_key(ax, laue):
    """The key image reads the right way round: the colour drawn at a direction's stereographic position is
    the key's colour of that direction (a mirrored image fails this), and the poles are labelled."""
    from orix.projections import StereographicProjection
    from orix.vector import Vector3d

    assert any(re.fullmatch(r"\[[0-9\u0305\-\s]+\]", t.get_text().replace("$", "").replace("\\bar{1}", "1"))
               or t.get_text().startswith("[") for t in ax.texts), "pole labels missing"
    im = ax.images[0]
    arr = np.asarray(im.get_array())
    x0, x1, y0, y1 = im.get_extent()
    h, w = arr.shape[:2]
    sector = laue.fundamental_sector
    centre = sector.center.unit.data.reshape(3)
    verts = sector.vertices.data.reshape(-1, 3)
    # directions between the sector's centre and each corner (off any mirror line: a flipped image fails)
    dirs = Vector3d(np.array([0.55 * centre + 0.45 * v for v in verts] + [centre])).unit
    dirs = dirs[np.asarray(dirs <= sector).ravel()]
    assert dirs.size >= 2
    x, y = StereographicProjection().vector2xy(dirs)
    cols = np.clip(((x - x0) / (x1 - x0) * w).astype(int), 0, w - 1)
    rows = ((y1 - y) / (y1 - y0) * h) if im.origin == "upper" else ((y - y0) / (y1 - y0) * h)
    rows = np.clip(rows.astype(int), 0, h - 1)
    want = ipf_color_key(laue).direction_color_key.direction2color(dirs)
    np.testing.assert_allclose(arr[rows, cols, :3], want, atol=0.06)


def test_keys_drawn_right_way_round_with_pole_labels(nba):
    xmap = _voronoi_xmap((10, 14), 3, nba)
    gm, bt, _ = _stages(xmap)
    laue = nba.point_group.laue
    for fig in (plot_orientation_map(xmap), plot_grain_map(gm, bt), plot_grain_traces(gm)):
        keys = _key_axes(fig)
        assert len(keys) == 1
        _check_key(keys[0], laue)
    assert _key_axes(plot_grain_map(gm, bt, color="random")) == []  # random colours: no IPF key
    img, _ = ipf_key_image(laue, n=40)
    assert img.shape[-1] == 4 and 0 < img[..., 3].mean() < 1


# ---------------------------------------------------------------------------------------------- geometry
def test_grain_map_in_nm_with_boundaries_on_pixel_edges(nba):
    xmap = _voronoi_xmap((15, 15), 5, nba)
    gm, bt, _ = _stages(xmap)
    fig = plot_grain_map(gm, bt)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "x (nm)" and ax.get_ylabel() == "y (nm)"
    assert ax.get_xlim() == pytest.approx((-0.5 * STEP, 14.5 * STEP))
    pts = np.concatenate([np.concatenate(c.get_segments()) for c in ax.collections])
    assert len(pts)
    # every end point is a pixel corner: (k + 1/2) scan steps
    np.testing.assert_allclose((pts / STEP - 0.5) % 1.0, 0.0, atol=1e-9)
    # each boundary's edges join up: at every corner 2, 3 or 4 edge ends meet (no dangling bits inside the map)
    corners, counts = np.unique(np.round(pts / STEP - 0.5).astype(int), axis=0, return_counts=True)
    inside = (corners[:, 0] > -1) & (corners[:, 0] < 14) & (corners[:, 1] > -1) & (corners[:, 1] < 14)
    assert np.all(counts[inside] >= 2)
    # the boundary-behaviour overlay uses the same pixel edges
    fig2 = plot_boundary_behaviour(gm, bt, classify_boundaries(gm, bt, (1, 0)), (1, 0))
    pts2 = np.concatenate([np.concatenate(c.get_segments()) for c in fig2.axes[0].collections if len(c.get_segments())])
    np.testing.assert_allclose((pts2 / STEP - 0.5) % 1.0, 0.0, atol=1e-9)


def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of overlapping labels: axes titles, axis labels, legends and side-panel notes (not the ids and tick
    labels drawn on the map itself)."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = []
    for k, ax in enumerate(fig.axes):
        items = [ax.title, ax.xaxis.label, ax.yaxis.label]
        if ax.get_legend() is not None:
            items.append(ax.get_legend())
        if not ax.axison:  # side panels: their notes
            items += list(ax.texts)
        for it in items:
            if hasattr(it, "get_text") and not it.get_text():
                continue
            if it.get_visible():
                boxes.append((f"axes{k}:{getattr(it, 'get_text', lambda: 'legend')()[:25]}", it.get_window_extent(r)))
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


@pytest.mark.parametrize("shape", [(40, 6), (12, 1), (24, 40)])
def test_the_behaviour_key_is_stacked_under_its_legend(nba, shape):
    """The field arrow and the model's parameters were placed by fractions of the key panel: beside a tall map they
    stood inches below the legend (the arrow mid-height, the parameters at the bottom)."""
    xmap = _voronoi_xmap(shape, 8 if min(shape) > 1 else 3, nba)
    gm, bt, cls = _stages(xmap)
    fig = plot_boundary_behaviour(gm, bt, cls, (1, 0))
    FigureCanvasAgg(fig)
    r = fig.canvas.get_renderer()
    side = next(ax for ax in fig.axes if not ax.axison and ax.get_legend() is not None)
    params = next(t for t in side.texts if "τ_flow" in t.get_text())
    gap_in = (side.get_legend().get_window_extent(r).y0 - params.get_window_extent(r).y1) / fig.dpi
    assert 0.5 < gap_in < 2.0, gap_in  # the arrow between them, nothing far below
    assert _overlaps(fig) == []


@pytest.mark.parametrize("shape", [(24, 40), (40, 40), (64, 64), (15, 15), (1, 12), (12, 1)])
def test_no_colliding_labels(nba, shape, tmp_path):
    xmap = _voronoi_xmap(shape, 8 if min(shape) > 1 else 3, nba)
    gm, bt, cls = _stages(xmap)
    for make in (lambda: plot_grain_traces(gm), lambda: plot_boundary_behaviour(gm, bt, cls, (1, 0)),
                 lambda: plot_grain_map(gm, bt), lambda: plot_orientation_map(xmap)):
        fig = make()
        assert _overlaps(fig) == []
    # grains whose c axis is ambiguous: grey traces, a third legend entry, the note moved down
    gm.table["median_c_axis_reliability"] = np.where(np.arange(gm.n_grains) % 2 == 0, 0.5, 40.0)
    fig = plot_grain_traces(gm)
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
    assert len(legend.get_texts()) == (3 if gm.n_grains else 2)
    assert _overlaps(fig) == []
    # ... and on the behaviour map: pale segments with their legend entry, and a note (a failed phase fit)
    fig = plot_boundary_behaviour(gm, bt, classify_boundaries(gm, bt, (1, 0)), (1, 0), note=(
        "the phase fit failed (summary.json phase_fit): the phase or the calibration does not explain the "
        "patterns, so these labels may be meaningless"))
    assert _overlaps(fig) == []
    # the saved PNGs hold everything drawn (legends and notes outside the map are not cut off)
    from matplotlib.image import imread

    for name, fig in (("t.png", plot_grain_traces(gm, path=tmp_path / "t.png")),
                      ("b.png", plot_boundary_behaviour(gm, bt, cls, (1, 0), path=tmp_path / "b.png"))):
        FigureCanvasAgg(fig)
        tight = fig.get_tightbbox(fig.canvas.get_renderer())
        h, w = imread(tmp_path / name).shape[:2]
        assert w >= tight.width * fig.dpi - 2 and h >= tight.height * fig.dpi - 2, name


def test_figures_of_the_shared_pd_map(shared_data, tmp_path):
    """The 15 × 15 ASTAR Pd map of the issue: every grain figure is written, boundaries on pixel edges."""
    from stemgrains.io import load_orientation_map

    xmap = load_orientation_map(shared_data / "maps" / "pd_astar_acom.ang")
    gm = segment_grains(xmap, min_grain_size=2)
    bt = extract_boundaries(gm, xmap)
    fig = plot_grain_map(gm, bt)
    pts = np.concatenate([np.concatenate(c.get_segments()) for c in fig.axes[0].collections])
    np.testing.assert_allclose((pts / gm.scan_step_nm - 0.5) % 1.0, 0.0, atol=1e-9)
    assert _overlaps(fig) == [] and _overlaps(plot_orientation_map(xmap)) == []


# ---------------------------------------------------------------------------------------------- documents
def test_data_dictionary_page_is_generated_from_the_module():
    page = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    marker = "<!-- generated from stemgrains.data_dictionary: do not edit below -->\n\n"
    assert marker in page, "docs/data-dictionary.md lost its generated part"
    assert page.split(marker, 1)[1] == render_markdown(), "regenerate: python -m stemgrains.dictionary_page"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for needle in ("docs/data-dictionary.md", "docs/classification.md", "grains_random.png"):
        assert needle in readme


def test_every_written_dataset_and_csv_column_is_documented(tmp_path, nba, capsys):
    xmap = _voronoi_xmap((12, 14), 4, nba)
    path = tmp_path / "r.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    assert main(["segment", str(path), "-o", str(path), "--csv", str(tmp_path / "seg.csv")]) == 0
    assert main(["transport", str(path), "--electrode", "left=1", "--electrode", "right=0"]) == 0
    assert main(["classify", str(path), "--field", "1,0", "--csv", str(tmp_path / "cls.csv")]) == 0
    undocumented = []
    with h5py.File(path) as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                if "unit" not in obj.attrs or "description" not in obj.attrs:
                    undocumented.append(name)
                else:
                    group, _, col = name.rpartition("/")
                    assert describe(group, col) == (obj.attrs["unit"], obj.attrs["description"])
        f.visititems(visit)
    assert undocumented == []
    for csv_name, group in (("cls.csv", "classification/boundaries"), ("cls.segments.csv", "classification/segments"),
                            ("seg.csv", "boundaries/boundaries"), ("seg.segments.csv", "boundaries/segments")):
        with open(tmp_path / csv_name, newline="") as fh:
            header = next(csv.reader(fh))
        cols = {re.sub(r"_\d$", "", h) if h not in GROUPS[group] else h for h in header}
        assert cols <= set(GROUPS[group]), (csv_name, cols - set(GROUPS[group]))


def test_every_group_attribute_is_named_on_the_data_dictionary_page(tmp_path, nba, nba_sample_run):
    """The attributes of every group of a run's results file (and of /transport) are named on
    docs/data-dictionary.md (/input sha256, /grains phase_lattices, /transport model/solver ... were not)."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    xmap = _voronoi_xmap((12, 14), 4, nba)
    path = tmp_path / "r.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    assert main(["segment", str(path), "-o", str(path)]) == 0
    assert main(["transport", str(path), "--electrode", "left=1", "--electrode", "right=0"]) == 0
    missing = set()
    for results in (nba_sample_run[0] / "results.h5", path):
        with h5py.File(results) as f:
            groups = [f] + [g for g in (f[n] for n in _all_names(f)) if isinstance(g, h5py.Group)]
            for g in groups:
                missing |= {(g.name, a) for a in g.attrs if f"`{a}`" not in page}
    assert not missing, sorted(missing)


def _all_names(f) -> list[str]:
    names: list[str] = []
    f.visit(names.append)
    return names


def test_classification_spec_is_ours_and_named_by_help(capsys):
    spec = REPO / "docs" / "classification.md"
    text = spec.read_text(encoding="utf-8")
    for needle in ("Type I", "theta_2d", "tau_flow", "r_block", "acc", "conducting-phase", "III a2"):
        assert needle in text
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    assert "docs/classification.md" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")
    shared = REPO.parent / "shared" / "docs" / "gb-classification.md"
    if shared.is_file():  # paraphrased, not copied: no long sentence of the source appears verbatim
        src = shared.read_text(encoding="utf-8")
        sentences = [s.strip() for s in re.split(r"(?<=[.:])\s", src) if len(s.strip()) > 60]
        assert not [s for s in sentences if s in text]


# ---------------------------------------------------------------------------------------------- notebook
def test_notebook_shows_figures_inline():
    """Our figures are bare matplotlib Figures; a notebook shows them as PNG only once the inline backend is
    set up, so the quickstart's first code cell does that (nbmake executes the notebook itself)."""
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / "01_quickstart.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.lstrip().startswith("%matplotlib inline")
    pytest.importorskip("nbclient")
    from nbclient import NotebookClient

    mini = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(first.source.splitlines()[0]),
        nbformat.v4.new_code_cell("from matplotlib.figure import Figure\nfrom IPython.display import display\n"
                                  "fig = Figure()\nfig.add_subplot().plot([0, 1])\ndisplay(fig)"),
    ])
    NotebookClient(mini, timeout=120, kernel_name="python3").execute()
    outputs = mini.cells[1].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs


def test_transport_figures_share_the_map_coordinates(nba):
    """Transport maps use the same nm coordinates as the orientation/grain maps (pixel centres at k · step)."""
    from stemgrains.plot.transport import plot_current_density, plot_potential
    from stemgrains.transport import solve_transport

    xmap = _voronoi_xmap((10, 16), 3, nba)
    gm, bt, _ = _stages(xmap)
    tr = solve_transport(gm, gm.phases, {"left": 1.0, "right": 0.0}, boundaries=bt)
    ref = plot_orientation_map(xmap).axes[0]
    for fig in (plot_current_density(tr), plot_potential(tr), plot_grain_map(gm, bt)):
        ax = fig.axes[0]
        assert ax.get_xlim() == pytest.approx(ref.get_xlim()) and ax.get_ylim() == pytest.approx(ref.get_ylim())
        assert ax.images[0].get_extent() == pytest.approx(ref.images[0].get_extent())


def test_two_phase_maps_get_one_key_per_laue_group(nba, data_samples):
    zro2 = load_phase(data_samples / "zro2_baddeleyite.cif")
    xmap = _voronoi_xmap((12, 12), 4, nba)
    pid = np.where(np.arange(144) % 12 < 6, 0, 1)
    xmap = CrystalMap(rotations=xmap.rotations, phase_id=pid, x=xmap.x, y=xmap.y,
                      phase_list=PhaseList(phases=[nba, zro2], ids=[0, 1]), scan_unit="nm")
    gm, bt, _ = _stages(xmap)
    for fig in (plot_orientation_map(xmap), plot_grain_map(gm, bt), plot_grain_traces(gm)):
        keys = _key_axes(fig)
        assert sorted(k._symmetry.name for k in keys) == ["-3m", "2/m"]
        for k in keys:
            _check_key(k, k._symmetry)
        assert _overlaps(fig) == []


def test_progress_bar_without_ipywidgets_is_the_text_bar(monkeypatch):
    """Without ipywidgets, tqdm.auto in a notebook warns 'IProgress not found' (TqdmWarning, an error under
    our filterwarnings); our progress bar falls back to tqdm's text bar instead."""
    import sys

    import tqdm as tqdm_mod

    from stemgrains._progress import progress_bar

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets → ImportError
    import os

    with open(os.devnull, "w") as sink:
        bar = progress_bar(total=3, disable=False, file=sink)
        try:
            assert type(bar) is tqdm_mod.std.tqdm
            bar.update(3)
        finally:
            bar.close()


def test_orientation_figures_add_the_c_axis_reliability_map_where_there_is_one(tmp_path):
    """index --figures / run write c_axis_reliability.png for a map with a finite c-axis reliability (non-cubic
    phase), not for one without (all NaN: cubic)."""
    from stemgrains.plot.orientation import save_orientation_figures

    n = 6 * 8
    y, x = np.divmod(np.arange(n), 8)
    for values, written in ((np.linspace(0, 60, n), True), (np.full(n, np.nan), False)):
        xmap = CrystalMap(Rotation.random(n), x=x * 2.0, y=y * 2.0, phase_list=PhaseList(names="beta2", point_groups="-3m"),
                          prop={"correlation_index": np.full(n, 0.8), "reliability": np.full(n, 10.0),
                                "c_axis_reliability": values})
        out = save_orientation_figures(xmap, tmp_path / str(written))
        assert (tmp_path / str(written) / "c_axis_reliability.png" in out) == written
        assert (tmp_path / str(written) / "c_axis_reliability.png").exists() == written
        assert not (tmp_path / str(written) / "grain_reliability.png").exists()  # no grain_reliability prop


def test_orientation_figures_add_the_grain_reliability_map_where_there_is_one(tmp_path):
    """A map indexed with the grain vote (prop grain_reliability) also gets grain_reliability.png."""
    from stemgrains.plot.orientation import save_orientation_figures

    n = 6 * 8
    y, x = np.divmod(np.arange(n), 8)
    xmap = CrystalMap(Rotation.random(n), x=x * 2.0, y=y * 2.0, phase_list=PhaseList(names="au", point_groups="m-3m"),
                      prop={"correlation_index": np.full(n, 0.8), "reliability": np.zeros(n),
                            "grain_reliability": np.linspace(0, 80, n)})
    out = save_orientation_figures(xmap, tmp_path)
    assert tmp_path / "grain_reliability.png" in out and (tmp_path / "grain_reliability.png").exists()


def test_reliability_maps_share_one_scale_and_mark_the_cut():
    """R, c-axis R and grain R are drawn on one colour scale (0–100, power law) so that they read side by side; the
    usual cut (5) is a labelled, dashed line on the colour bar and the title gives the share at or above it."""
    from matplotlib.colors import PowerNorm

    from stemgrains import config
    from stemgrains.plot.orientation import RELIABILITY_GAMMA, plot_quality_map

    n = 6 * 8
    y, x = np.divmod(np.arange(n), 8)
    rel = np.linspace(0, 20, n)
    xmap = CrystalMap(Rotation.random(n), x=x * 2.0, y=y * 2.0, phase_list=PhaseList(names="au", point_groups="m-3m"),
                      prop={"reliability": rel})
    fig = plot_quality_map(xmap, "reliability", vmax=100.0, cmap="magma", cut=config.GRAIN_VOTE_RELIABILITY,
                           gamma=RELIABILITY_GAMMA)
    ax, cax = fig.axes
    norm = ax.images[0].norm
    assert isinstance(norm, PowerNorm) and (norm.vmin, norm.vmax, norm.gamma) == (0.0, 100.0, RELIABILITY_GAMMA)
    assert 5.0 in list(cax.get_yticks()) and any(ln.get_linestyle() == "--" for ln in cax.get_lines())
    title = " ".join(fig._suptitle.get_text().replace("\u00a0", " ").split())  # unwrapped
    assert f"{100 * np.mean(rel >= 5):.0f} % ≥ the cut 5, dashed on the colour bar" in title
    # a wide map (4 x 12): the colour bar lies under it (beside it, it stood several times the map's height)
    y, x = np.divmod(np.arange(n), 12)
    wide = CrystalMap(Rotation.random(n), x=x * 2.0, y=y * 2.0, phase_list=PhaseList(names="au", point_groups="m-3m"),
                      prop={"reliability": rel})
    fig = plot_quality_map(wide, "reliability", vmax=100.0, cmap="magma", cut=config.GRAIN_VOTE_RELIABILITY,
                           gamma=RELIABILITY_GAMMA)
    ax, cax = fig.axes
    fig.canvas.draw()
    assert cax.get_window_extent().y1 < ax.get_window_extent().y0 and fig.get_figheight() < 5.0
    assert 5.0 in list(cax.get_xticks()) and any(ln.get_linestyle() == "--" for ln in cax.get_lines())


@pytest.mark.parametrize("shape", [(1, 30), (2, 30)])
def test_a_line_scans_grain_ids_stand_above_the_strip(nba, shape):
    """On a line scan's strip the ids stood half below its edge or under the trace bars (a fresh user's 1 × 30 run)."""
    xmap = _voronoi_xmap(shape, 3, nba)
    gm, _, _ = _stages(xmap)
    fig = plot_grain_traces(gm)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    top = ax.get_window_extent().y1
    ids = [t for t in ax.texts if t.get_text().isdigit()]
    assert len(ids) == gm.n_grains > 0
    for t in ids:
        box = t.get_window_extent()
        assert box.y0 >= top - 1, (t.get_text(), box.y0, top)  # above the strip, not on it
        assert box.y1 <= ax.title.get_window_extent().y0 + 1  # under the title
    assert _overlaps(fig) == []


@pytest.mark.parametrize("shape", [(40, 6), (40, 2)])
def test_the_key_stands_beside_a_tall_grain_map(nba, shape):
    """Beside a tall map the key and legends of grains_ipf.png, grain_traces.png and boundary_behaviour.png stood
    2–5 in away, across a blank column (each map's column kept its 6 in)."""
    xmap = _voronoi_xmap(shape, 3, nba)
    gm, bt, cls = _stages(xmap)
    for fig in (plot_grain_map(gm, bt), plot_grain_traces(gm), plot_boundary_behaviour(gm, bt, cls, (1, 0))):
        fig.draw_without_rendering()
        ax = next(a for a in fig.axes if a.images and a.name != "ipf")
        right = ax.get_window_extent().x1
        side = [a.get_tightbbox() for a in fig.axes if a is not ax and a.get_visible()]
        gap = (min(b.x0 for b in side if b is not None and b.width > 1) - right) / fig.dpi
        assert gap < 1.0, (fig.axes[0].get_title(), gap)
        assert _overlaps(fig) == []


@pytest.mark.parametrize("shape", [(8, 60), (1, 30), (15, 40), (60, 8)])
@pytest.mark.parametrize("color", ["ipf", "random"])
def test_the_grain_map_figure_follows_the_maps_aspect(nba, shape, color):
    """grains_ipf.png of an 8 × 60 map stood 0.8 in tall in a 3.8 in figure (the key and legend stacked beside it,
    blank above and below the map); of a 60 × 8 map the figure was 12.8 in tall, the key and legend spread down a
    blank column. A wide map now spans the figure, its keys under it; a tall one has its keys at the top beside it."""
    from stemgrains.plot._layout import _covered

    xmap = _voronoi_xmap(shape, 3, nba)
    gm, bt, _ = _stages(xmap)
    fig = plot_grain_map(gm, bt, color=color)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    assert ax.images and ax.name != "ipf"
    box = ax.get_window_extent()
    w, h = fig.get_size_inches()
    side = [a.get_tightbbox() for a in fig.axes if a.name == "ipf"] + [
        a.get_legend().get_window_extent() for a in fig.axes if a.get_legend() is not None]
    assert len(side) == (2 if color == "ipf" else 1)
    if shape[0] < shape[1]:
        assert box.width / fig.dpi > 0.8 * w  # the map spans the figure
        assert all(b.y1 <= box.y0 for b in side)  # the keys and the legend under it
        assert h - _covered(fig, 1) < 0.5, (h, _covered(fig, 1))  # no blank band above, between or under
    else:
        assert h <= 10.0 and w < 6.0
        top = max(b.y1 for b in side) / fig.dpi
        low = min(b.y0 for b in side) / fig.dpi
        assert h - top < 0.5 and top - low < 4.0  # the keys and legend from the top, together
    tight = fig.get_tightbbox()  # nothing off the figure
    assert tight.x0 >= -0.01 and tight.x1 <= w + 0.01 and tight.y0 >= -0.01 and tight.y1 <= h + 0.01
    assert _overlaps(fig) == []
