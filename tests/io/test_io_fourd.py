"""Reading 4D-STEM cubes: project HDF5, .npy, py4DSTEM/EMD, vendor files (rosettasciio)."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from stemgrains.data import Calibration, Dataset4D
from stemgrains.errors import FileFormatError, InputError, ParameterError, StemgrainsError
from stemgrains.io import H5Array, create_4d, load_4d, load_phases_from, load_truth, write_4d
from stemgrains.io._vendor import dataset_from_signal

AU_CIF = """data_Au
_symmetry_space_group_name_H-M 'F m -3 m'
_space_group_IT_number 225
_cell_length_a 4.0782
_cell_length_b 4.0782
_cell_length_c 4.0782
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Au1 Au 0.0 0.0 0.0
"""


def _cube(shape=(3, 4, 6, 5), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.random(shape).astype(dtype)


@pytest.fixture
def cal():
    return Calibration(q_pixel_size=0.0123, accelerating_voltage_kV=200.0, scan_step_nm=1.5, center=(2.5, 2.0),
                       q_rotation_deg=12.0, q_flip=True)


# --- project HDF5 ------------------------------------------------------------------------------------

def test_project_roundtrip_lazy(tmp_path, cal):
    data = _cube()
    path = write_4d(tmp_path / "cube.h5", data, cal)
    ds = load_4d(path)
    assert isinstance(ds, Dataset4D)
    assert isinstance(ds.data, H5Array)  # stays on disk
    assert ds.shape == data.shape and ds.dtype == np.float32
    assert ds.calibration == cal
    np.testing.assert_array_equal(ds.rows(1, 3), data[1:3])
    np.testing.assert_array_equal(np.asarray(ds.data), data)
    assert ds.metadata["format"] == "stemgrains HDF5"
    assert ds.metadata["calibration_origin"]["q_pixel_size"] == "file"
    assert ds.metadata["has_truth"] is False


def test_project_attributes_written_on_data(tmp_path, cal):
    path = write_4d(tmp_path / "cube.h5", _cube(), cal)
    with h5py.File(path, "r") as f:
        a = f["data"].attrs
        assert a["q_pixel_size"] == pytest.approx(0.0123)
        assert a["accelerating_voltage_kV"] == pytest.approx(200.0)
        assert (a["center_row"], a["center_col"]) == (2.5, 2.0)
        assert bool(a["q_flip"]) is True


def test_overrides_win(tmp_path, cal):
    path = write_4d(tmp_path / "cube.h5", _cube(), cal)
    ds = load_4d(path, q_pixel_size=0.02, accelerating_voltage_kV=300, scan_step_nm=4.0, center=(1, 1),
                 q_rotation_deg=-5.0, q_flip=False)
    c = ds.calibration
    assert (c.q_pixel_size, c.accelerating_voltage_kV, c.scan_step_nm, c.center) == (0.02, 300.0, 4.0, (1.0, 1.0))
    assert (c.q_rotation_deg, c.q_flip) == (-5.0, False)
    assert ds.metadata["calibration_origin"]["q_pixel_size"] == "override"
    # None means "not given"
    assert load_4d(path, q_pixel_size=None).calibration.q_pixel_size == pytest.approx(0.0123)


def test_unknown_override_is_parameter_error(tmp_path, cal):
    path = write_4d(tmp_path / "cube.h5", _cube(), cal)
    with pytest.raises(ParameterError, match="pixel_sise"):
        load_4d(path, pixel_sise=0.1)


def test_minimal_attributes_hand_written(tmp_path):
    """A file written with plain h5py (as the simulator may do): only the required attributes."""
    path = tmp_path / "plain.h5"
    data = _cube((2, 3, 4, 4), dtype=np.uint16)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=data)
        d.attrs["q_pixel_size"] = np.float32(0.05)
        d.attrs["accelerating_voltage_kV"] = 300
    ds = load_4d(path)
    assert ds.calibration.center is None and ds.calibration.scan_step_nm == 1.0
    assert ds.metadata["calibration_origin"]["scan_step_nm"] == "default"
    assert ds.dtype == np.uint16


def test_create_4d_streaming_and_truth_and_phases(tmp_path, cal):
    from stemgrains.crystal import phase_from_cif_text

    phase = phase_from_cif_text(AU_CIF, name="Au")
    ny, nx = 3, 4
    q = np.zeros((ny, nx, 4))
    q[..., 0] = 1.0
    truth = {"quaternions": q, "phase_id": np.zeros((ny, nx), np.int32), "grain_id": np.arange(12).reshape(ny, nx)}
    with create_4d(tmp_path / "sim.h5", (ny, nx, 6, 5), "uint16", cal, phases=[phase], truth=truth) as dset:
        for r in range(ny):
            dset[r] = r + 1
    ds = load_4d(tmp_path / "sim.h5")
    assert ds.metadata["has_truth"] and ds.metadata["has_phases"]
    assert ds.rows(2, 3).max() == 3
    t = load_truth(tmp_path / "sim.h5")
    assert set(t) == {"quaternions", "phase_id", "grain_id"}
    np.testing.assert_array_equal(t["grain_id"], truth["grain_id"])
    phases = load_phases_from(tmp_path / "sim.h5")
    assert phases.ids == [0] and phases[0].name == "Au" and phases[0].point_group.name == "m-3m"


def test_create_4d_is_atomic(tmp_path, cal):
    target = tmp_path / "sim.h5"
    with pytest.raises(RuntimeError):
        with create_4d(target, (2, 2, 4, 4), "float32", cal) as dset:
            dset[0] = 1.0
            raise RuntimeError("simulated crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_truth_shape_checked(tmp_path, cal):
    with pytest.raises(InputError, match="truth"):
        write_4d(tmp_path / "x.h5", _cube(), cal, truth={"phase_id": np.zeros((2, 2), int)})


def test_load_truth_missing(tmp_path, cal):
    path = write_4d(tmp_path / "cube.h5", _cube(), cal)
    with pytest.raises(FileFormatError, match="truth"):
        load_truth(path)
    with pytest.raises(FileFormatError, match="phases"):
        load_phases_from(path)


def test_h5array_pickles_and_works_with_dask(tmp_path, cal):
    import dask.array as da

    data = _cube()
    ds = load_4d(write_4d(tmp_path / "cube.h5", data, cal))
    back = pickle.loads(pickle.dumps(ds.data))
    np.testing.assert_array_equal(back[1], data[1])
    lazy = da.from_array(ds.data, chunks=(1, 4, 6, 5))
    assert float(lazy.sum().compute()) == pytest.approx(float(data.sum(dtype=np.float64)), rel=1e-5)
    assert ds.data.chunks is not None  # h5py attributes pass through


def test_project_without_calibration_opens_and_indexing_asks_for_it(tmp_path):
    path = tmp_path / "nocal.h5"
    with h5py.File(path, "w") as f:
        f["data"] = _cube()
    ds = load_4d(path)
    assert ds.calibration.q_pixel_size is None and not ds.calibration.is_calibrated
    assert ds.metadata["calibration_origin"]["q_pixel_size"] == "missing"
    with pytest.raises(ParameterError, match="--q-pixel-size") as err:
        ds.calibration.require_q_pixel_size(ds.source)
    assert "nocal.h5" in str(err.value) and "\n" not in str(err.value)
    from stemgrains.crystal import load_phase
    from stemgrains.index import index_orientations
    from stemgrains.simulate import sample_cif

    with pytest.raises(ParameterError, match="not calibrated"):
        index_orientations(ds, [load_phase(sample_cif("au"))])
    assert load_4d(path, q_pixel_size=0.01).calibration.q_pixel_size == 0.01


# --- .npy --------------------------------------------------------------------------------------------

def test_npy_memmap(tmp_path):
    data = _cube()
    np.save(tmp_path / "cube.npy", data)
    ds = load_4d(tmp_path / "cube.npy", q_pixel_size=0.01, scan_step_nm=2.0)
    assert isinstance(ds.data, np.memmap) and not ds.data.flags.writeable
    np.testing.assert_array_equal(ds.rows(0, 3), data)
    assert ds.calibration.scan_step_nm == 2.0


def test_npy_without_q_pixel_size_opens_uncalibrated(tmp_path):
    np.save(tmp_path / "cube.npy", _cube())
    ds = load_4d(tmp_path / "cube.npy")
    assert ds.calibration.q_pixel_size is None
    with pytest.raises(ParameterError, match="q-pixel-size") as err:
        ds.calibration.require_q_pixel_size(ds.source)
    assert "cube.npy" in str(err.value) and "\n" not in str(err.value)


def test_npy_stack_with_scan_shape(tmp_path):
    data = _cube((12, 6, 5))
    np.save(tmp_path / "stack.npy", data)
    with pytest.raises(InputError, match="scan_shape"):
        load_4d(tmp_path / "stack.npy", q_pixel_size=0.01)
    ds = load_4d(tmp_path / "stack.npy", q_pixel_size=0.01, scan_shape=(3, 4))
    assert ds.shape == (3, 4, 6, 5)
    np.testing.assert_array_equal(ds.rows(1, 2)[0, 2], data[6])  # raster order: row 1, col 2 = frame 6
    with pytest.raises(InputError, match="scan_shape"):
        load_4d(tmp_path / "stack.npy", q_pixel_size=0.01, scan_shape=(5, 5))


def test_npy_extension_sniffed(tmp_path):
    data = _cube()
    np.save(tmp_path / "cube.npy", data)
    (tmp_path / "cube.npy").rename(tmp_path / "cube.raw4d")
    assert load_4d(tmp_path / "cube.raw4d", q_pixel_size=0.01).shape == data.shape


# --- py4DSTEM / EMD 1.0 --------------------------------------------------------------------------------

def test_emd_written_by_py4dstem(tmp_path):
    py4DSTEM = pytest.importorskip("py4DSTEM")
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    dc = py4DSTEM.DataCube(data=data)
    dc.calibration.set_Q_pixel_size(0.015)
    dc.calibration.set_Q_pixel_units("A^-1")
    dc.calibration.set_R_pixel_size(2.5)
    dc.calibration.set_R_pixel_units("nm")
    path = tmp_path / "cube_emd.h5"
    py4DSTEM.save(str(path), dc, mode="o")
    ds = load_4d(path)
    assert ds.metadata["format"] == "py4DSTEM EMD 1.0"
    assert isinstance(ds.data, H5Array)
    # py4DSTEM's [Rx, Ry, Qx, Qy] is our [scan_row, scan_col, det_row, det_col] as stored
    assert ds.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(ds.rows(0, 2), data)
    assert ds.calibration.q_pixel_size == pytest.approx(0.015)
    assert ds.calibration.scan_step_nm == pytest.approx(2.5)
    assert ds.metadata["calibration_origin"]["q_pixel_size"] == "file"
    # and py4DSTEM reads the same array back
    back = py4DSTEM.read(str(path))
    np.testing.assert_array_equal(np.asarray(back.data)[1, 2], ds.rows(1, 2)[0, 2])


def test_emd_nm_units_and_uncalibrated(tmp_path):
    py4DSTEM = pytest.importorskip("py4DSTEM")
    dc = py4DSTEM.DataCube(data=np.ones((2, 2, 4, 4), np.float32))
    dc.calibration.set_Q_pixel_size(0.2)
    dc.calibration.set_Q_pixel_units("pixels")
    py4DSTEM.save(str(tmp_path / "u.h5"), dc, mode="o")
    assert load_4d(tmp_path / "u.h5").calibration.q_pixel_size is None  # "pixels": not calibrated
    assert load_4d(tmp_path / "u.h5", q_pixel_size=0.01).calibration.q_pixel_size == 0.01


# --- vendor files via rosettasciio ---------------------------------------------------------------------

def _signal(data, nav_units="nm", nav_scale=3.0, sig_units="1/nm", sig_scale=0.5, sig_first=False):
    nav = [{"name": n, "size": s, "scale": nav_scale, "units": nav_units, "navigate": True, "offset": 0.0}
           for n, s in (("y", data.shape[0]), ("x", data.shape[1]))]
    sig = [{"name": n, "size": s, "scale": sig_scale, "units": sig_units, "navigate": False, "offset": 0.0}
           for n, s in (("ky", data.shape[2]), ("kx", data.shape[3]))]
    if sig_first:  # a reader that stores the detector axes first
        data = np.moveaxis(data, (0, 1), (2, 3))
        axes = [dict(a, index_in_array=i + 2) for i, a in enumerate(nav)] + [dict(a, index_in_array=i) for i, a in enumerate(sig)]
    else:
        axes = [dict(a, index_in_array=i) for i, a in enumerate(nav + sig)]
    return {"data": data, "axes": axes, "metadata": {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}}}


def test_rsciio_axes_calibration():
    data = _cube((2, 3, 4, 5))
    ds = dataset_from_signal(_signal(data), "fake.dm4", "Gatan", {})
    assert ds.calibration.q_pixel_size == pytest.approx(0.05)  # 0.5 1/nm = 0.05 1/Å
    assert ds.calibration.scan_step_nm == pytest.approx(3.0)
    assert ds.calibration.accelerating_voltage_kV == 200.0
    ds = dataset_from_signal(_signal(data, nav_units="µm", nav_scale=0.01, sig_units="1/Å", sig_scale=0.02), "f", "x", {})
    assert (ds.calibration.q_pixel_size, ds.calibration.scan_step_nm) == (pytest.approx(0.02), pytest.approx(10.0))
    ds = dataset_from_signal(_signal(data, sig_units="mrad", sig_scale=0.1), "f", "x", {})
    from stemgrains.data import electron_wavelength

    assert ds.calibration.q_pixel_size == pytest.approx(1e-4 / electron_wavelength(200.0))
    ds = dataset_from_signal(_signal(data), "f", "x", {"q_pixel_size": 0.3})
    assert ds.calibration.q_pixel_size == 0.3


def test_rsciio_uncalibrated_detector():
    data = _cube((2, 3, 4, 5))
    ds = dataset_from_signal(_signal(data, sig_units="cm"), "fake.blo", "ASTAR", {})
    assert ds.calibration.q_pixel_size is None
    with pytest.raises(ParameterError, match="q-pixel-size") as err:
        ds.calibration.require_q_pixel_size(ds.source)
    assert "fake.blo" in str(err.value) and "\n" not in str(err.value)


def test_rsciio_mapping_applied():
    """A plugin's metadata mapping (here the blockfile one) is applied as HyperSpy does."""
    data = _cube((2, 3, 4, 5))
    sig = _signal(data, sig_units="cm")
    sig["metadata"] = {}
    sig["original_metadata"] = {"blockfile_header": {"Beam_energy": 200000, "Camera_length": 2000}}
    sig["mapping"] = {
        "blockfile_header.Beam_energy": ("Acquisition_instrument.TEM.beam_energy", lambda x: x * 1e-3),
        "blockfile_header.Camera_length": ("Acquisition_instrument.TEM.camera_length", lambda x: x * 1e-4),
    }
    ds = dataset_from_signal(sig, "fake.blo", "ASTAR", {})
    assert ds.calibration.accelerating_voltage_kV == pytest.approx(200.0)
    assert ds.metadata["calibration_origin"]["accelerating_voltage_kV"] == "file"
    assert ds.metadata["camera_length"] == pytest.approx(0.2)


def test_rsciio_axis_order_converted():
    data = _cube((2, 3, 4, 5))
    ds = dataset_from_signal(_signal(data, sig_first=True), "f", "x", {})
    assert ds.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(ds.rows(0, 2), data)


def test_rsciio_dask_stays_lazy():
    da = pytest.importorskip("dask.array")
    data = da.from_array(_cube((2, 3, 4, 5)), chunks=(1, 3, 4, 5))
    ds = dataset_from_signal(_signal(data), "f", "x", {})
    assert hasattr(ds.data, "dask")
    assert ds.rows(0, 1).shape == (1, 3, 4, 5)


def test_missing_rosettasciio_message(tmp_path, monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name.startswith("rsciio"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    (tmp_path / "x.blo").write_bytes(b"\0" * 64)
    with pytest.raises(StemgrainsError, match=r"pip install stemgrains\[io\]"):
        load_4d(tmp_path / "x.blo", q_pixel_size=0.01)


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, shape, step",
    [
        ("001_4x2_6bit.mib", (2, 4, 256, 256), None),  # HyperSpy's "4 x 2" is (x, y): 2 rows of 4
        ("test1.blo", (3, 2, 144, 144), 12.8),  # "2 x 3" (x, y): 3 rows of 2
        ("topspin_test_A.app5", (2, 5, 14, 12), 2.0),
    ],
)
def test_vendor_files(shared_data, name, shape, step):
    pytest.importorskip("rsciio")
    path = shared_data / "formats" / name
    ds = load_4d(path)  # none of these has a reciprocal-space detector calibration: opened all the same
    assert ds.shape == shape and ds.calibration.q_pixel_size is None
    if name != "001_4x2_6bit.mib":  # both NanoMegas headers say 200 kV
        assert ds.calibration.accelerating_voltage_kV == pytest.approx(200.0)
        assert ds.metadata["calibration_origin"]["accelerating_voltage_kV"] == "file"
    ds = load_4d(path, q_pixel_size=0.01)
    assert ds.shape == shape
    if step is not None:
        assert ds.calibration.scan_step_nm == pytest.approx(step)
        assert ds.metadata["calibration_origin"]["scan_step_nm"] == "file"
    block = ds.rows(0, 1)
    assert block.shape == (1,) + shape[1:] and np.isfinite(block).all()
    if name != "topspin_test_A.app5":  # rosettasciio reads TopSpin into memory
        assert hasattr(ds.data, "dask")


# --- HyperSpy / pyxem ----------------------------------------------------------------------------------

def _hyperspy_signal(data):
    axes = [dict(name="y", units="nm", scale=2.5, offset=0.0, size=data.shape[0], navigate=True),
            dict(name="x", units="nm", scale=2.5, offset=0.0, size=data.shape[1], navigate=True),
            dict(name="ky", units="1/nm", scale=0.2, offset=0.0, size=data.shape[2], navigate=False),
            dict(name="kx", units="1/nm", scale=0.2, offset=0.0, size=data.shape[3], navigate=False)]
    return dict(data=data, axes=axes, original_metadata={}, attributes={"_lazy": False}, tmp_parameters={},
                package_info={"package": "pyxem", "package_version": "0.19"}, learning_results={}, models={},
                metadata={"General": {"title": "scan"}, "Signal": {"signal_type": "electron_diffraction"},
                          "Acquisition_instrument": {"TEM": {"beam_energy": 200.0, "camera_length": 150.0}}})


@pytest.mark.parametrize("name", ["scan.hspy", "scan_hspy.h5"])
def test_hyperspy_hdf5_with_axes_calibration(tmp_path, name):
    hspy = pytest.importorskip("rsciio.hspy")
    data = _cube((3, 4, 6, 5))
    path = tmp_path / name
    if name.endswith(".h5"):  # HyperSpy content under another extension: told apart by content
        hspy.file_writer(str(tmp_path / "tmp.hspy"), _hyperspy_signal(data))
        (tmp_path / "tmp.hspy").rename(path)
    else:
        hspy.file_writer(str(path), _hyperspy_signal(data))
    ds = load_4d(path)
    assert ds.shape == (3, 4, 6, 5)
    np.testing.assert_array_equal(ds.rows(0, 3), data)
    assert ds.calibration.q_pixel_size == pytest.approx(0.02)  # 0.2 1/nm
    assert ds.calibration.scan_step_nm == pytest.approx(2.5)
    assert ds.calibration.accelerating_voltage_kV == pytest.approx(200.0)
    assert ds.metadata["camera_length"] == pytest.approx(150.0)
    assert "HyperSpy" in ds.metadata["format"]


def test_zspy(tmp_path):
    zspy = pytest.importorskip("rsciio.zspy")
    data = _cube((3, 4, 6, 5))
    path = tmp_path / "scan.zspy"
    try:
        zspy.file_writer(str(path), _hyperspy_signal(data))
    except AttributeError as err:  # rosettasciio <= 0.15 writes .zspy only with zarr 2
        pytest.skip(f"this rosettasciio cannot write .zspy with the installed zarr ({err})")
    ds = load_4d(path)
    np.testing.assert_array_equal(ds.rows(0, 3), data)
    assert ds.calibration.q_pixel_size == pytest.approx(0.02)
