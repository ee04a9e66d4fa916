"""The models a comparison fits on labelled spectra: LR, LASSO, FCNN, CNN and our MLP.

Every model takes counts ``(N, C)`` with their energy axis and compositions
``(N, E)`` in wt%, and predicts wt%. The published baselines:

- ``lr``: one linear model per element from the counts in its K-alpha (K-L3)
  window to its concentration (as published: raw counts, so it suits spectra
  of similar total counts); an element whose K shell the
  beam does not reach uses its strongest excited line instead (Au L-alpha at a
  30 keV beam). The window is +-1.5 FWHM of the instrument's resolution.
- ``lasso``: L1-regularised linear regression on the whole spectrum (normalised
  to sum 1), one per element, alpha chosen by an inner 5-fold cross-validation
  (scikit-learn's ``LassoCV``).
- ``fcnn``: the normalised spectrum fully connected to the element outputs,
  ReLU on the outputs, dropout on the inputs, an L1 penalty on the weights and
  early stopping on an inner validation split.
- ``cnn``: two 1-D convolutions and a fully connected layer, sigmoid
  activations, ReLU outputs, dropout, L1 and early stopping.
- ``mlp``: ours, the bundled network (pre-trained on simulated spectra) fine-tuned
  on the labelled spectra with the same early stopping;
- ``axs``: the same fine-tune plus beta x the reconstruction loss of analysis by
  synthesis (the simulator with a learnable instrument as decoder) on the
  fold's training spectra and any unlabelled spectra.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument import Instrument, reference_instrument

#: Names of the models, in report order.
MODEL_NAMES = ("lr", "lasso", "fcnn", "cnn", "mlp", "axs")
#: AXS fine-tunes are fewer and shorter: every step also simulates a batch.
AXS_EPOCHS, AXS_PATIENCE = 100, 20
#: Half-width of an LR line window, in FWHM of the detector resolution.
WINDOW_FWHM = 1.5


class Regressor(Protocol):
    """What a comparison needs of a model."""

    pretrained: str | None  #: what the model started from (None: from scratch)

    def fit(self, counts: np.ndarray, wt_percent: np.ndarray) -> None: ...

    def predict(self, counts: np.ndarray) -> np.ndarray: ...


def normalised(counts: np.ndarray) -> np.ndarray:
    """Spectra scaled to sum 1 (an empty spectrum stays 0)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts, dtype=np.float64),
                     where=totals > 0)


# -- LR ------------------------------------------------------------------------
def line_window(
    element: str, energy_keV: np.ndarray, instrument: Instrument | None = None
) -> tuple[np.ndarray, str]:
    """The channels of ``element``'s K-alpha window (or its strongest line's) and its name.

    Raises
    ------
    XRFQuantError
        When the line lies outside the spectra's energy range.
    """
    import xraylib

    from napari_xrfquant.physics.lines import strongest_line

    inst = instrument or reference_instrument()
    z = xraylib.SymbolToAtomicNumber(element)
    if xraylib.EdgeEnergy(z, xraylib.K_SHELL) < inst.max_beam_energy_keV:
        energy, label = float(xraylib.LineEnergy(z, xraylib.KL3_LINE)), f"{element} K-L3"
    else:
        line = strongest_line(element, inst)
        if line is None:
            raise XRFQuantError(f"{element}: the beam excites none of its lines")
        energy, label = line.energy_keV, line.label
    fwhm = float(inst.fwhm_keV(energy))
    window = np.abs(np.asarray(energy_keV) - energy) <= WINDOW_FWHM * fwhm
    if not window.any():
        raise XRFQuantError(
            f"{label} at {energy:.2f} keV lies outside the spectra "
            f"({energy_keV[0]:.2f}-{energy_keV[-1]:.2f} keV)"
        )
    return window, label


@dataclass
class LineRegression:
    """``lr``: per element, concentration linear in the share of counts in its line window."""

    energy_keV: np.ndarray
    elements: Sequence[str]
    instrument: Instrument | None = None
    pretrained: str | None = None
    windows: list[np.ndarray] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.windows = [line_window(e, self.energy_keV, self.instrument)[0] for e in self.elements]

    def features(self, counts: np.ndarray, element: int) -> np.ndarray:
        """The one input of element ``element``'s model: the counts in its window."""
        return np.asarray(counts)[:, self.windows[element]].sum(axis=1, keepdims=True)

    def fit(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        from sklearn.linear_model import LinearRegression

        self.models = [
            LinearRegression().fit(self.features(counts, i), wt_percent[:, i])
            for i in range(len(self.elements))
        ]

    def predict(self, counts: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(self.features(counts, i)) for i, m in enumerate(self.models)],
                        axis=1)


# -- LASSO ---------------------------------------------------------------------
@dataclass
class Lasso:
    """``lasso``: per element, L1-regularised regression on the whole normalised spectrum."""

    inner_folds: int = 5
    seed: int = 0
    pretrained: str | None = None
    models: list[Any] = field(default_factory=list)

    def fit(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        from sklearn.linear_model import LassoCV

        x = normalised(counts)
        folds = max(2, min(self.inner_folds, len(x) // 2))
        self.models = [
            LassoCV(cv=folds, random_state=self.seed, max_iter=20_000, alphas=30).fit(
                x, wt_percent[:, i]
            )
            for i in range(wt_percent.shape[1])
        ]

    @property
    def alphas(self) -> list[float]:
        """The alpha of each element's model (from the inner cross-validation)."""
        return [float(m.alpha_) for m in self.models]

    def predict(self, counts: np.ndarray) -> np.ndarray:
        x = normalised(counts)
        return np.stack([m.predict(x) for m in self.models], axis=1)


# -- neural networks -----------------------------------------------------------
@dataclass
class NetTraining:
    """How the networks are trained: Adam, MSE, L1 on weights, early stopping."""

    epochs: int = 400
    patience: int = 40
    lr: float = 3e-3
    l1: float = 3e-3
    dropout: float = 0.1
    validation_fraction: float = 0.15
    batch_size: int = 32
    seed: int = 0


def train_network(
    net: Any,
    x: np.ndarray,
    y: np.ndarray,
    setup: NetTraining,
    params: Any = None,
    extra_loss: Any = None,
    after_step: Any = None,
) -> Any:
    """Fit ``net`` (x -> y, both float arrays) with early stopping; return the best copy.

    ``extra_loss()`` (a tensor) joins every step's loss and ``after_step()`` runs
    after every optimiser step (the AXS reconstruction and its instrument).
    """
    import torch

    generator = torch.Generator().manual_seed(setup.seed)
    n = len(x)
    order = torch.randperm(n, generator=generator).numpy()
    n_val = max(1, round(setup.validation_fraction * n))
    val, train = order[:n_val], order[n_val:]
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    optimiser = torch.optim.Adam(params if params is not None else net.parameters(), lr=setup.lr)
    weights = [p for name, p in net.named_parameters() if "weight" in name and p.requires_grad]
    best, best_loss, waited = copy.deepcopy(net.state_dict()), math.inf, 0
    for _epoch in range(setup.epochs):
        net.train()
        shuffled = train[torch.randperm(len(train), generator=generator).numpy()]
        for start in range(0, len(shuffled), setup.batch_size):
            rows = shuffled[start : start + setup.batch_size]
            optimiser.zero_grad()
            loss = torch.mean((net(xt[rows]) - yt[rows]) ** 2)
            if setup.l1:
                loss = loss + setup.l1 * sum(w.abs().sum() for w in weights)
            if extra_loss is not None:
                loss = loss + extra_loss()
            loss.backward()
            optimiser.step()
            if after_step is not None:
                after_step()
        net.eval()
        with torch.no_grad():
            val_loss = float(torch.mean((net(xt[val]) - yt[val]) ** 2))
        if val_loss < best_loss - 1e-9:
            best, best_loss, waited = copy.deepcopy(net.state_dict()), val_loss, 0
        else:
            waited += 1
            if waited >= setup.patience:
                break
    net.load_state_dict(best)
    net.eval()
    return net


class _Scaled:
    """Shared input scaling of the baselines' networks: the square root of the
    normalised spectrum (it evens out strong and weak lines) less the training
    set's mean spectrum, over one spread for all channels (standardising each
    channel would blow the noise of empty channels up to the size of the lines).
    Centred inputs and an output bias at the mean composition keep the ReLU
    outputs alive from the first step."""

    mean: np.ndarray
    scale: float
    net: Any

    def scaled(self, counts: np.ndarray, fit: bool = False) -> np.ndarray:
        x = np.sqrt(normalised(counts))
        if fit:
            self.mean = x.mean(axis=0)
            self.scale = float((x - self.mean).std()) + 1e-12
        return (x - self.mean) / self.scale

    def predict(self, counts: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.net(torch.as_tensor(self.scaled(counts), dtype=torch.float32))
        return 100.0 * out.numpy()


def start_at_mean(layer: Any, targets: np.ndarray) -> None:
    """Output layer ``layer`` starts at the mean target (small weights, mean bias)."""
    import torch

    with torch.no_grad():
        layer.weight.mul_(0.1)
        layer.bias.copy_(torch.as_tensor(targets.mean(axis=0), dtype=layer.bias.dtype))


@dataclass
class FCNN(_Scaled):
    """``fcnn``: the spectrum fully connected to the outputs (ReLU), dropout, L1."""

    setup: NetTraining = field(default_factory=NetTraining)
    pretrained: str | None = None
    net: Any = None

    def fit(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        import torch
        from torch import nn

        torch.manual_seed(self.setup.seed)
        x = self.scaled(counts, fit=True)
        output = nn.Linear(x.shape[1], wt_percent.shape[1])
        start_at_mean(output, wt_percent / 100.0)
        self.net = nn.Sequential(nn.Dropout(self.setup.dropout), output, nn.ReLU())
        train_network(self.net, x, wt_percent / 100.0, self.setup)


@dataclass
class CNN(_Scaled):
    """``cnn``: two sigmoid convolutions, a sigmoid dense layer, ReLU outputs; dropout, L1."""

    setup: NetTraining = field(default_factory=lambda: NetTraining(lr=1e-3, l1=1e-7))
    channels: tuple[int, int] = (8, 16)
    kernel: int = 9
    hidden: int = 64
    pretrained: str | None = None
    net: Any = None

    def fit(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        import torch
        from torch import nn

        torch.manual_seed(self.setup.seed)
        x = self.scaled(counts, fit=True)
        c1, c2 = self.channels
        body = nn.Sequential(
            nn.Unflatten(1, (1, x.shape[1])),
            nn.Conv1d(1, c1, self.kernel, stride=2), nn.Sigmoid(),
            nn.Conv1d(c1, c2, self.kernel, stride=2), nn.Sigmoid(),
            nn.Flatten(),
        )
        with torch.no_grad():
            width = body(torch.zeros(1, x.shape[1])).shape[1]
        output = nn.Linear(self.hidden, wt_percent.shape[1])
        start_at_mean(output, wt_percent / 100.0)
        self.net = nn.Sequential(
            body, nn.Dropout(self.setup.dropout), nn.Linear(width, self.hidden), nn.Sigmoid(),
            output, nn.ReLU(),
        )
        train_network(self.net, x, wt_percent / 100.0, self.setup)


@dataclass
class BundleMLP:
    """``mlp``: our network, pre-trained on simulated spectra, fine-tuned on the labels."""

    energy_keV: np.ndarray
    elements: Sequence[str]
    model: Any = None  #: a QuantModel or bundle name; None for the bundled one
    setup: NetTraining = field(default_factory=lambda: NetTraining(lr=1e-4, l1=0.0))
    pretrained: str | None = None
    network: Any = None
    _input: Any = None

    def fit(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        import torch

        from napari_xrfquant.inference.resample import ModelInput
        from napari_xrfquant.models.bundle import load_model

        quant = load_model(self.model)
        if list(quant.elements) != list(self.elements):
            raise XRFQuantError(
                f"mlp: {quant.model_id} quantifies {', '.join(quant.elements)}, the labels "
                f"hold {', '.join(self.elements)}"
            )
        self.pretrained = quant.model_id
        self._input = (quant, ModelInput(quant, self.energy_keV, counts.shape[1]))
        self.network = copy.deepcopy(quant.network)
        for parameter in self.network.parameters():
            parameter.requires_grad_(True)
        torch.manual_seed(self.setup.seed)
        self._train(counts, wt_percent)

    def _train(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        train_network(_Fractions(self.network), self._binned(counts), wt_percent / 100.0,
                      self.setup)

    def _binned(self, counts: np.ndarray) -> np.ndarray:
        import torch

        quant, model_input = self._input
        block = torch.as_tensor(np.asarray(model_input.select(counts), dtype=np.float32))
        return model_input.binned(quant, block).numpy()

    def predict(self, counts: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            mean, _sigma = self.network.forward_binned(torch.as_tensor(self._binned(counts)))
        return mean.numpy()


class _Fractions:
    """A QuantNet seen as binned counts -> mass fractions, for :func:`train_network`."""

    def __init__(self, network: Any) -> None:
        self.network = network

    def __call__(self, x: Any) -> Any:
        return self.network.forward_binned(x)[0] / 100.0

    def __getattr__(self, name: str) -> Any:  # parameters, state_dict, train, eval, ...
        return getattr(self.network, name)


@dataclass
class AXSRegressor(BundleMLP):
    """``axs``: :class:`BundleMLP` plus ``beta`` x the analysis-by-synthesis reconstruction.

    The decoder is the simulator with a learnable instrument
    (:class:`napari_xrfquant.training.axs.Reconstruction`); its unlabelled
    spectra are the fold's training spectra and any ``unlabelled`` ones.
    """

    instrument: Instrument | None = None
    unlabelled: np.ndarray | None = None
    #: the supervised loss is an MSE of mass fractions (about 1e-4 here) and the
    #: reconstruction a fit quality (about 1): 0.01 weighs them alike
    beta: float = 0.01
    batch: int = 32

    def _train(self, counts: np.ndarray, wt_percent: np.ndarray) -> None:
        from napari_xrfquant.training.axs import Reconstruction
        from napari_xrfquant.training.config import AXSConfig

        quant = self._input[0]
        spectra = counts if self.unlabelled is None else np.concatenate([counts, self.unlabelled])
        config = AXSConfig(unlabelled="(in memory)", beta=self.beta, batch_size=self.batch,
                           min_counts=0.0, n_spectra=len(spectra))
        reconstruction = Reconstruction(
            config, list(self.elements), self.instrument or quant.instrument,
            np.asarray(spectra, dtype=np.float64), self.energy_keV, quant.energy_keV, "cpu",
            self.setup.seed,
        )
        train_network(
            _Fractions(self.network), self._binned(counts), wt_percent / 100.0, self.setup,
            extra_loss=lambda: self.beta * reconstruction.loss(self.network),
            after_step=reconstruction.step,
        )
        self.learned = reconstruction.values()


def make_model(
    name: str,
    energy_keV: np.ndarray,
    elements: Sequence[str],
    instrument: Instrument | None = None,
    seed: int = 0,
    mlp_model: Any = None,
    unlabelled: np.ndarray | None = None,
) -> Regressor:
    """A fresh model ``name`` (one of :data:`MODEL_NAMES`).

    Raises
    ------
    XRFQuantError
        For an unknown name, or lines outside the spectra (``lr``).
    """
    if name == "lr":
        return LineRegression(np.asarray(energy_keV), list(elements), instrument)
    if name == "lasso":
        return Lasso(seed=seed)
    if name == "fcnn":
        return FCNN(setup=NetTraining(seed=seed))
    if name == "cnn":
        return CNN(setup=NetTraining(lr=1e-3, l1=1e-7, seed=seed))
    if name == "mlp":
        return BundleMLP(np.asarray(energy_keV), list(elements), mlp_model,
                         setup=NetTraining(lr=1e-4, l1=0.0, seed=seed))
    if name == "axs":
        return AXSRegressor(np.asarray(energy_keV), list(elements), mlp_model,
                            setup=NetTraining(lr=1e-4, l1=0.0, seed=seed, epochs=AXS_EPOCHS,
                                              patience=AXS_PATIENCE),
                            instrument=instrument, unlabelled=unlabelled)
    raise XRFQuantError(f"unknown model {name!r} (known: {', '.join(MODEL_NAMES)})")
