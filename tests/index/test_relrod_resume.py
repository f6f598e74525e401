"""An interrupted indexing resumes with the relrod widths chosen before: the choice (a search of a subsample at every
candidate width, ~5 s) is not made again, and the map equals an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stemgrains.crystal import read_phases
from stemgrains.index import api
from stemgrains.io import load_4d

DATA = Path(__file__).resolve().parents[1] / "data" / "ci-au-py4dstem.h5"


@pytest.mark.skipif(not DATA.is_file(), reason="tests/data/ci-au-py4dstem.h5 missing")
def test_a_resumed_indexing_takes_the_widths_chosen_before(tmp_path, monkeypatch):
    import h5py

    with h5py.File(DATA, "r") as f:
        phases = read_phases(f, source=str(DATA))
    ds = load_4d(DATA)
    ds = type(ds)(ds.data[:8], ds.calibration, source=ds.source, metadata=dict(ds.metadata))  # 8 x 24: ≥ 64 patterns
    plist = [phases[i] for i in phases.ids]
    ckpt = tmp_path / "ckpt"
    first = api.index_orientations(ds, plist, checkpoint_dir=ckpt, progress=False)
    record = json.loads((ckpt / api.WIDTHS_FILE).read_text())
    assert record["sigma"] == first.parameters["excitation_error_sigma"]
    assert first.parameters["excitation_error_sigma_source"] == "chosen from the data"

    def chosen_again(*args, **kwargs):
        raise AssertionError("the relrod width was chosen again")

    monkeypatch.setattr(api, "_choose_sigma", chosen_again)
    monkeypatch.setattr(api, "choose_refine_sigma", chosen_again)
    monkeypatch.setattr(api, "_refine_choice", chosen_again)
    again = api.index_orientations(ds, plist, checkpoint_dir=ckpt, progress=False)
    np.testing.assert_array_equal(first.rotations.data, again.rotations.data)
    for key in ("excitation_error_sigma", "refine_excitation_error_sigma", "excitation_error_sigma_source",
                "excitation_error_sigma_confident", "refine_excitation_error_sigma_votes"):
        assert again.parameters.get(key) == first.parameters.get(key), key
    # other parameters are another job: the record does not apply, and the widths are chosen again
    with pytest.raises(AssertionError, match="chosen again"):
        api.index_orientations(ds, plist, checkpoint_dir=ckpt, progress=False, step_deg=3.0)
