"""Line-family intensities against fisx (ESRF), an independent FP implementation.

Like with like: a bulk sample, 30 keV beam, 45/45 deg, no attenuators and no
detector on either side. fisx's ``primary`` and ``secondary`` are photons per
incident photon per unit ``Omega / 4 pi``, the unit of
:meth:`XRFSimulator.line_intensities` (checked: the ratio is 1 within 0.5 %), so
no fitted factor is used. fisx counts the Rayleigh-scattered beam as a
secondary source but not the Compton-scattered one, so the comparison builds
the simulator with Rayleigh scatter excitation only.

Au M used to be off by 2-21 % for two data defects in xraylib, both corrected in
:mod:`napari_xrfquant.physics._cascade` and shown in the last tests here: the
Coster-Kronig spectator vacancies (L1 -> L3 M4,5) that xraylib's cascade drops,
and its Au-region M2 fluorescence yield spike. The rest (about -2 %) is xraylib's
M4/M5 fluorescence yields against fisx's Chen et al. values.
"""

from __future__ import annotations

import numpy as np
import pytest

fisx = pytest.importorskip("fisx")
torch = pytest.importorskip("torch")

from conftest import fisx_family_intensities  # noqa: E402
from napari_xrfquant.physics.simulator import XRFSimulator  # noqa: E402

pytestmark = pytest.mark.slow

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]
#: family -> (element, shell letter) and fisx family names
FAMILIES = {
    "Au L": ("Au", "L", ["Au L1", "Au L2", "Au L3"]),
    "Au M": ("Au", "M", ["Au M"]),
    "Ag K": ("Ag", "K", ["Ag K"]),
    "Cu K": ("Cu", "K", ["Cu K"]),
    "Ni K": ("Ni", "K", ["Ni K"]),
    "Zn K": ("Zn", "K", ["Zn K"]),
}
TOLERANCE = 0.03


def _compositions() -> np.ndarray:
    crms = np.array(
        [
            [58.56, 3.90, 35.65, 0.0, 1.891],
            [75.10, 3.02, 14.69, 4.99, 2.107],
            [75.12, 24.90, 0.0, 0.0, 0.0],
        ]
    )
    rng = np.random.default_rng(20240501)
    random = rng.dirichlet(np.full(5, 0.8), size=20)
    # elements often absent, as in real alloys; Au always present
    absent = rng.random((20, 5)) < 0.3
    absent[:, 0] = False
    random[absent] = 0.0
    comps = np.vstack([crms, random])
    return comps / comps.sum(axis=1, keepdims=True)


COMPOSITIONS = _compositions()


@pytest.fixture(scope="module")
def fisx_elements():
    elements = fisx.Elements()
    elements.initializeAsPyMca()
    return elements


@pytest.fixture(scope="module")
def simulator():
    # fisx lets the Rayleigh-scattered beam excite the sample, not the Compton one
    return XRFSimulator(ELEMENTS, dtype=torch.float64, scatter_excitation=("rayleigh",))


def _fisx_families(
    elements, fractions: np.ndarray, name: str, density: float = 15.0, thickness_cm: float = 1.0
) -> dict[str, tuple[float, float]]:
    composition = {e: float(w) for e, w in zip(ELEMENTS, fractions, strict=True) if w > 0}
    material = fisx.Material(name, 1.0, 1.0)
    material.setComposition(composition)
    elements.addMaterial(material)
    xrf = fisx.XRF()
    xrf.setBeam(30.0)
    xrf.setGeometry(45.0, 45.0)
    xrf.setSample([[name, density, thickness_cm]])  # default 1 cm: infinitely thick
    out = {}
    for family, (element, _, fisx_names) in FAMILIES.items():
        if composition.get(element, 0.0) <= 0:
            continue
        out[family] = fisx_family_intensities(xrf, elements, fisx_names)
    return out


def _ours(sim, fractions: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    w = torch.tensor(fractions[None, :], dtype=torch.float64)
    primary = sim.line_intensities(w, secondary=False)[0].numpy()
    total = sim.line_intensities(w)[0].numpy()
    p, t = {}, {}
    for family, (element, shell, _) in FAMILIES.items():
        rows = [
            k
            for k, line in enumerate(sim.tables.lines)
            if line.symbol == element and line.shell.startswith(shell)
        ]
        p[family] = float(primary[rows].sum())
        t[family] = float(total[rows].sum())
    return p, t


@pytest.fixture(scope="module")
def comparison(fisx_elements, simulator):
    rows = []
    for n, fractions in enumerate(COMPOSITIONS):
        reference = _fisx_families(fisx_elements, fractions, f"alloy{n}")
        p, t = _ours(simulator, fractions)
        for family, (fp, fs) in reference.items():
            rows.append((n, family, p[family] / fp, t[family] / (fp + fs), (fp + fs) / fp))
    return rows


def test_crm_secondary_enhancement_is_large(comparison):
    """fisx itself: Cu K in ERM-EB506 is enhanced by about 40 %."""
    enhancement = {(n, f): e for n, f, _, _, e in comparison}
    assert 1.3 < enhancement[(0, "Cu K")] < 1.5


@pytest.mark.parametrize("family", list(FAMILIES))
def test_primary_within_3_percent(comparison, family):
    ratios = [(n, r) for n, f, r, _, _ in comparison if f == family]
    assert ratios
    worst = max(ratios, key=lambda item: abs(item[1] - 1.0))
    assert abs(worst[1] - 1.0) < TOLERANCE, f"{family} composition {worst[0]}: {worst[1]:.4f}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_primary_plus_secondary_within_3_percent(comparison, family):
    ratios = [(n, r) for n, f, _, r, _ in comparison if f == family]
    assert ratios
    worst = max(ratios, key=lambda item: abs(item[1] - 1.0))
    assert abs(worst[1] - 1.0) < TOLERANCE, f"{family} composition {worst[0]}: {worst[1]:.4f}"


def test_au_m_vacancies_match_fisx_cascade(fisx_elements):
    """Au M-shell vacancies after the cascade, per photo-absorption at 30 keV.

    fisx follows the vacancies with its own EADL97 transition tables
    (``getCascadeModifiedVacancyDistribution``). xraylib's cascade is about 10 %
    short in M4 and M5 (no Coster-Kronig spectators); ours agrees within 1 % there
    and within 3 % in M1-M3 (Coster-Kronig and L-yield data of the two codes).
    """
    import xraylib

    from napari_xrfquant.physics import _cascade

    energy = 30.0
    initial = fisx_elements.getInitialPhotoelectricVacancyDistribution("Au", energy)
    reference = fisx_elements.getCascadeModifiedVacancyDistribution("Au", initial)
    photo = xraylib.CS_Photo(79, energy)
    ours = _cascade.shell_vacancies(79, energy, True) / photo
    raw = _cascade.shell_vacancies(79, energy, False) / photo
    tolerance = {"M1": 0.03, "M2": 0.03, "M3": 0.03, "M4": 0.01, "M5": 0.01}
    for shell, rel in tolerance.items():
        k = _cascade.SHELLS.index(shell)
        assert ours[k] == pytest.approx(reference[shell], rel=rel), shell
    for shell in ("M4", "M5"):
        k = _cascade.SHELLS.index(shell)
        assert raw[k] / reference[shell] < 0.93, shell


def test_au_m2_yield_matches_fisx_after_override(fisx_elements):
    """The overridden Au M2 yield is Chen et al.'s, the value fisx uses."""
    from napari_xrfquant.physics import _cascade

    reference = fisx_elements.getShellConstants("Au", "M2")["omega"]
    assert _cascade.fluorescence_yield(79, "M2") == pytest.approx(reference, rel=1e-3)
    assert _cascade.fluorescence_yield(79, "M2", corrected=False) > 10 * reference


@pytest.mark.parametrize("thickness_um", [2.0, 10.0])
def test_single_layer_against_fisx(fisx_elements, thickness_um):
    """Finite layer (de Boer thin-layer secondary formula) for the three CRMs."""
    sim = XRFSimulator(
        ELEMENTS,
        dtype=torch.float64,
        layer_thickness_cm=thickness_um * 1e-4,
        layer_density_g_cm3=15.0,
        scatter_excitation=("rayleigh",),
    )
    for n, fractions in enumerate(COMPOSITIONS[:3]):
        reference = _fisx_families(
            fisx_elements, fractions, f"layer{thickness_um}_{n}", 15.0, thickness_um * 1e-4
        )
        p, t = _ours(sim, fractions)
        for family, (fp, fs) in reference.items():
            assert p[family] / fp == pytest.approx(1.0, abs=TOLERANCE), (family, n, "primary")
            assert t[family] / (fp + fs) == pytest.approx(1.0, abs=TOLERANCE), (family, n)
