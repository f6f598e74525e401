"""GrainMap HDF5 round trip, grain figures, and the `stemgrains segment` command."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from synthetic_grains import synthetic_polycrystal

from stemgrains.boundaries.extract import extract_boundaries
from stemgrains.cli import main
from stemgrains.errors import FileFormatError
from stemgrains.grains import read_grains, segment_grains, write_grains
from stemgrains.plot.grains import boundary_classes, grain_colors, plot_grain_map, save_grain_figures


def test_grains_roundtrip(tmp_path):
    xmap, _, _ = synthetic_polycrystal(shape=(30, 40), n_grains=6, point_group="6/mmm")
    gm = segment_grains(xmap, small_grains="merge")
    path = tmp_path / "g.h5"
    write_grains(path, gm)
    back = read_grains(path)
    np.testing.assert_array_equal(back.labels, gm.labels)
    assert back.table.keys() == gm.table.keys()
    for k in gm.table:
        np.testing.assert_array_equal(back.table[k], gm.table[k])
    assert back.scan_step_nm == gm.scan_step_nm and back.parameters == gm.parameters
    assert back.phases[0].point_group.name == "6/mmm"
    # a second write replaces the group in place (open file)
    with h5py.File(path, "a") as f:
        write_grains(f, gm)
        assert "grains/labels" in f and "phases" in f
    with pytest.raises(FileFormatError, match="no /grains"):
        with h5py.File(tmp_path / "empty.h5", "w"):
            pass
        read_grains(tmp_path / "empty.h5")


def test_colour_keys_and_figures(tmp_path):
    xmap, _, _ = synthetic_polycrystal(shape=(40, 50), n_grains=8)
    gm = segment_grains(xmap)
    rgb = grain_colors(gm, "ipf")
    assert rgb.shape == (gm.n_grains + 1, 3) and np.all(rgb[0] == 1) and np.all((rgb >= 0) & (rgb <= 1))
    # symmetry-equivalent mean orientations → identical IPF colours
    from orix.quaternion import Rotation

    sym = xmap.phases[0].point_group.laue.proper_subgroup
    gm2 = segment_grains(xmap)
    gm2.table["mean_quaternion"] = (Rotation(sym.data[5]) * Rotation(gm.table["mean_quaternion"])).data
    np.testing.assert_allclose(grain_colors(gm2, "ipf"), rgb, atol=1e-6)
    assert not np.allclose(grain_colors(gm, "random"), rgb)
    bt = extract_boundaries(gm, special=[("s3", 60, (1, 1, 1), 2)])
    classes = boundary_classes(bt.boundaries)
    assert len(classes) == len(bt.boundaries) and set(classes) <= {"low angle", "high angle", "s3"} | {
        f"Σ{s}" for s in range(3, 30)}
    paths = save_grain_figures(tmp_path, gm, bt)
    assert [p.name for p in paths] == ["grains_ipf.png", "grains_random.png", "misorientation_histogram.png"]
    assert all(p.stat().st_size > 5000 for p in paths)
    fig = plot_grain_map(gm, bt, boundary_style="edges")
    assert len(fig.axes[0].collections) >= 1


def test_cli_segment_on_our_results_file(tmp_path, capsys):
    from stemgrains.io import write_orientation_map
    from stemgrains.io.results import atomic_h5

    xmap, _, _ = synthetic_polycrystal(shape=(30, 40), n_grains=6)
    src = tmp_path / "res.h5"
    with atomic_h5(src) as f:
        write_orientation_map(f, xmap)
    out = tmp_path / "out.h5"
    rc = main(["segment", str(src), "-o", str(out), "--threshold", "4", "--min-size", "3", "--small-grains", "merge",
               "--special", "s3:60:1,1,1:3", "--csv", str(tmp_path / "b.csv"), "--figures", str(tmp_path / "figs")])
    assert rc == 0
    assert "grains" in capsys.readouterr().out
    with h5py.File(out, "r") as f:
        assert {"orientation", "grains", "boundaries", "parameters"} <= set(f)
        assert set(f["boundaries"]) == {"segments", "boundaries", "pairs", "triple_junctions"}
    gm = read_grains(out)
    assert gm.n_grains == 6 and gm.parameters["threshold_deg"] == 4.0 and gm.parameters["small_grains"] == "merge"
    assert (tmp_path / "b.csv").read_text().startswith("boundary_id,")
    assert (tmp_path / "b.segments.csv").exists() and (tmp_path / "figs" / "grains_ipf.png").exists()
    # bad input → one-line error, exit 2
    assert main(["segment", str(tmp_path / "nope.ang"), "-o", str(out)]) == 2
    assert main(["segment", str(src), "-o", str(out), "--special", "bad"]) == 2
    assert "NAME:ANGLE" in capsys.readouterr().err


def test_cli_segment_cuts_on_the_c_axis_reliability(tmp_path, capsys):
    """--reliability-prop c_axis_reliability: --min-reliability judges that property; the pixels the cut left out
    are counted; the grain table carries both medians."""
    from stemgrains.io import write_orientation_map
    from stemgrains.io.results import atomic_h5

    xmap, _, _ = synthetic_polycrystal(shape=(20, 30), n_grains=4)
    rng = np.random.default_rng(4)
    xmap.prop["reliability"] = rng.uniform(0, 10, xmap.size)  # half of the pixels below 5
    xmap.prop["c_axis_reliability"] = np.full(xmap.size, 50.0)
    src = tmp_path / "res.h5"
    with atomic_h5(src) as f:
        write_orientation_map(f, xmap)
    for prop, expect in (("reliability", "reliability < 5"), ("c_axis_reliability", "c_axis_reliability < 5")):
        out = tmp_path / f"{prop}.h5"
        assert main(["segment", str(src), "-o", str(out), "--min-reliability", "5", "--reliability-prop", prop]) == 0
        text = capsys.readouterr().out
        assert expect in text and "pixels invalid" in text
        gm = read_grains(out)
        assert gm.parameters["reliability_prop"] == prop
        assert np.all(gm.table["median_c_axis_reliability"] == 50.0)
    n_valid = {p: read_grains(tmp_path / f"{p}.h5").parameters["n_valid_px"] for p in ("reliability", "c_axis_reliability")}
    assert n_valid["c_axis_reliability"] == 600 > n_valid["reliability"]
    # without --min-reliability the property would judge nothing: one line, exit 2, nothing written
    lone = tmp_path / "lone.h5"
    assert main(["segment", str(src), "-o", str(lone), "--reliability-prop", "grain_reliability"]) == 2
    assert "without min_reliability" in capsys.readouterr().err and not lone.exists()
