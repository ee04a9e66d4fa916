"""The training loop, as a generator of small events, plus ``train()`` around it.

:class:`Trainer` turns a :class:`~napari_xrfquant.training.config.TrainingConfig`
into a trained :class:`~napari_xrfquant.models.architectures.QuantNet`:

1. compositions over the simplex, split 80/10/10 (seeded), and their noise-free
   expected spectra with instrument jitter (simulated once, optionally cached);
2. for every batch: the published augmentations, a log-uniform count level and
   Poisson noise drawn fresh, so the network never sees the same spectrum twice;
3. Adam with a cosine or one-cycle schedule, MAE (published) or Gaussian NLL
   loss, early stopping on the validation MAE, best-on-validation weights;
4. the 1-sigma calibration per count bin and element, fitted on the validation
   set, and test metrics per count level on the held-out test compositions.

:meth:`Trainer.events` yields :class:`SimulationProgress`, :class:`EpochEnd` and
finally :class:`TrainingFinished`; a napari ``thread_worker`` wraps it and can
cancel at every yield. :func:`train` is the plain blocking call.

Examples
--------
>>> from napari_xrfquant.training import TrainingConfig, train
>>> result = train(TrainingConfig(n_spectra=2000, epochs=3))      # doctest: +SKIP
>>> result.save("my-model")                                       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.models.architectures import (
    ArchitectureSpec,
    InputSpec,
    QuantNet,
    count_parameters,
    make_bin_edges,
)
from napari_xrfquant.models.bundle import (
    QuantModel,
    UncertaintyCalibration,
    build_metadata,
    model_from_network,
    save_bundle,
)
from napari_xrfquant.training.augment import augment_spectra, sample_log_uniform
from napari_xrfquant.training.config import TrainingConfig
from napari_xrfquant.training.data import (
    NOISELESS_COUNTS,
    SimulatedSet,
    SpectrumGenerator,
    cache_key,
    load_cache,
    sample_compositions,
    save_cache,
    simulate_set,
    split_indices,
)

#: Fraction of errors within 1 sigma for a Gaussian.
ONE_SIGMA_COVERAGE = 0.6826894921370859
#: Repeats of the validation set at fresh count levels for the sigma calibration.
CALIBRATION_REPEATS = 8
#: Relative drop of the validation MAE that counts as an improvement (early stopping).
MIN_RELATIVE_GAIN = 1e-4
#: Compositions simulated with the nominal instrument to train the fit-quality emulator.
DECODER_SET_SIZE = 50_000
#: Gradient norm clip: keeps the first steps of the NLL stable.
GRAD_CLIP_NORM = 10.0
#: Wall time between BatchProgress events: the latency of a cancel inside an epoch.
BATCH_PROGRESS_INTERVAL_S = 0.5
#: Spectra per forward pass during evaluation.
EVAL_BATCH = 8192


# ---------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------
@dataclass
class SimulationProgress:
    """Noise-free spectra simulated so far for one split (``stage``)."""

    stage: str
    done: int
    total: int


@dataclass
class EpochEnd:
    """One epoch finished.

    Attributes
    ----------
    epoch
        1-based epoch number.
    train_loss, val_loss
        Mean loss over the epoch's batches and on the validation set.
    val_mae
        Validation mean absolute error (wt%) of the mean prediction.
    lr
        Learning rate at the end of the epoch.
    seconds
        Wall time of the epoch.
    improved
        Whether this epoch gave the best validation MAE so far.
    decoder_loss
        Mean chi-square per count of the fit-quality emulator (0 without one);
        not part of ``train_loss``.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_mae: float
    lr: float
    seconds: float
    improved: bool = False
    decoder_loss: float = 0.0


@dataclass
class BatchProgress:
    """Steps done within the running epoch.

    Yielded about every :data:`BATCH_PROGRESS_INTERVAL_S` seconds of training so
    that a consumer driving the generator (a GUI worker, :func:`train` with
    ``should_stop``) can cancel within a second, not only at epoch ends.
    """

    epoch: int
    step: int
    steps: int


@dataclass
class TrainingFinished:
    """The run ended; ``result`` holds the best model, its calibration and metrics."""

    result: TrainResult


TrainingEvent = SimulationProgress | BatchProgress | EpochEnd | TrainingFinished


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    model
        The best-on-validation network with calibration, as a
        :class:`~napari_xrfquant.models.bundle.QuantModel` (``model.metadata``
        is the ``model.json`` content, including test metrics).
    history
        One :class:`EpochEnd` per epoch run.
    best_epoch
        Epoch of the kept weights.
    stopped_early, cancelled
        Why the loop ended before ``config.epochs``.
    config
        The configuration of the run.
    """

    model: QuantModel
    history: list[EpochEnd]
    best_epoch: int
    stopped_early: bool
    cancelled: bool
    config: TrainingConfig

    @property
    def metrics(self) -> dict[str, Any]:
        """Test metrics (``model.json["metrics"]``)."""
        return self.model.metadata.get("metrics", {})

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write the model bundle (``model.safetensors`` + ``model.json``) to ``directory``."""
        return save_bundle(directory, self.model.network, self.model.metadata, overwrite)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def resolve_training_device(device: str) -> str:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA name needs a GPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise XRFQuantError(f"device {device!r}: no CUDA GPU is available (use 'cpu')")
    return device


def default_generator(config: TrainingConfig, device: str = "cpu") -> SpectrumGenerator:
    """The spectrum generator ``config.simulator`` names, for its elements and instrument."""
    from napari_xrfquant.training.data import REFERENCE_PEAKS, PeakSpectra, SimulatorSpectra

    if config.simulator == "peaks":
        unknown = [e for e in config.elements if e not in REFERENCE_PEAKS]
        if unknown:
            raise XRFQuantError(
                f"the 'peaks' simulator knows {', '.join(REFERENCE_PEAKS)} only, not {unknown[0]}"
            )
        return PeakSpectra(list(config.elements), REFERENCE_PEAKS, config.load_instrument())

    return SimulatorSpectra(list(config.elements), config.load_instrument(), device=device)


def gaussian_nll(mean: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-entry Gaussian negative log-likelihood (without the constant)."""
    return torch.log(sigma) + 0.5 * ((target - mean) / sigma) ** 2


def loss_terms(
    loss: str, mean: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Scalar training loss for one batch.

    ``"mae"``: the published mean absolute error for the mean, plus a Gaussian
    NLL on the detached mean that teaches the sigma head without pulling the
    mean away from the MAE optimum. ``"nll"``: Gaussian NLL for both.
    ``"beta-nll"``: NLL weighted by ``sigma**1`` (detached), which keeps the
    mean from ignoring the hard, high-variance spectra (Seitzer et al. 2022).
    """
    if loss == "mae":
        return (mean - target).abs().mean() + gaussian_nll(mean.detach(), sigma, target).mean()
    if loss == "nll":
        return gaussian_nll(mean, sigma, target).mean()
    weight = sigma.detach()
    return (weight * gaussian_nll(mean, sigma, target)).mean()


def decoder_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Chi-square per count between expected binned fractions: what fit quality sees."""
    return ((predicted - target) ** 2 / (target + 1e-6)).sum(dim=1).mean()


def input_spec_for(config: TrainingConfig, energy_keV: np.ndarray) -> InputSpec:
    """The (not yet standardised) input transform for ``config`` on this energy grid."""
    segments = [(float(a), float(b), int(w)) for a, b, w in config.input.segments]
    edges = make_bin_edges(energy_keV, segments)
    return InputSpec(bin_edges_channel=edges, scale=config.input.scale)


def architecture_for(config: TrainingConfig) -> ArchitectureSpec:
    """The :class:`ArchitectureSpec` for ``config.model``."""
    m = config.model
    return ArchitectureSpec(
        type=m.type,
        hidden_layers=m.hidden_layers,
        neurons=m.neurons,
        conv_channels=list(m.conv_channels),
        kernel_size=m.kernel_size,
        decoder_layers=m.decoder_layers,
        decoder_neurons=m.decoder_neurons,
    )


def fit_sigma_calibration(
    abs_error: np.ndarray,
    sigma: np.ndarray,
    log10_total: np.ndarray,
    edges: list[float],
) -> UncertaintyCalibration:
    """Per count bin and element, the factor that puts 68.3 % of errors within 1 sigma.

    The factor is the 68.27th percentile of ``|error| / sigma`` in each bin; bins
    with fewer than 20 spectra use the factor of all spectra of that element.
    """
    ratio = abs_error / np.maximum(sigma, 1e-12)
    overall = np.quantile(ratio, ONE_SIGMA_COVERAGE, axis=0)
    n_bins = len(edges) - 1
    table = np.empty((n_bins, ratio.shape[1]), dtype=np.float64)
    index = np.searchsorted(np.asarray(edges[1:-1]), log10_total, side="right")
    for b in range(n_bins):
        rows = ratio[index == b]
        table[b] = np.quantile(rows, ONE_SIGMA_COVERAGE, axis=0) if len(rows) >= 20 else overall
    table = np.clip(table, 1e-3, 1e3)
    return UncertaintyCalibration(log10_counts_edges=list(edges), scale=table.tolist())


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
def predict_fractions(
    network: QuantNet,
    binned_fractions: torch.Tensor,
    counts: torch.Tensor | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, raw sigma and the binned counts for noisy (or noise-free) versions of spectra.

    ``counts`` is ``(N,)`` totals, or None for noise-free spectra at
    :data:`~napari_xrfquant.training.data.NOISELESS_COUNTS`.
    """
    means, sigmas, binned_all = [], [], []
    device = next(network.parameters()).device
    with torch.inference_mode():
        for start in range(0, binned_fractions.shape[0], EVAL_BATCH):
            block = binned_fractions[start : start + EVAL_BATCH].to(device)
            if counts is None:
                binned = block * NOISELESS_COUNTS
            else:
                totals = counts[start : start + EVAL_BATCH].to(device)
                binned = torch.poisson(block * totals[:, None], generator=generator)
            mean, sigma = network.forward_binned(binned)
            means.append(mean.cpu())
            sigmas.append(sigma.cpu())
            binned_all.append(binned.cpu())
    return torch.cat(means), torch.cat(sigmas), torch.cat(binned_all)


def evaluate_model(
    model: QuantModel,
    wt_percent: torch.Tensor,
    binned_fractions: torch.Tensor,
    count_levels: list[float],
    seed: int = 12345,
) -> dict[str, Any]:
    """Test metrics of ``model`` on held-out spectra: MAE and 1-sigma coverage per count level.

    Parameters
    ----------
    model
        The model (with its sigma calibration).
    wt_percent
        ``(N, E)`` true compositions.
    binned_fractions
        ``(N, K)`` noise-free expected spectra in the model's input bins, summing to 1.
    count_levels
        Total counts per spectrum at which Poisson noise is drawn; the
        noise-free case is always added under the key ``"noiseless"``.
    seed
        Seeds the Poisson noise.

    Returns
    -------
    dict
        ``{"n_spectra", "levels": {label: {"counts", "mae_wt", "mae_per_element",
        "rmse_wt", "coverage_1sigma", "coverage_per_element", "mean_sigma_wt"}}}``;
        labels are ``"noiseless"`` and e.g. ``"1e+03"``.
    """
    generator = torch.Generator().manual_seed(seed)
    elements = model.elements
    levels: dict[str, Any] = {}
    network = model.network
    for counts in [None, *count_levels]:
        totals = None if counts is None else torch.full((wt_percent.shape[0],), float(counts))
        mean, raw_sigma, binned = predict_fractions(network, binned_fractions, totals, generator)
        log10_total = torch.log10(binned.sum(dim=1).clamp_min(1.0)).numpy()
        factors = model.calibration.factors(log10_total, len(elements))
        sigma = raw_sigma.numpy() * factors
        error = mean.numpy() - wt_percent.numpy()
        inside = np.abs(error) <= sigma
        label = "noiseless" if counts is None else f"{counts:.0e}"
        levels[label] = {
            "counts": None if counts is None else float(counts),
            "mae_wt": float(np.abs(error).mean()),
            "mae_per_element": dict(
                zip(elements, np.abs(error).mean(axis=0).tolist(), strict=True)
            ),
            "rmse_wt": float(np.sqrt((error**2).mean())),
            "coverage_1sigma": float(inside.mean()),
            "coverage_per_element": dict(zip(elements, inside.mean(axis=0).tolist(), strict=True)),
            "mean_sigma_wt": float(sigma.mean()),
        }
    return {"n_spectra": int(wt_percent.shape[0]), "levels": levels}


# ---------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------
class Trainer:
    """One training run of ``config``; iterate :meth:`events` to run it.

    Parameters
    ----------
    config
        What to train.
    generator
        Spectrum generator (``elements``, ``energy_keV``, ``expected(wt, jitter)``);
        None for the physics simulator of ``config``'s instrument.

    Notes
    -----
    Between events the trainer holds its state, so :meth:`current_result` can
    build a complete, calibrated model from the best weights so far (the
    background script saves it as a bundle whenever validation improves).
    """

    def __init__(self, config: TrainingConfig, generator: SpectrumGenerator | None = None):
        self.config = config
        self.device = resolve_training_device(config.device)
        self._generator = generator
        self.history: list[EpochEnd] = []
        self.network: QuantNet | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0
        self.best_val_mae = math.inf
        self._sets: dict[str, SimulatedSet] = {}

    # -- data ---------------------------------------------------------------
    @property
    def generator(self) -> SpectrumGenerator:
        """The spectrum generator (built on first use)."""
        if self._generator is None:
            self._generator = default_generator(self.config)
        return self._generator

    def _simulate(self) -> Generator[SimulationProgress, None, None]:
        config = self.config
        gen = self.generator
        if list(gen.elements) != list(config.elements):
            raise XRFQuantError(
                f"the spectrum generator simulates {gen.elements}, the config asks for "
                f"{config.elements}"
            )
        rng = np.random.default_rng(config.seed)
        self._rng = np.random.default_rng(config.seed + 6)  # fresh compositions later
        wt = sample_compositions(
            config.n_spectra, len(config.elements), config.absent_probability, rng
        )
        key = cache_key(config, gen)
        cached = load_cache(config.cache, key) if config.cache else None
        if cached is None:
            full = None
            for start in range(0, config.n_spectra, 2048):
                stop = min(start + 2048, config.n_spectra)
                part = simulate_set(gen, wt[start:stop], config.jitter, rng)
                full = (
                    part
                    if full is None
                    else SimulatedSet(
                        torch.cat([full.wt_percent, part.wt_percent]),
                        torch.cat([full.expected, part.expected]),
                    )
                )
                yield SimulationProgress("simulate", stop, config.n_spectra)
            assert full is not None
            if config.cache:
                save_cache(config.cache, full, key)
            cached = full
        train_idx, val_idx, test_idx = split_indices(config.n_spectra, config.seed)
        self._sets = {
            "train": cached.subset(train_idx),
            "validation": cached.subset(val_idx),
            "test": cached.subset(test_idx),
        }

    # -- network ------------------------------------------------------------
    def _build_network(self) -> QuantNet:
        config = self.config
        spec = input_spec_for(config, self.generator.energy_keV)
        probe = QuantNet(spec, architecture_for(config), len(config.elements), config.sum_to_100)
        # Standardise features with statistics of noisy training spectra at
        # log-uniform counts, as the network will see them.
        g = torch.Generator().manual_seed(config.seed + 1)
        train = self._sets["train"]
        rows = torch.randperm(len(train), generator=g)[:4096]
        first, stop = spec.channel_range
        augmented = augment_spectra(train.expected[rows], config.augment, g, first, stop)
        fractions = self._binned_fractions(probe, augmented)
        totals = sample_log_uniform(len(rows), config.counts_min, config.counts_max, g)
        binned = torch.poisson(fractions * totals[:, None], generator=g)
        features, log10_total = probe.features.from_binned(binned)
        std = features.std(dim=0)
        # A bin that is almost always empty (e.g. above the beam energy) must not
        # turn the rare count into a huge input: floor its spread.
        std = std.clamp_min(0.1 * float(std.median()) + 1e-6)
        spec.feature_mean = features.mean(dim=0).tolist()
        spec.feature_std = std.tolist()
        spec.log10_counts_center = 0.5 * (
            math.log10(config.counts_min) + math.log10(config.counts_max)
        )
        spec.log10_counts_scale = max(
            0.5 * (math.log10(config.counts_max) - math.log10(config.counts_min)), 0.1
        )
        del log10_total
        torch.manual_seed(config.seed)
        network = QuantNet(spec, architecture_for(config), len(config.elements), config.sum_to_100)
        return network.to(self.device)

    @staticmethod
    def _binned_fractions(network: QuantNet, expected: torch.Tensor) -> torch.Tensor:
        binned = network.features.bin_counts(expected.to(network.features.edges.device))
        return binned / binned.sum(dim=1, keepdim=True).clamp_min(1e-30)

    def _training_batch(
        self, index: torch.Tensor, g: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Binned noisy counts and true wt% of one batch."""
        config = self.config
        assert self.network is not None
        train = self._sets["train"]
        expected = train.expected[index].to(self.device)
        first, stop = self.network.input_spec.channel_range
        augmented = augment_spectra(expected, config.augment, g, first, stop)
        fractions = self._binned_fractions(self.network, augmented)
        n = index.shape[0]
        totals = sample_log_uniform(n, config.counts_min, config.counts_max, g, self.device)
        noiseless = torch.rand(n, generator=g, device=self.device) < config.noiseless_fraction
        totals = torch.where(noiseless, torch.full_like(totals, NOISELESS_COUNTS), totals)
        counts = torch.poisson(fractions * totals[:, None], generator=g)
        counts = torch.where(noiseless[:, None], fractions * totals[:, None], counts)
        return counts, train.wt_percent[index].to(self.device)

    def _validation_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed noisy validation spectra (seeded) and their compositions."""
        if "validation_batch" not in self.__dict__:
            config = self.config
            assert self.network is not None
            g = torch.Generator().manual_seed(config.seed + 2)
            val = self._sets["validation"]
            fractions = self._binned_fractions(self.network, val.expected).cpu()
            totals = sample_log_uniform(len(val), config.counts_min, config.counts_max, g)
            counts = torch.poisson(fractions * totals[:, None], generator=g)
            self.validation_batch = (counts, val.wt_percent)
        return self.validation_batch

    def _validate(self) -> tuple[float, float]:
        assert self.network is not None
        counts, wt = self._validation_batch()
        self.network.eval()
        losses, errors = [], []
        with torch.inference_mode():
            for start in range(0, counts.shape[0], EVAL_BATCH):
                block = counts[start : start + EVAL_BATCH].to(self.device)
                target = wt[start : start + EVAL_BATCH].to(self.device)
                mean, sigma = self.network.forward_binned(block)
                losses.append(float(loss_terms(self.config.loss, mean, sigma, target)) * len(block))
                errors.append((mean - target).abs().sum().item())
        n = counts.shape[0]
        return sum(losses) / n, sum(errors) / (n * wt.shape[1])

    def _optimiser(self, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Any]:
        config = self.config
        assert self.network is not None
        optimiser = torch.optim.Adam(
            self.network.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        total = max(config.epochs * steps_per_epoch, 1)
        if config.schedule == "cosine":
            # Reads config.epochs at every step, so stretching a running schedule
            # (as the bundled-model script does once it knows its pace) stays smooth.
            def cosine(step: int) -> float:
                progress = min(step / max(config.epochs * steps_per_epoch, 1), 1.0)
                return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, cosine)
        elif config.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimiser, max_lr=config.lr, total_steps=total, pct_start=0.15
            )
        else:
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
        return optimiser, scheduler

    # -- the loop -----------------------------------------------------------
    def events(self) -> Generator[TrainingEvent, None, TrainResult]:
        """Run the training, yielding events; the return value is the :class:`TrainResult`.

        Closing the generator (or breaking out of the loop) cancels the run;
        :meth:`current_result` still gives the best model so far.
        """
        config = self.config
        yield from self._simulate()
        self.network = self._build_network()
        if self.network.decoder is not None:
            yield from self._simulate_decoder_set()
        n_train = len(self._sets["train"])
        batch = min(config.batch_size, n_train)
        steps = config.steps_per_epoch or max(n_train // batch, 1)
        optimiser, scheduler = self._optimiser(steps)
        self.optimiser, self.scheduler = optimiser, scheduler
        g = torch.Generator(device=self.device).manual_seed(config.seed + 3)
        g_cpu = torch.Generator().manual_seed(config.seed + 4)
        epochs_without_gain = 0
        stopped_early = False
        epoch = 0
        # config.epochs is read every epoch: a caller may stretch a running schedule
        while epoch < config.epochs:
            epoch += 1
            started = time.perf_counter()
            if epoch > 1 and config.refresh_fraction > 0:
                self._refresh_training_set()
            self.network.train()
            order = torch.randperm(n_train, generator=g_cpu)
            total_loss = total_decoder = 0.0
            last_report = time.perf_counter()
            for step in range(steps):
                if time.perf_counter() - last_report > BATCH_PROGRESS_INTERVAL_S:
                    last_report = time.perf_counter()
                    yield BatchProgress(epoch=epoch, step=step, steps=steps)
                start = (step * batch) % n_train
                index = order[start : start + batch]
                if index.shape[0] < batch:  # wrap around when steps exceed one pass
                    index = torch.cat([index, order[: batch - index.shape[0]]])
                counts, wt = self._training_batch(index, g)
                mean, sigma = self.network.forward_binned(counts)
                loss = loss_terms(config.loss, mean, sigma, wt)
                total_loss += loss.item()
                if self.network.decoder is not None:
                    target_wt, target = self._decoder_batch(batch, g_cpu)
                    emulator = decoder_loss(self.network.decoder(target_wt), target)
                    total_decoder += emulator.item()
                    loss = loss + emulator
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                # NLL gradients explode while sigma is far too small for the error
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), GRAD_CLIP_NORM)
                optimiser.step()
                scheduler.step()
            val_loss, val_mae = self._validate()
            # a change below MIN_RELATIVE_GAIN is noise, not progress
            improved = val_mae < self.best_val_mae * (1.0 - MIN_RELATIVE_GAIN)
            if improved:
                self.best_val_mae = val_mae
                self.best_epoch = epoch
                self.best_state = copy.deepcopy(self.network.state_dict())
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
            event = EpochEnd(
                epoch=epoch,
                train_loss=total_loss / steps,
                val_loss=val_loss,
                val_mae=val_mae,
                lr=float(optimiser.param_groups[0]["lr"]),
                seconds=time.perf_counter() - started,
                improved=improved,
                decoder_loss=total_decoder / steps,
            )
            self.history.append(event)
            yield event
            if epochs_without_gain >= config.patience:
                stopped_early = True
                break
        result = self.current_result(stopped_early=stopped_early)
        yield TrainingFinished(result)
        return result

    def _simulate_decoder_set(self) -> Generator[SimulationProgress, None, None]:
        """Nominal-instrument spectra (binned) for the fit-quality emulator.

        The emulator must reproduce the nominal instrument: trained on jittered
        spectra it would learn their blurred average and report misfit for
        perfectly nominal data.
        """
        assert self.network is not None
        train = self._sets["train"]
        n = min(len(train), DECODER_SET_SIZE)
        rng = np.random.default_rng(self.config.seed + 7)
        wt, fractions = [], []
        for start in range(0, n, 4096):
            part = simulate_set(
                self.generator, train.wt_percent[start : start + 4096].numpy(), None, rng
            )
            wt.append(part.wt_percent)
            fractions.append(self._binned_fractions(self.network, part.expected).cpu())
            yield SimulationProgress("nominal", min(start + 4096, n), n)
        self._decoder_set = (torch.cat(wt), torch.cat(fractions))

    def _decoder_batch(self, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        wt, fractions = self._decoder_set
        rows = torch.randint(0, wt.shape[0], (size,), generator=g)
        return wt[rows].to(self.device), fractions[rows].to(self.device)

    def _refresh_training_set(self) -> None:
        """Replace ``refresh_fraction`` of the training compositions by fresh simulations."""
        config = self.config
        train = self._sets["train"]
        n = round(config.refresh_fraction * len(train))
        if n < 1:
            return
        rows = torch.as_tensor(self._rng.choice(len(train), size=n, replace=False))
        wt = sample_compositions(n, len(config.elements), config.absent_probability, self._rng)
        fresh = simulate_set(self.generator, wt, config.jitter, self._rng)
        train.wt_percent[rows] = fresh.wt_percent
        train.expected[rows] = fresh.expected

    def current_result(
        self, stopped_early: bool = False, cancelled: bool = False, with_metrics: bool = True
    ) -> TrainResult:
        """A calibrated, evaluated model from the best weights so far.

        Raises
        ------
        XRFQuantError
            If no epoch has finished yet.
        """
        if self.network is None or self.best_state is None:
            raise XRFQuantError("training stopped before the first epoch finished; no model")
        config = self.config
        network = copy.deepcopy(self.network)
        network.load_state_dict(self.best_state)
        network.eval()
        instrument = getattr(self.generator, "instrument", None) or config.load_instrument()
        metadata = build_metadata(
            name=config.name,
            elements=config.elements,
            sum_to_100=config.sum_to_100,
            instrument=instrument,
            network=network,
            training=self.training_description(),
        )
        calibration = self._calibrate(network)
        metadata["uncertainty"] = calibration.to_dict()
        model = model_from_network(network, metadata)
        if with_metrics:
            test = self._sets["test"]
            fractions = self._binned_fractions(network, test.expected).cpu()
            metrics = evaluate_model(model, test.wt_percent, fractions, list(config.eval_counts))
            metrics["description"] = (
                "held-out test compositions of the training simulator (with instrument "
                "jitter); Poisson noise at each total-counts level"
            )
            metadata["metrics"] = {"test": metrics}
        return TrainResult(
            model=model,
            history=list(self.history),
            best_epoch=self.best_epoch,
            stopped_early=stopped_early,
            cancelled=cancelled,
            config=config,
        )

    def _calibrate(self, network: QuantNet) -> UncertaintyCalibration:
        config = self.config
        val = self._sets["validation"]
        fractions = self._binned_fractions(network, val.expected).cpu()
        g = torch.Generator().manual_seed(config.seed + 5)
        errors, sigmas, logs = [], [], []
        for _ in range(CALIBRATION_REPEATS):
            totals = sample_log_uniform(len(val), config.counts_min, config.counts_max, g)
            mean, sigma, binned = predict_fractions(network, fractions, totals, g)
            errors.append((mean - val.wt_percent).abs().numpy())
            sigmas.append(sigma.numpy())
            logs.append(torch.log10(binned.sum(dim=1).clamp_min(1.0)).numpy())
        return fit_sigma_calibration(
            np.concatenate(errors),
            np.concatenate(sigmas),
            np.concatenate(logs),
            list(config.calibration_log10_counts_edges),
        )

    def training_description(self) -> dict[str, Any]:
        """``model.json["training"]``: how the training set was made and the run went."""
        config = self.config
        return {
            "config": config.to_dict(),
            "generator": type(self.generator).__name__,
            "splits": {name: len(s) for name, s in self._sets.items()},
            "epochs_run": len(self.history),
            "best_epoch": self.best_epoch,
            "best_val_mae_wt": None if math.isinf(self.best_val_mae) else self.best_val_mae,
            "parameters": None if self.network is None else count_parameters(self.network),
            "device": self.device,
            "seconds": float(sum(e.seconds for e in self.history)),
        }


def iter_train(
    config: TrainingConfig, generator: SpectrumGenerator | None = None
) -> Generator[TrainingEvent, None, TrainResult]:
    """Training as a generator of events (see :meth:`Trainer.events`)."""
    return Trainer(config, generator).events()


def train(
    config: TrainingConfig,
    progress: Callable[[TrainingEvent], Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    generator: SpectrumGenerator | None = None,
) -> TrainResult:
    """Train a model for ``config`` and return the best-on-validation result.

    Parameters
    ----------
    config
        The run's settings.
    progress
        Called with every event (:class:`SimulationProgress`, :class:`EpochEnd`,
        :class:`TrainingFinished`).
    should_stop
        Polled after every event; returning True cancels the run, which then
        returns the best model so far (``result.cancelled``).
    generator
        Spectrum generator; None for the physics simulator.

    Returns
    -------
    TrainResult
        ``result.save(directory)`` writes the bundle.
    """
    trainer = Trainer(config, generator)
    events = trainer.events()
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(event)
        if should_stop is not None and should_stop():
            events.close()
            return trainer.current_result(cancelled=True)
