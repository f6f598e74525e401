"""The fixed CI datasets of tests/data (simulated by the py4DSTEM and abTEM engines; see tests/data/README.md):
present, small, in the project layout, with the designed grains, and reproducible from their recorded presets."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains.crystal.spots import rotation_matrices
from stemgrains.io import load_4d
from stemgrains.simulate import PRESETS, standard_dataset

DATA = Path(__file__).resolve().parents[1] / "data"
NAMES = [n for n in PRESETS if n.startswith(("ci-", "heldout-"))]


def _c_angles(f) -> dict[int, float]:
    gid = f["truth/grain_id"][()]
    q = f["truth/quaternions"][()]
    out = {}
    for g in np.unique(gid[gid > 0]):
        R = rotation_matrices(q[gid == g][0])
        out[int(g)] = float(np.degrees(np.arccos(min(1.0, abs(R[2, 2])))))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_ci_dataset_layout_and_grains(name):
    path = DATA / f"{name}.h5"
    assert path.is_file(), f"{path} missing: write it with the command in tests/data/README.md"
    assert path.stat().st_size <= 10 * 2**20
    cifs, params = PRESETS[name]
    with h5py.File(path, "r") as f:
        d = f["data"]
        assert d.dtype == np.uint16 and d.shape[2:] == (128, 128) and d.compression == "gzip"
        assert d.shape[:2] == tuple(params["scan_shape"])
        assert d.attrs["q_pixel_size"] == pytest.approx(0.025)
        par = json.loads(f["truth"].attrs["parameters"])
        assert par["engine"] == params["engine"] and par["seed"] == params["seed"]
        assert par["metadata"]["preset"] == name
        gid = f["truth/grain_id"][()]
        n_grains = len(np.unique(gid[gid > 0]))
        assert n_grains == len(params["grain_spec"]) == len(par["metadata"]["grain_classes"])
        c = _c_angles(f)
        # every pattern got its dose of electrons (Poisson: within 5 sigma)
        total = d[0, 0].astype(float).sum()
        assert abs(total - par["dose"]) < 5 * np.sqrt(par["dose"])
    assert n_grains >= (10 if (cifs == ("na_beta2_alumina",) and params["engine"] == "abtem") else 6)
    if cifs == ("na_beta2_alumina",):
        assert max(c.values()) >= 85.0  # a nearly edge-on grain (c ⟂ beam)
        assert min(c.values()) <= 5.0  # c near the beam
    ds = load_4d(path)
    assert ds.calibration.center == (64.0, 64.0)


def test_ci_dataset_reproducible_from_preset(tmp_path):
    """The recorded command (the preset) rewrites the committed file bit for bit (py4DSTEM engine)."""
    name = "heldout-au-py4dstem"
    out = standard_dataset(name, tmp_path / "x.h5", progress=False, compression="gzip")
    with h5py.File(out, "r") as a, h5py.File(DATA / f"{name}.h5", "r") as b:
        assert np.array_equal(a["data"][()], b["data"][()])
        assert np.array_equal(a["truth/quaternions"][()], b["truth/quaternions"][()])
        assert np.array_equal(a["truth/grain_id"][()], b["truth/grain_id"][()])
