"""Differentiable fundamental-parameter XRF simulator (torch).

Physics per spectrum (compositions as mass fractions ``W`` of shape ``(N, E)``):

- primary fluorescence of every K, L1-L3 and M1-M5 line (Sherman equation), with
  xraylib's ``CS_FluorLine_Kissel_Cascade`` production cross sections (partial
  photo-ionisation, Coster-Kronig, cascade, fluorescence yield, radiative rate)
  as computed by :mod:`._cascade`, which adds the Coster-Kronig spectator
  vacancies xraylib drops and replaces its Z = 77-92 M2 fluorescence yields
  (heavy elements' M lines: +10 % for Au), summed over the beam energies;
- secondary fluorescence of every line by every harder line of the sample and
  by the scattered beam (Rayleigh and Compton, emitted isotropically), with the
  analytic bulk formula (Shiraiwa and Fujino 1966) or de Boer's (1990)
  finite-thickness formula for a single layer; tertiary fluorescence is
  neglected (below 0.2 % for Au L, about 2 % for Au M according to fisx);
- polarised Rayleigh and Compton scatter averaged over the detector's acceptance
  cone, the Compton peak Doppler-broadened with Hartree-Fock Compton profiles;
- the detector response (:mod:`.detector`) and a parametric continuum.

The split is ``forward = (1 - f) normalise(line_intensities(W) @ response_matrix())
+ f continuum``: ``line_intensities`` is a few small matmuls and element-wise
operations on ``(rows, N)`` and ``(pairs, N)`` arrays; ``response_matrix`` (rows x
channels) is cached while the instrument parameters neither change nor need gradients.

Accuracy against fisx (ESRF): tests/test_physics_fisx.py and the README.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_xrfquant.errors import SimulationError
from napari_xrfquant.instrument import Instrument, reference_instrument
from napari_xrfquant.instrument_parameters import drop_index
from napari_xrfquant.physics import _xraydata as xd
from napari_xrfquant.physics import detector as det
from napari_xrfquant.physics import optic as optic_terms
from napari_xrfquant.physics import tube_beam
from napari_xrfquant.physics.gas import air_excess_depth
from napari_xrfquant.physics.secondary import (
    beam_pairs,
    layer_mass_g_cm2,
    secondary_bulk,
    secondary_layer,
)
from napari_xrfquant.physics.setup_lines import SetupLines
from napari_xrfquant.physics.tables import SCATTER_EXCITATION, PhysicsTables, build_tables
from napari_xrfquant.physics.values import PARAMETER_NAMES, instrument_values

#: Parameters of the detector response (the first twelve go to detector.atom_response).
_DETECTOR_NAMES = PARAMETER_NAMES[:12]

#: Extra override keys that scale a parameter rather than replace it.
SCALE_NAMES = ("fwhm_scale",)
#: Those the response matrix depends on (the detection efficiency through the air share).
_RESPONSE_NAMES = (*PARAMETER_NAMES[:16], "air_fraction")

#: Spectra per block in the secondary-fluorescence sum (cache-sized temporaries).
SECONDARY_CHUNK = 256

#: Spectra per block when every spectrum has its own response matrix (memory).
PER_SPECTRUM_CHUNK = 8


class XRFSimulator(nn.Module):
    """Expected XRF spectra of bulk or single-layer samples, batched and differentiable.

    Parameters
    ----------
    elements
        Element symbols (Z = 1-92; H to F without lines), in the column order of
        the compositions.
    instrument
        Measurement set-up; None for the reference instrument.
    device, dtype
        Where and in which precision the tables and the computation live.
    layer_thickness_cm, layer_density_g_cm3
        A finite single layer (both needed); None for the instrument's
        ``[sample]``, else a bulk (infinitely thick) sample.
    secondary
        Include secondary fluorescence (default True).
    scatter_excitation
        Scattered-beam components that excite secondary fluorescence (default
        both Rayleigh and Compton; fisx counts Rayleigh only).

    Attributes
    ----------
    gain_keV, offset_keV, ... (every name of PARAMETER_NAMES) : torch.nn.Parameter
        Continuous instrument parameters, 0-d. They do not require gradients
        until you say so (``sim.gain_keV.requires_grad_(True)``), so plain use
        caches the response matrix.
    row_labels : tuple of str
        Name of each column of :meth:`line_intensities` ("Au L3M5", "Au Compton").
    row_energy_keV : torch.Tensor
        Energy of each of those columns.

    Examples
    --------
    >>> sim = XRFSimulator(["Au", "Ag", "Cu"])
    >>> spectra = sim(torch.tensor([[0.75, 0.125, 0.125]]))
    >>> tuple(spectra.shape)
    (1, 1024)
    """

    optic_knots_keV: torch.Tensor
    mu_beam: torch.Tensor
    mu_row: torch.Tensor
    row_source: torch.Tensor
    row_element: torch.Tensor
    row_energy_keV: torch.Tensor
    beam_pair_exciting: torch.Tensor
    beam_pair_excited: torch.Tensor
    beam_pair_coefficient: torch.Tensor
    row_onehot: torch.Tensor
    atom_energy_keV: torch.Tensor
    atom_efficiency: torch.Tensor
    atom_escape: torch.Tensor
    escape_energy_keV: torch.Tensor
    row_atoms: torch.Tensor
    detector_row_factor: torch.Tensor
    atom_air_excess: torch.Tensor
    atom_shelf_start_keV: torch.Tensor
    # every name of PARAMETER_NAMES is an nn.Parameter too; those read by name here:
    gain_keV: torch.Tensor
    offset_keV: torch.Tensor
    noise_keV: torch.Tensor
    fano: torch.Tensor
    quadratic_keV: torch.Tensor

    def __init__(
        self,
        elements: Sequence[str] | str,
        instrument: Instrument | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        layer_thickness_cm: float | None = None,
        layer_density_g_cm3: float | None = None,
        secondary: bool = True,
        scatter_excitation: Sequence[str] = SCATTER_EXCITATION,
    ) -> None:
        super().__init__()
        symbols, zs = xd.parse_elements(elements, light=True)
        self.instrument = instrument if instrument is not None else reference_instrument()
        self.elements = symbols
        self.secondary = bool(secondary)
        self.layer_mass_g_cm2: float | None = layer_mass_g_cm2(
            layer_thickness_cm, layer_density_g_cm3, self.instrument)
        tables = build_tables(symbols, zs, self.instrument, tuple(scatter_excitation), secondary)
        self.tables: PhysicsTables = tables
        self.row_labels = tables.row_labels
        self._register_tables(tables, device, dtype)
        d, lines = self.instrument.detector, self.instrument.setup_lines
        self.setup = None if lines is None else SetupLines(self.instrument, device, dtype)
        values = instrument_values(self.instrument)
        for name, value in values.items():
            tensor = torch.tensor(float(value), dtype=dtype, device=device)
            self.register_parameter(name, nn.Parameter(tensor, requires_grad=False))
        optic = self.instrument.optic
        self.optic_model = None if optic is None else optic.model
        knots = optic.knots_keV if optic is not None and optic.model == "knots" else ()
        self.register_buffer("optic_knots_keV", torch.tensor(knots, dtype=dtype, device=device))
        log_t = optic.log_transmission if optic is not None and optic.model == "knots" else ()
        self.optic_log_transmission = nn.Parameter(
            torch.tensor(log_t, dtype=dtype, device=device), requires_grad=False
        )
        self.n_channels = int(d.n_channels)
        self.pair_energy_keV = float(d.pair_energy_keV)
        self.cutoff_keV = float(self.instrument.max_beam_energy_keV)
        self._cache: dict[str, Any] = {}

    # -- set-up ---------------------------------------------------------------
    def _register_tables(self, t: PhysicsTables, device: Any, dtype: torch.dtype) -> None:
        def buf(name: str, array: Any, kind: torch.dtype = dtype) -> None:
            self.register_buffer(name, torch.as_tensor(array, dtype=kind, device=device))

        buf("mu_beam", t.mu_beam)
        buf("mu_row", t.mu_row)
        # beam weights folded into the production cross sections
        buf("row_source", t.row_source * t.beam_weight[:, None])
        buf("row_element", t.row_element, torch.long)
        buf("row_energy_keV", t.row_energy_keV)
        # the secondary-fluorescence pairs each beam energy drives, beam after beam
        pairs = beam_pairs(t)
        self.beam_pair_offsets = pairs.offsets
        buf("beam_pair_exciting", pairs.exciting, torch.long)
        buf("beam_pair_excited", pairs.excited, torch.long)
        buf("beam_pair_coefficient", pairs.coefficient)
        buf("row_onehot", np.eye(len(t.z))[t.row_element])  # (R, E)
        buf("atom_energy_keV", t.atom_energy_keV)
        buf("atom_efficiency", t.atom_efficiency)
        buf("atom_escape", t.atom_escape)
        buf("escape_energy_keV", t.escape_energy_keV)
        buf("atom_shelf_start_keV", det.shelf_start_keV(self.instrument, t.atom_energy_keV))
        buf("row_atoms", t.row_atoms)
        buf("detector_row_factor", t.detector_row_factor)
        # what more air in the gas path from sample to detector takes away (physics.gas)
        buf("atom_air_excess", air_excess_depth(self.instrument, t.atom_energy_keV))
        path = self.instrument.path
        self._air_start = 0.0 if path is None else float(path.air_fraction)
        # the tube's thickness and L lines as factors on the beam (physics.tube_beam)
        terms = tube_beam.tube_beam_terms(self.instrument)
        for name in tube_beam.TERM_NAMES:
            buf(f"beam_{name}", getattr(terms, name))
        self._beam_start = terms.start

    @property
    def energy_keV(self) -> torch.Tensor:
        """Channel-centre energies ``(C,)`` from the current calibration."""
        k = torch.arange(self.n_channels, dtype=self.gain_keV.dtype, device=self.gain_keV.device)
        return self.offset_keV + self.gain_keV * k + self.quadratic_keV * k**2

    # -- physics --------------------------------------------------------------
    def line_intensities(
        self, mass_fractions: torch.Tensor, secondary: bool | None = None,
        beam_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Intensity of every row leaving the sample towards the detector: ``(N, R)``.

        Rows are the fluorescence lines, then Rayleigh and Compton scatter of
        each element (:attr:`row_labels`). Units: photons emitted towards the
        detector per incident photon, per unit ``Omega / 4 pi``.

        Parameters
        ----------
        mass_fractions
            ``(N, E)`` mass fractions (summing to 1 for a physical sample).
        secondary
            Override the simulator's ``secondary`` setting.
        beam_scale
            ``(1, B)`` or ``(N, B)`` factors on the tables' beam (:mod:`.tube_beam`).
        """
        w = mass_fractions.to(self.mu_beam.dtype)
        s1 = self.tables.sin_incidence
        mu0 = (w @ self.mu_beam).clamp_min(1e-12)  # (N, B)
        mu_rows = (w @ self.mu_row).clamp_min(1e-12)  # (N, R)
        a = (mu0 / s1)[:, :, None]  # (N, B, 1)
        w_rows = w[:, self.row_element]  # (N, R)
        use_secondary = self.secondary if secondary is None else secondary
        secondary_fn = secondary_bulk if self.layer_mass_g_cm2 is None else secondary_layer
        t = self.tables
        intensity = torch.zeros_like(mu_rows)  # (N, R)
        source = self.row_source
        if beam_scale is not None:
            beam_scale = beam_scale.to(w.dtype).expand(w.shape[0], -1)
            source = source[None] * beam_scale[:, :, None]  # (N, B, R)
        # a detector array: the sum over its directions, each with its own exit path
        for d, (s2, share) in enumerate(zip(t.detector_sin_takeoff.tolist(),
                                            t.detector_share.tolist(), strict=True)):
            chi = a + (mu_rows / s2)[:, None, :]  # (N, B, R)
            depth = 1.0 / (s1 * chi)
            if self.layer_mass_g_cm2 is not None:
                depth = depth * -torch.expm1(-chi * self.layer_mass_g_cm2)
            part = (source * depth).sum(dim=1) * w_rows
            if t.detector_share.size > 1:
                part = share * part * self.detector_row_factor[d]
            if use_secondary and self.beam_pair_exciting.numel():
                # chunks keep the (chunk, pairs) temporaries in cache
                step = SECONDARY_CHUNK
                part = part + share * torch.cat([
                    secondary_fn(self, w[k : k + step], mu0[k : k + step], s2,
                                 None if beam_scale is None else beam_scale[k : k + step])
                    for k in range(0, w.shape[0], step)], dim=0)
            intensity = intensity + part
        return intensity

    # -- detector -------------------------------------------------------------
    def _parameter_values(self, overrides: Mapping[str, Any] | None) -> dict[str, torch.Tensor]:
        values = {name: getattr(self, name) for name in PARAMETER_NAMES}
        scale = None
        for name, value in (overrides or {}).items():
            tensor = torch.as_tensor(value, dtype=self.gain_keV.dtype, device=self.gain_keV.device)
            knots = self.optic_log_transmission.numel() if self.optic_model == "knots" else 0
            known = (*PARAMETER_NAMES, *SCALE_NAMES)
            if problem := optic_terms.override_problem(name, tensor.ndim, knots, known):
                raise SimulationError(problem)
            if tensor.ndim == 1:
                tensor = tensor[:, None, None]
            if name == "fwhm_scale":
                scale = tensor
            else:
                values[name] = tensor
        if scale is not None:
            # FWHM scales with both terms under the square root
            values["noise_keV"] = values["noise_keV"] * scale
            values["fano"] = values["fano"] * scale**2
        return values

    def optic_transmission(
        self, energy_keV: torch.Tensor, values: Mapping[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Transmission of the optic at ``energy_keV`` (1 without an optic), differentiable."""
        v = values if values is not None else self._parameter_values(None)
        return optic_terms.optic_transmission(
            self.optic_model, energy_keV, v, self.optic_knots_keV, self.optic_log_transmission
        )

    def atom_matrix(self, values: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Detected spectrum of one photon of each detector atom: ``(A, C)``. The response
        matrix is ``row_atoms @ atom_matrix()``; rows of fixed intensities are cheaper as
        ``(intensity @ row_atoms) @ atom_matrix()`` (a tube's beam makes thousands of rows)."""
        v = values if values is not None else self._parameter_values(None)
        efficiency = self.atom_efficiency * self.optic_transmission(self.atom_energy_keV, v)
        air = v["air_fraction"]
        if air.requires_grad or bool((air != self._air_start).any()):
            # the tables hold the file's air share; another share scales the efficiency
            change = air.clamp(0.0, 1.0) - self._air_start
            efficiency = efficiency * torch.exp(-change * self.atom_air_excess)
        return det.atom_response(
            self.atom_energy_keV, efficiency, self.atom_escape, self.escape_energy_keV,
            n_channels=self.n_channels, pair_keV=self.pair_energy_keV,
            shelf_start_keV=self.atom_shelf_start_keV,
            **{name: v[name] for name in _DETECTOR_NAMES})

    def setup_spectrum(self, values: Mapping[str, Any] | None = None,
                       families: bool = False) -> torch.Tensor | None:
        """The set-up's own lines through the detector, summing to 1 (None without them);
        ``families``: ``(F, C)``, each line family apart (``SetupLines.labels``)."""
        if self.setup is None:
            return None
        v = values if values is not None else self._parameter_values(None)
        if families:
            return self.setup.family_spectra(v, _DETECTOR_NAMES)
        return self.setup.spectrum(v, _DETECTOR_NAMES)

    def _response_from(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.row_atoms @ self.atom_matrix(values)  # (R, C) or (N, R, C)

    def response_matrix(self) -> torch.Tensor:
        """Detected spectrum of one photon of each row: ``(R, C)``.

        Includes attenuator transmission and detector efficiency. Cached while
        the parameters keep their values and do not take part in autograd.
        """
        values = self._parameter_values(None)
        if self._response_tracked(values):
            return self._response_from(values)
        key = (str(self.atom_energy_keV.device), self.atom_energy_keV.dtype,
               tuple(float(getattr(self, name)) for name in _RESPONSE_NAMES),
               tuple(self.optic_log_transmission.tolist()))
        if self._cache.get("response_key") != key:
            with torch.no_grad():
                self._cache["response"] = self._response_from(values)
            self._cache["response_key"] = key
        return self._cache["response"]

    def continuum(self, overrides: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The continuum shape ``(C,)`` (or ``(N, C)`` with per-spectrum overrides), sum 1."""
        v = self._parameter_values(overrides)
        return self._continuum_from(v)

    def _continuum_from(self, v: Mapping[str, torch.Tensor]) -> torch.Tensor:
        like = v["gain_keV"]
        cutoff = torch.as_tensor(self.cutoff_keV, dtype=like.dtype, device=like.device)
        cutoff_sigma = det.sigma_keV(cutoff, v["noise_keV"], v["fano"], self.pair_energy_keV)

        def flat(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, 1) if t.ndim else t

        return det.continuum_shape(
            self.n_channels,
            flat(v["gain_keV"]),
            flat(v["offset_keV"]),
            flat(v["continuum_power"]),
            flat(v["continuum_decay_keV"]),
            self.cutoff_keV,
            flat(cutoff_sigma),
            self.gain_keV.dtype,
            self.gain_keV.device,
            flat(v["quadratic_keV"]),
            threshold_keV=flat(v["threshold_keV"]),
            threshold_width_keV=flat(v["threshold_width_keV"]),
        )

    # -- the spectrum -----------------------------------------------------------
    def forward(
        self,
        mass_fractions: torch.Tensor,
        instrument_overrides: Mapping[str, Any] | None = None,
    ) -> torch.Tensor:
        """Expected spectra ``(N, C)``, each summing to 1.

        Parameters
        ----------
        mass_fractions
            ``(N, E)`` mass fractions of :attr:`elements`.
        instrument_overrides
            Optional values replacing the instrument parameters for this call:
            any of :data:`PARAMETER_NAMES` plus ``fwhm_scale`` (multiplies the
            FWHM). A scalar applies to the whole batch and costs one response
            matrix (about as much as simulating a few hundred spectra); an
            ``(N,)`` tensor gives every spectrum its own value and costs one
            response matrix per spectrum (milliseconds each): use groups of
            spectra sharing one draw when speed matters.
        """
        values = self._parameter_values(instrument_overrides or None)
        terms = {n: getattr(self, f"beam_{n}") for n in tube_beam.TERM_NAMES}
        scale = tube_beam.beam_scale(terms, self._beam_start, values)
        intensity = self._scaled_scatter(
            self.line_intensities(mass_fractions, beam_scale=scale), values)
        if any(v.ndim for v in values.values()) or self._response_tracked(values):  # rebuilt
            peaks = self._peaks_through_atoms(intensity, values)
        elif not instrument_overrides:
            peaks = intensity @ self.response_matrix()
        else:
            peaks = intensity @ self._scalar_response(values)
        peaks = peaks / peaks.sum(dim=1, keepdim=True).clamp_min(1e-30)
        fraction = values["continuum_fraction"].reshape(-1, 1)
        spectra = (1.0 - fraction) * peaks + fraction * self._continuum_from(values)
        setup = self.setup_spectrum(values)
        if setup is not None:  # the set-up's own lines (Ar K of the air path, ...)
            share = values["setup_fraction"].clamp_min(0.0).reshape(-1, 1)
            spectra = (1.0 - share) * spectra + share * setup
        pile = values["pileup_fraction"]
        if not (pile.requires_grad or bool((pile != 0).any())):
            return spectra  # no sum peaks: spare the two FFTs
        return det.pileup(spectra, pile.clamp_min(0.0), values["offset_keV"], values["gain_keV"])

    def _scaled_scatter(
        self, intensity: torch.Tensor, values: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """``intensity`` with the scatter rows times ``scatter_scale`` (lines first, then
        the scatter rows: :func:`.tables.build_tables`)."""
        scale = values["scatter_scale"]
        if not scale.requires_grad and bool((scale == 1.0).all()):
            return intensity
        n_lines = len(self.tables.lines)
        rows = torch.arange(intensity.shape[-1], device=intensity.device)
        return intensity * torch.where(rows >= n_lines, scale.reshape(-1, 1), 1.0)

    @staticmethod
    def _response_names(values: Mapping[str, torch.Tensor]) -> list[str]:
        """The parameters the response depends on, the optic's drops in ``values`` too."""
        return [*_RESPONSE_NAMES, *filter(drop_index, values)]

    def _response_tracked(self, values: Mapping[str, torch.Tensor]) -> bool:
        """Whether a parameter of the response takes part in autograd (rebuilt, not cached)."""
        return torch.is_grad_enabled() and (
            any(values[n].requires_grad for n in self._response_names(values))
            or self.optic_log_transmission.requires_grad)

    def _peaks_through_atoms(
        self, intensity: torch.Tensor, values: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """``intensity @ response`` as ``(intensity @ row_atoms) @ atom_matrix``: N A (R + C)
        against R A C for a rebuilt response (a tube: R = 4,348, A = 678, C = 4,096);
        per-spectrum ``(N, 1, 1)`` parameters in blocks of spectra (bounded memory)."""
        n = intensity.shape[0]
        for name, v in values.items():
            if v.ndim and v.shape[0] != n:
                raise SimulationError(f"instrument override {name!r} has {v.shape[0]} "
                                      f"values for {n} spectra")
        per_spectrum = any(values[name].ndim for name in self._response_names(values))
        step = PER_SPECTRUM_CHUNK if per_spectrum else max(n, 1)  # else one atom matrix
        blocks = [intensity.new_zeros(0, self.n_channels)]
        for k in range(0, n, step):
            atoms = self.atom_matrix({name: v[k : k + step] if v.ndim else v
                                      for name, v in values.items()})  # (A, C) or (n, A, C)
            on_atoms = intensity[k : k + step] @ self.row_atoms  # (n, A), each times its atoms
            blocks.append((on_atoms[:, None, :] @ atoms)[:, 0])
        return torch.cat(blocks, dim=0)

    def _scalar_response(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Response for scalar overrides outside autograd, cached while they stay."""
        key = tuple((n, float(values[n])) for n in self._response_names(values))
        if key == tuple((n, float(getattr(self, n))) for n in _RESPONSE_NAMES):
            return self.response_matrix()
        where = (str(self.atom_energy_keV.device), self.atom_energy_keV.dtype)
        if self._cache.get("override_key") != (where, key):
            with torch.no_grad():
                self._cache["override_response"] = self._response_from(values)
            self._cache["override_key"] = (where, key)
        return self._cache["override_response"]

    def with_parameters(self, **values: float | torch.Tensor) -> XRFSimulator:
        """A copy sharing the physics tables with some instrument parameters changed.

        Cheap (no xraylib work); the copy has its own response-matrix cache, e.g.
        ``wider = sim.with_parameters(noise_keV=0.12, gain_keV=0.0351)``.
        """
        new = copy.copy(self)
        new._parameters = dict(self._parameters)
        new._cache = {}
        for name, value in values.items():
            if name not in PARAMETER_NAMES:
                raise SimulationError(f"unknown instrument parameter {name!r}")
            tensor = torch.as_tensor(value, dtype=self.gain_keV.dtype, device=self.gain_keV.device)
            new._parameters[name] = nn.Parameter(tensor.detach().clone(), requires_grad=False)
        return new

    def extra_repr(self) -> str:
        mass = self.layer_mass_g_cm2
        sample = "bulk" if mass is None else f"layer {mass:g} g/cm2"
        sizes = f"rows={len(self.row_labels)}, pairs={self.tables.pair_exciting.size}"
        return f"elements={list(self.elements)}, {sizes}, channels={self.n_channels}, {sample=}"
