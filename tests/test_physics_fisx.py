"""Line-family intensities against fisx (ESRF), an independent FP implementation.

Like with like: a bulk sample, 30 keV beam, 45/45 deg, no attenuators and no
detector on either side. fisx's ``primary`` and ``secondary`` are photons per
incident photon per unit ``Omega / 4 pi``, the unit of
:meth:`XRFSimulator.line_intensities` (checked: the ratio is 1 within 0.5 %), so
no fitted factor is used. fisx counts the Rayleigh-scattered beam as a
secondary source but not the Compton-scattered one, so the comparison builds
the simulator with Rayleigh scatter excitation only.

Au M is the exception, for data-table reasons shown in
:func:`test_au_m_difference_is_a_data_table_difference`: xraylib's Au M2
fluorescence yield is 12x fisx's (0.0423 vs 0.00343; M2 above M3 by 10x is
itself implausible) and the L -> M vacancy cascade differs by about 10 %.
"""

from __future__ import annotations

import numpy as np
import pytest

fisx = pytest.importorskip("fisx")
torch = pytest.importorskip("torch")

from napari_xrfquant.physics import tables as physics_tables  # noqa: E402
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
AU_M_TOLERANCE = 0.25


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
    saved = physics_tables.SCATTER_EXCITATION
    physics_tables.SCATTER_EXCITATION = ("rayleigh",)
    try:
        return XRFSimulator(ELEMENTS, dtype=torch.float64)
    finally:
        physics_tables.SCATTER_EXCITATION = saved


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
        result = xrf.getMultilayerFluorescence(
            fisx_names, elements, secondary=2, useMassFractions=1
        )
        primary = secondary = 0.0
        for key in result:
            for line in result[key][0].values():
                primary += line["primary"]
                secondary += line["secondary"]
        out[family] = (primary, secondary)
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


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "Au M"])
def test_primary_within_3_percent(comparison, family):
    ratios = [(n, r) for n, f, r, _, _ in comparison if f == family]
    assert ratios
    worst = max(ratios, key=lambda item: abs(item[1] - 1.0))
    assert abs(worst[1] - 1.0) < TOLERANCE, f"{family} composition {worst[0]}: {worst[1]:.4f}"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "Au M"])
def test_primary_plus_secondary_within_3_percent(comparison, family):
    ratios = [(n, r) for n, f, _, r, _ in comparison if f == family]
    assert ratios
    worst = max(ratios, key=lambda item: abs(item[1] - 1.0))
    assert abs(worst[1] - 1.0) < TOLERANCE, f"{family} composition {worst[0]}: {worst[1]:.4f}"


def test_au_m_within_data_table_spread(comparison):
    for _, family, primary, total, _ in comparison:
        if family == "Au M":
            assert abs(primary - 1.0) < AU_M_TOLERANCE
            assert abs(total - 1.0) < AU_M_TOLERANCE


def test_au_m_difference_is_a_data_table_difference(fisx_elements, simulator):
    """The Au M disagreement is two data-table differences, nothing else.

    1. xraylib's Au M2 fluorescence yield is 12x fisx's and 10x its own M3
       yield; M2 lines (2.8 keV, above the Au M3 edge) then weigh differently
       in Au-rich and Au-poor alloys, hence a composition-dependent ratio.
    2. With fisx's M2 yield substituted, the ratio becomes one constant for all
       23 alloys (about 0.90): a composition-independent factor, i.e. the
       L -> M vacancy-cascade data, not the matrix physics.
    """
    import xraylib

    omega_m2_xraylib = xraylib.FluorYield(79, xraylib.M2_SHELL)
    omega_m3_xraylib = xraylib.FluorYield(79, xraylib.M3_SHELL)
    omega_m2_fisx = fisx_elements.getShellConstants("Au", "M2")["omega"]
    assert omega_m2_xraylib / omega_m2_fisx > 10.0
    assert omega_m2_xraylib / omega_m3_xraylib > 5.0

    lines = simulator.tables.lines
    m_rows = [k for k, ln in enumerate(lines) if ln.symbol == "Au" and ln.shell.startswith("M")]
    scale = np.array(
        [omega_m2_fisx / omega_m2_xraylib if lines[k].shell == "M2" else 1.0 for k in m_rows]
    )
    ratios = []
    for n, fractions in enumerate(COMPOSITIONS):
        reference = _fisx_families(fisx_elements, fractions, f"m2check{n}")
        w = torch.tensor(fractions[None, :], dtype=torch.float64)
        primary = simulator.line_intensities(w, secondary=False)[0].numpy()[m_rows]
        ratios.append(float((primary * scale).sum()) / reference["Au M"][0])
    ratios = np.array(ratios)
    assert ratios.max() - ratios.min() < 0.015
    assert 0.85 < ratios.mean() < 0.95


@pytest.mark.parametrize("thickness_um", [2.0, 10.0])
def test_single_layer_against_fisx(fisx_elements, thickness_um):
    """Finite layer (de Boer thin-layer secondary formula) for the three CRMs."""
    saved = physics_tables.SCATTER_EXCITATION
    physics_tables.SCATTER_EXCITATION = ("rayleigh",)
    try:
        sim = XRFSimulator(
            ELEMENTS,
            dtype=torch.float64,
            layer_thickness_cm=thickness_um * 1e-4,
            layer_density_g_cm3=15.0,
        )
    finally:
        physics_tables.SCATTER_EXCITATION = saved
    for n, fractions in enumerate(COMPOSITIONS[:3]):
        reference = _fisx_families(
            fisx_elements, fractions, f"layer{thickness_um}_{n}", 15.0, thickness_um * 1e-4
        )
        p, t = _ours(sim, fractions)
        for family, (fp, fs) in reference.items():
            if family == "Au M":
                continue
            assert p[family] / fp == pytest.approx(1.0, abs=TOLERANCE), (family, n, "primary")
            assert t[family] / (fp + fs) == pytest.approx(1.0, abs=TOLERANCE), (family, n)
