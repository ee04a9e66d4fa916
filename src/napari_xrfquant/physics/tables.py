"""Physics tables for one (elements, instrument) pair, built once in numpy float64.

The simulator's forward pass needs only small dense tables: mass attenuation
coefficients of every element at the beam energies and at every emitted energy,
line production cross sections at the beam energies and at every exciting line
energy (secondary fluorescence), angle-averaged scatter cross sections, Compton
profiles and the detector's efficiency and escape fractions. All of them come
from xraylib (:mod:`._xraydata`); building them takes a fraction of a second for a
few elements under one beam energy (seconds for a rock's 27 elements under a
tube's 72: ``benchmarks/bench_secondary.py``), after which simulating is matrix
algebra in torch.

Units: keV, cm^2/g, steradian.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_xrfquant.errors import SimulationError
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.physics import _xraydata as xd
from napari_xrfquant.physics.bands import production_energies, scatter_offsets
from napari_xrfquant.physics.scatter import (
    COMPTON_SUBLINE_STEP_KEV,
    acceptance_cone,
    scatter_tables,
)
from napari_xrfquant.physics.secondary_pairs import secondary_pairs

#: Lines weaker than this fraction of their element's strongest line are dropped.
LINE_RELATIVE_THRESHOLD = 1e-4

#: Scattered beam photons that excite fluorescence in the sample like a line
#: emitted isotropically (fisx includes the Rayleigh part the same way).
SCATTER_EXCITATION: tuple[str, ...] = ("rayleigh", "compton")



@dataclass(frozen=True)
class FluorescenceLine:
    """One radiative transition of one element."""

    element_index: int  #: position in the simulator's element list
    symbol: str  #: element symbol
    iupac: str  #: e.g. "L3M5"
    macro: int  #: xraylib's line macro (``L3M5_LINE``)
    siegbahn: str  #: e.g. "La1"
    energy_keV: float
    shell: str  #: initial vacancy shell


@dataclass(frozen=True)
class PhysicsTables:
    """Everything the torch simulator needs, as numpy arrays.

    Shapes use E elements, B beam energies, F fluorescence lines, R = F + 2 E B
    output rows (lines, then Rayleigh and Compton per element and beam energy),
    A detector "atoms" (monochromatic energies the response matrix is built of)
    and P secondary-fluorescence pairs.
    """

    symbols: tuple[str, ...]
    z: tuple[int, ...]
    lines: tuple[FluorescenceLine, ...]
    row_labels: tuple[str, ...]  #: (R,) e.g. "Au L3M5", "Au Rayleigh", "Au Compton"
    row_energy_keV: np.ndarray  #: (R,) nominal energy (mean for Compton)
    row_element: np.ndarray  #: (R,) int element index of each row
    beam_energy_keV: np.ndarray  #: (B,)
    beam_weight: np.ndarray  #: (B,) normalised to sum 1
    mu_beam: np.ndarray  #: (E, B) total mass attenuation at the beam energies
    mu_row: np.ndarray  #: (E, R) total mass attenuation at each row's energy
    row_source: np.ndarray  #: (B, R) production (cm^2/g): line cross section or 4 pi dsigma/dOmega
    pair_exciting: np.ndarray  #: (P,) row index of the exciting line j
    pair_excited: np.ndarray  #: (P,) row index of the excited line i
    pair_cross_section: np.ndarray  #: (P,) production cross section of i by photons of j
    exciting_source: np.ndarray  #: (B, R) production of each exciting row j at the beam
    #: energies (cm^2/g; 0 for a row that excites nothing): a pair's source is its j's column
    atom_energy_keV: np.ndarray  #: (A,)
    atom_efficiency: np.ndarray  #: (A,) attenuator transmission x detector absorption
    atom_escape: np.ndarray  #: (A, K) Si K escape fraction into each escape line k
    escape_energy_keV: np.ndarray  #: (K,) energies of the detector's K lines
    row_atoms: np.ndarray  #: (R, A) weights of atoms in each row (sparse, mostly 1)
    sin_incidence: float
    detector_sin_takeoff: np.ndarray  #: (D,) sine of each detector direction's take-off angle
    detector_share: np.ndarray  #: (D,) each direction's share of the counts (sum 1)
    detector_row_factor: np.ndarray  #: (D, R) its row sources over row_source's (1: lines)


# ---------------------------------------------------------------------------
# fluorescence lines
# ---------------------------------------------------------------------------
def lines_of_element(
    z: int, element_index: int, beam_keV: np.ndarray, widths_keV: np.ndarray | None = None
) -> list[tuple[FluorescenceLine, np.ndarray]]:
    """Lines of element ``z`` excited by the beam, with their production cross sections.

    Returns ``(line, cross_section (B,))`` pairs, cm^2/g at each beam energy (the
    mean over a continuum bin of ``widths_keV`` that holds one of ``z``'s edges:
    :func:`.bands.production_energies`); a
    combined xraylib macro (L3O45) only where none of its single lines is tabulated,
    and lines weaker than :data:`LINE_RELATIVE_THRESHOLD` of the strongest dropped.
    """
    if z < xd.Z_MIN:  # H to F: absorb and scatter, nothing a detector sees
        return []
    symbol = xd.z_to_symbol(z)
    candidates: list[tuple[xd.TransitionMacro, float, np.ndarray]] = []
    single: dict[str, bool] = {}
    bands = production_energies(z, beam_keV, widths_keV)
    emitted = [(macro, xd.line_energy_keV(z, macro.macro)) for macro in xd.transition_macros()
               if macro.initial_shell in xd.EMITTING_SHELLS]
    emitted = [(macro, energy) for macro, energy in emitted if energy > 0.0]
    # every line at every point of every band at once; each band's mean point by point
    points = np.concatenate([np.asarray(e, dtype=np.float64) for e, _ in bands])
    table = xd.fluor_line_cs_table(z, [macro.macro for macro, _ in emitted], points)
    per_band = np.zeros((len(bands), len(emitted)))
    first = 0
    for b, (energies, weights) in enumerate(bands):
        for k, w in enumerate(weights):
            per_band[b] = per_band[b] + w * table[first + k]
        first += len(energies)
    for (macro, energy), cs in zip(emitted, per_band.T, strict=True):
        if not np.any(cs > 0):
            continue
        candidates.append((macro, energy, cs))
        if not macro.parts:
            single[macro.iupac] = True
    out = []
    for macro, energy, cs in candidates:
        # a combined macro (L3O45) only where xraylib has none of its parts
        if macro.parts and any(single.get(p, False) for p in macro.parts):
            continue
        line = FluorescenceLine(
            element_index=element_index,
            symbol=symbol,
            iupac=macro.iupac,
            macro=macro.macro,
            siegbahn=xd.SIEGBAHN.get(macro.iupac, macro.iupac),
            energy_keV=energy,
            shell=macro.initial_shell,
        )
        out.append((line, cs))
    if not out:
        return out
    strongest = max(float(cs.max()) for _, cs in out)
    return [(line, cs) for line, cs in out if cs.max() >= LINE_RELATIVE_THRESHOLD * strongest]


def check_beam_excites(symbols: Sequence[str], zs: Sequence[int], beam_keV: np.ndarray) -> None:
    """Raise :class:`SimulationError` if the beam ionises no shell of any element."""
    top = float(np.max(beam_keV))
    lowest_edges = []
    for z in zs:
        edges = [xd.edge_energy_keV(z, s) for s in xd.EMITTING_SHELLS]
        edges = [e for e in edges if e > 0]
        lowest_edges.append(min(edges) if edges else math.inf)
    if all(top <= e for e in lowest_edges):
        names = ", ".join(f"{s} {e:.3g} keV" for s, e in zip(symbols, lowest_edges, strict=False))
        raise SimulationError(
            f"beam energy {top:g} keV is below every absorption edge of the elements "
            f"(lowest edges: {names}); nothing fluoresces"
        )


# ---------------------------------------------------------------------------
# detector
# ---------------------------------------------------------------------------
def detector_efficiency(instrument: Instrument, energies_keV: np.ndarray) -> np.ndarray:
    """Attenuator, gas-path and tabulated transmissions times the detector's absorbed
    fraction."""
    energies = np.asarray(energies_keV, dtype=np.float64)
    transmission = np.ones_like(energies)
    path = instrument.path
    gas = None if path is None else path.layer(path.emergent_cm)
    layers = [(a.material, a.density_g_cm3, a.thickness_cm) for a in instrument.attenuators]
    if gas is not None:  # the gas from sample to detector
        layers.append((gas["material"], gas["density_g_cm3"], gas["thickness_cm"]))
    for material, density, thickness in layers:
        mu = xd.material(material).cs_total(energies)
        transmission *= np.exp(-mu * density * thickness)
    for table in instrument.transmission_tables:
        transmission *= table.at(energies)
    det = instrument.detector
    mu_det = xd.material(det.material).cs_total(energies)
    absorbed = -np.expm1(-mu_det * det.density_g_cm3 * det.thickness_cm)
    return transmission * absorbed


def escape_fractions(
    instrument: Instrument, energies_keV: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of absorbed photons whose detector K fluorescence escapes.

    Standard formula for a thick detector at normal incidence (Reed and Ware
    1972): ``f = 0.5 omega_K P_K(E) [1 - (mu_K / mu_E) ln(1 + mu_E / mu_K)]`` with
    ``P_K`` the share of photo-absorptions in the K shell, ``mu_E`` and ``mu_K``
    the detector attenuation at the photon and at the K line energy.

    Returns
    -------
    fractions
        ``(A, K)`` escape fraction into each K line of the detector material.
    line_energy_keV
        ``(K,)`` energies of those lines (the shift of the escape peaks).
    """
    energies = np.asarray(energies_keV, dtype=np.float64)
    det = instrument.detector
    mat = xd.material(det.material)
    if not det.escape:
        return np.zeros((energies.size, 0)), np.zeros(0)
    z = mat.main_z  # the escape physics of the main constituent (Si for a pnCCD)
    lines = xd.k_escape_lines(z)
    omega = xd.fluor_yield(z, "K")
    k_share = xd.cs_photo_k_fraction(z, energies)
    mu_e = mat.cs_total(energies)
    fractions = np.zeros((energies.size, len(lines)))
    for k, (line_keV, share) in enumerate(lines):
        mu_k = float(mat.cs_total(np.array([line_keV]))[0])
        ratio = mu_k / np.maximum(mu_e, 1e-30)
        geometric = 1.0 - ratio * np.log1p(1.0 / ratio)
        fractions[:, k] = 0.5 * omega * share * k_share * np.clip(geometric, 0.0, 1.0)
    return fractions, np.array([e for e, _ in lines])


# ---------------------------------------------------------------------------
# assembling everything
# ---------------------------------------------------------------------------
class _AtomGrid:
    """The detector atoms, each energy once.

    Lines and Rayleigh peaks keep their exact energies (the Rayleigh peak of
    every element at one beam energy is one atom). Compton sub-lines are
    shared out between the two nearest points of a grid of
    :data:`COMPTON_SUBLINE_STEP_KEV` (weights linear in the distance, which
    keeps both the area and the mean energy of each sub-line): a tube's beam
    has dozens of energies and every element scatters each of them, and
    without the grid the atoms (each a whole detector response) grow as
    elements x beam energies x sub-lines.
    """

    def __init__(self) -> None:
        self._index: dict[float, int] = {}

    def exact(self, energy_keV: float) -> int:
        """The atom at ``energy_keV`` (made when new)."""
        return self._index.setdefault(float(energy_keV), len(self._index))

    def on_grid(self, energies_keV: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The grid atoms either side of each energy with their shares (sum 1 per energy).

        Returns ``(energy index, atom, share)`` of every non-zero share, energy after
        energy, the atom below first; new atoms are made in that order.
        """
        position = np.asarray(energies_keV, dtype=np.float64).ravel() / COMPTON_SUBLINE_STEP_KEV
        below = np.floor(position)
        upper_share = position - below
        k = below.astype(np.int64)[:, None] + np.array([0, 1])
        share = np.stack([1.0 - upper_share, upper_share], axis=1)
        keep = share > 0.0
        source = np.broadcast_to(np.arange(position.size)[:, None], k.shape)[keep]
        k, share = k[keep], share[keep]
        grid_k, first, inverse = np.unique(k, return_index=True, return_inverse=True)
        atom_of = np.empty(grid_k.size, dtype=np.int64)
        for u in np.argsort(first, kind="stable"):
            atom_of[u] = self.exact(round(int(grid_k[u]) * COMPTON_SUBLINE_STEP_KEV, 9))
        return source, atom_of[inverse], share

    def energies(self) -> np.ndarray:
        """``(A,)`` the atoms' energies in index order."""
        return np.fromiter(self._index, dtype=np.float64, count=len(self._index))


def build_tables(
    symbols: Sequence[str],
    zs: Sequence[int],
    instrument: Instrument,
    scatter_excitation: Sequence[str] = SCATTER_EXCITATION,
    pairs: bool = True,
) -> PhysicsTables:
    """Build all tables for ``zs`` measured with ``instrument``.

    ``scatter_excitation`` names the scattered-beam components ("rayleigh",
    "compton") that excite secondary fluorescence like an isotropic line.
    ``pairs=False`` leaves the secondary-fluorescence pairs out (a simulator
    without secondary fluorescence never reads them, and for dozens of
    elements they are most of the build).

    Raises
    ------
    SimulationError
        If the beam is below every absorption edge of the elements.
    """
    beam_keV = np.asarray(instrument.beam.energies_keV, dtype=np.float64)
    beam_w = np.asarray(instrument.beam.weights, dtype=np.float64)
    beam_w = beam_w / beam_w.sum()
    check_beam_excites(symbols, zs, beam_keV)
    n_el, n_beam = len(zs), beam_keV.size

    widths = np.asarray(instrument.beam.widths_keV or (0.0,) * n_beam, dtype=np.float64)
    line_list: list[FluorescenceLine] = []
    line_cs: list[np.ndarray] = []
    for index, z in enumerate(zs):
        for line, cs in lines_of_element(z, index, beam_keV, widths):
            line_list.append(line)
            line_cs.append(cs)
    n_lines = len(line_list)

    labels = [f"{ln.symbol} {ln.iupac}" for ln in line_list]
    row_energy = [ln.energy_keV for ln in line_list]
    row_element = [ln.element_index for ln in line_list]
    row_source = np.zeros((n_beam, n_lines + 2 * n_el * n_beam))
    if n_lines:
        row_source[:, :n_lines] = np.stack(line_cs, axis=1)
    # what each row excites in the sample: a line its production; the scattered beam
    # its total scatter cross section, emitted isotropically (scatter_excitation)
    exciting_source = np.zeros_like(row_source)
    exciting_source[:, :n_lines] = row_source[:, :n_lines]

    atoms = _AtomGrid()
    # (rows, atoms, weights) of the detector atoms each row is made of
    row_atom_links: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(
        np.arange(n_lines),
        np.array([atoms.exact(energy) for energy in row_energy], dtype=np.int64),
        np.ones(n_lines),
    )]
    row = n_lines
    per_direction: dict[int, np.ndarray] = {}  # scatter row -> its source per detector direction
    cone = acceptance_cone(instrument)
    for index, z in enumerate(zs):
        for b, e0 in enumerate(beam_keV):
            scatter = scatter_tables(z, float(e0), instrument, cone)
            sub_e, sub_w = scatter.sub_energy_keV, scatter.sub_weight
            band = scatter_offsets(float(widths[b]))
            # Rayleigh
            labels.append(f"{symbols[index]} Rayleigh" + (f" {e0:g} keV" if n_beam > 1 else ""))
            row_energy.append(float(e0))
            row_element.append(index)
            row_source[b, row] = scatter.rayleigh
            per_direction[row] = scatter.rayleigh_by_direction
            if "rayleigh" in scatter_excitation:
                exciting_source[b, row] = float(xd.cs_rayleigh(z, np.array([e0]))[0])
            offsets = np.array([offset for offset, _ in band])
            shares = np.array([share for _, share in band])
            centre = offsets == 0.0  # a line of the beam, or a band's middle: exact
            if centre.any():
                row_atom_links.append((np.array([row]), np.array([atoms.exact(float(e0))]),
                                       shares[centre]))
            if not centre.all():  # the band's other offsets onto the grid, all at once
                which, on, part = atoms.on_grid(float(e0) + offsets[~centre])
                row_atom_links.append((np.full(on.size, row), on, shares[~centre][which] * part))
            row += 1
            # Compton
            labels.append(f"{symbols[index]} Compton" + (f" {e0:g} keV" if n_beam > 1 else ""))
            row_energy.append(float(np.sum(sub_e * sub_w)))
            row_element.append(index)
            row_source[b, row] = scatter.compton
            per_direction[row] = scatter.compton_by_direction
            if "compton" in scatter_excitation:
                # scattered into all directions, at the mean energy of the cone
                exciting_source[b, row] = float(xd.cs_compton(z, np.array([e0]))[0])
            # every sub-line at every offset of the band (sub-line after sub-line);
            # a band's Compton shifts by dE' = (E'/E0)^2 dE0
            offsets = np.array([offset for offset, _ in band])
            stretch = (sub_e / float(e0)) ** 2
            which, on, part = atoms.on_grid(sub_e[:, None] + stretch[:, None] * offsets)
            weight = (sub_w[:, None] * np.array([share for _, share in band])).ravel()
            row_atom_links.append((np.full(on.size, row), on, weight[which] * part))
            row += 1

    n_rows = row
    directions = instrument.geometry.directions()
    row_factor = np.ones((len(directions), n_rows))
    for r, by_direction in per_direction.items():
        row_factor[:, r] = by_direction / max(float(row_source[:, r].max()), 1e-300)
    row_energy_arr = np.asarray(row_energy)
    mu_beam = np.stack([xd.cs_total(z, beam_keV) for z in zs])  # (E, B)
    mu_row = np.stack([xd.cs_total(z, row_energy_arr) for z in zs])  # (E, R)

    no_pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    pj, pi, pcs = secondary_pairs(
        np.array(row_element[:n_lines], dtype=np.int64), row_energy_arr[:n_lines],
        [ln.macro for ln in line_list], zs, exciting_source, row_energy_arr, mu_row,
    ) if pairs else no_pairs

    atom_energy_arr = atoms.energies()
    row_atoms = np.zeros((n_rows, atom_energy_arr.size))
    link_rows, link_atoms, link_weights = (
        np.concatenate(column) for column in zip(*row_atom_links, strict=True)
    )
    np.add.at(row_atoms, (link_rows, link_atoms), link_weights)
    escape, escape_keV = escape_fractions(instrument, atom_energy_arr)
    return PhysicsTables(
        symbols=tuple(symbols),
        z=tuple(zs),
        lines=tuple(line_list),
        row_labels=tuple(labels),
        row_energy_keV=row_energy_arr,
        row_element=np.asarray(row_element, dtype=np.int64),
        beam_energy_keV=beam_keV,
        beam_weight=beam_w,
        mu_beam=mu_beam,
        mu_row=mu_row,
        row_source=row_source,
        pair_exciting=np.asarray(pj, dtype=np.int64),
        pair_excited=np.asarray(pi, dtype=np.int64),
        pair_cross_section=np.asarray(pcs, dtype=np.float64),
        exciting_source=exciting_source,
        atom_energy_keV=atom_energy_arr,
        atom_efficiency=detector_efficiency(instrument, atom_energy_arr),
        atom_escape=escape,
        escape_energy_keV=escape_keV,
        row_atoms=row_atoms,
        sin_incidence=math.sin(math.radians(instrument.geometry.incidence_deg)),
        detector_sin_takeoff=np.sin(np.radians([d.takeoff_deg for d in directions])),
        detector_share=np.array([d.share for d in directions]),
        detector_row_factor=row_factor,
    )
