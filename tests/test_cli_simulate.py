"""``xrfquant simulate``: file contents, statistics, atomic writing, refusals, bad input."""

from __future__ import annotations

import tomllib

import h5py
import numpy as np
import pytest

from napari_xrfquant.cli import main
from napari_xrfquant.instrument import reference_instrument, save_instrument

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


def _simulate(tmp_path, *extra: str, name: str = "set.h5") -> tuple[int, object]:
    out = tmp_path / name
    return main(["simulate", "-o", str(out), *extra]), out


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """300 Poisson spectra of the five gold-alloy elements, 1e3-1e4 counts."""
    tmp = tmp_path_factory.mktemp("noisy")
    out = tmp / "noisy.h5"
    status = main(["simulate", "-o", str(out), "--elements", ",".join(ELEMENTS), "-n", "300",
                   "--counts-min", "1e3", "--counts-max", "1e4", "--seed", "3", "-q"])
    assert status == 0
    with h5py.File(out, "r") as f:
        return {key: f[key][()] for key in f} | {"attrs": dict(f.attrs)}


def test_datasets_and_shapes(noisy) -> None:
    assert noisy["spectra"].shape == (300, 1024)
    # counts_max 1e4 fits 16 bits: the compact type is chosen
    assert noisy["spectra"].dtype == np.uint16
    assert noisy["wt_percent"].shape == (300, 5)
    assert noisy["wt_percent"].dtype == np.float32
    assert noisy["counts"].shape == (300,)
    np.testing.assert_allclose(noisy["energy_keV"], 0.035 * np.arange(1024), atol=1e-12)


def test_attributes(noisy) -> None:
    attrs = noisy["attrs"]
    assert list(attrs["elements"]) == ELEMENTS
    assert attrs["format"] == "xrfquant-spectra"
    assert int(attrs["format_version"]) == 1
    assert int(attrs["seed"]) == 3
    assert not bool(attrs["noiseless"]) and not bool(attrs["jitter"])
    instrument = tomllib.loads(attrs["instrument"])
    assert instrument["detector"]["gain_keV"] == pytest.approx(0.035)
    assert instrument["beam"]["energies_keV"] == [30.0]


def test_compositions_cover_the_simplex_with_absent_elements(noisy) -> None:
    wt = noisy["wt_percent"].astype(np.float64)
    np.testing.assert_allclose(wt.sum(axis=1), 100.0, atol=1e-3)
    assert np.all(wt >= 0)
    absent = wt == 0
    # each element absent with probability 0.3: 90 +- 8 of 300 expected
    assert np.all(absent.sum(axis=0) > 50) and np.all(absent.sum(axis=0) < 130)
    assert np.all(absent.sum(axis=1) < 5)  # never all absent
    assert wt.max(axis=0).min() > 60  # every element reaches high fractions


def test_counts_are_log_uniform_and_spectra_sum_to_them(noisy) -> None:
    totals = noisy["counts"]
    assert totals.min() >= 1e3 and totals.max() <= 1e4
    # log-uniform: half below the geometric mean sqrt(1e3 * 1e4)
    below = np.mean(totals < np.sqrt(1e3 * 1e4))
    assert 0.4 < below < 0.6
    sums = noisy["spectra"].sum(axis=1, dtype=np.int64)
    z = (sums - totals) / np.sqrt(totals)
    assert np.all(np.abs(z) < 5)
    assert abs(z.mean()) < 0.3 and 0.75 < z.std() < 1.25


def test_progress_line_on_stderr(tmp_path, capsys) -> None:
    status, _ = _simulate(tmp_path, "--elements", "Au,Cu", "-n", "20", "--seed", "1")
    assert status == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "20/20" in captured.err


def test_noiseless_spectra_are_the_simulator_expectation(tmp_path) -> None:
    from napari_xrfquant.physics import simulate

    status, out = _simulate(tmp_path, "--elements", "Au,Cu", "-n", "12", "--noiseless",
                            "--counts-min", "500", "--counts-max", "5e5", "-q")
    assert status == 0
    with h5py.File(out, "r") as f:
        spectra, wt, totals = f["spectra"][()], f["wt_percent"][()], f["counts"][()]
        assert f["spectra"].dtype == np.float32
        assert bool(f.attrs["noiseless"])
    np.testing.assert_allclose(spectra.sum(axis=1), totals, rtol=1e-4)
    # the float64 reference path of physics.simulate, scaled to the same totals
    expected = simulate(wt.astype(np.float64), ["Au", "Cu"]) * totals[:, None]
    np.testing.assert_allclose(spectra, expected, rtol=2e-3, atol=1e-3 * totals.max() / 1024)


def test_same_seed_same_file(tmp_path) -> None:
    args = ("--elements", "Au,Cu", "-n", "30", "--seed", "11", "-q")
    assert _simulate(tmp_path, *args, name="a.h5")[0] == 0
    assert _simulate(tmp_path, *args, name="b.h5")[0] == 0
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a["spectra"][()], b["spectra"][()])
        np.testing.assert_array_equal(a["wt_percent"][()], b["wt_percent"][()])


def test_threads_option_keeps_the_draws_and_restores_torch(tmp_path) -> None:
    import torch

    threads = torch.get_num_threads()
    args = ("--elements", "Au,Cu", "-n", "30", "--seed", "11", "-q")
    assert _simulate(tmp_path, *args, name="a.h5")[0] == 0
    assert _simulate(tmp_path, *args, "--threads", "1", name="b.h5")[0] == 0
    assert torch.get_num_threads() == threads
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        # compositions and totals are drawn before any simulation: identical
        np.testing.assert_array_equal(a["wt_percent"][()], b["wt_percent"][()])
        np.testing.assert_array_equal(a["counts"][()], b["counts"][()])
        # the Poisson draws may part ways on a last-bit difference of a rate
        sums = b["spectra"][()].sum(axis=1)
        assert np.all(np.abs(sums - b["counts"][()]) < 5 * np.sqrt(b["counts"][()]) + 5)


def test_jitter_varies_the_instrument_per_group(tmp_path) -> None:
    status, out = _simulate(tmp_path, "--elements", "Au,Cu", "-n", "300", "--jitter",
                            "--counts-max", "3e5", "--seed", "5", "-q")
    assert status == 0
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["jitter"])
        assert f["spectra"].dtype == np.uint32  # 3e5 counts may not fit 16 bits
        overrides = f["instrument_overrides"][()]
        names = list(f["instrument_overrides"].attrs["names"])
    gain = overrides[:, names.index("gain_keV")]
    # groups of 256 spectra share one draw; two groups differ
    assert np.all(gain[:256] == gain[0]) and np.all(gain[256:] == gain[256])
    assert gain[0] != gain[256]
    # training jitter: gain within +-0.2 % of the nominal 0.035 keV
    assert np.all(np.abs(gain / 0.035 - 1) <= 0.002 + 1e-6)


def test_instrument_file_sets_the_energy_axis(tmp_path) -> None:
    ref = reference_instrument()
    other = ref.replace(**{"detector.gain_keV": 0.04, "detector.n_channels": 800})
    path = save_instrument(other, tmp_path / "other.toml")
    status, out = _simulate(tmp_path, "--elements", "Au,Cu", "-n", "5", "--instrument",
                            str(path), "-q")
    assert status == 0
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["energy_keV"][()], 0.04 * np.arange(800), atol=1e-12)
        assert f["spectra"].shape == (5, 800)
        assert tomllib.loads(f.attrs["instrument"])["detector"]["gain_keV"] == 0.04


def test_refuses_to_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "existing.h5"
    out.write_bytes(b"user data")
    status = main(["simulate", "-o", str(out), "--elements", "Au,Cu", "-n", "5", "-q"])
    assert status == 2
    assert out.read_bytes() == b"user data"
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exists" in err and str(out) in err
    status = main(["simulate", "-o", str(out), "--elements", "Au,Cu", "-n", "5", "-q",
                   "--overwrite"])
    assert status == 0
    with h5py.File(out, "r") as f:
        assert f["spectra"].shape[0] == 5
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--elements", "Au,Xx"], "Xx"),
        (["-n", "0"], "-n 0"),
        (["-n", "-5"], "-n -5"),
        (["--counts-min", "1e4", "--counts-max", "1e3"], "--counts-max"),
        (["--counts-min", "0"], "--counts-min"),
        (["--absent-probability", "1"], "--absent-probability"),
        (["--threads", "0"], "--threads 0"),
        (["--instrument", "no/such/instrument.toml"], "instrument.toml"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, words) -> None:
    args = ["--elements", "Au,Cu", "-n", "5", *extra]
    status, out = _simulate(tmp_path, *args)
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("xrfquant simulate: error:") and words in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
