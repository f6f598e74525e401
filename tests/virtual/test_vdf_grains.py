"""VDF grain map (no indexing) against the known grains of data_samples, and the adjusted Rand index."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.io import load_4d
from stemgrains.virtual.vdf import adjusted_rand_index, find_reflections, vdf_grain_map


def _ari_naive(a, b):
    """ARI from its pair-counting definition (all pairs of items)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    n = len(a)
    i, j = np.triu_indices(n, 1)
    sa, sb = a[i] == a[j], b[i] == b[j]
    n11 = np.sum(sa & sb)
    pa, pb, total = sa.sum(), sb.sum(), len(i)
    expected = pa * pb / total
    return (n11 - expected) / (0.5 * (pa + pb) - expected)


def test_adjusted_rand_index_matches_pair_counting():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 4, 60), rng.integers(0, 3, 60)
        assert adjusted_rand_index(a, b) == pytest.approx(_ari_naive(a, b), abs=1e-12)
    a = rng.integers(0, 5, 50)
    assert adjusted_rand_index(a, (a + 3) * 7) == pytest.approx(1.0)


def test_find_reflections_on_planted_peaks():
    bvm = np.zeros((41, 41))
    for r, c, v in ((5, 8, 10.0), (30, 33, 6.0), (20, 20, 50.0), (21, 36, 0.05)):
        bvm[r, c] = v
    refl = find_reflections(bvm, exclude_radius_px=4, min_fraction=0.02)
    np.testing.assert_allclose(refl, [[-15, -12], [10, 13]])  # the centre excluded, the weak peak dropped


@pytest.fixture(scope="module")
def sample_vdf(data_samples):
    return vdf_grain_map(load_4d(data_samples / "nba_sample.h5"))


def test_vdf_grains_match_true_grains(sample_vdf, data_samples):
    with h5py.File(data_samples / "nba_sample.h5") as f:
        truth = f["truth/grain_id"][()]
    m = truth > 0
    ari = adjusted_rand_index(truth[m], sample_vdf.labels[m])
    assert ari >= 0.9, ari
    assert sample_vdf.composite.shape == truth.shape + (3,)
    assert sample_vdf.labels.max() == len(np.unique(truth[m]))


@pytest.mark.slow
def test_vdf_grains_match_indexed_grains(sample_vdf, data_samples, nba_sample_run, tmp_path):
    """Acceptance: ARI >= 0.9 over indexed pixels against the grains of the indexing pipeline (`stemgrains run`,
    without figures: they are not what is compared; tests/conftest.py)."""
    out, _ = nba_sample_run
    from stemgrains.grains import read_grains

    g = read_grains(out / "results.h5").labels
    m = g > 0
    assert m.mean() > 0.5
    assert adjusted_rand_index(g[m], sample_vdf.labels[m]) >= 0.9
    assert main(["vdf-grains", str(data_samples / "nba_sample.h5"), "--results", str(out / "results.h5"),
                 "-o", str(tmp_path / "vdf")]) == 0
    assert (tmp_path / "vdf" / "vdf_grains.png").stat().st_size > 10_000


@pytest.mark.parametrize("extra, expect", [
    (["--disk-radius", "0"], "--disk-radius expects a value above 0 (detector pixels), got 0"),
    (["--min-correlation", "2"], "--min-correlation expects a value from -1 to 1, got 2"),
    (["--min-signal", "-1"], "--min-signal expects a value of at least 0, got -1"),
])
def test_vdf_grains_names_the_option_out_of_range(data_samples, tmp_path, capsys, extra, expect):
    """Each used to get the same line listing all four conditions, naming none of the options."""
    out = tmp_path / "vdf"
    assert main(["vdf-grains", str(data_samples / "nba_sample.h5"), "-o", str(out), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"stemgrains vdf-grains: error: {expect}"]


def _crop(src, path, rows, cols):
    """A scan cropped from data_samples (its calibration attributes kept)."""
    with h5py.File(src) as f, h5py.File(path, "w") as g:
        g.attrs.update(dict(f.attrs))
        g.create_dataset("data", data=f["data"][rows, cols]).attrs.update(dict(f["data"].attrs))
        f.copy("phases", g)
    return path


def test_vdf_grains_refuses_a_scan_too_small_to_correlate(data_samples, tmp_path, capsys):
    """A 1 x 1 scan gave a black composite (each image normalised to 0) and a 3 x 3 one a white composite with
    '0 VDF grains', exit 0: the correlation of VDF images needs positions to vary over."""
    small = _crop(data_samples / "nba_sample.h5", tmp_path / "3x3.h5", slice(0, 3), slice(0, 3))
    out = tmp_path / "vdf"
    assert main(["vdf-grains", str(small), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"stemgrains vdf-grains: error: {small}: a VDF grain map correlates each reflection's image over "
                   "the scan and needs at least 10 positions (two grains of min_grain_px = 5); this scan has 9 (3 x 3)"]
    assert not out.exists() or not any(out.iterdir())


def test_vdf_grains_of_a_tall_strip_keep_their_panels_together(data_samples, tmp_path):
    """A 40 x 2 strip's two panels stood in a 10-inch figure, 5 in apart with blank between."""
    strip = _crop(data_samples / "nba_sample.h5", tmp_path / "strip.h5", slice(0, 40), slice(10, 12))
    res = vdf_grain_map(load_4d(strip))
    assert res.labels.shape == (40, 2) and res.labels.max() >= 2
    from stemgrains.plot.virtual import plot_vdf_grain_map

    fig = plot_vdf_grain_map(res)
    fig.draw_without_rendering()
    assert fig.get_figwidth() < 5.0
    (a, b) = (ax.get_window_extent() for ax in fig.axes)
    # the gap between the two map panels (the wrapped titles, 1.6 in each, need some of it), inches
    assert b.x0 - a.x1 < 2.5 * fig.dpi
