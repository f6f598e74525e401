"""A real measured map (../shared/data/maps, duplex steel EBSD: austenite + ferrite) cropped at two places, the
second crop taken with the specimen turned by 90°: the comparison must find the placement and report no change."""

from __future__ import annotations

import numpy as np
import pytest
from orix.crystal_map import CrystalMap
from orix.quaternion import Rotation

from stemgrains.boundaries import extract_boundaries, write_boundaries
from stemgrains.compare import PixelOp, compare_results, load_scan
from stemgrains.compare.register import apply_op
from stemgrains.grains import segment_grains, write_grains
from stemgrains.grains.segment import map_arrays
from stemgrains.io import load_orientation_map, write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance

pytestmark = pytest.mark.shared


def _crop_results(path, q, pid, phases, step, op=PixelOp()):
    """`stemgrains segment`-like results of a crop, re-gridded by ``op`` (orientations O · R⁻¹)."""
    q, pid = op(apply_op(op, q)), op(pid)
    ny, nx = pid.shape
    rr, cc = np.indices((ny, nx))
    xm = CrystalMap(rotations=Rotation(q.reshape(-1, 4)), phase_id=pid.ravel(), x=cc.ravel() * step,
                    y=rr.ravel() * step, phase_list=phases, scan_unit="nm")
    gm = segment_grains(xm)
    bt = extract_boundaries(gm, xm)
    with atomic_h5(path) as f:
        write_provenance(f, phases=xm.phases)
        write_orientation_map(f, xm)
        write_grains(f, gm)
        write_boundaries(f, bt)
    return path


def test_turned_and_shifted_crops_of_a_real_map_compare_as_unchanged(shared_data, tmp_path):
    xmap = load_orientation_map(shared_data / "maps" / "duplex_steel_ebsd.ang")
    q, pid, _ = map_arrays(xmap)
    w1 = (slice(10, 80), slice(12, 92))
    w2 = (slice(13, 83), slice(10, 90))  # moved by (3, -2) px
    p1 = _crop_results(tmp_path / "a.h5", q[w1], pid[w1], xmap.phases, xmap.dx)
    # the specimen turned by +90° about z: the scan grid is numpy.rot90(k=-1) of the unturned one
    p2 = _crop_results(tmp_path / "b.h5", q[w2], pid[w2], xmap.phases, xmap.dx, PixelOp(3))
    comp = compare_results([p1, p2])
    reg = comp.registrations[1]
    assert reg.op == PixelOp(1) and reg.shift == (-3, 2)
    assert reg.agreement == 1.0 and reg.runner_up < 0.5
    g = comp.grains
    status = np.asarray(g["status"])
    assert set(status) <= {"matched", "edge", "outside", "split", "merged"}
    m = status == "matched"
    assert m.sum() >= 40
    # grains whose pixels lie wholly inside the common field of view in both scans: identical, nothing changed
    a1, a2 = load_scan(p1).grains, load_scan(p2).grains
    step2 = xmap.dx**2
    whole = np.zeros(len(status), bool)
    for i in np.flatnonzero(m):
        n1 = a1.table["area_px"][a1.index_of(int(g["grain_from"][i]))]
        n2 = a2.table["area_px"][a2.index_of(int(g["grain_to"][i]))]
        whole[i] = g["area_from_nm2"][i] == n1 * step2 and g["area_to_nm2"][i] == n2 * step2
    assert whole.sum() >= 20
    assert np.all(g["disorientation_deg"][whole] < 1e-4)
    assert np.all(g["centroid_shift_nm"][whole] < 1e-6) and np.all(g["area_change_nm2"][whole] == 0)
    # grains cut by the crops: their mean orientations come from different pixels, still within 0.5° mostly
    assert np.percentile(g["disorientation_deg"][m], 90) < 0.5
    b = comp.boundaries
    bst = np.asarray(b["status"])
    compared = ~np.isin(bst, ["outside"])
    # boundaries cut by the crops are partly-outside (their traces unchanged, their labels not compared)
    assert np.mean(np.isin(bst[compared], ["unchanged", "partly-outside"])) > 0.85
    assert np.sum(bst == "partly-outside") >= 10 and not np.any(np.asarray(b["behaviour_changed"]))


@pytest.mark.parametrize("name", ["duplex_steel_ebsd.ang", "mg_twins_ebsd.ctf"])
def test_disjoint_crops_of_a_real_map_are_refused(shared_data, tmp_path, name):
    """Two corners of one real map (same phases and texture, no common area): at the best placement few pixels
    agree (measured: 5 % duplex steel, 16 % textured Mg), so the comparison is refused as different areas."""
    from stemgrains.errors import InputError

    xmap = load_orientation_map(shared_data / "maps" / name)
    q, pid, _ = map_arrays(xmap)
    ny, nx = pid.shape
    h, w = ny // 2 - 2, nx // 2 - 2
    w1, w2 = (slice(0, h), slice(0, w)), (slice(ny - h, ny), slice(nx - w, nx))
    p1 = _crop_results(tmp_path / "a.h5", q[w1], pid[w1], xmap.phases, xmap.dx)
    p2 = _crop_results(tmp_path / "b.h5", q[w2], pid[w2], xmap.phases, xmap.dx)
    with pytest.raises(InputError, match="do not show the same area"):
        compare_results([p1, p2])
