"""Bad input gives one-line StemgrainsErrors naming the file or parameter; damaged files never crash."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemgrains.data import Calibration
from stemgrains.errors import FileFormatError, InputError, ParameterError, StemgrainsError
from stemgrains.io import load_4d, load_orientation_map, load_truth, write_4d


def _one_line(err: BaseException) -> str:
    msg = str(err)
    assert msg and "\n" not in msg, repr(msg)
    return msg


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "cube.h5"
    rng = np.random.default_rng(1)
    cal = Calibration(q_pixel_size=0.01, accelerating_voltage_kV=300, scan_step_nm=2.0, center=(3.0, 3.0))
    q = np.zeros((3, 4, 4))
    q[..., 0] = 1
    write_4d(path, rng.integers(0, 500, (3, 4, 8, 8)).astype(np.uint16), cal,
             truth={"quaternions": q, "phase_id": np.zeros((3, 4), np.int32)}, compression="gzip")
    return path


def test_missing_file(tmp_path):
    for loader in (load_4d, load_orientation_map, load_truth):
        with pytest.raises(FileFormatError, match="not found") as err:
            loader(tmp_path / "nope.h5")
        assert "nope.h5" in _one_line(err.value)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(FileFormatError, match="not a regular file"):
        load_4d(tmp_path)


def test_truncated_hdf5(tmp_path, good_file):
    raw = good_file.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError) as err:
        load_4d(bad)
    assert "truncated.h5" in _one_line(err.value)


def test_not_hdf5_with_h5_extension(tmp_path):
    bad = tmp_path / "text.h5"
    bad.write_text("this is not HDF5\n")
    with pytest.raises(FileFormatError, match="not an HDF5 file") as err:
        load_4d(bad)
    assert "text.h5" in _one_line(err.value)
    with pytest.raises(FileFormatError, match="not an HDF5 file"):
        load_orientation_map(bad)


def test_empty_file(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty.h5"):
        load_4d(tmp_path / "empty.h5")


def test_three_dimensional_array(tmp_path):
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.zeros((6, 8, 8), np.float32)).attrs["q_pixel_size"] = 0.01
    with pytest.raises(InputError, match="3-D") as err:
        load_4d(path)
    assert "stack.h5" in _one_line(err.value)
    np.save(tmp_path / "two.npy", np.zeros((4, 4)))
    with pytest.raises(InputError, match="2 dimensions"):
        load_4d(tmp_path / "two.npy", q_pixel_size=0.01)


def test_negative_pixel_size(tmp_path):
    path = tmp_path / "neg.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.zeros((2, 2, 4, 4), np.float32)).attrs["q_pixel_size"] = -0.01
    with pytest.raises(ParameterError, match="q_pixel_size") as err:
        load_4d(path)
    assert "neg.h5" in _one_line(err.value)
    with pytest.raises(ParameterError, match="q_pixel_size"):
        load_4d(path, q_pixel_size=-1.0)
    assert load_4d(path, q_pixel_size=0.02).calibration.q_pixel_size == 0.02  # the override wins


def test_center_outside_detector(tmp_path, good_file):
    with pytest.raises(ParameterError, match="center"):
        load_4d(good_file, center=(50, 2))


def test_missing_data_dataset(tmp_path):
    path = tmp_path / "nodata.h5"
    with h5py.File(path, "w") as f:
        f["patterns"] = np.zeros((2, 2, 4, 4))
    with pytest.raises(FileFormatError, match="'data'") as err:
        load_4d(path)
    assert "nodata.h5" in _one_line(err.value)


def test_data_is_a_group_or_not_numeric(tmp_path):
    p1 = tmp_path / "group.h5"
    with h5py.File(p1, "w") as f:
        f.create_group("data")
    with pytest.raises(FileFormatError, match="group"):
        load_4d(p1)
    p2 = tmp_path / "strings.h5"
    with h5py.File(p2, "w") as f:
        f["data"] = np.array([[[["a"]]]], dtype="S1")
    with pytest.raises(FileFormatError, match="dtype"):
        load_4d(p2, q_pixel_size=0.01)


def test_unsupported_extension(tmp_path):
    (tmp_path / "x.tif").write_bytes(b"II*\0" + b"\0" * 60)
    with pytest.raises(FileFormatError, match="unsupported") as err:
        load_4d(tmp_path / "x.tif")
    _one_line(err.value)


def test_corrupt_npy(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(FileFormatError, match="bad.npy"):
        load_4d(tmp_path / "bad.npy", q_pixel_size=0.01)


def test_corrupt_vendor_file(tmp_path):
    pytest.importorskip("rsciio")
    (tmp_path / "bad.blo").write_bytes(b"\0" * 100)
    with pytest.raises(FileFormatError, match="bad.blo") as err:
        load_4d(tmp_path / "bad.blo", q_pixel_size=0.01)
    _one_line(err.value)


def _load_fully(path):
    """Load and read every pattern and the truth: must succeed or raise StemgrainsError."""
    ds = load_4d(path)
    for r in range(ds.shape[0]):
        ds.rows(r, r + 1)
    try:
        load_truth(path)
    finally:
        ds.data.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(min_value=0.0, max_value=1.0))
def test_fuzz_truncated(tmp_path_factory, good_file, cut):
    raw = good_file.read_bytes()
    path = tmp_path_factory.mktemp("trunc") / "t.h5"
    path.write_bytes(raw[: int(cut * len(raw))])
    try:
        _load_fully(path)
    except StemgrainsError as err:
        _one_line(err)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=8))
def test_fuzz_byte_flips(tmp_path_factory, good_file, flips):
    raw = bytearray(good_file.read_bytes())
    for where, xor in flips:
        raw[int(where * len(raw))] ^= xor
    path = tmp_path_factory.mktemp("flip") / "f.h5"
    path.write_bytes(bytes(raw))
    try:
        _load_fully(path)
    except StemgrainsError as err:
        _one_line(err)


def test_a_dataset_of_complex_numbers_is_refused_where_it_is_made():
    """Complex patterns given to the Python API reached the numba kernels (a TypingError 14 frames deep)."""
    from stemgrains.data import Calibration, Dataset4D

    with pytest.raises(InputError, match="4D data must be real numbers .* got dtype complex128"):
        Dataset4D(np.zeros((2, 2, 8, 8), complex), Calibration(q_pixel_size=0.05))
    assert Dataset4D(np.zeros((2, 2, 8, 8), np.uint16), Calibration(q_pixel_size=0.05)).dtype == np.uint16


def test_a_damaged_chunk_names_the_rows_read(tmp_path, good_file):
    """A cube damaged in the middle: the read said only "cannot read /data (Can't synchronously read data (filter
    returned failure during read))", neither that the file is damaged nor where."""
    raw = bytearray(good_file.read_bytes())
    with h5py.File(good_file) as f:
        dset = f["data"]
        info = next(dset.id.get_chunk_info(i) for i in range(dset.id.get_num_chunks())
                    if dset.id.get_chunk_info(i).chunk_offset[0] == 1)  # a chunk of scan row 1
    raw[info.byte_offset:info.byte_offset + info.size] = bytes(info.size)  # zeros: not a gzip stream
    bad = tmp_path / "damaged.h5"
    bad.write_bytes(bytes(raw))
    ds = load_4d(bad)
    try:
        assert ds.data[0:1].shape[0] == 1  # the rows before it read
        with pytest.raises(FileFormatError) as err:
            ds.data[1:3]
        msg = _one_line(err.value)
        assert msg.startswith(f"{bad}: cannot read /data at scan rows 1–2: the file is damaged or truncated there ("), msg
    finally:
        ds.data.close()
