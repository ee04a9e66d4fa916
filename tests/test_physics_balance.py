"""A balance matrix: traces in a compound the detector cannot see (a dried tissue),
quantified in absolute wt% by their Compton scatter, not closed to 100 %."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.physics_fit import PhysicsQuantifier
from napari_xrfquant.instrument import reference_instrument
from napari_xrfquant.physics import simulate

#: A dried section: traces (wt%) in an organic matrix of H, C, N and O.
TRACES = {"P": 1.0, "S": 1.0, "K": 0.6, "Ca": 0.3, "Fe": 0.05, "Zn": 0.05}
ORGANIC = {"H": 7.0, "C": 50.0, "N": 10.0, "O": 30.0}
#: The same organic matrix as a formula (atoms in proportion to wt% / atomic weight).
FORMULA = "H6.9444C4.1629N0.7139O1.8751"


def tissue_spectra(n: int, counts: float, seed: int) -> np.ndarray:
    rest = 100.0 - sum(TRACES.values())
    organic = [rest * v / sum(ORGANIC.values()) for v in ORGANIC.values()]
    return np.asarray(simulate(np.tile([*TRACES.values(), *organic], (n, 1)),
                               [*TRACES, *ORGANIC], counts=counts, seed=seed))


def test_traces_in_an_organic_matrix_come_back_in_absolute_wt_percent():
    spectra = tissue_spectra(20, 1e6, seed=4)
    fit = PhysicsQuantifier(list(TRACES), reference_instrument(), matrix=FORMULA).fit(spectra)
    for i, element in enumerate(fit.elements):
        values, sigma = fit.values[:, i], fit.sigma[:, i]
        assert values.mean() == pytest.approx(TRACES[element], rel=0.03), element
        # sigma within a factor 2.5 of the spectra's scatter
        assert 0.4 < sigma.mean() / values.std() < 2.5, element
    assert fit.balance_wt_percent is not None and fit.balance_sigma is not None
    assert fit.balance_wt_percent.mean() == pytest.approx(100 - sum(TRACES.values()), abs=0.1)
    assert np.median(fit.fit_quality) == pytest.approx(1.0, abs=0.1)
    # closed to 100 %, the same spectra would make P a sixth of the sample
    closed = PhysicsQuantifier(list(TRACES), reference_instrument()).fit(spectra[:1])
    assert closed.values[0, 0] > 10.0


@pytest.mark.parametrize(("matrix", "message"), [
    ("Xq7", "matrix 'Xq7': give elements, oxides or a balance compound"),
    ("CaCO3", r"matrix 'CaCO3' holds Ca \(fitted as elements\)"),
])
def test_a_bad_balance_compound_is_one_line(matrix, message):
    with pytest.raises(XRFQuantError, match=message) as info:
        PhysicsQuantifier(list(TRACES), reference_instrument(), matrix=matrix)
    assert "\n" not in str(info.value)


def test_a_thin_sample_takes_no_balance_compound():
    film = reference_instrument().replace(sample={"areal_density_ug_cm2": 10.0})
    with pytest.raises(XRFQuantError, match="a balance compound is for a bulk sample"):
        PhysicsQuantifier(list(TRACES), film, matrix=FORMULA)


def test_the_cli_writes_the_balance_compound_beside_the_traces(tmp_path, capsys):
    import csv

    from napari_xrfquant.cli import main
    from napari_xrfquant.instrument import instrument_to_toml
    from napari_xrfquant.io import write_cxc_hdf5

    write_cxc_hdf5(tmp_path / "tissue.h5", tissue_spectra(4, 1e6, seed=5).reshape(2, 2, -1),
                   reference_instrument().energy_axis_keV())
    (tmp_path / "reference.toml").write_text(instrument_to_toml(reference_instrument()))
    argv = ["quantify", str(tmp_path / "tissue.h5"), "-o", str(tmp_path / "out"),
            "--instrument", str(tmp_path / "reference.toml"), "--elements", ",".join(TRACES),
            "--matrix", FORMULA, "--quiet"]
    assert main(argv) == 0
    with open(tmp_path / "out" / "tissue_statistics.csv", newline="", encoding="utf-8") as f:
        rows = {row["element"]: row for row in csv.DictReader(f)}
    assert float(rows["Zn"]["mean_wt_percent"]) == pytest.approx(0.05, rel=0.05)
    assert float(rows[FORMULA]["mean_wt_percent"]) == pytest.approx(97.0, abs=0.2)
    written = (tmp_path / "out" / "tissue_statistics.csv").stat().st_mtime_ns
    bad = [*argv[:-2], "CaCO3", "--quiet", "--overwrite"]
    assert main(bad) == 2  # refused, the first run's files left as they were
    assert (tmp_path / "out" / "tissue_statistics.csv").stat().st_mtime_ns == written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds Ca (fitted as elements)" in err[0]


def test_a_spectrum_without_compton_is_nan_and_leaves_the_others_their_values():
    """A balance fit normalises by the Compton scatter: a spectrum without it (a few
    counts and no scatter) has no composition (NaN). It used to turn its whole batch's
    mean matrix into NaN and stop the fit with a linear-algebra error."""
    spectra = tissue_spectra(6, 1e5, seed=4)
    odd = np.zeros_like(spectra[0])
    odd[400:420] = 50.0
    fit = PhysicsQuantifier(list(TRACES), reference_instrument(), matrix=FORMULA).fit(
        np.vstack([spectra, odd[None]]))
    assert np.isnan(fit.values[-1]).all()
    assert np.isfinite(fit.values[:-1]).all()
    assert fit.values[:-1, 1].mean() == pytest.approx(TRACES["S"], rel=0.1)
