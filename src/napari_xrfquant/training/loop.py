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

:meth:`Trainer.events` yields :class:`~napari_xrfquant.jobs.Progress`,
:class:`EpochEnd` and finally :class:`TrainingFinished` (:mod:`.events`): a job
of :mod:`napari_xrfquant.jobs`, which a cancel at any yield ends with the best
model so far. :func:`train` blocks:
``train(TrainingConfig(n_spectra=2000, epochs=3)).save("my-model")``. With
``config.axs`` a reconstruction loss on unlabelled spectra joins (:mod:`.axs`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.devices import resolve_device
from napari_xrfquant.jobs import Cancelled, CancelToken, Progress, run
from napari_xrfquant.models.architectures import (
    QuantNet,
    count_parameters,
)
from napari_xrfquant.models.bundle import build_metadata, model_from_network
from napari_xrfquant.models.features import NOISELESS_COUNTS
from napari_xrfquant.models.metadata import energy_dict
from napari_xrfquant.training.augment import augment_spectra, sample_log_uniform
from napari_xrfquant.training.axs import Reconstruction, reconstruction_for
from napari_xrfquant.training.budget import TimeBudget, pace_to_budget, simulate_or_cached
from napari_xrfquant.training.config import TrainingConfig
from napari_xrfquant.training.datasets import (
    SimulatedSet,
    SpectrumGenerator,
    load_training_set,
    refresh_rows,
    seed_streams,
    split_indices,
)
from napari_xrfquant.training.emulator import emulator_batch, simulate_nominal_set
from napari_xrfquant.training.evaluation import (
    EVAL_BATCH,
    binned_fractions,
    calibrate_sigma,
    evaluate_model,
)
from napari_xrfquant.training.events import EpochEnd, TrainingEvent, TrainingFinished, TrainResult
from napari_xrfquant.training.generator import spectrum_source
from napari_xrfquant.training.losses import decoder_loss, loss_terms
from napari_xrfquant.training.network import (
    input_spec_for,
    network_to_fine_tune,
    optimiser_for,
)

#: Relative drop of the validation MAE that counts as an improvement (early stopping).
MIN_RELATIVE_GAIN = 1e-4
#: Gradient norm clip: keeps the first steps of the NLL stable.
GRAD_CLIP_NORM = 10.0
#: Wall time between "epoch" Progress events: the latency of a cancel inside an epoch.
BATCH_PROGRESS_INTERVAL_S = 0.5


class Trainer:
    """One training run of ``config``; iterate :meth:`events` to run it.

    Parameters
    ----------
    config
        What to train.
    generator
        Spectrum generator (``elements``, ``energy_keV``, ``expected(wt, jitter)``);
        None for the physics simulator of ``config``'s instrument.
    unlabelled
        AXS only: ``(counts (H, W, C), energy_keV)`` of the unlabelled cube,
        instead of the file ``config.axs.unlabelled``.

    Between events the trainer holds its state, so :meth:`current_result` can build
    a complete, calibrated model from the best weights so far.
    """

    def __init__(
        self,
        config: TrainingConfig,
        generator: SpectrumGenerator | None = None,
        unlabelled: tuple[Any, np.ndarray] | None = None,
    ):
        self.config = config
        self._unlabelled = unlabelled
        self.axs: Reconstruction | None = None
        self.best_axs: dict[str, Any] | None = None
        self.device = resolve_device(config.device)
        self.seeds = seed_streams(config.seed)
        self._generator = generator
        self.history: list[EpochEnd] = []
        self.network: QuantNet | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0
        self.best_val_mae = math.inf
        self._sets: dict[str, SimulatedSet] = {}
        self.init_model_id: str | None = None

    # -- data ---------------------------------------------------------------
    @property
    def generator(self) -> SpectrumGenerator:
        """The spectrum generator (built on first use)."""
        if self._generator is None:
            self._generator = spectrum_source(self.config)
        return self._generator

    def prepare_data(self, budget: TimeBudget | None = None) -> Generator[Progress, None, None]:
        """Simulate (or load from the cache) and split the data set; the first stage
        (its simulation takes at most a share of ``budget``: :mod:`.budget`)."""
        config = self.config
        gen = self.generator
        if list(gen.elements) != list(config.elements):
            raise XRFQuantError(
                f"the spectrum generator simulates {gen.elements}, the config asks for "
                f"{config.elements}"
            )
        rng = np.random.default_rng(self.seeds["compositions"])
        self._rng = np.random.default_rng(self.seeds["refresh"])  # fresh compositions later
        if config.training_set:
            full = load_training_set(str(config.resolve(config.training_set)), gen)
            yield Progress(len(full), len(full), "simulate")
        else:
            full = yield from simulate_or_cached(config, gen, rng, budget)
        train_idx, val_idx, test_idx = split_indices(len(full), self.seeds["split"])
        self._sets = {
            "train": full.subset(train_idx),
            "validation": full.subset(val_idx),
            "test": full.subset(test_idx),
        }

    # -- network ------------------------------------------------------------
    def _build_network(self) -> QuantNet:
        config = self.config
        if config.init_from:
            network, self.init_model_id = network_to_fine_tune(
                config, len(self.generator.energy_keV)
            )
            return network.to(self.device)
        spec = input_spec_for(config, self.generator.energy_keV)
        probe = QuantNet(spec, config.model, len(config.elements), config.sum_to_100)
        # Standardise features with statistics of noisy training spectra at
        # log-uniform counts, as the network will see them.
        g = torch.Generator().manual_seed(self.seeds["standardise"])
        train = self._sets["train"]
        rows = torch.randperm(len(train), generator=g)[:4096]
        first, stop = spec.channel_range
        augmented = augment_spectra(train.expected[rows], config.augment, g, first, stop)
        fractions = binned_fractions(probe, augmented)
        totals = sample_log_uniform(len(rows), config.counts_min, config.counts_max, g)
        binned = torch.poisson(fractions * totals[:, None], generator=g)
        features, _log10_total = probe.features.from_binned(binned)
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
        torch.manual_seed(self.seeds["weights"])
        network = QuantNet(spec, config.model, len(config.elements), config.sum_to_100)
        return network.to(self.device)

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
        fractions = binned_fractions(self.network, augmented)
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
            g = torch.Generator().manual_seed(self.seeds["validation"])
            val = self._sets["validation"]
            fractions = binned_fractions(self.network, val.expected).cpu()
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

    def _instrument(self) -> Any:
        return getattr(self.generator, "instrument", None) or self.config.load_instrument()

    # -- the loop -----------------------------------------------------------
    def events(self) -> Generator[TrainingEvent, None, TrainResult]:
        """Run the training, yielding events; the return value is the :class:`TrainResult`.

        A :class:`~napari_xrfquant.jobs.Cancelled` at a yield (a job's cancel)
        ends the run with the best model so far (``result.cancelled``); before
        the first epoch has finished it ends the run with nothing.
        """
        try:
            return (yield from self._run())
        except Cancelled:
            if self.best_state is None:
                raise
            return self.current_result(cancelled=True)

    def _run(self) -> Generator[TrainingEvent, None, TrainResult]:
        config = self.config
        budget = TimeBudget.of(config)  # max_minutes: the whole run, simulation included
        yield from self.prepare_data(budget)
        self.network = self._build_network()
        self.axs = reconstruction_for(
            config,
            self._instrument(),
            self.generator.energy_keV,
            self.device,
            self.seeds["axs"],
            self._unlabelled,
        )
        if self.network.decoder is not None:
            self._decoder_set = yield from simulate_nominal_set(
                self.generator, self._sets["train"].wt_percent, self.network, self.seeds["nominal"]
            )
        n_train = len(self._sets["train"])
        batch = min(config.batch_size, n_train)
        steps = config.steps_per_epoch or max(n_train // batch, 1)
        optimiser, scheduler = optimiser_for(self.network, config, steps)
        self.optimiser, self.scheduler = optimiser, scheduler
        g = torch.Generator(device=self.device).manual_seed(self.seeds["batches"])
        g_cpu = torch.Generator().manual_seed(self.seeds["order"])
        epochs_without_gain = 0
        stopped_early = False
        epoch = 0
        # config.epochs is read every epoch: a caller may stretch a running schedule
        while epoch < config.epochs:
            epoch += 1
            started = time.perf_counter()
            if epoch > 1 and config.refresh_fraction > 0:
                refresh_rows(self._sets["train"], self.config, self.generator, self._rng)
            if epoch > 1 and self.axs is not None:
                self.axs.follow(self._sets, self._rng)
                self.__dict__.pop("validation_batch", None)  # the validation spectra changed
            self.network.train()
            order = torch.randperm(n_train, generator=g_cpu)
            total_loss = total_decoder = total_reconstruction = 0.0
            last_report = time.perf_counter()
            steps_run = steps
            for step in range(steps):
                if time.perf_counter() - last_report > BATCH_PROGRESS_INTERVAL_S:
                    last_report = time.perf_counter()
                    yield Progress(step, steps, "epoch", epoch=epoch)
                    if step and budget.left() < 0:
                        steps_run = step  # the budget ends inside this epoch: validate it
                        break
                start = (step * batch) % n_train
                index = order[start : start + batch]
                if index.shape[0] < batch:  # wrap around when steps exceed one pass
                    index = torch.cat([index, order[: batch - index.shape[0]]])
                counts, wt = self._training_batch(index, g)
                mean, sigma = self.network.forward_binned(counts)
                loss = loss_terms(config.loss, mean, sigma, wt)
                if self.axs is not None and config.axs is not None:
                    reconstruction = self.axs.loss(self.network)
                    total_reconstruction += reconstruction.item()
                    loss = loss + config.axs.beta * reconstruction
                total_loss += loss.item()
                if self.network.decoder is not None:
                    target_wt, target = emulator_batch(self._decoder_set, batch, g_cpu, self.device)
                    emulator = decoder_loss(self.network.decoder(target_wt), target)
                    total_decoder += emulator.item()
                    loss = loss + emulator
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                # NLL gradients explode while sigma is far too small for the error
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), GRAD_CLIP_NORM)
                optimiser.step()
                scheduler.step()
                if self.axs is not None:
                    self.axs.step()
            val_loss, val_mae = self._validate()
            val_reconstruction = 0.0 if self.axs is None else self.axs.held_out_loss(self.network)
            # with AXS the best epoch also explains the held-out measured spectra
            score = val_mae + (config.axs.beta * val_reconstruction if config.axs else 0.0)
            # a change below MIN_RELATIVE_GAIN is noise, not progress
            improved = score < self.best_val_mae * (1.0 - MIN_RELATIVE_GAIN)
            if improved:
                self.best_val_mae = score
                self.best_axs = None if self.axs is None else self.axs.state()
                self.best_epoch = epoch
                self.best_state = copy.deepcopy(self.network.state_dict())
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
            event = EpochEnd(
                epoch=epoch,
                train_loss=total_loss / steps_run,
                val_loss=val_loss,
                val_mae=val_mae,
                lr=float(optimiser.param_groups[0]["lr"]),
                seconds=time.perf_counter() - started,
                improved=improved,
                decoder_loss=total_decoder / steps_run,
                reconstruction_loss=total_reconstruction / steps_run,
                val_reconstruction=val_reconstruction,
            )
            self.history.append(event)
            yield event
            if epochs_without_gain >= config.patience:
                stopped_early = True
                break
            if budget.left() < time.perf_counter() - started:
                stopped_early = True  # no time for another epoch: keep the best so far
                break
            pace_to_budget(config, budget, epoch, [e.seconds for e in self.history])
        result = self.current_result(stopped_early=stopped_early)
        yield TrainingFinished(result)
        return result

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
        instrument = self._instrument()
        learned = None if self.axs is None else self.axs.adopt(network, self.best_axs)
        metadata = build_metadata(
            name=config.name,
            elements=config.elements,
            sum_to_100=config.sum_to_100,
            instrument=learned or instrument,
            network=network,
            training=self.training_description(),
        )
        metadata["energy"] = energy_dict(instrument)  # the grid the network was trained on
        val = self._sets["validation"]
        calibration = calibrate_sigma(
            network,
            val.expected,
            val.wt_percent,
            (config.counts_min, config.counts_max),
            list(config.calibration_log10_counts_edges),
            self.seeds["calibration"],
        )
        metadata["uncertainty"] = calibration.to_dict()
        model = model_from_network(network, metadata)
        if with_metrics:
            test = self._sets["test"]
            fractions = binned_fractions(network, test.expected).cpu()
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
            "fine_tuned_from": self.init_model_id,
            "axs": None if self.axs is None else self.axs.describe(self.best_axs),
        }


def iter_train(
    config: TrainingConfig,
    generator: SpectrumGenerator | None = None,
    unlabelled: tuple[Any, np.ndarray] | None = None,
) -> Generator[TrainingEvent, None, TrainResult]:
    """Training as a generator of events (see :meth:`Trainer.events`)."""
    return Trainer(config, generator, unlabelled).events()


def train(
    config: TrainingConfig,
    progress: Callable[[TrainingEvent], Any] | None = None,
    cancel: CancelToken | None = None,
    generator: SpectrumGenerator | None = None,
) -> TrainResult:
    """Train a model for ``config`` and return the best-on-validation result.

    Parameters
    ----------
    config
        The run's settings.
    progress
        Called with every event (:class:`~napari_xrfquant.jobs.Progress`, :class:`EpochEnd`,
        :class:`TrainingFinished`).
    cancel
        Cancels the run at its next event; it then returns the best model so far
        (``result.cancelled``).
    generator
        Spectrum generator; None for the physics simulator.

    Returns
    -------
    TrainResult
        ``result.save(directory)`` writes the bundle.

    Raises
    ------
    napari_xrfquant.jobs.Cancelled
        If cancelled before the first epoch finished.
    """
    return run(Trainer(config, generator).events(), progress, cancel).unwrap()
