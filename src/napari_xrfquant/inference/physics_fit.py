"""Physics quantification: every spectrum fitted with the simulator, no network needed.

Each spectrum ``x`` (counts on the instrument's channels) is explained over the
fitted energy range as non-negative amounts of fixed shapes::

    lambda = sum_e A_e P_e + B_R R + B_C C + B_K K (+ B_S S)

``P_e`` is the detected spectrum of element ``e``'s lines (escape peaks, tails
and all) in the sample's matrix, ``R`` and ``C`` its Rayleigh and Compton
scatter, ``K`` the detector continuum and ``S`` the set-up's own lines (the air
path's Ar), each from the simulator of the instrument and summing to 1 over
all channels. The amounts are the Poisson maximum-likelihood ones: a weighted
least-squares start (PyMca's fast linear fit), then projected Fisher-scoring
steps that keep them non-negative (:mod:`.amounts`), batched over spectra. The
scatter amounts are free, so scatter the simulator under- or overestimates costs
no element anything.

Amounts become concentrations through the simulator's sensitivity ``s_e(w)``,
the detected counts of element ``e`` per unit mass fraction in a matrix ``w``
(absorption, enhancement, detector efficiency), ``A_e = k w_e s_e(w)``:

- a bulk sample: ``w_e ∝ A_e / s_e(w)``, closed to 100 wt% (with the oxygen of
  each element's oxide when the matrix is ``"oxides"``), a fixed-point
  iteration from equal shares that converges in a few steps, as in PyMca's
  matrix iterations;
- a bulk sample in a balance compound the detector cannot see (``matrix`` a
  formula such as ``C5H8NO2``): ``w_e`` in absolute terms, normalised by the
  Compton scatter, the rest the compound (:mod:`.balance`);
- a thin sample (the instrument's ``[sample]`` of mass ``M``): areal densities
  ``rho t_e = A_e M / (k s_e)`` in µg/cm², with ``k``, the counts per unit of
  simulated intensity, fitted to a standard's known areal densities
  (:func:`scale_from_standard`).

The 1-sigma of each amount comes from the inverse Fisher information of all
amounts (so overlaps widen it); concentrations carry it through the same
factor. The fit quality is the Poisson deviance over its expectation on the
fitted channels (about 1 when the model explains the spectrum).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.sparse import csr_array

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.amounts import SCORING_STEPS, fit_amounts
from napari_xrfquant.inference.balance import (
    CLOSED_MATRICES,
    absolute_fractions,
    absolute_sigma,
    balance_fractions,
    with_balance,
)
from napari_xrfquant.inference.composition_groups import by_group, composition_groups
from napari_xrfquant.inference.fit_quality import poisson_fit_quality
from napari_xrfquant.inference.fit_window import fit_channel_mask
from napari_xrfquant.inference.physics_result import PhysicsFit
from napari_xrfquant.instrument import Instrument

#: Fixed-point steps of the matrix correction (bulk samples).
MATRIX_STEPS = 6
#: Composition groups of secondary fluorescence (mass-fraction step, most groups).
ENHANCEMENT_STEP = 0.05
MAX_ENHANCEMENT_GROUPS = 64
#: Spectra fitted at once (the Fisher matrices are spectra x components^2).
FIT_BATCH = 2048
#: Smallest mass fraction at which a sensitivity is evaluated.
MIN_FRACTION = 1e-6


class PhysicsQuantifier:
    """Quantify spectra of ``elements`` measured with ``instrument`` (see the module).

    Parameters
    ----------
    elements
        The sample's elements (Na-U); H-F only as the matrix (``oxides`` adds O).
    instrument
        The (calibrated) set-up; its detector sets the channels.
    matrix
        ``"elements"`` (the listed elements make 100 wt%) or ``"oxides"``
        (each element as its conventional oxide, oxygen by stoichiometry;
        an element without one, Cl of a salt, as itself), or a balance compound
        (a formula such as ``"C5H8NO2"`` or an xraylib NIST compound): the
        elements in absolute terms from the Compton scatter, the compound the
        rest (:mod:`.balance`).
    fit_keV
        Energy range fitted (default: 1 keV to 1 keV above the beam).
    scale
        Counts per unit of simulated intensity (thin samples; from
        :func:`scale_from_standard`). None: thin results need it.
    secondary
        Include secondary fluorescence (off for line shapes alone, as the
        element search uses them: its pairs grow as elements squared).
    setup_families
        Each family of the set-up's own lines its own free component (``"set-up Ar
        Ka"``, ``"set-up Ar Kb"``) instead of one with xraylib's ratios: for a rich
        sum spectrum, where a few % off in the path's Kb/Ka would be a line to find.
    device
        Where the amounts' fits run (``"cpu"``, ``"cuda"``); the tables stay on the CPU.

    Raises
    ------
    XRFQuantError
        For an unknown matrix or one holding a fitted element, a light element
        without ``oxides``, or a fitted
        range with fewer than 10 channels.
    """

    def __init__(
        self,
        elements: Sequence[str],
        instrument: Instrument,
        *,
        matrix: str = "elements",
        fit_keV: tuple[float, float] | None = None,
        scale: float | None = None,
        secondary: bool = True,
        setup_families: bool = False,
        device: str = "cpu",
    ) -> None:
        from napari_xrfquant.physics import XRFSimulator
        from napari_xrfquant.physics.lines import parse_elements, unseen_elements
        from napari_xrfquant.physics.oxides import (
            LIGHT_ELEMENTS,
            OXIDES,
            elements_with_lines,
            oxygen_per_element,
        )

        symbols = parse_elements(list(elements), light=True)
        light = [s for s in symbols if s in LIGHT_ELEMENTS]
        if light and not (matrix == "oxides" and light == ["O"]):
            raise XRFQuantError(
                f"{', '.join(light)} show no line to fit: leave them out (with --matrix oxides "
                "oxygen comes from stoichiometry)")
        self.elements = elements_with_lines(symbols)
        balance = {} if matrix in CLOSED_MATRICES else balance_fractions(matrix, self.elements)
        self.matrix = matrix
        self.instrument = instrument
        self.thin = instrument.sample is not None
        if self.thin and balance:
            raise XRFQuantError(f"matrix {matrix!r}: a balance compound is for a bulk sample; "
                                "a thin sample's µg/cm² come from its standard film")
        self.layer_ug_cm2 = (instrument.sample.mass_g_cm2 * 1e6
                             if instrument.sample is not None else None)
        self.scale = scale
        low, high = fit_keV if fit_keV is not None else (1.0,
                                                          instrument.max_beam_energy_keV + 1.0)
        self.fit_channels = fit_channel_mask(instrument, (low, high))  # before the tables
        #: the balance compound's mass fractions (a balance matrix), else None
        self.balance = np.array(list(balance.values())) if balance else None
        with_oxygen = [*self.elements, "O"] if matrix == "oxides" else list(self.elements)
        self.simulator = XRFSimulator([*with_oxygen, *balance], instrument=instrument,
                                      dtype=torch.float64,
                                      secondary=secondary)
        # elements with no conventional oxide (Cl, Br of a salt) carry no oxygen
        self.oxygen = (np.array([oxygen_per_element(OXIDES[e]) if e in OXIDES else 0.0
                                 for e in self.elements]) if matrix == "oxides" else None)
        unseen = unseen_elements(self.elements, instrument, low, high)
        if unseen:  # a tube voltage below the lines asked for, a range that misses them
            raise XRFQuantError("no line to fit of " + "; ".join(
                f"{e}: {why}" for e, why in unseen.items()))
        n_lines = len(self.simulator.tables.lines)
        row_element = self.simulator.tables.row_element
        labels = self.simulator.row_labels
        self._line_rows = [np.nonzero(row_element[:n_lines] == i)[0]
                           for i in range(len(self.elements))]
        self._rayleigh = np.array(["Rayleigh" in lab for lab in labels])
        self._compton = np.array(["Compton" in lab for lab in labels])
        # (R, A), 0.1 % of it filled: sparse, the components' atoms cost 0.2 ms, not 12
        self._row_atoms = csr_array(self.simulator.row_atoms.numpy())
        groups = [*self._line_rows, *(np.flatnonzero(m) for m in (self._rayleigh, self._compton))]
        self._members = (np.concatenate(groups), np.cumsum([0, *map(len, groups)]))  # CSR
        self._pile_up: np.ndarray | None = None
        self._setup_families, self.device = setup_families, device
        self._detector_terms()
        self.components = [*self.elements, "Rayleigh", "Compton", "continuum"]
        if self.simulator.setup is not None:
            self.components += ([f"set-up {label}" for label in self.simulator.setup.labels]
                                if setup_families else ["set-up lines"])

    def with_pile_up(self, spectrum: np.ndarray) -> PhysicsQuantifier:
        """A copy with a pile-up component: ``spectrum`` (a map's sum, counts on the
        instrument's channels) convolved with itself, where two photons read as one
        land (:func:`~napari_xrfquant.physics.detector.pileup`). Its amount is free,
        as the scatter's: sum peaks then cost no element anything."""
        from napari_xrfquant.physics.detector import pileup

        d = self.instrument.detector
        observed = torch.as_tensor(np.clip(np.asarray(spectrum, dtype=np.float64), 0, None))
        piled = pileup(observed[None, :], torch.tensor(1.0, dtype=torch.float64),
                       torch.tensor(d.offset_keV), torch.tensor(d.gain_keV))[0].numpy()
        new = copy.copy(self)
        new._pile_up = piled
        new.components = [*self.components, "pile-up"]
        return new

    def _detector_terms(self) -> None:
        """The detector's atom spectra, continuum and set-up lines of the simulator now."""
        with torch.no_grad():
            self._atoms = self.simulator.atom_matrix().numpy()  # (A, C)
            self._continuum = self.simulator.continuum().numpy()
            setup = self.simulator.setup_spectrum(families=self._setup_families)
            # (F, C): one row, or one row per line family
            self._setup = None if setup is None else setup.numpy().reshape(-1, setup.shape[-1])
        self._detected = self._row_atoms @ self._atoms.sum(axis=1)  # (R,) photons detected

    def with_instrument(self, instrument: Instrument) -> PhysicsQuantifier:
        """A copy for ``instrument``, which differs from this one's in detector
        parameters only (a refined calibration): the physics tables are shared."""
        from napari_xrfquant.physics.simulator import PARAMETER_NAMES

        d = instrument.detector
        values = {n: float(getattr(d, n)) for n in PARAMETER_NAMES if hasattr(d, n)}
        new = copy.copy(self)
        new.instrument = instrument
        new.simulator = self.simulator.with_parameters(**values)
        new._detector_terms()
        return new

    # -- the physics ------------------------------------------------------------------
    def _full_fractions(self, w: np.ndarray) -> np.ndarray:
        """``(N, E)`` fractions of the listed elements with the oxygen column or the
        balance compound's where needed."""
        if self.balance is not None:
            return with_balance(w, self.balance)
        if self.oxygen is None:
            return w
        return np.concatenate([w, (w * self.oxygen).sum(axis=1, keepdims=True)], axis=1)

    def _intensities(self, w: np.ndarray, secondary: bool = True) -> np.ndarray:
        with torch.no_grad():
            return self.simulator.line_intensities(
                torch.as_tensor(self._full_fractions(w), dtype=torch.float64),
                secondary=None if secondary else False).numpy()

    def _per_fraction(self, at: np.ndarray, secondary: bool,
                      intensities: np.ndarray | None = None) -> np.ndarray:
        if intensities is None:
            intensities = self._intensities(at, secondary)
        detected = intensities * self._detected[None, :]
        return np.stack([detected[:, rows].sum(axis=1) for rows in self._line_rows], axis=1) / at

    def sensitivities(self, w: np.ndarray, plain: np.ndarray | None = None) -> np.ndarray:
        """``(N, E)`` detected photons of each element per unit mass fraction in matrix ``w``
        (``plain``: the line intensities at :meth:`floored` ``w`` without secondary
        fluorescence, where the caller has them).

        Secondary fluorescence enters as the enhancement of the mean matrix of
        the spectra's composition group (each major fraction in steps of
        :data:`ENHANCEMENT_STEP`): per spectrum it would cost pairs x beam
        energies each, tens of thousands under a tube, and the enhancement varies
        slowly with the matrix; over a whole map it does not (Ag K lines enhance
        Au L by several % in a 25 % Ag alloy, not in a 4 % one).
        """
        # an element's own share barely changes its matrix: evaluated at a floor,
        # an absent element gets the sensitivity of a trace of it, not 0 / 0
        at = self.floored(w)
        if at.shape[0] == 1:
            return self._per_fraction(at, secondary=True)
        groups = composition_groups(at, ENHANCEMENT_STEP, max_groups=len(at) + 1)
        if groups.max() >= MAX_ENHANCEMENT_GROUPS:  # a map of every composition: one mean
            groups = np.zeros_like(groups)
        means = np.stack([at[groups == g].mean(axis=0) for g in range(groups.max() + 1)])
        enhancement = self._per_fraction(means, True) / self._per_fraction(means, False)
        return self._per_fraction(at, False, plain) * enhancement[groups]

    @staticmethod
    def floored(w: np.ndarray) -> np.ndarray:
        """``w`` with every fraction at least :data:`MIN_FRACTION`: where sensitivities
        are evaluated."""
        return np.clip(w, MIN_FRACTION, None)

    def shapes(self, w: np.ndarray) -> np.ndarray:
        """``(K, C)`` the components (each summing to 1) in the matrix ``w`` ``(E,)``."""
        intensity = self._intensities(w[None, :])[0]
        return self.component_shapes(self.component_atoms(intensity), self._atoms,
                                     self._continuum)

    def component_atoms(self, intensity: np.ndarray) -> csr_array:
        """``(L, A)`` (sparse) the detector atoms of each line or scatter component,
        from row intensities ``(R,)``."""
        rows, starts = self._members  # each group's rows, weighted: one sparse product
        weights = csr_array((intensity[rows], rows, starts), (starts.size - 1, intensity.size))
        return weights @ self._row_atoms

    def component_shapes(
        self, component_atoms: csr_array, atoms: np.ndarray, continuum: np.ndarray
    ) -> np.ndarray:
        """``(K, C)`` the components from :meth:`component_atoms` and a detector's
        atom spectra ``(A, C)``, each summing to 1."""
        blocks = [component_atoms @ atoms, continuum[None, :]]
        if self._setup is not None:
            blocks.append(self._setup)
        shapes = [b / np.clip(b.sum(axis=1, keepdims=True), 1e-300, None) for b in blocks]
        if self._pile_up is not None:  # already a shape of its own
            shapes.append(self._pile_up[None, :])
        return np.concatenate(shapes)

    def family_counts(self, w: np.ndarray) -> list[dict[str, tuple[float, float]]]:
        """Per element, the photons its line families send into the detector at the
        mass fractions ``w`` ``(E,)``, with their mean energies: ``{"Ka": (photons,
        keV), ...}`` (which line of an element a spectrum shows best)."""
        from napari_xrfquant.physics.lines import line_family

        detected = self._intensities(w[None, :])[0] * self._detected
        out: list[dict[str, tuple[float, float]]] = []
        for rows in self._line_rows:
            sums: dict[str, list[float]] = {}
            for row in rows:
                line = self.simulator.tables.lines[row]
                family = line_family(line.siegbahn)
                if family is not None:
                    acc = sums.setdefault(family, [0.0, 0.0])
                    acc[0] += float(detected[row])
                    acc[1] += float(detected[row]) * line.energy_keV
            out.append({f: (v[0], v[1] / v[0]) for f, v in sums.items() if v[0] > 0})
        return out

    def _closed(self, per_fraction: np.ndarray) -> np.ndarray:
        """Fractions ``∝ per_fraction`` closed to 1 (with oxide oxygen where asked)."""
        weight = 1.0 + (self.oxygen if self.oxygen is not None else 0.0)
        total = (per_fraction * weight).sum(axis=1, keepdims=True)
        return per_fraction / np.clip(total, 1e-300, None)

    def matrix_fractions(
        self, element_amounts: np.ndarray, w: np.ndarray, steps: int = MATRIX_STEPS,
        compton: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(N, E)`` closed fractions from the elements' fitted amounts: ``steps`` of
        the fixed point ``w = closed(A / s(w))`` from the matrix ``w``; with a balance
        compound, ``w = A C(w) / (A_C s(w))`` from the ``compton`` amounts ``(N,)``."""
        for _ in range(steps):
            if self.balance is not None and compton is not None:
                safe = _compound_where_unknown(w)
                plain = self._intensities(self.floored(safe), secondary=False)  # both need it
                w = absolute_fractions(element_amounts, self.sensitivities(safe, plain), compton,
                                       self.compton_photons(safe, plain))
            else:
                w = self._closed(np.clip(element_amounts / self.sensitivities(w), 1e-12, None))
        return w

    def compton_photons(self, w: np.ndarray, plain: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` Compton photons detected per incident photon in matrix ``w`` (the
        instrument's ``scatter.scale`` included), on all channels as the amounts are
        (``plain``: the line intensities at :meth:`floored` ``w``, where known)."""
        if plain is None:
            plain = self._intensities(self.floored(w), secondary=False)
        compton = plain[:, self._compton]
        return (compton @ self._detected[self._compton]) * self.instrument.scatter.scale

    # -- the fit ----------------------------------------------------------------------
    def fit(
        self, counts: np.ndarray, start_wt_percent: np.ndarray | None = None,
        keep_expected: bool = False,
    ) -> PhysicsFit:
        """Quantify ``counts`` ``(N, C)`` on the instrument's channels (``keep_expected``:
        also return the fitted spectra).

        Raises
        ------
        XRFQuantError
            For spectra with another channel count, or a thin sample without a scale.
        """
        x = np.asarray(counts, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.fit_channels.size:
            raise XRFQuantError(f"spectra have shape {x.shape}; the instrument has "
                                f"{self.fit_channels.size} channels")
        if self.thin and self.scale is None:
            raise XRFQuantError("a thin sample's areal densities need the counts per unit "
                                "intensity: calibrate the scale on a standard first")
        n_el = len(self.elements)
        w, amounts, covariance, quality, lam = self.solve(x, start_wt_percent, keep_expected)
        s = self.sensitivities(w)
        expected = None
        if lam is not None:
            expected = np.zeros_like(x)
            expected[:, self.fit_channels] = lam
        element_amounts = amounts[:, :n_el]
        element_cov = covariance[:, :n_el, :n_el]
        amount_sigma = np.sqrt(np.clip(np.diagonal(covariance, axis1=1, axis2=2), 0.0, None))
        balance = balance_sigma = None
        if self.thin:
            assert self.scale is not None and self.layer_ug_cm2 is not None
            factor = self.layer_ug_cm2 / (self.scale * s)  # µg/cm² per count
            values, unit, oxygen = element_amounts * factor, "ug_per_cm2", None
            sigma = amount_sigma[:, :n_el] * factor
        elif self.balance is not None:  # absolute fractions, the rest the compound
            values, unit, oxygen = 100.0 * w, "wt_percent", None
            both = 100.0 * absolute_sigma(w, amounts, covariance, n_el,
                                          self.components.index("Compton"))
            sigma, balance_sigma = both[:, :n_el], both[:, n_el]
            balance = 100.0 - values.sum(axis=1)
        else:
            values, unit = 100.0 * w, "wt_percent"
            oxygen = None if self.oxygen is None else 100.0 * (w * self.oxygen).sum(axis=1)
            sigma = 100.0 * self._closure_sigma(w, s, element_amounts, element_cov)
        return PhysicsFit(values=values, sigma=sigma,
                          amounts=amounts, amount_sigma=amount_sigma, fit_quality=quality,
                          expected=expected, elements=list(self.elements),
                          components=list(self.components), unit=unit,
                          oxygen_wt_percent=oxygen, balance_wt_percent=balance,
                          balance_sigma=balance_sigma)

    def solve(
        self, x: np.ndarray, start_wt_percent: np.ndarray | None = None,
        keep_expected: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The fit itself: closed fractions ``w`` ``(N, E)``, amounts ``(N, K)``, their
        covariance ``(N, K, K)``, the fit quality ``(N,)`` and, with
        ``keep_expected``, the expected counts on the fitted channels."""
        n_el = len(self.elements)
        if start_wt_percent is not None:
            w = np.clip(np.asarray(start_wt_percent, dtype=np.float64) / 100.0, 1e-6, None)
        elif self.balance is not None:  # traces in the compound, not 1/E each
            w = np.full((x.shape[0], n_el), min(1e-3, 0.5 / n_el))
        else:
            w = np.full((x.shape[0], n_el), 1.0 / n_el)
        if self.balance is None:
            w = self._closed(w)
        amounts: np.ndarray | None = None
        # shapes at the start's mean matrix, then at each composition group's
        # fitted one (an element's line ratios follow its matrix's absorption edges)
        for rounds, final in ((SCORING_STEPS, False), (SCORING_STEPS // 3, True)):
            groups = np.zeros(len(x), dtype=int) if amounts is None else composition_groups(w)
            amounts, covariance, quality, lam = self._fit_grouped(
                x, w, groups, rounds, amounts, keep_expected and final, final)
            w = self.matrix_fractions(amounts[:, :n_el], w, MATRIX_STEPS if not self.thin else 1,
                                      amounts[:, self.components.index("Compton")])
        assert amounts is not None
        return w, amounts, covariance, quality, lam

    def _fit_grouped(
        self, x: np.ndarray, w: np.ndarray, groups: np.ndarray, steps: int,
        start: np.ndarray | None, keep_expected: bool, quality: bool = True,
    ) -> tuple[Any, ...]:
        """:meth:`_fit_batches` of each composition group of spectra with the shapes of
        its own mean matrix (``groups`` ``(N,)`` from :func:`.composition_groups`)."""

        def fit_group(k: np.ndarray) -> tuple[np.ndarray | None, ...]:
            safe = _compound_where_unknown(w[k])
            matrix = np.average(safe, axis=0, weights=x[k].sum(axis=1) + 1e-300)
            return self._fit_batches(x[k], self.shapes(matrix), steps,
                                     None if start is None else start[k], keep_expected,
                                     quality)

        return by_group(groups, fit_group)

    def _closure_sigma(
        self, w: np.ndarray, s: np.ndarray, amounts: np.ndarray, covariance: np.ndarray
    ) -> np.ndarray:
        """``(N, E)`` 1-sigma of the closed fractions ``w_e = (A_e / s_e) / T``.

        ``T = sum_j (A_j / s_j)(1 + o_j)``, so ``dw_e / dA_k = (delta_ek - w_e (1 +
        o_k)) / (s_k T)``: the closure takes the shared part of the errors out.
        """
        n_el = w.shape[1]
        weight = 1.0 + (self.oxygen if self.oxygen is not None else np.zeros(n_el))
        total = np.clip((amounts / s * weight).sum(axis=1), 1e-300, None)  # (N,)
        jacobian = (np.eye(n_el)[None] - w[:, :, None] * weight[None, None, :]) / (
            s[:, None, :] * total[:, None, None])
        variance = np.einsum("nek,nkl,nel->ne", jacobian, covariance, jacobian)
        return np.sqrt(np.clip(variance, 0.0, None))

    def _fit_batches(
        self, x: np.ndarray, shapes: np.ndarray, steps: int = SCORING_STEPS,
        start: np.ndarray | None = None, keep_expected: bool = False, quality: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Amounts, covariance and fit quality of every spectrum, batch by batch (the
        expected counts of a batch are dropped once its fit quality is known, unless
        ``keep_expected``; the fit quality is NaN without ``quality``: a round whose
        amounts only start the next needs none: half the fit-quality work of a frame)."""
        fit = self.fit_channels
        amounts, covariances, qualities, expected = [], [], [], []
        for k in range(0, x.shape[0], FIT_BATCH):
            observed = x[k:k + FIT_BATCH, fit]
            a, covariance, lam = fit_amounts(observed, shapes[:, fit], steps,
                                             None if start is None else start[k:k + FIT_BATCH],
                                             self.device)
            amounts.append(a)
            covariances.append(covariance)
            qualities.append(poisson_fit_quality(torch.as_tensor(observed), torch.as_tensor(lam),
                                                 shapes.shape[0]).numpy()
                             if quality else np.full(len(a), np.nan))
            if keep_expected:
                expected.append(lam)
        return (np.concatenate(amounts), np.concatenate(covariances), np.concatenate(qualities),
                np.concatenate(expected) if keep_expected else None)


def _compound_where_unknown(w: np.ndarray) -> np.ndarray:
    """``w`` with the fractions a balance fit could not give (a spectrum without
    Compton: NaN) at :data:`MIN_FRACTION`: that spectrum's matrix is the compound's."""
    return np.nan_to_num(w, nan=MIN_FRACTION)
