"""Figures of maps without grains or boundaries say why they are empty (a fresh user's 1 × 1 run titled its
grain-trace figure "no conduction planes" for a phase that has them, and a 3 × 3 run's histogram was bare 0–1
axes with neither title nor labels)."""

from __future__ import annotations

import numpy as np
from diffpy.structure import Lattice, Structure
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.boundaries import extract_boundaries
from stemgrains.grains import segment_grains
from stemgrains.plot.classification import plot_grain_traces
from stemgrains.plot.grains import plot_misorientation_histogram


def _one_orientation_map(ny, nx):
    phase = Phase(name="nba", point_group="-3m", structure=Structure(lattice=Lattice(5.6, 5.6, 33.5, 90, 90, 120)))
    rr, cc = np.indices((ny, nx))
    xmap = CrystalMap(rotations=Rotation.identity(ny * nx), phase_id=np.zeros(ny * nx, int), x=cc.ravel() * 2.0,
                      y=rr.ravel() * 2.0, phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm")
    gm = segment_grains(xmap)
    return gm, extract_boundaries(gm, xmap)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_grain_traces_of_a_map_without_grains_say_so():
    gm, _ = _one_orientation_map(1, 1)  # one pixel, below min_grain_size 5: no grain
    assert gm.n_grains == 0
    texts = _texts(plot_grain_traces(gm))
    assert "Grains (IPF-z): no grains" in texts
    assert "No grain of at least\n5 pixels (min_grain_size):\nno traces drawn." in texts
    assert not any("conduction planes" in t for t in texts)


def test_histogram_without_boundaries_has_a_title_and_no_bare_axes():
    gm, bt = _one_orientation_map(3, 3)  # one grain
    assert gm.n_grains == 1 and len(bt.boundaries) == 0
    fig = plot_misorientation_histogram(gm, bt)
    (ax,) = fig.axes
    assert ax.get_title() == "Boundary disorientation angles" and not ax.axison
    assert [t.get_text() for t in ax.texts] == ["no boundaries between grains of one phase\n(1 grain): nothing to "
                                                "histogram"]
