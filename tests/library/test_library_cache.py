"""On-disk cache of expensive arrays: keys, round trip, atomic writes, corrupt entries."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from stemgrains.errors import ParameterError
from stemgrains.library import cache as C

CIF = "data_x\n_cell_length_a 5.6\n"


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "directions": rng.normal(size=(7, 3)),
        "offsets": np.arange(8, dtype=np.int64),
        "radial": rng.random((7, 5)).astype(np.float32),
        "mask": np.array([True, False, True]),
        "names": np.array(["a", "bc"]),
        "empty": np.zeros(0),
    }


def test_key_is_hex_sha256_and_depends_on_every_part(monkeypatch):
    k = C.cache_key(CIF, {"step_deg": 1.0, "k_max": 1.5})
    assert len(k) == 64 and int(k, 16) >= 0
    assert k == C.cache_key(CIF, {"k_max": 1.5, "step_deg": 1.0})  # key order irrelevant
    assert k == C.cache_key(CIF, {"k_max": np.float64(1.5), "step_deg": np.float32(1.0)})
    assert k != C.cache_key(CIF + " ", {"step_deg": 1.0, "k_max": 1.5})
    assert k != C.cache_key(CIF, {"step_deg": 1.0, "k_max": 1.6})
    assert k != C.cache_key(CIF, {"step_deg": 1.0, "k_max": 1.5, "extra": None})
    monkeypatch.setattr(C, "__version__", "999.0")
    assert k != C.cache_key(CIF, {"step_deg": 1.0, "k_max": 1.5})


def test_key_parts_are_not_ambiguous():
    assert C.cache_key("ab", {}) != C.cache_key("a", {"b": 1})
    assert C.cache_key("", {"a": [1, 2]}) == C.cache_key("", {"a": np.array([1, 2])})


def test_key_rejects_bad_input():
    with pytest.raises(ParameterError, match="JSON"):
        C.cache_key(CIF, {"f": object()})
    with pytest.raises(ParameterError, match="text"):
        C.cache_key(b"bytes", {})
    with pytest.raises(ParameterError, match="params"):
        C.cache_key(CIF, [1, 2])


def test_round_trip(tmp_path):
    key = C.cache_key(CIF, {"a": 1})
    assert C.load_cached(key, cache_dir=tmp_path) is None
    arrays = _arrays()
    assert C.save_cached(key, arrays, cache_dir=tmp_path)
    got = C.load_cached(key, cache_dir=tmp_path)
    assert set(got) == set(arrays)
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
        np.testing.assert_array_equal(got[name], arr)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.npz"]  # no temporary files left behind


def test_overwrite_replaces_entry(tmp_path):
    key = C.cache_key(CIF, {})
    C.save_cached(key, {"x": np.zeros(3)}, cache_dir=tmp_path)
    C.save_cached(key, {"y": np.ones(2)}, cache_dir=tmp_path)
    got = C.load_cached(key, cache_dir=tmp_path)
    assert list(got) == ["y"]


def test_default_dir_from_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMGRAINS_CACHE", str(tmp_path / "env"))
    key = C.cache_key(CIF, {})
    C.save_cached(key, {"x": np.arange(3)})
    assert (tmp_path / "env" / f"{key}.npz").is_file()
    np.testing.assert_array_equal(C.load_cached(key)["x"], np.arange(3))
    monkeypatch.delenv("STEMGRAINS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.default_cache_dir() == tmp_path / "home" / ".cache" / "stemgrains"


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip file at all", b"PK\x03\x04" + b"\x00" * 40],
    ids=["empty", "garbage", "bad-zip"],
)
def test_corrupt_entry_is_a_miss_and_rebuilt(tmp_path, content):
    key = C.cache_key(CIF, {"c": 1})
    path = C.cache_path(key, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert C.load_cached(key, cache_dir=tmp_path) is None
    assert C.save_cached(key, {"x": np.arange(4)}, cache_dir=tmp_path)
    np.testing.assert_array_equal(C.load_cached(key, cache_dir=tmp_path)["x"], np.arange(4))


def test_truncated_entry_is_a_miss(tmp_path):
    key = C.cache_key(CIF, {"t": 1})
    C.save_cached(key, _arrays(), cache_dir=tmp_path)
    path = C.cache_path(key, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert C.load_cached(key, cache_dir=tmp_path) is None
    assert not path.exists()  # removed so the next build rewrites it


def test_entry_under_wrong_name_is_a_miss(tmp_path):
    k1, k2 = C.cache_key(CIF, {"n": 1}), C.cache_key(CIF, {"n": 2})
    C.save_cached(k1, {"x": np.arange(2)}, cache_dir=tmp_path)
    os.replace(C.cache_path(k1, tmp_path), C.cache_path(k2, tmp_path))
    assert C.load_cached(k2, cache_dir=tmp_path) is None


def test_entry_with_pickled_objects_is_a_miss(tmp_path):
    key = C.cache_key(CIF, {"p": 1})
    np.savez(C.cache_path(key, tmp_path), obj=np.array([{"a": 1}], dtype=object), __cache_key__=np.array(key))
    assert C.load_cached(key, cache_dir=tmp_path) is None


def test_unwritable_folder_returns_false(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    key = C.cache_key(CIF, {})
    assert C.save_cached(key, {"x": np.zeros(2)}, cache_dir=blocker / "cache") is False
    assert C.load_cached(key, cache_dir=blocker / "cache") is None
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_bad_keys_and_arrays_raise(tmp_path):
    for bad in ("../etc/passwd", "abc", "G" * 64, 5):
        with pytest.raises(ParameterError, match="cache key"):
            C.load_cached(bad, cache_dir=tmp_path)
    key = C.cache_key(CIF, {})
    with pytest.raises(ParameterError, match="object"):
        C.save_cached(key, {"x": np.array([None, 1], dtype=object)}, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="identifiers"):
        C.save_cached(key, {"not a name": np.zeros(1)}, cache_dir=tmp_path)
    with pytest.raises(ParameterError, match="dict"):
        C.save_cached(key, [np.zeros(1)], cache_dir=tmp_path)
    assert not any(Path(tmp_path).iterdir())
