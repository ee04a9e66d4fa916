"""Fluorescence of the set-up itself: lines in every spectrum, whatever the sample.

The air path's argon (Ar K at 2.96 keV), a collimator's or a window's elements
fluoresce in the beam and the scattered radiation. Their share of the detected
counts depends on the geometry, not on the sample, so it is one free number of
the instrument (``setup_lines.fraction``); the lines of each element keep their
relative intensities from xraylib (the strongest lines of
:func:`~napari_xrfquant.physics.lines.element_lines` for the beam), every element
the same share, and go through the same detector response as the sample's lines.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from napari_xrfquant.instrument import Instrument
from napari_xrfquant.physics import detector as det


class SetupLines:
    """The normalised spectrum of the set-up's own lines, differentiable in the detector.

    Parameters
    ----------
    instrument
        An instrument with ``setup_lines``.
    device, dtype
        Where the tables live.
    """

    def __init__(self, instrument: Instrument, device: torch.device | str, dtype: torch.dtype):
        from napari_xrfquant.physics.lines import element_lines
        from napari_xrfquant.physics.tables import detector_efficiency, escape_fractions

        assert instrument.setup_lines is not None
        elements = list(instrument.setup_lines.elements)
        lines = element_lines(elements, instrument)
        energies = np.array([line.energy_keV for line in lines], dtype=np.float64)
        weights = np.array([line.relative_intensity for line in lines], dtype=np.float64)
        for element in elements:  # every element the same share of the set-up's counts
            mine = np.array([line.element == element for line in lines])
            if mine.any():
                weights[mine] /= weights[mine].sum() * len(elements)
        efficiency = detector_efficiency(instrument, energies)
        escape, escape_keV = escape_fractions(instrument, energies)

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, dtype=dtype, device=device)

        #: each line family's label (``"Ar Ka"``), in the order of :meth:`family_spectra`
        self.labels = [line.label for line in lines]
        self.energy_keV, self.weights = tensor(energies), tensor(weights * efficiency)
        self.escape, self.escape_keV = tensor(escape), tensor(escape_keV)
        self.shelf_start_keV = tensor(det.shelf_start_keV(instrument, energies))
        self.n_channels = int(instrument.detector.n_channels)
        self.pair_keV = float(instrument.detector.pair_energy_keV)

    def spectrum(self, values: Mapping[str, torch.Tensor], names: tuple[str, ...]) -> torch.Tensor:
        """``(C,)`` (or ``(N, C)`` with per-spectrum detector values) summing to 1."""
        spectrum = torch.einsum("a,...ac->...c", self.weights, self._response(values, names))
        return spectrum / spectrum.sum(dim=-1, keepdim=True).clamp_min(1e-30)

    def family_spectra(
        self, values: Mapping[str, torch.Tensor], names: tuple[str, ...]
    ) -> torch.Tensor:
        """``(F, C)`` each line family's spectrum (:attr:`labels`), summing to 1 each:
        for a fit that lets their ratio free (Ar Kb against Ka after a path whose
        absorption the file gives only roughly)."""
        response = self._response(values, names)
        return response / response.sum(dim=-1, keepdim=True).clamp_min(1e-30)

    def _response(self, values: Mapping[str, torch.Tensor], names: tuple[str, ...]) -> torch.Tensor:
        """``(F, C)`` (or ``(N, F, C)``) the detector's response to each line family."""
        return det.atom_response(
            self.energy_keV,
            torch.ones_like(self.energy_keV),
            self.escape,
            self.escape_keV,
            n_channels=self.n_channels,
            pair_keV=self.pair_keV,
            shelf_start_keV=self.shelf_start_keV,
            **{name: values[name] for name in names},
        )
