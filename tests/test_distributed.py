"""run_chunks_distributed: dask workers give exactly the local result; failures are reported, never dropped."""

from __future__ import annotations

import pickle
import sys

import h5py
import numpy as np
import pytest

pytest.importorskip("distributed")

from stemgrains.crystal import load_phase  # noqa: E402
from stemgrains.data import Dataset4D  # noqa: E402
from stemgrains.distributed import _reopenable, run_chunks_distributed  # noqa: E402
from stemgrains.errors import ParameterError, StemgrainsError  # noqa: E402
from stemgrains.index.api import ChunkResult, IndexParams, index_orientations, index_patterns  # noqa: E402
from stemgrains.io import load_4d, write_4d  # noqa: E402
from stemgrains.library.templates import build_library  # noqa: E402
from stemgrains.simulate import sample_cif, simulate_patterns  # noqa: E402

PARAMS = dict(step_deg=3.0, chunk_rows=1)


@pytest.fixture(scope="module")
def scan():
    """A 4 x 6 Au scan, 64 x 64 detector, three grains, with its 3 degree library."""
    phase = load_phase(sample_cif("au"))
    sim = simulate_patterns([phase], scan_shape=(4, 6), detector_shape=(64, 64), n_grains=3, seed=3, dose=1e4)
    ds = Dataset4D(np.asarray(sim.data), sim.calibration, source="simulated")
    prm = IndexParams(**PARAMS).resolved(sim.calibration, (64, 64))
    lib = build_library(phase, step_deg=prm.step_deg, k_max=prm.k_max,
                        accelerating_voltage_kV=sim.calibration.accelerating_voltage_kV,
                        excitation_error_sigma=prm.excitation_error_sigma)
    return ds, phase, [lib], prm


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # in-process workers (threads): starts in about a second; the pickling path is tested separately below
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            yield c


def _local_chunks(ds, libs, prm, chunks):
    ky, kx = ds.detector_shape
    nx = ds.scan_shape[1]
    return {c: index_patterns(ds.rows(*c).reshape(-1, ky, kx), ds.calibration, libs, prm, scan_shape=(c[1] - c[0], nx)) for c in chunks}


def _assert_same(a: ChunkResult, b: ChunkResult) -> None:
    for k in ChunkResult.FIELDS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)


def test_index_orientations_on_cluster_is_identical_to_local(scan, client):
    ds, phase, libs, _ = scan
    local = index_orientations(ds, [phase], libraries=libs, progress=False, **PARAMS)
    dist = index_orientations(ds, [phase], libraries=libs, progress=False, client=client, **PARAMS)
    assert np.sum(local.phase_id >= 0) >= 20  # the data index: a real comparison, not of empty maps
    np.testing.assert_array_equal(dist.rotations.data, local.rotations.data)
    np.testing.assert_array_equal(dist.phase_id, local.phase_id)
    for name in local.prop:
        np.testing.assert_array_equal(dist.prop[name], local.prop[name], err_msg=name)


@pytest.mark.parametrize("fmt", ["h5", "npy"])
def test_workers_read_their_own_rows(scan, client, tmp_path, fmt):
    ds, _, libs, prm = scan
    if fmt == "h5":
        path = write_4d(tmp_path / "scan.h5", ds.data, ds.calibration)
        on_disk = load_4d(path)
    else:
        path = tmp_path / "scan.npy"
        np.save(path, ds.data)
        on_disk = load_4d(path, q_pixel_size=ds.calibration.q_pixel_size)
        on_disk = Dataset4D(on_disk.data, ds.calibration, source=str(path))  # the .npy holds no calibration
    assert _reopenable(on_disk.data) is not None

    def no_client_reads(*_):
        raise AssertionError("the client read rows that the workers should read themselves")

    on_disk.rows = no_client_reads  # type: ignore[method-assign]
    chunks = [(0, 1), (1, 3), (3, 4)]
    got = {}
    for rows, res in run_chunks_distributed(client, on_disk, libs, prm, chunks):
        assert rows not in got
        got[rows] = res
    assert sorted(got) == chunks
    want = _local_chunks(ds, libs, prm, chunks)
    for c in chunks:
        _assert_same(got[c], want[c])


def test_reopenable_data_pickles_as_a_path(scan, tmp_path):
    ds, _, _, _ = scan
    h5 = load_4d(write_4d(tmp_path / "scan.h5", ds.data, ds.calibration))
    np.save(tmp_path / "scan.npy", ds.data)
    mm = np.load(tmp_path / "scan.npy", mmap_mode="r")
    for data in (h5.data, mm):
        reader = _reopenable(data)
        blob = pickle.dumps(reader)
        assert len(blob) < 10_000  # a path, not the data
        np.testing.assert_array_equal(pickle.loads(blob)[1:3], ds.data[1:3])
    # a slice of a memory map, or an in-memory array, is shipped by rows instead
    assert _reopenable(mm[1:]) is None
    assert _reopenable(np.asarray(ds.data)) is None


def test_failing_chunk_is_reported_with_its_rows(scan, client, tmp_path):
    ds, _, libs, prm = scan
    path = write_4d(tmp_path / "damaged.h5", ds.data, ds.calibration, chunks=(1, 1, 64, 64), compression="gzip")
    with h5py.File(path, "r") as f:  # find the compressed HDF5 chunk of pattern (2, 3) and zero it on disk
        info = f["data"].id.get_chunk_info_by_coord((2, 3, 0, 0))
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        f.write(b"\0" * info.size)
    damaged = load_4d(path)
    seen = []
    with pytest.raises(StemgrainsError, match=r"scan rows 2:3 failed .* after 3 attempt"):
        for rows, _ in run_chunks_distributed(client, damaged, libs, prm, [(0, 1), (1, 2), (2, 3), (3, 4)], max_in_flight=1):
            seen.append(rows)
    assert (2, 3) not in seen
    # the cluster is still usable afterwards
    assert [r for r, _ in run_chunks_distributed(client, damaged, libs, prm, [(3, 4)])] == [(3, 4)]


def test_bad_arguments(scan, client, monkeypatch):
    ds, _, libs, prm = scan
    with pytest.raises(ParameterError, match="chunks"):
        list(run_chunks_distributed(client, ds, libs, prm, [(3, 9)]))
    with pytest.raises(ParameterError, match="client"):
        list(run_chunks_distributed(object(), ds, libs, prm, [(0, 1)]))
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(StemgrainsError, match=r"stemgrains\[dist\]"):
        list(run_chunks_distributed(client, ds, libs, prm, [(0, 1)]))


@pytest.mark.slow
def test_process_workers_reopen_the_file(scan, tmp_path):
    """Worker processes: the dataset and libraries travel pickled; the HDF5 view reopens by path."""
    from distributed import Client, LocalCluster

    ds, _, libs, prm = scan
    on_disk = load_4d(write_4d(tmp_path / "scan.h5", ds.data, ds.calibration))
    chunks = [(0, 2), (2, 4)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            got = dict(run_chunks_distributed(c, on_disk, libs, prm, chunks))
    want = _local_chunks(ds, libs, prm, chunks)
    for ch in chunks:
        _assert_same(got[ch], want[ch])
