"""Analysis by synthesis (AXS): the instrument learned from unlabelled spectra.

An auto-encoder whose encoder is the network being trained and whose decoder is
the differentiable simulator with learnable global instrument parameters. For
a batch of measured, unlabelled spectra ``x``:

1. the encoder predicts the composition ``w`` (wt%, closed to fractions);
2. the decoder simulates its peaks ``p(w; theta)`` and the continuum
   ``c(theta)`` (each summing to 1);
3. the amounts of both, ``a_p`` and ``a_c`` per spectrum (the spectrum's
   brightness and its background amount), are profiled out by Poisson maximum
   likelihood (a few EM steps, detached: at the optimum their own gradient is
   zero, so the gradients of ``w`` and ``theta`` are unchanged by the envelope
   theorem);
4. the reconstruction loss is the mean fit quality (Poisson deviance over its
   expectation, about 1 for a perfect model) of ``x`` against
   ``a_p p + a_c c`` over the fitted channels.

The training loss is the prediction loss on labelled spectra plus
``beta`` times it (and, when the cube holds standards, plus ``beta`` times the
mean absolute error of the network on the standards' own pixels: ``beta``
weighs the measured data against the simulated); gradients reach both the
network and ``theta``, which has an optimiser of its own.

The labelled spectra are simulated with the training instrument; with
``follow > 0`` that share of them (and all of the validation and test
spectra) is re-simulated after every epoch with the instrument learned so far,
so the prediction loss teaches the mapping of the instrument the measured
spectra come from rather than fighting it. (The reconstruction alone cannot
undo every error of an encoder trained elsewhere: the amount of an element and
the optic's transmission at its lines trade off, and only the pairs of lines of
one element far apart in energy break the tie.) With ``beta = 0`` and
``follow = 0`` the run equals supervised training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.refine import profile_amounts
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.instrument_parameters import (
    FreeVector,
    expand_free,
    parameter_values,
    with_values,
)
from napari_xrfquant.io.calibration import start_instrument
from napari_xrfquant.models.architectures import QuantNet
from napari_xrfquant.training.config import AXSConfig, TrainingConfig
from napari_xrfquant.training.datasets import SIMULATE_BLOCK, SimulatedSet

#: Share of the unlabelled spectra held out to select the best epoch.
HELD_OUT_FRACTION = 0.1
#: Largest held-out batch evaluated at once.
HELD_OUT_BATCH = 512
#: The simulator's own continuum fraction: AXS profiles the amount per spectrum.
PROFILED = ("continuum_fraction",)


def sample_unlabelled(counts: Any, min_counts: float, n_spectra: int, seed: int) -> np.ndarray:
    """Up to ``n_spectra`` random pixel spectra ``(N, C)`` of a cube with enough counts.

    Raises
    ------
    XRFQuantError
        When no pixel holds ``min_counts`` counts.
    """
    data = counts if hasattr(counts, "compute") else np.asarray(counts)
    total = np.asarray(data.sum(axis=-1), dtype=np.float64)
    rows, cols = np.nonzero(total >= min_counts)
    if rows.size == 0:
        raise XRFQuantError(f"no pixel of the unlabelled cube holds {min_counts:g} counts or more")
    pick = np.random.default_rng(seed).permutation(rows.size)[:n_spectra]
    return _pixel_spectra(data, rows[pick], cols[pick])


def _pixel_spectra(data: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float32 spectra ``(N, C)`` of pixels of a numpy or dask cube, read in storage order."""
    flat = np.sort(rows * data.shape[1] + cols)
    return np.asarray(data.reshape(-1, data.shape[-1])[flat], dtype=np.float32)


class Reconstruction:
    """The AXS decoder and its learnable instrument, for one training run.

    Parameters
    ----------
    config
        The AXS settings.
    elements
        The network's elements, in its output order.
    instrument
        The instrument the decoder starts from (the training simulator's).
    spectra
        ``(N, C)`` unlabelled counts on the channels of ``energy_keV``.
    energy_keV
        The stated channel energies of the unlabelled spectra (the start of the
        calibration the decoder learns).
    model_energy_keV
        The network's input channels; the spectra are resampled onto them when
        the grids differ.
    device
        Torch device of the training.
    seed
        Seeds the held-out split and the batches.
    standards
        ``(spectra (M, C), wt% (M, E))``: pixels of standards with their
        certified compositions, on the same channels as ``spectra``.
    """

    def __init__(
        self,
        config: AXSConfig,
        elements: Sequence[str],
        instrument: Instrument,
        spectra: np.ndarray,
        energy_keV: np.ndarray,
        model_energy_keV: np.ndarray,
        device: str,
        seed: int,
        standards: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        from napari_xrfquant.inference.fit_quality import fit_channels
        from napari_xrfquant.inference.resample import Resampler, channel_edges_keV, same_grid
        from napari_xrfquant.physics import XRFSimulator

        energy = np.asarray(energy_keV, dtype=np.float64)
        if spectra.shape[1] != energy.size:
            raise XRFQuantError(
                f"the unlabelled spectra have {spectra.shape[1]} channels, "
                f"their energy axis {energy.size}"
            )
        self.config = config
        self.names = [n for n in expand_free(config.learn, instrument) if n not in PROFILED]
        self.start = start_instrument(instrument, energy, self.names)
        self.simulator = XRFSimulator(
            list(elements), instrument=self.start, device=device, dtype=torch.float32
        )
        self.vector = FreeVector(self.start, self.names, torch.float32, device)
        self.u = torch.zeros(len(self.names), device=device, requires_grad=True)
        self.optimiser = torch.optim.Adam([self.u], lr=config.instrument_lr)
        fit = fit_channels(energy, self.start.max_beam_energy_keV, config.exclude_keV)
        self.fit = torch.as_tensor(fit, device=device)
        raw = torch.as_tensor(spectra, dtype=torch.float32)
        self.resampler = (
            None
            if same_grid(energy, model_energy_keV)
            else Resampler(energy, channel_edges_keV(model_energy_keV))
        )
        encoded = raw if self.resampler is None else self.resampler.torch(raw)
        order = torch.randperm(raw.shape[0], generator=torch.Generator().manual_seed(seed))
        n_held = int(HELD_OUT_FRACTION * raw.shape[0]) if raw.shape[0] >= 10 else 0
        held, used = order[:n_held], order[n_held:]
        self.train_counts = (raw[used].to(device), encoded[used].to(device))
        self.held_counts = (raw[held].to(device), encoded[held].to(device))
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.standards = None
        if standards is not None and len(standards[0]):
            counts = torch.as_tensor(standards[0], dtype=torch.float32)
            encoded_std = counts if self.resampler is None else self.resampler.torch(counts)
            wt = torch.as_tensor(standards[1], dtype=torch.float32)
            self.standards = (encoded_std.to(device), wt.to(device))
        self.continuum_share = float(self.start.continuum.fraction)
        self.device = device

    # -- the loss -----------------------------------------------------------
    def fit_quality(
        self, network: QuantNet, raw: torch.Tensor, encoded: torch.Tensor
    ) -> torch.Tensor:
        """Fit quality ``(N,)`` of the reconstruction of ``raw`` through ``network``."""
        from napari_xrfquant.inference.fit_quality import poisson_fit_quality

        mean, _sigma = network.forward_binned(network.features.bin_counts(encoded))
        fractions = mean.clamp_min(0.0)
        fractions = fractions / fractions.sum(dim=1, keepdim=True).clamp_min(1e-6)
        values = self.vector.natural(self.u)
        overrides: dict[str, Any] = {n: values[i] for i, n in enumerate(self.names)}
        overrides["continuum_fraction"] = 0.0
        peaks = self.simulator(fractions, overrides)[:, self.fit]
        continuum = self.simulator.continuum(overrides)[self.fit]
        observed = raw[:, self.fit]
        amounts = profile_amounts(observed, peaks.detach(), continuum.detach())
        expected = amounts[:, :1] * peaks + amounts[:, 1:] * continuum
        with torch.no_grad():
            share = amounts[:, 1] / amounts.sum(dim=1).clamp_min(1e-30)
            self._last_share = float(share.median())
        return poisson_fit_quality(observed, expected, len(self.names) + 2)

    def loss(self, network: QuantNet) -> torch.Tensor:
        """Mean reconstruction fit quality of one random batch of unlabelled spectra."""
        raw, encoded = self.train_counts
        rows = torch.randint(0, raw.shape[0], (self.config.batch_size,), generator=self.generator)
        rows = rows.to(raw.device)
        value = self.fit_quality(network, raw[rows], encoded[rows]).mean()
        if self.standards is not None:  # the user's standards: labelled measured spectra
            spectra, wt = self.standards
            pick = torch.randint(
                0, spectra.shape[0], (self.config.batch_size,), generator=self.generator
            ).to(spectra.device)
            mean, _sigma = network.forward_binned(network.features.bin_counts(spectra[pick]))
            value = value + (mean - wt[pick]).abs().mean()
        # the learned continuum fraction follows the profiled amounts (running mean)
        self.continuum_share = 0.95 * self.continuum_share + 0.05 * self._last_share
        return value

    def step(self) -> None:
        """One optimiser step of the instrument (after ``backward``)."""
        self.optimiser.step()
        self.optimiser.zero_grad(set_to_none=True)

    def held_out_loss(self, network: QuantNet) -> float:
        """Mean reconstruction fit quality of the held-out unlabelled spectra."""
        raw, encoded = self.held_counts
        if raw.shape[0] == 0:
            raw, encoded = self.train_counts
        total = 0.0
        with torch.no_grad():
            for start in range(0, raw.shape[0], HELD_OUT_BATCH):
                stop = start + HELD_OUT_BATCH
                quality = self.fit_quality(network, raw[start:stop], encoded[start:stop])
                total += float(quality.sum())
        return total / raw.shape[0]

    def simulate(self, wt_percent: torch.Tensor) -> torch.Tensor:
        """Noise-free spectra ``(N, C_model)`` (sum 1) of the instrument learned so far."""
        values = self.values()
        overrides = {n: values[n] for n in [*self.names, "continuum_fraction"]}
        parts = []
        with torch.no_grad():
            for start in range(0, wt_percent.shape[0], SIMULATE_BLOCK):
                w = wt_percent[start : start + SIMULATE_BLOCK].to(self.device) / 100.0
                spectra = self.simulator(w, overrides)
                if self.resampler is not None:
                    spectra = self.resampler.torch(spectra)
                parts.append((spectra / spectra.sum(dim=1, keepdim=True).clamp_min(1e-30)).cpu())
        return torch.cat(parts).float()

    def follow(self, sets: dict[str, SimulatedSet], rng: np.random.Generator) -> None:
        """Re-simulate ``follow`` of the training rows, and all other rows, as learned so far."""
        share = self.config.follow
        if share <= 0:
            return
        for name, part in sets.items():
            n = round(share * len(part)) if name == "train" else len(part)
            rows = torch.as_tensor(np.sort(rng.choice(len(part), size=n, replace=False)))
            part.expected[rows] = self.simulate(part.wt_percent[rows]).to(part.expected.dtype)

    # -- the learned instrument ---------------------------------------------
    def state(self) -> dict[str, Any]:
        """What to keep of the best epoch."""
        return {"u": self.u.detach().clone(), "continuum_share": self.continuum_share}

    def values(self, state: dict[str, Any] | None = None) -> dict[str, float]:
        """Learned values of the parameters (natural units), of ``state`` or now."""
        state = state or self.state()
        values = self.vector.as_dict(state["u"])
        values["continuum_fraction"] = float(state["continuum_share"])
        return values

    def learned_instrument(self, state: dict[str, Any] | None = None) -> Instrument:
        """The start instrument with the learned values written in."""
        return with_values(self.start, self.values(state))

    def adopt(self, network: QuantNet, state: dict[str, Any] | None) -> Instrument | None:
        """With ``follow``: the learned instrument for the bundle, and ``network``
        without its emulator head; None (and ``network`` unchanged) otherwise.

        With ``follow`` the network was trained for the learned instrument, so
        the bundle's instrument becomes it: its fit-quality forward model and
        the inspector then simulate the set-up the spectra came from. The
        emulator head was trained for the start instrument and would report a
        misfit that is not there, so it goes and fit quality comes from the
        simulator.
        """
        if self.config.follow <= 0 or self.resampler is not None:
            return None
        network.decoder = None
        network.architecture = network.architecture.model_copy(update={"decoder_neurons": 0})
        return self.learned_instrument(state)

    def describe(self, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """``model.json["training"]["axs"]``: settings, learned values, instrument."""
        start = parameter_values(self.start, self.names)
        return {
            "beta": self.config.beta,
            "follow": self.config.follow,
            "unlabelled": self.config.unlabelled,
            "unlabelled_spectra": int(self.train_counts[0].shape[0] + self.held_counts[0].shape[0]),
            "standards": dict(self.config.standards),
            "standard_spectra": 0 if self.standards is None else int(self.standards[0].shape[0]),
            "learned": self.values(state),
            "start": {**start, "continuum_fraction": float(self.start.continuum.fraction)},
            "instrument": self.learned_instrument(state).model_dump(mode="json"),
        }


def reconstruction_for(
    config: TrainingConfig,
    instrument: Instrument,
    model_energy_keV: np.ndarray,
    device: str,
    seed: int,
    unlabelled: tuple[Any, np.ndarray] | None = None,
) -> Reconstruction | None:
    """The AXS term of ``config`` (None without ``config.axs``).

    ``unlabelled`` (counts ``(H, W, C)`` and channel energies) replaces the
    cube file ``config.axs.unlabelled`` names, e.g. a cube already open in napari.

    Raises
    ------
    XRFQuantError
        For an unreadable cube, one without a bright enough pixel, or a
        parameter the instrument cannot learn.
    """
    settings = config.axs
    if settings is None:
        return None
    if unlabelled is None:
        from napari_xrfquant.io import read_cube

        path = config.resolve(settings.unlabelled)
        with read_cube(str(path)) as cube:
            spectra = sample_unlabelled(cube.data, settings.min_counts, settings.n_spectra, seed)
            energy = cube.energy_keV
            standards = standard_pixels(config, cube.data, seed)
    else:
        data, energy = unlabelled
        spectra = sample_unlabelled(data, settings.min_counts, settings.n_spectra, seed)
        standards = standard_pixels(config, data, seed)
    return Reconstruction(
        settings,
        config.elements,
        instrument,
        spectra,
        energy,
        model_energy_keV,
        device,
        seed,
        standards,
    )


def standard_pixels(
    config: TrainingConfig, counts: Any, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Spectra and certified wt% of the standards' pixels (``config.axs.standards``).

    Raises
    ------
    XRFQuantError
        For labels of another size than the map, an unknown standard, one with
        an element the model lacks, or a standard region without a bright pixel.
    """
    from napari_xrfquant.io.labels import read_labels
    from napari_xrfquant.physics.standards import parse_standard

    settings = config.axs
    if settings is None or not settings.standards or settings.labels is None:
        return None
    labels = read_labels(str(config.resolve(settings.labels)))
    data = counts if hasattr(counts, "compute") else np.asarray(counts)
    if labels.shape != tuple(data.shape[:2]):
        raise XRFQuantError(
            f"labels have shape {labels.shape}, the map is {data.shape[0]} x {data.shape[1]}"
        )
    total = np.asarray(data.sum(axis=-1), dtype=np.float64)
    rng = np.random.default_rng(seed + 2)
    spectra, wt = [], []
    for key, text in settings.standards.items():
        standard = parse_standard(text)
        vector = standard.vector(list(config.elements))
        rows, cols = np.nonzero((labels == int(key)) & (total >= settings.min_counts))
        if rows.size == 0:
            raise XRFQuantError(
                f"standard {key} ({standard.name}) has no pixel with "
                f"{settings.min_counts:g} counts or more"
            )
        pick = rng.permutation(rows.size)[: settings.n_spectra]
        spectra.append(_pixel_spectra(data, rows[pick], cols[pick]))
        wt.append(np.tile(np.asarray(vector, dtype=np.float32), (pick.size, 1)))
    return np.concatenate(spectra), np.concatenate(wt)
