"""Thin, cached access to the xraylib atomic data the simulator needs.

Everything here works in numpy float64 and keV / cm^2 g^-1 units; torch never
appears. xraylib is imported on first use so that importing the package stays
cheap. Names follow xraylib (``CS_FluorLine_Kissel_Cascade``, ``DCSP_Rayl``) so a
physicist can find the data source of every number.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_xrfquant.errors import InstrumentError, SimulationError
from napari_xrfquant.physics import _cascade

# re-exported: the rest of the package reads the xraylib lookups through this module
from napari_xrfquant.physics._xraylib import (
    SHELL_INDEX as SHELL_INDEX,
)
from napari_xrfquant.physics._xraylib import (
    TransitionMacro as TransitionMacro,
)
from napari_xrfquant.physics._xraylib import (
    edge_energy_keV as edge_energy_keV,
)
from napari_xrfquant.physics._xraylib import (
    fluor_yield as fluor_yield,
)
from napari_xrfquant.physics._xraylib import (
    line_energy_keV as line_energy_keV,
)
from napari_xrfquant.physics._xraylib import (
    macro_shells as macro_shells,
)
from napari_xrfquant.physics._xraylib import (
    safe as safe,
)
from napari_xrfquant.physics._xraylib import (
    transition_macros as transition_macros,
)
from napari_xrfquant.physics._xraylib import (
    xrl as xrl,
)

#: Atomic numbers the simulator gives lines to and quantifies (Na to U).
Z_MIN, Z_MAX = 11, 92
#: Lightest element a sample may hold: H to F absorb and scatter like any other
#: element (the matrix of rocks, oxides and tissue) but emit nothing a detector
#: sees through its window, so the simulator gives them no lines.
Z_LIGHT = 1

#: Electron rest energy m c^2 in keV.
ELECTRON_REST_ENERGY_KEV = 510.998950

#: Fine-structure constant inverse: one m c in atomic momentum units.
INVERSE_FINE_STRUCTURE = 137.035999

#: Initial (vacancy) shells whose radiative transitions are simulated.
EMITTING_SHELLS = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")

#: IUPAC -> Siegbahn names of the diagram lines (ASCII: a=alpha, b=beta, ...).
SIEGBAHN = {
    "KL1": "Ka3",
    "KL2": "Ka2",
    "KL3": "Ka1",
    "KM2": "Kb3",
    "KM3": "Kb1",
    "KM4": "Kb5",
    "KM5": "Kb5",
    "KN2": "Kb2",
    "KN3": "Kb2",
    "KN4": "Kb4",
    "KN5": "Kb4",
    "KO2": "Kb2",
    "KO3": "Kb2",
    "L1M2": "Lb4",
    "L1M3": "Lb3",
    "L1M4": "Lb10",
    "L1M5": "Lb9",
    "L1N2": "Lg2",
    "L1N3": "Lg3",
    "L1O2": "Lg4",
    "L1O3": "Lg4",
    "L2M1": "Ln",
    "L2M3": "Lb17",
    "L2M4": "Lb1",
    "L2N1": "Lg5",
    "L2N4": "Lg1",
    "L2O1": "Lg8",
    "L2O4": "Lg6",
    "L3M1": "Ll",
    "L3M4": "La2",
    "L3M5": "La1",
    "L3N1": "Lb6",
    "L3N4": "Lb15",
    "L3N5": "Lb2",
    "L3O1": "Lb7",
    "L3O45": "Lb5",
    "L3O4": "Lb5",
    "L3O5": "Lb5",
    "L3N6": "Lu",
    "L3N7": "Lu",
    "M3N5": "Mg",
    "M4N2": "Mz2",
    "M4N6": "Mb",
    "M5N3": "Mz1",
    "M5N6": "Ma2",
    "M5N7": "Ma1",
}

def symbol_to_z(symbol: str, light: bool = False) -> int:
    """Atomic number of an element symbol; raises :class:`SimulationError`.

    ``light`` admits H to F (:data:`Z_LIGHT`), as matrix elements without lines.
    """
    text = str(symbol).strip()
    normalised = text[:1].upper() + text[1:].lower()
    try:
        z = int(xrl().SymbolToAtomicNumber(normalised))
    except ValueError:
        z = 0
    if z <= 0:
        raise SimulationError(f"unknown element symbol {symbol!r}")
    low = Z_LIGHT if light else Z_MIN
    if not low <= z <= Z_MAX:
        supported = "H-U" if light else "Na-U"
        raise SimulationError(
            f"element {normalised} (Z={z}) is outside the supported range {supported} "
            f"(Z={low}-{Z_MAX})"
        )
    return z


def z_to_symbol(z: int) -> str:
    """Element symbol of atomic number ``z``."""
    return str(xrl().AtomicNumberToSymbol(int(z)))


def parse_elements(
    elements: Sequence[str] | str, light: bool = False
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Validate element symbols; return canonical symbols and atomic numbers.

    Parameters
    ----------
    elements
        Symbols such as ``["Au", "Ag", "Cu"]`` or a comma-separated string.
    light
        Admit H to F as well (a sample's matrix: they absorb and scatter, no lines).

    Raises
    ------
    SimulationError
        For an empty list, an unknown symbol, Z outside 11-92 (1-92 with
        ``light``) or a duplicate.
    """
    if isinstance(elements, str):
        elements = [e for e in elements.split(",") if e.strip()]
    items = list(elements)
    if not items:
        raise SimulationError("no elements given; name at least one, e.g. 'Au,Ag,Cu'")
    zs = tuple(symbol_to_z(e, light) for e in items)
    symbols = tuple(z_to_symbol(z) for z in zs)
    seen: set[str] = set()
    for symbol in symbols:
        if symbol in seen:
            raise SimulationError(f"element {symbol} is listed twice")
        seen.add(symbol)
    return symbols, zs


@functools.lru_cache(maxsize=500_000)
def fluor_line_cs(z: int, macro: int, energy_keV: float) -> float:
    """Line production cross section (cm^2/g) for photo-ionisation at ``energy_keV``.

    xraylib's ``CS_FluorLine_Kissel_Cascade`` model (Kissel partial
    photo-ionisation cross sections of every shell, Coster-Kronig transitions and
    the full radiative and non-radiative cascade of vacancies from deeper shells,
    fluorescence yield and radiative rate), computed by :mod:`._cascade` with two
    documented corrections for heavy elements' M lines: Coster-Kronig spectator
    vacancies and the Z = 77-92 M2 fluorescence yields. Zero below the edge or
    where xraylib lacks the line.
    """
    return float(fluor_line_cs_table(z, [macro], np.array([energy_keV]))[0, 0])


def fluor_line_cs_table(z: int, macros: Sequence[int], energies_keV: np.ndarray) -> np.ndarray:
    """:func:`fluor_line_cs` of many lines of element ``z`` at many energies, ``(U, L)``.

    The vacancy cascade is followed once per energy for all the lines (a rock under
    a tube asks for millions of line-energy pairs); a line whose vacancy shell the
    cascade does not follow comes from xraylib's ``CS_FluorLine_Kissel_Cascade``.
    """
    energies = np.asarray(energies_keV, dtype=np.float64).ravel()
    shells = [macro_shells().get(int(m)) for m in macros]
    cascade = [i for i, s in enumerate(shells) if s is not None and s in _cascade.SHELLS]
    table = np.zeros((energies.size, len(macros)))
    table[:, cascade] = _cascade.line_cross_sections(
        z, [str(shells[i]) for i in cascade], [macros[i] for i in cascade], energies
    )
    for i in sorted(set(range(len(macros))) - set(cascade)):
        table[:, i] = [safe(xrl().CS_FluorLine_Kissel_Cascade, z, int(macros[i]), float(e))
                       for e in energies]
    return table


def _vectorise(func, z: int, energies_keV: np.ndarray) -> np.ndarray:
    flat = np.asarray(energies_keV, dtype=np.float64).ravel()
    out = np.array([safe(func, z, float(e)) for e in flat])
    return out.reshape(np.shape(energies_keV))


def cs_total(z: int, energies_keV: np.ndarray) -> np.ndarray:
    """Total mass attenuation coefficient (cm^2/g): photo + Rayleigh + Compton."""
    return _vectorise(xrl().CS_Total, z, energies_keV)


def cs_photo(z: int, energies_keV: np.ndarray) -> np.ndarray:
    """Photo-absorption mass attenuation coefficient (cm^2/g)."""
    return _vectorise(xrl().CS_Photo, z, energies_keV)


def cs_rayleigh(z: int, energies_keV: np.ndarray) -> np.ndarray:
    """Rayleigh (coherent) scattering cross section (cm^2/g)."""
    return _vectorise(xrl().CS_Rayl, z, energies_keV)


def cs_compton(z: int, energies_keV: np.ndarray) -> np.ndarray:
    """Compton (incoherent) scattering cross section (cm^2/g)."""
    return _vectorise(xrl().CS_Compt, z, energies_keV)


def cs_photo_k_fraction(z: int, energies_keV: np.ndarray) -> np.ndarray:
    """Fraction of photo-absorptions that ionise the K shell (0 below the K edge)."""
    lib = xrl()
    energies = np.asarray(energies_keV, dtype=np.float64)
    k_part = np.array(
        [safe(lib.CS_Photo_Partial, z, lib.K_SHELL, float(e)) for e in energies.ravel()]
    ).reshape(energies.shape)
    total = cs_photo(z, energies)
    return np.divide(k_part, total, out=np.zeros_like(total), where=total > 0)


@dataclass(frozen=True)
class Material:
    """An attenuator or detector material as mass fractions of elements."""

    name: str
    z: tuple[int, ...]
    mass_fractions: tuple[float, ...]

    @property
    def main_z(self) -> int:
        """Atomic number of the constituent with the largest mass fraction (Si of a
        silicon sensor): the one whose edges a detector's escape peaks and shelf follow."""
        return self.z[int(np.argmax(self.mass_fractions))]

    def cs_total(self, energies_keV: np.ndarray) -> np.ndarray:
        """Total mass attenuation coefficient (cm^2/g) of the material."""
        energies = np.asarray(energies_keV, dtype=np.float64)
        total = np.zeros_like(energies)
        for z, w in zip(self.z, self.mass_fractions, strict=True):
            total += w * cs_total(z, energies)
        return total

    def cs_photo(self, energies_keV: np.ndarray) -> np.ndarray:
        """Photo-absorption mass attenuation coefficient (cm^2/g) of the material."""
        energies = np.asarray(energies_keV, dtype=np.float64)
        total = np.zeros_like(energies)
        for z, w in zip(self.z, self.mass_fractions, strict=True):
            total += w * cs_photo(z, energies)
        return total


@functools.lru_cache(maxsize=64)
def material(name: str) -> Material:
    """Look up an xraylib NIST compound by name, else parse a chemical formula.

    Raises
    ------
    InstrumentError
        If ``name`` is neither a NIST compound nor a formula xraylib can parse.
    """
    lib = xrl()
    try:
        data = lib.GetCompoundDataNISTByName(name)
    except ValueError:
        try:
            data = lib.CompoundParser(name)
        except ValueError:
            raise InstrumentError(
                f"material {name!r} is neither an xraylib NIST compound nor a chemical formula"
            ) from None
    return Material(
        name=name,
        z=tuple(int(z) for z in data["Elements"]),
        mass_fractions=tuple(float(w) for w in data["massFractions"]),
    )


def dcs_scatter_sr(
    z: int,
    energy_keV: float,
    theta_rad: np.ndarray,
    phi_rad: np.ndarray,
    polarisation: float,
    kind: str,
) -> np.ndarray:
    """Differential scatter cross section (cm^2 g^-1 sr^-1) for a partly polarised beam.

    A fraction ``polarisation`` of the beam is linearly polarised along phi = 0
    (``DCSP_Rayl`` / ``DCSP_Compt``); the rest is unpolarised (``DCS_Rayl`` /
    ``DCS_Compt``).
    """
    lib = xrl()
    polarised, unpolarised = {
        "rayleigh": (lib.DCSP_Rayl, lib.DCS_Rayl),
        "compton": (lib.DCSP_Compt, lib.DCS_Compt),
    }[kind]
    thetas = np.asarray(theta_rad, dtype=np.float64).ravel()
    phis = np.asarray(phi_rad, dtype=np.float64).ravel()
    out = np.empty_like(thetas)
    for k, (theta, phi) in enumerate(zip(thetas, phis, strict=False)):
        pol = safe(polarised, z, energy_keV, float(theta), float(phi)) if polarisation > 0 else 0.0
        unpol = safe(unpolarised, z, energy_keV, float(theta)) if polarisation < 1 else 0.0
        out[k] = polarisation * pol + (1.0 - polarisation) * unpol
    return out.reshape(np.shape(theta_rad))


@functools.lru_cache(maxsize=128)
def compton_shells(z: int) -> tuple[tuple[float, np.ndarray], ...]:
    """Per-shell Compton profiles: (binding energy keV, J(p_z) on :data:`PZ_GRID_AU`).

    Uses xraylib's ``ComptonProfile_Partial`` (Biggs et al. Hartree-Fock
    profiles), one entry per occupied shell.
    """
    lib = xrl()
    shells = []
    for shell in range(len(SHELL_INDEX)):
        try:
            lib.ComptonProfile_Partial(z, shell, 0.0)
        except ValueError:
            continue
        binding = safe(lib.EdgeEnergy, z, shell)
        profile = np.array(
            [safe(lib.ComptonProfile_Partial, z, shell, float(p)) for p in PZ_GRID_AU]
        )
        shells.append((binding, profile))
    return tuple(shells)


#: Momentum grid (atomic units) on which Compton profiles are tabulated here.
PZ_GRID_AU = np.concatenate([np.linspace(0.0, 10.0, 401), np.linspace(10.25, 100.0, 360)])


def compton_energy_keV(energy_keV: float | np.ndarray, theta_rad: np.ndarray) -> np.ndarray:
    """Energy after Compton scattering off a free electron at rest."""
    e = np.asarray(energy_keV, dtype=np.float64)
    return e / (1.0 + e / ELECTRON_REST_ENERGY_KEV * (1.0 - np.cos(theta_rad)))


def compton_pz_and_slope(
    energy_keV: float, scattered_keV: np.ndarray, theta_rad: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Projected electron momentum p_z (atomic units) that gives ``scattered_keV``,
    and its derivative d p_z / d E' (atomic units per keV): the Jacobian that turns
    a Compton profile J(p_z) into a spectrum in energy.

    Impulse approximation: p_z = -N / |q| in units of m c, with N = E - E' - E E'(1 -
    cos t)/mc^2 and |q| c = sqrt(E^2 + E'^2 - 2 E E' cos t). ``theta_rad`` may be an
    array that broadcasts against ``scattered_keV`` (angles ``(D, 1)``: ``(D, G)``).
    """
    e, ep = float(energy_keV), np.asarray(scattered_keV, dtype=np.float64)
    cos_t = np.cos(np.asarray(theta_rad, dtype=np.float64))
    numerator = e - ep - e * ep * (1.0 - cos_t) / ELECTRON_REST_ENERGY_KEV
    q = np.sqrt(e * e + ep * ep - 2.0 * e * ep * cos_t)
    d_numerator = -1.0 - e * (1.0 - cos_t) / ELECTRON_REST_ENERGY_KEV
    d_q = (ep - e * cos_t) / q
    pz = -numerator / q * INVERSE_FINE_STRUCTURE
    slope = -(d_numerator - numerator * d_q / q) / q * INVERSE_FINE_STRUCTURE
    return pz, slope


def k_escape_lines(z: int) -> tuple[tuple[float, float], ...]:
    """K emission of a detector element as (energy keV, share of its K fluorescence).

    K-alpha (KL2+KL3) and K-beta (KM2+KM3) are each one escape line at their
    rate-weighted mean energy.
    """
    lib = xrl()
    groups = ((lib.KL2_LINE, lib.KL3_LINE), (lib.KM2_LINE, lib.KM3_LINE))
    rates = [sum(safe(lib.RadRate, z, m) for m in g) for g in groups]
    total = sum(rates)
    lines = []
    for group, rate in zip(groups, rates, strict=False):
        if rate <= 0:
            continue
        energy = sum(safe(lib.RadRate, z, m) * safe(lib.LineEnergy, z, m) for m in group) / rate
        lines.append((energy, rate / total))
    return tuple(lines)
