"""The calibration check on simulated spectra: a right calibration is confirmed, a wrong one found.

The real files (``test_io_real_files.py``) are the measure; here the truth of
the energy axis is exact, so the check's own error is what is measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.io.lines import MISPLACED_EV, fit_lines, line_library, misplacement_summary
from napari_xrfquant.physics import simulate


@pytest.fixture(scope="module")
def spectrum():
    """A rose-gold alloy and a brass, 1e7 counts, the reference instrument (0 + 0.035 k keV)."""
    counts = simulate([[58.0, 4.0, 35.0, 1.0, 2.0], [0.0, 1.0, 62.0, 2.0, 35.0]],
                      ["Au", "Ag", "Cu", "Ni", "Zn"], counts=5e6, seed=0)
    instrument = reference_instrument()
    return np.asarray(counts).sum(axis=0), (instrument.detector.offset_keV,
                                            instrument.detector.gain_keV, 0.0)


def _worst_eV(found, truth, channels=range(40, 700)):
    k = np.asarray(list(channels), dtype=float)
    return 1000 * np.max(np.abs((found[0] + found[1] * k) - (truth[0] + truth[1] * k)))


def test_a_right_calibration_is_confirmed_not_flagged(spectrum):
    counts, truth = spectrum
    fit = fit_lines(counts, truth)
    assert fit.refined
    assert {"Au La", "Cu Ka", "Zn Ka"} <= {label for label, *_ in fit.matched}
    assert misplacement_summary(fit, truth) is None
    assert _worst_eV(fit.calibration_keV, truth) < MISPLACED_EV


@pytest.mark.parametrize(("offset_eV", "gain_change"), [(80, 0.01), (-120, -0.015)])
def test_a_wrong_calibration_is_found_and_said(spectrum, offset_eV, gain_change):
    counts, truth = spectrum
    wrong = (truth[0] + offset_eV / 1000, truth[1] * (1 + gain_change), 0.0)
    fit = fit_lines(counts, wrong)
    assert fit.refined
    assert _worst_eV(fit.calibration_keV, truth) < MISPLACED_EV  # within 1-24 keV
    said = misplacement_summary(fit, wrong)
    assert said is not None and ("high" if offset_eV > 0 else "low") in said


def test_the_library_leaves_out_what_the_beam_cannot_excite():
    energies, labels = line_library(10.35)
    assert "Fe Ka" in labels and "elastic" in labels
    assert "Mo Ka" not in labels  # its K edge, 20.0 keV, lies above the beam
    ka = energies[labels.index("Fe Ka")]
    assert ka == pytest.approx(6.3995, abs=2e-3)  # Ka1 and Ka2 weighted by their rates


def test_info_and_napari_say_when_an_npy_cube_s_calibration_misplaces_its_lines(
        spectrum, tmp_path, capsys):
    """A file the reader cannot check itself: info and napari's reader check it."""
    import json

    from napari_xrfquant._napari._reader import read_cube_with_warnings
    from napari_xrfquant.cli import main

    counts, truth = spectrum
    cube = np.broadcast_to(counts / 16, (4, 4, counts.size)).round()
    np.save(tmp_path / "alloy.npy", cube)
    for offset_keV, said in ((truth[0], False), (truth[0] + 0.09, True)):
        (tmp_path / "alloy.calib.json").write_text(
            json.dumps({"offset_keV": offset_keV, "gain_keV": truth[1]}))
        _, messages = read_cube_with_warnings(tmp_path / "alloy.npy")
        assert any("eV high" in m for m in messages) == said, messages
        assert main(["info", str(tmp_path / "alloy.npy"), "--energy-axis", "last"]) == 0
        err = capsys.readouterr().err
        assert ("the calibration (sidecar) puts" in err) == said, err
