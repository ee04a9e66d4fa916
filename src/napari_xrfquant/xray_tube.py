"""X-ray tube spectra: the continuum and the anode's K lines, after H. Ebel's model.

It sits beside :mod:`napari_xrfquant.instrument` at the bottom of the core (the
``[tube]`` of an instrument file makes its beam) and uses only xraylib and numpy.

H. Ebel, "X-ray tube spectra", X-Ray Spectrom. 28 (1999) 255-266, for
reflection (side-window) anodes; its transmission-anode form as PyMca's
``XRayTubeEbel`` computes it (the X-rays leave the target on the side away
from the electrons). Valid for 5-50 kV, electrons incident at 50-90 deg and
take-off angles of 5-90 deg. Intensities are photons / (s sr mA) per keV for
the continuum and per line for the characteristic lines, before the tube's
window and filters, whose transmission is applied here.

With ``U0 = E0 / E`` (tube voltage over photon energy), ``J = 0.0135 Z`` keV:

- depth of X-ray generation: ``rho z_m = (A / Z) (0.787e-5 sqrt(J) E0^1.5 +
  0.735e-6 E0^2)`` g/cm2 and, with ``eta = E0^m (0.1904 - 0.2236 ln Z + 0.1292
  ln^2 Z - 0.0149 ln^3 Z)``, ``m = 0.1382 - 0.9211 / sqrt(Z)``, the mean depth
  ``rho z = rho z_m ln U0 (0.49269 - 1.0987 eta + 0.78557 eta^2) / (0.70256 -
  1.09865 eta + 1.0046 eta^2 + ln U0)``;
- self-absorption, with ``tau`` the anode's photoelectric coefficient at the
  photon energy and ``chi = 2 tau rho z sin(alpha_e) / sin(alpha_x)``:
  ``f = (1 - exp(-chi)) / chi`` (reflection), ``f = (exp(-tau (d - 2 rho z) /
  sin alpha_x) - exp(-tau d / sin alpha_x)) / chi`` (transmission through an
  anode of mass thickness ``d``);
- continuum: ``N(E) = 1.35e9 Z (U0 - 1)^x f``, ``x = 1.109 - 0.00435 Z +
  0.00175 E0``;
- K lines: ``N = 6e13 (1/S) R omega_K p f`` with the stopping power factor
  ``1/S = (z_K b_K / Z) (U0 ln U0 + 1 - U0) (1 + 16.05 sqrt(J / E_K) (sqrt(U0)
  ln U0 + 2 (1 - sqrt(U0))) / (U0 ln U0 + 1 - U0))``, ``z_K b_K = 2 x 0.35``,
  ``U0 = E0 / E_K``, the backscatter factor ``R = 1 - 0.0081517 Z + 3.613e-5
  Z^2 + 0.009583 Z exp(-U0) + 0.001141 E0``, the K fluorescence yield and each
  line's share ``p`` of the K radiative rate (xraylib).

L lines after H. Ebel, "Lt, La1,2, Ln, Lb1-6, Lg1-3 spectra of x-ray
tubes", X-Ray Spectrom. 32 (2003) 46-51: the same form with ``z_L b_L = 8 x
0.25``, ``U0 = E0 / E_Ls`` of the line's subshell and the constants 0.71e13
(L1), 2.70e13 (L2) and 4.94e13 (L3) photons / (s sr mA), the L1 and L2 ones
times ``-0.4814 + 0.03781 Z - 2.413e-4 Z^2`` below Z = 80. Ebel multiplies by
Hubbell's mean L-shell fluorescence yield; here each line takes the yield of
its own subshell from xraylib (for Rh: 0.013, 0.043, 0.046 against a mean of
0.046, so the L1 lines, a tenth of the L intensity, come out lower).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_xrfquant.errors import InstrumentError

#: K lines kept (Siegbahn KL2, KL3 = Ka2, Ka1; KM2, KM3 = Kb3, Kb1; KN2, KN3 = Kb2).
K_LINES = ("KL2", "KL3", "KM2", "KM3", "KN2", "KN3")
CONTINUUM_CONSTANT = 1.35e9
LINE_CONSTANT = 6.0e13
ZK_BK = 2.0 * 0.35
ZL_BL = 8.0 * 0.25
#: Ebel's (2003) constants of each L subshell's lines, photons / (s sr mA).
L_CONSTANTS = {"L1": 0.71e13, "L2": 2.70e13, "L3": 4.94e13}
#: L lines kept: those with a radiative rate of at least this share of their subshell's.
MIN_L_RATE = 0.005


@dataclass(frozen=True)
class Layer:
    """A window or filter: a material (xraylib compound or formula), density and thickness."""

    material: str
    density_g_cm3: float
    thickness_cm: float

    def transmission(self, energies_keV: np.ndarray, path_factor: float = 1.0) -> np.ndarray:
        """``exp(-mu rho t)`` at ``energies_keV`` (``path_factor`` lengthens the path)."""
        try:
            mu = np.array([xrl().CS_Total_CP(self.material, float(e))
                           for e in np.atleast_1d(energies_keV)])
        except ValueError:
            raise InstrumentError(f"tube layer material {self.material!r} is neither a "
                                  "chemical formula nor an xraylib NIST compound") from None
        return np.exp(-mu * self.density_g_cm3 * self.thickness_cm * path_factor)


@dataclass(frozen=True)
class TubeLine:
    """A characteristic line of the anode: its name, energy and intensity."""

    name: str
    energy_keV: float
    photons: float


@dataclass(frozen=True)
class Tube:
    """An X-ray tube: anode, voltage, angles, window and filters.

    Attributes
    ----------
    anode
        Element symbol of the anode (target).
    voltage_kV
        Tube voltage.
    incidence_deg
        Angle between the electron beam and the anode surface (90 = normal).
    takeoff_deg
        Angle between the X-ray beam used and the anode surface (90 = normal).
    window
        The tube's window (typically Be).
    filters
        Further layers in the beam.
    transmission_thickness_cm
        None for a reflection (side-window) anode; the anode's thickness for a
        transmission anode (X-rays leave on the far side).
    l_lines_scale
        Factor on the L lines (Ebel's L-line constants are the model's least
        certain part; a calibration on a standard may fit it).
    l2_lines_scale
        A further factor on the lines of the L2 subshell (Lβ1, Lγ1, Lη): Ebel's
        L2 constant is an empirical ratio to L3's, and a standard's spectrum
        may show the ratio off.
    """

    anode: str
    voltage_kV: float
    incidence_deg: float = 90.0
    takeoff_deg: float = 45.0
    window: Layer | None = None
    filters: tuple[Layer, ...] = ()
    transmission_thickness_cm: float | None = None
    l_lines_scale: float = 1.0
    l2_lines_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 5.0 <= self.voltage_kV <= 60.0:
            raise InstrumentError(f"tube voltage {self.voltage_kV:g} kV is outside the "
                                  "5-60 kV the tube model covers")
        for name, angle in (("incidence", self.incidence_deg), ("take-off", self.takeoff_deg)):
            if not 0.0 < angle <= 90.0:
                raise InstrumentError(f"tube {name} angle {angle:g} deg must be in (0, 90]")
        _anode(self.anode)

    # -- shared terms -----------------------------------------------------------------
    def _depths(self, energies_keV: np.ndarray) -> np.ndarray:
        """Mean depth of generation ``rho z`` (g/cm2) of photons of ``energies_keV``."""
        z, mass = _anode(self.anode)
        e0 = self.voltage_kV
        log_z = math.log(z)
        eta = (0.1904 - 0.2236 * log_z + 0.1292 * log_z**2 - 0.0149 * log_z**3) * e0 ** (
            0.1382 - 0.9211 / math.sqrt(z))
        rho_z_max = (mass / z) * (0.787e-5 * math.sqrt(0.0135 * z) * e0**1.5 + 0.735e-6 * e0**2)
        log_u0 = np.log(e0 / energies_keV)
        return rho_z_max * (log_u0 * (0.49269 - 1.0987 * eta + 0.78557 * eta**2)
                            / (0.70256 - 1.09865 * eta + 1.0046 * eta**2 + log_u0))

    def _photo(self, energies_keV: np.ndarray) -> np.ndarray:
        """The anode's photo-absorption coefficient ``tau`` (cm2/g) at ``energies_keV``."""
        z, _ = _anode(self.anode)
        return np.array([xrl().CS_Photo(z, float(e)) for e in energies_keV])

    def _self_absorption(self, energies_keV: np.ndarray) -> np.ndarray:
        """Ebel's absorption factor ``f`` of the photons generated at ``energies_keV``."""
        z, _ = _anode(self.anode)
        tau = self._photo(energies_keV)
        rho_z = self._depths(energies_keV)
        sin_e = math.sin(math.radians(self.incidence_deg))
        sin_x = math.sin(math.radians(self.takeoff_deg))
        chi = 2.0 * tau * rho_z * sin_e / sin_x
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.transmission_thickness_cm is None:
                f = -np.expm1(-chi) / chi
            else:
                d = self.transmission_thickness_cm * xrl().ElementDensity(z)
                f = (np.exp(-tau * (d - 2.0 * rho_z) / sin_x) - np.exp(-tau * d / sin_x)) / chi
        return np.where(chi > 0, f, 0.0)

    def thickness_attenuation(self, energies_keV: np.ndarray) -> np.ndarray:
        """``-d ln(photons) / d transmission_thickness_cm`` at ``energies_keV`` (per cm):
        ``tau rho / sin(alpha_x)``, 0 for a side-window anode.

        In the transmission form of :meth:`_self_absorption` the thickness enters only
        as ``exp(-tau d / sin alpha_x)``, so a thicker anode acts on every energy of the
        beam (lines and continuum) exactly as a filter of the anode's element:
        ``photons(t) = photons(t0) exp(-k (t - t0))`` with ``k`` returned here.
        """
        energies = np.atleast_1d(np.asarray(energies_keV, dtype=np.float64))
        if self.transmission_thickness_cm is None:
            return np.zeros_like(energies)
        z, _ = _anode(self.anode)
        sin_x = math.sin(math.radians(self.takeoff_deg))
        return self._photo(energies) * float(xrl().ElementDensity(z)) / sin_x

    def _filtering(self, energies_keV: np.ndarray) -> np.ndarray:
        """Transmission of the window (along the take-off path for transmission anodes,
        as the beam leaves through it obliquely) and the filters."""
        passed = np.ones_like(energies_keV)
        if self.window is not None:
            oblique = self.transmission_thickness_cm is not None
            factor = 1.0 / math.sin(math.radians(self.takeoff_deg)) if oblique else 1.0
            passed = passed * self.window.transmission(energies_keV, factor)
        for layer in self.filters:
            passed = passed * layer.transmission(energies_keV)
        return passed

    # -- the spectrum -----------------------------------------------------------------
    def continuum(self, energies_keV: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuum photons / (s sr mA keV) at ``energies_keV`` (0 at and above E0)."""
        energies = np.atleast_1d(np.asarray(energies_keV, dtype=np.float64))
        z, _ = _anode(self.anode)
        e0 = self.voltage_kV
        out = np.zeros_like(energies)
        inside = (energies > 0) & (energies < e0)
        e = energies[inside]
        exponent = 1.109 - 0.00435 * z + 0.00175 * e0
        out[inside] = (CONTINUUM_CONSTANT * z * (e0 / e - 1.0) ** exponent
                       * self._self_absorption(e) * self._filtering(e))
        return out

    def _shell_factor(self, edge_keV: float, zb: float) -> float:
        """Ebel's ``(1/S) R`` of a shell with edge ``edge_keV`` (0 below the edge)."""
        z, _ = _anode(self.anode)
        e0 = self.voltage_kV
        if e0 <= edge_keV:
            return 0.0
        u0 = e0 / edge_keV
        log_u0 = math.log(u0)
        core = u0 * log_u0 + 1.0 - u0
        stopping = (zb / z) * core * (1.0 + 16.05 * math.sqrt(0.0135 * z / edge_keV)
                                      * (math.sqrt(u0) * log_u0 + 2.0 * (1.0 - math.sqrt(u0)))
                                      / core)
        backscatter = (1.0 - 0.0081517 * z + 3.613e-5 * z * z
                       + 0.009583 * z * math.exp(-u0) + 0.001141 * e0)
        return stopping * backscatter

    def l_lines(self) -> list[TubeLine]:
        """The anode's L lines, photons / (s sr mA) (Ebel 2003; see the module)."""
        z, _ = _anode(self.anode)
        x = xrl()
        found: list[tuple[str, float, float]] = []
        for shell, constant in L_CONSTANTS.items():
            edge = float(x.EdgeEnergy(z, getattr(x, f"{shell}_SHELL")))
            factor = self._shell_factor(edge, ZL_BL) if edge > 0 else 0.0
            if factor == 0.0:
                continue
            if shell != "L3" and z < 80:
                constant *= -0.4814 + 0.03781 * z - 2.413e-4 * z * z
            if shell == "L2":
                constant *= self.l2_lines_scale
            omega = float(x.FluorYield(z, getattr(x, f"{shell}_SHELL")))
            for name in dir(x):
                if not (name.startswith(shell) and name.endswith("_LINE") and len(name) == 9):
                    continue
                try:
                    rate = float(x.RadRate(z, getattr(x, name)))
                    energy = float(x.LineEnergy(z, getattr(x, name)))
                except ValueError:
                    continue
                if rate >= MIN_L_RATE and energy > 0:
                    found.append((name[:4], energy, constant * factor * omega * rate))
        if not found:
            return []
        energies = np.array([energy for _, energy, _ in found])
        weight = self._self_absorption(energies) * self._filtering(energies)
        return [TubeLine(f"{self.anode} {name}", energy, photons * w * self.l_lines_scale)
                for (name, energy, photons), w in zip(found, weight, strict=True)]

    def lines(self) -> list[TubeLine]:
        """The anode's K lines, photons / (s sr mA); empty when E0 is below the K edge."""
        z, _ = _anode(self.anode)
        x = xrl()
        edge = float(x.EdgeEnergy(z, x.K_SHELL))
        factor = self._shell_factor(edge, ZK_BK)
        if factor == 0.0:
            return []
        omega = float(x.FluorYield(z, x.K_SHELL))
        shares = []
        for name in K_LINES:
            macro = getattr(x, f"{name}_LINE")
            try:
                shares.append((name, float(x.LineEnergy(z, macro)), float(x.RadRate(z, macro))))
            except ValueError:
                continue
        total = sum(rate for _, _, rate in shares) or 1.0
        energies = np.array([energy for _, energy, _ in shares])
        weight = self._self_absorption(energies) * self._filtering(energies)
        return [
            TubeLine(f"{self.anode} {name}", energy,
                     LINE_CONSTANT * factor * omega * (rate / total) * w)
            for (name, energy, rate), w in zip(shares, weight, strict=True)
        ]

    def spectrum(self, step_keV: float = 0.25, low_keV: float = 1.0) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        """The tube's output as discrete energies and photons / (s sr mA) each.

        The continuum is integrated over bins of ``step_keV`` from ``low_keV``
        to E0 (each bin at its centre), and the K lines are added as their own
        energies: what an instrument's beam (energies and weights) holds.
        """
        energies, weights, _ = self.binned(step_keV, low_keV)
        return energies, weights

    def binned(self, step_keV: float = 0.25, low_keV: float = 1.0) -> tuple[
            np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`spectrum` with the width (keV) of each energy's band: ``step_keV``
        for a continuum bin, 0 for a line."""
        if step_keV <= 0 or low_keV <= 0 or low_keV >= self.voltage_kV:
            raise InstrumentError("a tube spectrum needs 0 < low_keV < voltage and step_keV > 0")
        edges = np.arange(low_keV, self.voltage_kV + 1e-9, step_keV)
        centres = 0.5 * (edges[1:] + edges[:-1])
        photons = self.continuum(centres) * np.diff(edges)
        lines = [line for line in (*self.lines(), *self.l_lines())
                 if line.energy_keV >= low_keV]
        energies = np.concatenate([centres, [line.energy_keV for line in lines]])
        weights = np.concatenate([photons, [line.photons for line in lines]])
        widths = np.concatenate([np.diff(edges), np.zeros(len(lines))])
        order = np.argsort(energies, kind="stable")
        return energies[order], weights[order], widths[order]


def xrl() -> Any:
    """The xraylib module, imported on first use (it is slow to load)."""
    import xraylib

    return xraylib


def _anode(symbol: str) -> tuple[int, float]:
    """Atomic number and atomic weight of the anode element."""
    text = str(symbol).strip()
    try:
        z = int(xrl().SymbolToAtomicNumber(text[:1].upper() + text[1:].lower()))
    except ValueError:
        z = 0
    if not 4 <= z <= 92:
        raise InstrumentError(f"tube anode {symbol!r} is not an element symbol (Be to U)")
    return z, float(xrl().AtomicWeight(z))
