"""Training data: compositions over the simplex, simulated spectra, splits, HDF5 cache.

The expensive part, the noise-free expected spectrum of each composition (with
its own instrument jitter), is simulated once per composition and may be cached
in HDF5. Everything cheap is drawn fresh for every batch: counts level, counting
noise and the augmentations (see :mod:`napari_xrfquant.training.augment`).

A *spectrum generator* is anything with ``elements``, ``energy_keV`` and
``expected(wt_percent, jitter)`` returning spectra that sum to 1; the default is
:class:`SimulatorSpectra`, the physics simulator for the configured instrument.
Tests and other set-ups may pass their own.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import instrument_to_toml
from napari_xrfquant.io.spectra import (
    SpectraSet,
    read_spectra_attrs,
    read_spectra_set,
    write_spectra_set,
)
from napari_xrfquant.models.features import NOISELESS_COUNTS
from napari_xrfquant.training.config import JitterConfig, TrainingConfig

#: Fractions of the compositions in the train / validation / test splits.
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


class SpectrumGenerator(Protocol):
    """What the trainer needs from a simulator."""

    elements: list[str]
    energy_keV: np.ndarray

    def expected(
        self, wt_percent: torch.Tensor, jitter: dict[str, float] | None = None
    ) -> torch.Tensor:
        """Noise-free spectra ``(N, C)`` summing to 1 for compositions ``(N, E)`` in wt%."""
        ...  # pragma: no cover


# -- compositions, jitter, splits ------------------------------------------
def sample_compositions(
    n: int, n_elements: int, absent_probability: float, rng: np.random.Generator
) -> np.ndarray:
    """Compositions spread over the whole simplex, with elements often absent.

    Each element is absent with probability ``absent_probability`` (at least
    one is present); the present ones are uniform on their sub-simplex
    (Dirichlet(1)), so every element covers 0-100 wt% and pure elements,
    binaries and traces all occur.

    Returns
    -------
    ndarray
        ``(n, n_elements)`` wt%, each row summing to 100.
    """
    present = rng.random((n, n_elements)) >= absent_probability
    none = ~present.any(axis=1)
    present[none, rng.integers(0, n_elements, size=int(none.sum()))] = True
    weights = rng.exponential(1.0, size=(n, n_elements)) * present
    return 100.0 * weights / weights.sum(axis=1, keepdims=True)


def sample_jitter(config: JitterConfig, rng: np.random.Generator) -> dict[str, float]:
    """One draw of instrument variation: relative or absolute changes, uniform in +-range."""

    def uniform(half_width: float) -> float:
        return float(rng.uniform(-half_width, half_width))

    return {
        "gain_rel": uniform(config.gain_rel),
        "offset_keV": uniform(config.offset_keV),
        "noise_rel": uniform(config.noise_rel),
        "fano_rel": uniform(config.fano_rel),
        "continuum_level_log10": uniform(config.continuum_level_log10),
        "continuum_power": uniform(config.continuum_power),
        "continuum_decay_rel": uniform(config.continuum_decay_rel),
        "tail_rel": uniform(config.tail_rel),
    }


#: The independent random streams of a training run, each spawned from its seed.
#: Compositions simulated per call (bounded memory, a progress event each).
SIMULATE_BLOCK = 2048

STREAMS = (
    "compositions",
    "split",
    "standardise",
    "validation",
    "batches",
    "order",
    "calibration",
    "refresh",
    "nominal",
    "weights",
    "axs",
)


def seed_streams(seed: int) -> dict[str, int]:
    """One independent seed per stream of :data:`STREAMS`, from ``seed``.

    :meth:`numpy.random.SeedSequence.spawn` gives statistically independent
    children (seed + 1, seed + 2, ... would overlap between runs of neighbouring
    seeds); each becomes a 63-bit integer that numpy and torch generators take.
    """
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAMS))
    return {
        name: int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
        for name, child in zip(STREAMS, children, strict=True)
    }


def split_indices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded 80/10/10 split of ``range(n)`` into train, validation and test indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = round(SPLIT_FRACTIONS[0] * n)
    n_val = round(SPLIT_FRACTIONS[1] * n)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


# -- the physics simulator as a spectrum generator -------------------------
class SimulatorSpectra:
    """Expected spectra from :class:`napari_xrfquant.physics.XRFSimulator` with jitter.

    Instrument jitter is passed to the simulator as scalar
    ``instrument_overrides`` for one group of spectra, so the xraylib tables are
    built once and each group costs one response matrix.

    Parameters
    ----------
    elements
        Elements the model quantifies.
    instrument
        The instrument; None for the reference instrument.
    device
        Torch device of the simulator.
    """

    def __init__(self, elements: list[str], instrument: Any = None, device: str = "cpu") -> None:
        from napari_xrfquant.instrument import reference_instrument
        from napari_xrfquant.physics import XRFSimulator

        self.elements = list(elements)
        self.instrument = instrument if instrument is not None else reference_instrument()
        self.simulator = XRFSimulator(
            self.elements, instrument=self.instrument, device=device, dtype=torch.float32
        )
        self.simulator.eval()
        self.energy_keV = self.instrument.energy_axis_keV()
        self.device = device

    def overrides(self, jitter: dict[str, float] | None) -> dict[str, float]:
        """Simulator ``instrument_overrides`` for one jitter draw (see :func:`sample_jitter`)."""
        if not jitter:
            return {}
        det = self.instrument.detector
        cont = self.instrument.continuum
        tail = 1.0 + jitter.get("tail_rel", 0.0)
        return {
            "gain_keV": det.gain_keV * (1.0 + jitter.get("gain_rel", 0.0)),
            "offset_keV": det.offset_keV + jitter.get("offset_keV", 0.0),
            "noise_keV": det.noise_keV * (1.0 + jitter.get("noise_rel", 0.0)),
            "fano": det.fano * (1.0 + jitter.get("fano_rel", 0.0)),
            "tail_fraction": det.tail_fraction * tail,
            "shelf_fraction": det.shelf_fraction * tail,
            "continuum_fraction": min(
                cont.fraction * 10.0 ** jitter.get("continuum_level_log10", 0.0), 0.5
            ),
            "continuum_power": cont.power + jitter.get("continuum_power", 0.0),
            "continuum_decay_keV": cont.decay_keV * (1.0 + jitter.get("continuum_decay_rel", 0.0)),
        }

    def expected(
        self, wt_percent: torch.Tensor, jitter: dict[str, float] | None = None
    ) -> torch.Tensor:
        """Noise-free spectra ``(N, C)`` summing to 1; ``wt_percent`` is ``(N, E)``."""
        fractions = wt_percent.to(self.device, torch.float32) / 100.0
        with torch.no_grad():
            spectra = self.simulator(fractions, self.overrides(jitter) or None)
        spectra = spectra.float().clamp_min(0.0)
        return spectra / spectra.sum(dim=1, keepdim=True).clamp_min(1e-30)


# -- simulated sets --------------------------------------------------------
@dataclass
class SimulatedSet:
    """Compositions and their noise-free expected spectra.

    Attributes
    ----------
    wt_percent
        ``(N, E)`` float32 compositions.
    expected
        ``(N, C)`` float32 spectra, each summing to 1.
    """

    wt_percent: torch.Tensor
    expected: torch.Tensor

    def __len__(self) -> int:
        return int(self.wt_percent.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> SimulatedSet:
        """The rows ``index``."""
        index_t = torch.as_tensor(index, dtype=torch.long)
        return SimulatedSet(self.wt_percent[index_t], self.expected[index_t])


def simulate_in_groups(
    generator: SpectrumGenerator,
    wt_percent: np.ndarray,
    jitter: JitterConfig | None,
    rng: np.random.Generator,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Simulate ``wt_percent`` group by group; yield ``(start, stop, expected)``.

    Each group of ``jitter.group_size`` spectra shares one instrument draw
    (``jitter=None``: the nominal instrument, in groups of 256).
    """
    group = jitter.group_size if jitter is not None else 256
    total = wt_percent.shape[0]
    for start in range(0, total, group):
        stop = min(start + group, total)
        draw = sample_jitter(jitter, rng) if jitter is not None else None
        block = torch.as_tensor(wt_percent[start:stop], dtype=torch.float32)
        yield start, stop, generator.expected(block, draw).cpu()


def simulate_set(
    generator: SpectrumGenerator,
    wt_percent: np.ndarray,
    jitter: JitterConfig | None,
    rng: np.random.Generator,
    progress: Callable[[int, int], Any] | None = None,
) -> SimulatedSet:
    """All expected spectra for ``wt_percent`` as one :class:`SimulatedSet`."""
    expected = torch.empty((wt_percent.shape[0], len(generator.energy_keV)), dtype=torch.float32)
    for start, stop, block in simulate_in_groups(generator, wt_percent, jitter, rng):
        expected[start:stop] = block
        if progress is not None:
            progress(stop, wt_percent.shape[0])
    return SimulatedSet(torch.as_tensor(wt_percent, dtype=torch.float32), expected)


def cache_key(config: TrainingConfig, generator: SpectrumGenerator) -> str:
    """A hash of everything that determines the simulated set of ``config``."""
    instrument = getattr(generator, "instrument", None)
    description = {
        "elements": list(config.elements),
        "sum_to_100": config.sum_to_100,
        "n_spectra": config.n_spectra,
        "absent_probability": config.absent_probability,
        "seed": config.seed,
        "jitter": config.jitter.model_dump(),
        "instrument": instrument.to_dict() if instrument is not None else None,
        "generator": type(generator).__name__,
        "generator_file": config.generator,
        "energy": [
            float(generator.energy_keV[0]),
            float(generator.energy_keV[-1]),
            len(generator.energy_keV),
        ],
    }
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_spectra_set(
    data: SimulatedSet, generator: SpectrumGenerator, attrs: dict[str, Any]
) -> SpectraSet:
    """A simulated set in the training-set file form (noise-free, each spectrum sums to 1)."""
    instrument = getattr(generator, "instrument", None)
    return SpectraSet(
        spectra=data.expected.numpy(),
        wt_percent=data.wt_percent.numpy(),
        elements=list(generator.elements),
        energy_keV=np.asarray(generator.energy_keV, dtype=np.float64),
        counts=np.ones(len(data)),
        noiseless=True,
        instrument=None if instrument is None else instrument_to_toml(instrument),
        attrs=attrs,
    )


def save_cache(
    path: str | os.PathLike[str], data: SimulatedSet, key: str, generator: SpectrumGenerator
) -> Path:
    """Write a simulated set as a training-set file (atomically, replacing an older cache)."""
    attrs = {"cache_key": key, "generator": "xrfquant train (cache)"}
    return write_spectra_set(path, as_spectra_set(data, generator, attrs), overwrite=True)


def load_cache(path: str | os.PathLike[str], key: str) -> SimulatedSet | None:
    """Read a cached set if ``path`` exists and was made with the same ``key``."""
    target = Path(path)
    if not target.exists():
        return None
    if str(read_spectra_attrs(target).get("cache_key", "")) != key:
        return None
    data = read_spectra_set(target)
    return SimulatedSet(torch.from_numpy(data.wt_percent), _normalised(data.spectra))


def _normalised(spectra: np.ndarray) -> torch.Tensor:
    expected = torch.as_tensor(np.asarray(spectra, dtype=np.float32))
    return expected / expected.sum(dim=1, keepdim=True).clamp_min(1e-30)


def load_training_set(path: str | os.PathLike[str], generator: SpectrumGenerator) -> SimulatedSet:
    """A noise-free training-set file as a :class:`SimulatedSet` for ``generator``'s model.

    Raises
    ------
    XRFQuantError
        If the file holds Poisson counts (noise is drawn fresh in training, so
        the set must be noise-free: ``xrfquant simulate --noiseless``), other
        elements, or another energy axis.
    """
    from napari_xrfquant.inference.resample import same_grid

    target = Path(path)
    data = read_spectra_set(target)
    if not data.noiseless:
        raise XRFQuantError(
            f"{target.name}: holds Poisson counts; training draws its own noise, so it needs "
            "noise-free spectra (xrfquant simulate --noiseless)"
        )
    if list(data.elements) != list(generator.elements):
        raise XRFQuantError(
            f"{target.name}: holds {', '.join(data.elements)}, the config asks for "
            f"{', '.join(generator.elements)}"
        )
    if not same_grid(data.energy_keV, np.asarray(generator.energy_keV)):
        raise XRFQuantError(
            f"{target.name}: its energy axis ({len(data.energy_keV)} channels) is not the "
            "instrument's"
        )
    return SimulatedSet(torch.from_numpy(data.wt_percent), _normalised(data.spectra))


# -- fixed evaluation batches ----------------------------------------------
def binned_fractions(
    expected: torch.Tensor, bin_counts: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Expected spectra -> binned fractions summing to 1 over the model's input region."""
    binned = bin_counts(expected)
    return binned / binned.sum(dim=1, keepdim=True).clamp_min(1e-30)


def noisy_counts(
    fractions: torch.Tensor,
    counts: float | torch.Tensor | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Binned counts around ``fractions``; ``counts=None`` means noise-free at 1e6.

    ``counts`` is a number (one level for all), or ``(N,)`` totals.
    """
    n = fractions.shape[0]
    if counts is None:
        return fractions * NOISELESS_COUNTS
    totals = (
        torch.as_tensor(counts, dtype=torch.float32).expand(n)
        if not isinstance(counts, torch.Tensor) or counts.ndim == 0
        else counts.float()
    )
    return torch.poisson(fractions * totals[:, None], generator=generator)


def log_uniform_counts(n: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` totals log-uniform in ``[low, high]``."""
    return np.exp(rng.uniform(math.log(low), math.log(high), size=n))


class PeakSpectra:
    """A fast analytic spectrum generator: Gaussian lines on a smooth continuum.

    No matrix effects, no scatter: each element contributes its lines in
    proportion to its mass fraction. Meant for tests and smoke runs of the
    training pipeline where the physics simulator would be too slow; it honours
    the detector calibration and resolution of ``instrument``.

    Parameters
    ----------
    elements
        Element symbols.
    line_energies_keV
        For each element, a list of ``(energy_keV, relative_intensity)``.
    instrument
        The instrument (energy grid, resolution, continuum level); None for the reference.
    """

    def __init__(
        self,
        elements: list[str],
        line_energies_keV: dict[str, list[tuple[float, float]]],
        instrument: Any = None,
    ) -> None:
        from napari_xrfquant.instrument import reference_instrument

        self.elements = list(elements)
        self.instrument = instrument if instrument is not None else reference_instrument()
        self.energy_keV = self.instrument.energy_axis_keV()
        self._lines = line_energies_keV

    def _basis(self, jitter: dict[str, float] | None) -> torch.Tensor:
        jitter = jitter or {}
        det = self.instrument.detector
        energy = (det.offset_keV + jitter.get("offset_keV", 0.0)) + det.gain_keV * (
            1.0 + jitter.get("gain_rel", 0.0)
        ) * np.arange(det.n_channels)
        rows = []
        for element in self.elements:
            row = np.zeros_like(energy)
            for line_keV, weight in self._lines[element]:
                fwhm = float(self.instrument.fwhm_keV(line_keV)) * (1 + jitter.get("noise_rel", 0))
                sigma = fwhm / 2.3548200450309493
                row += weight * np.exp(-0.5 * ((energy - line_keV) / sigma) ** 2)
            rows.append(row / row.sum())
        continuum = energy * np.exp(-energy / self.instrument.continuum.decay_keV)
        continuum = np.where(energy < self.instrument.max_beam_energy_keV, continuum, 0.0)
        level = self.instrument.continuum.fraction * 10 ** jitter.get("continuum_level_log10", 0)
        rows.append(level * continuum / continuum.sum())
        return torch.as_tensor(np.stack(rows), dtype=torch.float32)

    def expected(
        self, wt_percent: torch.Tensor, jitter: dict[str, float] | None = None
    ) -> torch.Tensor:
        """Noise-free spectra ``(N, C)`` summing to 1; ``wt_percent`` is ``(N, E)``."""
        basis = self._basis(jitter)
        fractions = wt_percent.float() / 100.0
        weights = torch.cat([fractions, torch.ones((fractions.shape[0], 1))], dim=1)
        spectra = weights @ basis
        return spectra / spectra.sum(dim=1, keepdim=True).clamp_min(1e-30)


#: Main lines (keV, relative intensity) of the reference elements for :class:`PeakSpectra`.
REFERENCE_PEAKS: dict[str, list[tuple[float, float]]] = {
    "Au": [(2.12, 0.3), (9.71, 1.0), (11.44, 0.7), (13.38, 0.12)],
    "Ag": [(2.98, 0.2), (22.16, 1.0), (24.94, 0.2)],
    "Cu": [(8.05, 1.0), (8.90, 0.13)],
    "Ni": [(7.48, 1.0), (8.26, 0.13)],
    "Zn": [(8.64, 1.0), (9.57, 0.13)],
}


def default_generator(config: TrainingConfig, device: str = "cpu") -> SpectrumGenerator:
    """The simulator ``config.simulator`` names ("physics" or "peaks"), for its elements and
    instrument; :func:`.generator.spectrum_source` adds the generator network."""
    if config.simulator == "peaks":
        unknown = [e for e in config.elements if e not in REFERENCE_PEAKS]
        if unknown:
            raise XRFQuantError(
                f"the 'peaks' simulator knows {', '.join(REFERENCE_PEAKS)} only, not {unknown[0]}"
            )
        return PeakSpectra(list(config.elements), REFERENCE_PEAKS, config.load_instrument())
    return SimulatorSpectra(list(config.elements), config.load_instrument(), device=device)


def refresh_rows(
    train: SimulatedSet,
    config: TrainingConfig,
    generator: SpectrumGenerator,
    rng: np.random.Generator,
) -> None:
    """Replace ``config.refresh_fraction`` of the training compositions by fresh simulations."""
    n = round(config.refresh_fraction * len(train))
    if n < 1:
        return
    rows = torch.as_tensor(rng.choice(len(train), size=n, replace=False))
    wt = sample_compositions(n, len(config.elements), config.absent_probability, rng)
    fresh = simulate_set(generator, wt, config.jitter, rng)
    train.wt_percent[rows] = fresh.wt_percent
    train.expected[rows] = fresh.expected
