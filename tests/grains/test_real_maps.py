"""Real measured maps (../shared/data/maps): Mg twins (EBSD), Pd (ASTAR), duplex steel (EBSD)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from orix import io as orix_io
from orix.quaternion import Orientation, Rotation

from stemgrains.boundaries.extract import extract_boundaries
from stemgrains.grains import segment_grains
from stemgrains.grains.segment import astar_to_a_frame
from stemgrains.plot.grains import save_grain_figures

pytestmark = pytest.mark.shared

MG_TWIN = ("twin", 86.3, (1, 1, -2, 0), 5.0)  # {10-12} tensile twin: 86.3° about <11-20>


def _keep_figures(paths, prefix):
    """Copy figures to /tmp/sg_grains_figs when asked (SG_KEEP_FIGS=1), to look at them."""
    if os.environ.get("SG_KEEP_FIGS"):
        dest = Path("/tmp/sg_grains_figs")
        dest.mkdir(exist_ok=True)
        for p in paths:
            shutil.copy(p, dest / f"{prefix}{p.name}")


def test_mg_twins(shared_data, tmp_path):
    raw = orix_io.load(str(shared_data / "maps" / "mg_twins_ebsd.ctf"))
    assert raw.scan_unit == "um"
    # Oxford .ctf: hexagonal crystal x ∥ a* (MTEX 'X||a*'); orix's frame has x ∥ a
    xmap = astar_to_a_frame(raw)
    gm = segment_grains(xmap)
    assert gm.scan_step_nm == pytest.approx(300.0)  # 0.3 µm
    assert 40 < gm.n_grains < 200
    assert np.all(~np.isnan(gm.table["alpha_deg"]))  # hexagonal: c-axis defined
    bt = extract_boundaries(gm, xmap, special=[MG_TWIN])
    b = bt.boundaries
    twin = b["special"] == "twin"
    frac = b["length_nm"][twin].sum() / b["length_nm"].sum()
    print(f"Mg: {gm.n_grains} grains, {len(b)} boundaries, {twin.sum()} twin boundaries, "
          f"twin length fraction {frac:.3f}")
    assert twin.sum() >= 20 and 0.3 < frac < 0.8
    assert np.all(np.abs(b["misorientation_deg"][twin] - 86.3) < 5)
    # twin axes are <11-20>
    uvtw = np.sort(np.abs(b["axis_uvw"][twin][:, :3]), axis=1)
    assert np.mean(np.all(uvtw == [1, 1, 2], axis=1)) > 0.8
    # one twin boundary against orix's own computation
    k = np.flatnonzero(twin)[0]
    laue = gm.phases[int(b["phase_a"][k])].point_group.laue
    qa = gm.table["mean_quaternion"][gm.index_of(b["grain_a"][k])]
    qb = gm.table["mean_quaternion"][gm.index_of(b["grain_b"][k])]
    m = Orientation(qb, laue) - Orientation(qa, laue)
    assert np.degrees(m.angle[0]) == pytest.approx(b["misorientation_deg"][k], abs=1e-4)
    from stemgrains.boundaries._kernels import misorientation_distance

    mine = Rotation.from_axes_angles(b["misorientation_axis"][k], np.radians(b["misorientation_deg"][k])).data
    sym = laue.proper_subgroup.data
    assert np.degrees(misorientation_distance(mine, m.data, sym)[0, 0]) < 1e-3
    # without the frame correction the twin axis reads as <10-10> and nothing matches
    b_raw = extract_boundaries(segment_grains(raw), special=[MG_TWIN]).boundaries
    assert (b_raw["special"] == "twin").sum() == 0
    paths = save_grain_figures(tmp_path, gm, bt)
    _keep_figures(paths, "mg_")


def test_pd_astar(shared_data, tmp_path):
    xmap = orix_io.load(str(shared_data / "maps" / "pd_astar_acom.ang"))
    assert xmap.scan_unit == "nm" and xmap.dx == 2.0
    gm = segment_grains(xmap, min_grain_size=2, min_reliability=0.1)  # ASTAR 'rel' is a fraction here
    assert gm.parameters["reliability_prop"] == "rel"
    rel = np.asarray(xmap.prop["rel"]).reshape(xmap.shape)
    assert np.all(gm.labels[rel < 0.1] == 0)
    assert gm.n_grains >= 3 and gm.scan_step_nm == 2.0
    bt = extract_boundaries(gm, xmap)
    assert len(bt.boundaries) >= 2
    paths = save_grain_figures(tmp_path, gm, bt)
    _keep_figures(paths, "pd_")


def test_duplex_steel(shared_data, tmp_path):
    xmap = orix_io.load(str(shared_data / "maps" / "duplex_steel_ebsd.ang"))
    gm = segment_grains(xmap, small_grains="merge")
    assert set(np.unique(gm.table["phase_id"])) == {1, 2}
    assert gm.scan_step_nm == pytest.approx(1500.0)
    assert (gm.labels > 0).all()
    bt = extract_boundaries(gm, xmap)
    b = bt.boundaries
    phase_b = b["phase_a"] != b["phase_b"]
    assert phase_b.any() and np.all(np.isnan(b["misorientation_deg"][phase_b]))
    # austenite (fcc) has annealing twins: Σ3 is the most common CSL of its boundaries
    aus = (b["phase_a"] == 1) & (b["phase_b"] == 1)
    s3 = aus & (b["csl_sigma"] == 3)
    print(f"duplex: {gm.n_grains} grains; austenite Σ3 length fraction "
          f"{b['length_nm'][s3].sum() / b['length_nm'][aus].sum():.2f}")
    assert s3.sum() >= 5
    paths = save_grain_figures(tmp_path, gm, bt)
    _keep_figures(paths, "duplex_")
