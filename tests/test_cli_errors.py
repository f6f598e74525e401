"""Command-line mistakes give one line naming the option and what was expected, exit status 2."""

from __future__ import annotations

import numpy as np
import pytest

from stemgrains.cli import main


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["index"], "the following arguments are required"),
        (["index", "x.h5", "--phase", "a.cif", "-o", "o.h5", "--step", "abc"], "argument --step: invalid float value"),
        (["no-such-command"], "invalid choice"),
    ],
)
def test_argparse_errors_are_one_line(argv, expect, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err and "--help" in err


@pytest.mark.parametrize("argv, expect", [
    # the option misspelled: named, with the command's closest options; before "-o is required"
    (["index", "data.h5", "--phase", "x.cif", "--q-pixelsize", "0.02"],
     "stemgrains index: error: no option --q-pixelsize (did you mean --q-pixel-size?)"),
    (["run", "a.h5", "--phase", "au", "--min-reliabilty", "5", "-o", "x"],
     "stemgrains run: error: no option --min-reliabilty (did you mean --min-reliability?)"),
    (["calibrate", "a.h5", "--phase", "au", "--nindex=5", "-o", "x.json"],
     "stemgrains calibrate: error: no option --nindex (did you mean --n-index?)"),
    (["index", "a.h5", "--phase", "au", "-o", "x.h5", "--no-neighbour-pass"], "(did you mean --no-neighbor-pass?)"),
    (["index", "a.h5", "--phase", "au", "-o", "x.h5", "--k_max", "1"], "no option --k_max (did you mean --k-max?)"),
    (["segment", "m.ang", "-o", "x.h5", "--treshold", "3"], "no option --treshold (did you mean --threshold?)"),
    # another command's option: which commands have it
    (["index", "a.h5", "--phase", "au", "-o", "x.h5", "--min-reliability", "5"],
     "no option --min-reliability (an option of stemgrains run, segment)"),
    (["index", "a.h5", "--phase", "au", "-o", "x.h5", "-p", "au"], "stemgrains index: error: no option -p ("),
    (["calibrate", "a.h5", "b.h5", "--phase", "au", "-o", "x.json"],
     "stemgrains calibrate: error: unexpected argument b.h5 ("),
])
def test_unknown_option_names_it_and_the_closest(argv, expect, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and expect in err, err
    assert f"(see 'stemgrains {argv[0]} --help')" in err


@pytest.mark.parametrize("argv", [
    ["index", "a.h5", "--phase", "au", "-o", "x.h5", "--q-pix", "0.02"],  # argparse's abbreviation: accepted
    ["index", "a.h5", "--phase=au", "-ox.h5", "--center=-1,2", "--q-rotation", "-5"],
    ["series", "r.h5", "f.npy", "-o", "d", "--offset=-1,2"],
    ["index", "a.h5", "--phase", "au", "-o", "x.h5", "--", "--odd-name.h5"],
])
def test_known_options_pass_the_check(argv):
    from stemgrains.cli import _unknown_option, build_parser

    assert _unknown_option(build_parser(), argv) is None


def test_bad_pixel_size_names_the_option(data_samples, tmp_path, capsys):
    rc = main(["index", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"), "-o", str(tmp_path / "o.h5"), "--q-pixel-size", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--q-pixel-size expects a finite positive number" in err and err.count("\n") == 1


def test_electrode_given_twice_is_refused(data_samples, tmp_path, capsys):
    rc = main(["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"), "-o", str(tmp_path / "r"), "--field", "1,0",
               "--electrode", "left=1", "--electrode", "left=0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--electrode left is given twice" in err


@pytest.mark.parametrize("opt, name", [("--export-ang", "map.h5"), ("--export-ang", "map.txt"), ("--export-ctf", "map.txt")])
def test_export_name_must_carry_its_format(data_samples, tmp_path, capsys, opt, name):
    rc = main(["index", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / "o.h5"), opt, str(tmp_path / name)])
    err = capsys.readouterr().err
    assert rc == 2 and "must end in" in err and err.count("\n") == 1
    assert not (tmp_path / "o.h5").exists()  # refused before any work


@pytest.mark.parametrize(("cmd", "opt", "value", "expect"), [
    ("index", "--neighbor-average-radius", "50000", "--neighbor-average-radius expects a value from 0 to 10"),
    ("index", "--neighbor-average-radius", "-1", "--neighbor-average-radius expects a value from 0 to 10"),
    ("index", "--k-max", "100", "--k-max expects a value above 0 and at most 4 1/Å, got 100"),
    # k_max 0 (or NaN) used to be refused by IndexParams in words naming the internal key ("k_max must be ...")
    ("index", "--k-max", "0", "--k-max expects a value above 0 and at most 4 1/Å, got 0"),
    ("index", "--k-max", "nan", "--k-max expects a value above 0 and at most 4 1/Å, got nan"),
    ("run", "--k-max", "0", "--k-max expects a value above 0 and at most 4 1/Å, got 0"),
    ("run", "--neighbor-average-radius", "11", "--neighbor-average-radius expects a value from 0 to 10"),
])
def test_out_of_range_index_options_are_one_line(data_samples, tmp_path, capsys, cmd, opt, value, expect):
    """A huge radius or k_max used to end in a traceback from inside a kernel (or 63 GiB asked for)."""
    extra = ["--field", "1,0"] if cmd == "run" else []
    rc = main([cmd, str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / ("o.h5" if cmd == "index" else "r")), opt, value, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_config_check_validates_ranges(tmp_path, capsys):
    cfg = tmp_path / "p.toml"
    for text, expect in (("[index]\nneighbor_min_similarity = 2\n", "[index] neighbor_min_similarity: expected a value"),
                         ("[index]\nneighbor_relative_similarity = -1\n", "neighbor_relative_similarity"),
                         ("[index]\nneighbor_average_radius = 100000\n", "neighbor_average_radius: expected a value"),
                         ("[index]\nk_max = 100\n", "[index] k_max: expected a value above 0 and at most 4"),
                         ("[index]\nk_max = 0\n", "[index] k_max: expected a finite positive number, got 0"),
                         ("[index]\nstep_deg = 200.0\n", "[index] step_deg must be between 0.1 and 15"),
                         ("[index]\nreliability_fit_range = [0.9, 0.5]\n", "[index] reliability_fit_range"),
                         ("[spots]\nn_sigma = -1.0\n", "[spots] n_sigma: expected a value from"),
                         ("[spots]\nmin_spots = 99999999999999999999\n", "[spots] min_spots: expected a value from 0 to"),
                         ("[spots]\nmax_peaks = 99999999999999999999\n", "[spots] max_peaks: expected a value from 1 to"),
                         ("[spots]\nn_sigma_sparse = 1e400\n", "[spots] n_sigma_sparse: expected a value from"),
                         # at or above n_sigma it silently took no weaker spots at all
                         ("[spots]\nn_sigma_sparse = 6.0\n", "[spots] n_sigma_sparse: expected a value below n_sigma (5)"),
                         ("[spots]\nn_sigma = 3.0\nn_sigma_sparse = 3.5\n", "[spots] n_sigma_sparse: expected a value below n_sigma (3), got 3.5"),
                         # set to its default value, it could not be told from unset and was let through
                         ("[spots]\nn_sigma = 3.0\nn_sigma_sparse = 4.0\n", "[spots] n_sigma_sparse: expected a value below n_sigma (3), got 4"),
                         # an empty q-range (inner radius beyond the outer one) used to index nothing, exit status 0
                         ("[spots]\nq_min = 3.0\n", "[spots] q_min: expected a value from 0 to below 2 1/Å"),
                         ("[spots]\nq_min = 1.0\n[index]\nk_max = 0.8\n",
                          "[spots] q_min: expected a value from 0 to below 0.8 1/Å (the outer radius of the spots used: [index] k_max"),
                         ("[spots]\nq_min = 1.0\nq_max = 0.5\n", "[spots] q_min: expected a value below q_max (0.5 1/Å), got 1"),
                         ("[classify]\ntau_flow = 5.0\n", "[classify] tau_flow: expected a value from 0 to 1"),
                         ("[grains]\nmin_grain_size = 0\n", "[grains] min_grain_size: expected a value from 1")):
        cfg.write_text(text)
        assert main(["config", "--check", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert expect in err and str(cfg) in err, err


@pytest.mark.parametrize("cmd", ["index", "run"])
def test_config_sparse_threshold_above_n_sigma_is_refused(data_samples, tmp_path, capsys, cmd):
    """n_sigma_sparse >= n_sigma used to be accepted and took no weaker spots; min_spots = 0 (off) may keep it."""
    cfg = tmp_path / "p.toml"
    cfg.write_text("[spots]\nn_sigma_sparse = 6.0\n")
    extra = ["--field", "1,0"] if cmd == "run" else []
    rc = main([cmd, str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / "out"), "--config", str(cfg), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert f"{cfg}: [spots] n_sigma_sparse: expected a value below n_sigma (5), got 6" in err[0], err
    assert not (tmp_path / "out").exists()
    cfg.write_text("[spots]\nn_sigma_sparse = 6.0\nmin_spots = 0\n")
    assert main(["config", "--check", str(cfg)]) == 0
    assert capsys.readouterr().out.strip() == f"{cfg}: ok (2 keys set in 1 section)"


@pytest.mark.parametrize("cmd", ["index", "run"])
def test_q_min_beyond_the_detector_is_refused_before_any_work(au_scan_3x3, data_samples, tmp_path, capsys, cmd):
    """[spots] q_min beyond what the detector reaches (1.5 1/Å on the 64² Au scan) used to index nothing, exit 0."""
    cfg = tmp_path / "p.toml"
    cfg.write_text("[spots]\nq_min = 1.8\n")
    extra = ["--field", "1,0"] if cmd == "run" else []
    out = tmp_path / ("o.h5" if cmd == "index" else "r")
    argv = [cmd, str(au_scan_3x3), "--phase", str(data_samples / "au.cif"), "-o", str(out), "--no-progress", *extra]
    rc = main([*argv, "--config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert (f"{cfg}: [spots] q_min: expected a value from 0 to below 1.5 1/Å (the outer radius of the spots used: what "
            "the 64 x 64 detector reaches") in err[0], err
    rc = main([*argv, "--k-max", "0.2"])  # the default inner radius (2.5 beam radii) beyond --k-max
    err = capsys.readouterr().err.strip().splitlines()
    # named by the option given, with the range the default q_min leaves (it blamed [spots] beam_radius_px)
    assert rc == 2 and len(err) == 1 and f"stemgrains {cmd}: error: --k-max 0.2: expected a value above q_min (" in err[0]
    assert "the default: 2.5 × the 4 px beam radius" in err[0] and "set with [spots] q_min of --config" in err[0], err
    cfg.write_text("[index]\nk_max = 0.2\n")  # the same from a config file: named by the file and key
    rc = main([*argv, "--config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"error: {cfg}: [index] k_max 0.2: expected a value above q_min (" in err[0], err
    assert not out.exists() and not list(tmp_path.glob("o.h5*"))


@pytest.mark.parametrize("cmd", ["index", "run", "calibrate", "vdf-grains"])
@pytest.mark.parametrize("size, why", [("5", "the excluded centre (2.5 × the 4 px beam radius) reaches 50 1/Å"),
                                       ("1e-6", "64 x 64 detector reaches only 2.9e-05 1/Å")])
def test_an_absurd_pixel_size_is_blamed_on_the_pixel_size(au_scan_3x3, data_samples, tmp_path, capsys, cmd, size,
                                                          why):
    """--q-pixel-size 5 (1/Å per px, a hundred times too large) used to blame [spots] beam_radius_px, which the
    user never set; 1e-6 indexed nothing and exited 0 (vdf-grains blamed q_min, an option it does not have)."""
    out = tmp_path / {"index": "o.h5", "run": "r", "calibrate": "c.json", "vdf-grains": "v"}[cmd]
    extra = {"index": ["--no-progress"], "run": ["--no-progress", "--field", "1,0"], "calibrate": [],
             "vdf-grains": ["--no-progress"]}[cmd]
    phase = [] if cmd == "vdf-grains" else ["--phase", "au"]
    rc = main([cmd, str(au_scan_3x3), *phase, "--q-pixel-size", size, "-o", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"stemgrains {cmd}: error: --q-pixel-size {float(size):g}: expected a detector pixel "
                             "size of about 0.005-0.05 1/Å per px"), err
    assert why in err[0] and "beam_radius_px" not in err[0] and not out.exists()


def test_a_pixel_size_from_a_calibration_file_names_the_file(au_scan_3x3, tmp_path, capsys):
    cal = tmp_path / "q5.json"
    cal.write_text('{"q_pixel_size": 5}')
    for cmd, extra in (("index", ["--phase", "au", "-o", str(tmp_path / "o.h5")]), ("vdf-grains", ["-o", str(tmp_path / "v")])):
        rc = main([cmd, str(au_scan_3x3), "--calibration", str(cal), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        # a JSON has no [calibration] section: named by the file and its key (vdf-grains said '[calibration]')
        assert rc == 2 and len(err) == 1 and err[0].startswith(f"stemgrains {cmd}: error: {cal}: q_pixel_size 5:"), err


def test_an_absurd_pixel_size_stated_in_the_data_file_names_the_file(tmp_path, capsys):
    """It was worded '[calibration] q_pixel_size 5', a config key the user never set, naming no file."""
    from stemgrains.data import Calibration
    from stemgrains.io import write_4d

    scan = write_4d(tmp_path / "stated5.h5", np.zeros((2, 2, 32, 32), np.float32), Calibration(q_pixel_size=5.0))
    for cmd, out in (("index", "o.h5"), ("calibrate", "c.json")):
        rc = main([cmd, str(scan), "--phase", "au", "-o", str(tmp_path / out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith(f"stemgrains {cmd}: error: {scan}: q_pixel_size 5: "
                                                               "expected a detector pixel size"), err
        assert err[0].endswith("(the pixel size stated in this file; give --q-pixel-size to override it)")


def test_a_batch_refuses_an_absurd_pixel_size_once_before_it_starts(au_scan_3x3, tmp_path, capsys):
    """In a batch, --q-pixel-size 5 (or from a --calibration or --config file) failed every input (exit 1, a
    folder of failures); the README promises the calibration is checked once before the batch."""
    cal, cfg = tmp_path / "q5.json", tmp_path / "q5.toml"
    cal.write_text('{"q_pixel_size": 5}')
    cfg.write_text("[calibration]\nq_pixel_size = 5\n")
    out = tmp_path / "batch"
    for cmd in ("index", "run"):
        for given, named in ((["--q-pixel-size", "5"], "--q-pixel-size 5:"), (["--calibration", str(cal)], f"{cal}: q_pixel_size 5:"),
                             (["--config", str(cfg)], f"{cfg}: [calibration] q_pixel_size 5:")):
            rc = main([cmd, str(au_scan_3x3), str(au_scan_3x3), "--phase", "au", *given, "--no-progress", "-o", str(out)])
            err = capsys.readouterr().err.strip().splitlines()
            assert rc == 2 and len(err) == 1 and f"error: {named} expected a detector pixel size" in err[0], err
            assert err[0].endswith("the batch's first input, before the batch)") and not out.exists()


def test_a_small_detector_is_not_blamed_on_a_usual_pixel_size():
    """A 6 x 6 detector at 0.02 1/Å per px reaches too little too; the pixel size is not what is off there."""
    from stemgrains.data import Calibration
    from stemgrains.errors import ParameterError
    from stemgrains.settings import check_q_range

    with pytest.raises(ParameterError) as err:
        check_q_range({"spots": {}}, Calibration(q_pixel_size=0.02), (6, 6))
    assert "q_pixel_size" not in str(err.value).split(":")[0] and "beam_radius_px" in str(err.value)


def test_calibrate_k_max_below_the_default_q_min_names_k_max(au_scan_3x3, data_samples, tmp_path, capsys):
    """calibrate --k-max 0.05 used to blame q_min, which the user never set ('q_min: the inner radius ...')."""
    out = tmp_path / "c.json"
    rc = main(["calibrate", str(au_scan_3x3), "--phase", "au", "--k-max", "0.05", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("stemgrains calibrate: error: --k-max 0.05: expected a value above q_min ("), err
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["index", "run"])
def test_config_k_max_zero_names_the_file_and_key(data_samples, tmp_path, capsys, cmd):
    cfg = tmp_path / "p.toml"
    cfg.write_text("[index]\nk_max = 0\n")
    extra = ["--field", "1,0"] if cmd == "run" else []
    rc = main([cmd, str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / "out"), "--config", str(cfg), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"{cfg}: [index] k_max: expected a finite positive number" in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_cif_gives_one_line_and_no_parser_dump(data_samples, tmp_path, capsys):
    bad = tmp_path / "map.ang"
    bad.write_text("# HEADER: EDAX\n" + "1.98 1.24 0.5 0 0 100 0.9 0 0 0\n" * 5)
    rc = main(["index", str(data_samples / "nba_sample.h5"), "--phase", str(bad), "-o", str(tmp_path / "o.h5")])
    out, err = capsys.readouterr()
    assert rc == 2 and "not a valid CIF" in err and len(err.strip().splitlines()) == 1
    assert out == "", out


@pytest.mark.parametrize(("cmd", "extra", "expect"), [
    # API names used to appear instead of the options (chunk_rows, step_deg, conductivity_ratio ...)
    ("index", ["--chunk-rows", "0"], "--chunk-rows must be a positive integer, got 0"),
    ("index", ["--step", "0"], "--step must be between 0.1 and 15 degrees"),
    ("index", ["--n-prefilter", "0"], "--n-prefilter must be a positive integer"),
    # run checks every stage's options before indexing, and creates nothing
    ("run", ["--field", "1,0", "--ratio", "0"], "--ratio must be finite and in (0, inf)"),
    ("run", ["--field", "1,0", "--threshold", "0"], "--threshold expects a value above 0 and at most 180 deg, got 0"),
    ("run", ["--field", "1,0", "--chunk-rows", "0"], "--chunk-rows must be a positive integer"),
    ("run", ["--field", "1,0", "--step", "0"], "--step must be between 0.1 and 15 degrees"),
])
def test_options_are_named_and_checked_before_any_work(data_samples, tmp_path, capsys, cmd, extra, expect):
    out = tmp_path / ("r" if cmd == "run" else "o.h5")
    rc = main([cmd, str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"), "-o",
               str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and err.count("\n") == 1, err
    assert not out.exists()  # nothing created: the check came before any work


def test_simulate_errors_name_options_and_out_of_memory_is_one_line(tmp_path, capsys):
    base = ["simulate", "--phase", "na_beta2_alumina", "--detector", "16,16", "-o", str(tmp_path / "s.h5")]
    for extra, expect in ((["--scan", "0,0"], "--scan must be"), (["--scan", "2,2", "--step-nm", "0"], "--step-nm must be"),
                          (["--scan", "2,2", "--k-max", "100"], "--k-max expects a value above 0 and at most 4")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert expect in err and err.count("\n") == 1, err
    assert not (tmp_path / "s.h5").exists()


def test_out_of_memory_is_one_line(monkeypatch, tmp_path, capsys):
    """numpy's MemoryError (a frame of 100000 px, a huge scan) used to end in a traceback with exit status 1."""
    import stemgrains.commands.simulate as sim

    def huge(args):
        raise MemoryError("Unable to allocate 298. GiB for an array with shape (200040, 200040) and data type int64")

    monkeypatch.setattr(sim, "run", huge)  # the parser takes each command's run when main builds it
    rc = main(["simulate", "--phase", "na_beta2_alumina", "-o", str(tmp_path / "s.h5")])
    err = capsys.readouterr().err
    assert rc == 2 and "not enough memory" in err and "298. GiB" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def indexed_sample(au_scan_3x3, tmp_path_factory):
    """A results file made by `index` for the segment refusals below: the 3 × 3 Au scan of tests/conftest.py (the
    refusals need a real map, not a large one; the 40 × 40 nba_sample.h5 took ~10 s to index)."""
    from stemgrains.simulate import sample_cif

    out = tmp_path_factory.mktemp("idx") / "map.h5"
    assert main(["index", str(au_scan_3x3), "--phase", str(sample_cif("au")), "-o", str(out), "--step", "3",
                 "--no-progress"]) == 0
    return out


@pytest.mark.parametrize(("extra", "expect"), [
    (["--min-reliability", "nan"], "--min-reliability expects a value from 0 to 100, got nan"),
    (["--min-reliability", "500"], "--min-reliability expects a value from 0 to 100, got 500"),
    (["--min-correlation", "2"], "--min-correlation 2 is above every pixel's correlation_index"),
    (["--special", "twin:nan:1,1,1:5"], "ANGLE must be in [0, 180] degrees"),
])
def test_segment_thresholds_that_keep_nothing_are_refused(indexed_sample, tmp_path, capsys, extra, expect):
    """These used to give '0 grains' (or ignore the special) with exit status 0."""
    rc = main(["segment", str(indexed_sample), "-o", str(tmp_path / "s.h5"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and err.count("\n") == 1, err


def test_run_checks_electrodes_and_its_own_inputs_before_any_work(data_samples, tmp_path, capsys):
    """Touching electrodes or a NaN potential used to fail after indexing, leaving results.h5 behind; a config
    copied to OUTDIR/config.toml was replaced by the run's own."""
    base = ["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
            "--field", "1,0"]
    for extra, expect in ((["--electrode", "left=1", "--electrode", "top=0"], "overlap or touch"),
                          (["--electrode", "left=nan", "--electrode", "right=0"], "must be finite"),
                          # an unknown name: "the electrodes drive no current", or "give (mask, volts)" (the API's words)
                          (["--electrode", "middle=1"], "'middle' is neither an edge (left, right, top, bottom) nor a .npy"),
                          (["--electrode", "middle=1", "--electrode", "right=0"], "'middle' is neither an edge"),
                          (["--electrode", "Left=1", "--electrode", "right=0"], "edge names are lower case: left"),
                          (["--reliability-prop", "grain_reliability"], "was given without min_reliability")):
        out = tmp_path / "r"
        assert main(base + extra + ["-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert expect in err and err.count("\n") == 1, err
        assert not out.exists()
    folder = tmp_path / "mine"
    folder.mkdir()
    assert main(["config", "--dump", "-o", str(folder / "config.toml")]) == 0
    before = (folder / "config.toml").read_bytes()
    capsys.readouterr()
    assert main(base + ["--config", str(folder / "config.toml"), "-o", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "an input of this run, but the run writes config.toml" in err and err.count("\n") == 1, err
    assert (folder / "config.toml").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["config.toml"]


def test_config_output_must_be_a_config(data_samples, tmp_path, capsys):
    cif = tmp_path / "au.cif"
    cif.write_bytes((data_samples / "au.cif").read_bytes())
    notes = tmp_path / "notes.toml"
    notes.write_text("my notes\n")
    for out, expect in ((cif, "give a .toml file"), (notes, "not a config file")):
        before = out.read_bytes()
        assert main(["config", "--dump", "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert expect in err and err.count("\n") == 1, err
        assert out.read_bytes() == before
    assert main(["config", "--dump", "-o", str(notes), "--force"]) == 0
    assert main(["config", "--dump", "-o", str(notes)]) == 0  # a config of ours is replaced


def test_small_one_line_refusals(data_samples, indexed_sample, tmp_path, capsys):
    cases = [
        (["segment", str(indexed_sample), "-o", str(tmp_path / "s.h5"), "--special", ":60:1,1,1:5"], "NAME is empty"),
        (["segment", str(indexed_sample), "-o", str(tmp_path / "s.h5"), "--figures", str(data_samples / "au.cif")],
         "is a crystal structure (CIF), not a folder"),
        (["simulate", "--phase", "au", "--scan", "2,2", "--detector", "16,16", "-o", str(tmp_path / "sim.ang")],
         "give a .h5 or .hdf5 file name"),
    ]
    for argv, expect in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expect in err and err.count("\n") == 1, err
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "sim.ang").exists()


def test_a_config_file_value_is_not_blamed_on_an_option(data_samples, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[index]\nchunk_rows = 0\n")
    rc = main(["index", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / "o.h5"), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "--chunk-rows" not in err and "chunk_rows" in err, err


def test_run_into_a_folder_of_someone_elses_files_is_refused(data_samples, tmp_path, capsys):
    """A folder no run claimed, holding files named like the run's outputs (a user's summary.json, a figure):
    refused in one line unless --overwrite (they used to be replaced)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "summary.json").write_text('{"mine": true}')
    (folder / "grains_ipf.png").write_bytes(b"not ours")
    rc = main(["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "--field", "1,0", "-o", str(folder)])
    err = capsys.readouterr().err
    assert rc == 2 and "holds files the run writes" in err and "summary.json" in err and err.count("\n") == 1, err
    assert (folder / "summary.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in folder.iterdir()) == ["grains_ipf.png", "summary.json"]


@pytest.mark.parametrize("name", ["m.ang", "m.ctf", "m.csv"])
def test_index_results_under_another_formats_name_are_refused(au_scan_3x3, tmp_path, capsys, name):
    """`index -o m.ang` wrote an HDF5 results file under an .ang name; now one line pointing to .h5 (and --export-ang)."""
    out = tmp_path / name
    assert main(["index", str(au_scan_3x3), "--phase", "au", "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"-o {out}: the results file is HDF5; give a .h5 name" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("argv, expect", [
    # a mistyped command, stemgrains's own option, a choice: one line with the closest (difflib), exit 2
    (["idnex"], "stemgrains: error: argument COMMAND: invalid choice: 'idnex' (did you mean index? choose from "),
    (["--verison"], "stemgrains: error: no option --verison (did you mean --version?) (see 'stemgrains --help')"),
    (["--verison", "index", "a.h5"], "stemgrains: error: no option --verison (did you mean --version?)"),
    (["calibrate", "a.h5", "--phase", "au", "-o", "c.json", "--method", "ring"],
     "stemgrains calibrate: error: argument --method: invalid choice: 'ring' (did you mean rings? choose from auto, "
     "rings, orientations) (see 'stemgrains calibrate --help')"),
    (["index", "a.h5", "--phase", "au", "-o", "x.h5", "--backend", "gpux"], "invalid choice: 'gpux' (did you mean gpu?"),
    (["xyzzy"], "invalid choice: 'xyzzy' (choose from simulate, "),  # nothing close: no guess
])
def test_mistyped_command_option_or_choice_names_the_closest(argv, expect, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and expect in err, err


def test_options_refused_before_any_work(data_samples, tmp_path, capsys):
    """Fresh-user findings: --min-reliability above 100 used to index the whole scan first; --threshold 0 had
    another wording than the other ranges; --hex-frame x-a with --hex-x-astar silently took x-astar; --scan-shape
    on a file already 4-D was ignored."""
    src, cif = str(data_samples / "nba_sample.h5"), str(data_samples / "na_beta2_alumina.cif")
    cases = [
        (["run", src, "--phase", cif, "--field", "1,0", "-o", str(tmp_path / "r"), "--min-reliability", "1000"],
         "--min-reliability expects a value from 0 to 100, got 1000"),
        (["segment", "map.ang", "-o", str(tmp_path / "s.h5"), "--threshold", "0"],
         "--threshold expects a value above 0 and at most 180 deg, got 0"),
        (["segment", "map.ang", "-o", str(tmp_path / "s.h5"), "--hex-frame", "x-a", "--hex-x-astar"],
         "not allowed with argument --hex-frame"),
        (["virtual", src, "--bf", "5", "--scan-shape", "7,7", "-o", str(tmp_path / "v.npy")],
         "its data are 4-D already, a 40 x 40 scan; scan_shape (--scan-shape) (7, 7) is for a flat stack"),
    ]
    for argv, expect in cases:
        try:
            rc = main(argv)
        except SystemExit as err:  # argparse's own refusals
            rc = err.code
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and expect in err[-1], (argv, err)
    assert not (tmp_path / "r").exists() and not list(tmp_path.iterdir())


def test_wrong_kind_of_input_says_what_it_is(data_samples, tmp_path, capsys):
    """Fresh-user findings: an .ang given to classify read 'not a readable HDF5 file (Unable to synchronously
    open ...)', a 4D scan given to transport 'no /grains group (run segment first)', a folder 'file not found'."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "grains"))
    from synthetic_grains import synthetic_polycrystal

    from stemgrains.io.export import write_ang

    xmap, _, _ = synthetic_polycrystal(shape=(6, 5), n_grains=3, seed=1)
    ang = write_ang(tmp_path / "m.ang", xmap)
    scan = data_samples / "nba_sample.h5"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.h5").write_bytes(b"")
    cases = [
        (["classify", str(ang), "--field", "1,0"], "m.ang: is an orientation map (.ang), not a results file; segment it"),
        (["transport", str(scan), "--electrode", "left=1", "--electrode", "right=0"],
         "is a 4D-STEM scan (shape (40, 40, 128, 128)), not a results file; index it first"),
        (["classify", str(folder), "--field", "1,0"], f"is a folder; expected a results file (.h5); the results of the "
                                                       f"run there are {folder / 'results.h5'}"),
        (["segment", str(tmp_path), "-o", str(tmp_path / "s.h5")], "is a folder; expected a results file (.h5) or an"),
    ]
    for argv, expect in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0], (argv, err)


def test_an_unusable_output_path_names_the_option(data_samples, tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    rc = main(["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "--field", "1,0", "-o", str(tmp_path / "afile" / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"stemgrains run: error: -o {tmp_path / 'afile'}") and err.count("\n") == 1, err


@pytest.mark.parametrize("command, out, what", [("run", "", "an empty path; give an output folder"),
                                                ("index", "", "an empty path; give a file name"),
                                                ("index", ".", "a folder; give a file name")])
def test_an_empty_or_folder_output_is_refused_before_any_work(data_samples, tmp_path, capsys, monkeypatch, command, out, what):
    """-o "$OUT" with OUT unset would make the current folder a run folder (or crash a file output): refused."""
    monkeypatch.chdir(tmp_path)
    rc = main([command, str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               *(["--field", "1,0"] if command == "run" else []), "-o", out, "--no-progress"])
    assert rc == 2 and capsys.readouterr().err == f"stemgrains {command}: error: -o {out!r}: {what}\n"
    assert list(tmp_path.iterdir()) == []


def test_more_bad_input_is_one_line_naming_what_is_wrong(tmp_path, capsys):
    """From a fresh-user review: each mistake gets one line naming the file or option and what was expected,
    exit status 2, before any indexing."""
    import json

    import numpy as np

    scan = tmp_path / "scan.npy"
    np.save(scan, np.zeros((4, 4, 32, 32), np.uint16))
    (tmp_path / "text.npy").write_text("hello\n")
    np.save(tmp_path / "det4.npy", np.zeros((4, 4, 4, 4), np.uint16))
    (tmp_path / "s.json").write_text(json.dumps({"q_pixel_size": "0.0246"}))
    out = str(tmp_path / "m.h5")
    cases = [
        (["index", str(scan), "--phase", "au", "--q-pixel-size", "0.03", "--ellipticity", "100,0", "-o", out],
         "--ellipticity ratio must lie between 0.5 and 2"),
        (["index", str(scan), "--phase", "au", "--calibration", str(tmp_path / "s.json"), "-o", out],
         f"{tmp_path / 's.json'}: q_pixel_size must be a number"),
        (["index", str(scan), "--phase", "au", "--phase", "au.cif", "--q-pixel-size", "0.03", "-o", out],
         "--phase au.cif: the same phase as --phase au"),
        (["info", str(tmp_path / "text.npy")], f"{tmp_path / 'text.npy'}: not a .npy file"),
        (["index", str(tmp_path / "det4.npy"), "--phase", "au", "--q-pixel-size", "0.03", "-o", out],
         f"{tmp_path / 'det4.npy'}: the beam centre (1.5, 1.5) leaves no room on the 4 x 4 detector"),
        (["calibrate", str(scan), "--phase", "au", "--q-pixel-size", "0.03", "--n-index", "64", "--max-index", "16",
          "-o", str(tmp_path / "c.json")], "--max-index (16) must be at least n_index (64)"),
        (["index", str(scan), str(scan.with_name("det4.npy")), "--phase", "au", "--export-ang", "sub/map.ang", "-o",
          str(tmp_path / "batch")], "--export-ang sub/map.ang: in a batch it names a file inside each input's folder"),
    ]
    for argv, expect in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expect in err, (argv, err)
    assert not (tmp_path / "m.h5").exists() and not (tmp_path / "batch").exists()


def test_a_scheduler_that_is_no_address_is_one_line(data_samples, tmp_path, capsys):
    rc = main(["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / "r"), "--field", "1,0", "--scheduler", "notanaddress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--scheduler notanaddress: expected a scheduler address" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_batch_refuses_a_centre_off_the_detector_once_before_it_starts(au_scan_3x3, tmp_path, capsys):
    """A --center (or a --calibration file's centre) off the detector failed every input of a batch (exit 1, a
    folder of failures, a reason naming neither the option nor the file)."""
    cal = tmp_path / "ctr.json"
    cal.write_text('{"center_row": 500, "center_col": 3}')
    out = tmp_path / "batch"
    for given, named in ((["--center", "500,3"], "--center (row, col) = (500, 3) lies outside"),
                         (["--calibration", str(cal)], f"{cal}: center (row, col) = (500, 3) lies outside")):
        rc = main(["index", str(au_scan_3x3), str(au_scan_3x3), "--phase", "au", *given, "--no-progress", "-o", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and f"error: {named}" in err[0], err
        assert err[0].endswith("the batch's first input, before the batch)") and not out.exists()
