"""Networks that map one pixel's spectrum to element mass fractions with a 1-sigma.

Every network here has the same three stages:

1. :class:`SpectrumFeatures`, a fixed, documented input transform stored in
   ``model.json``: channels are summed into bins (fine where the lines are,
   coarse elsewhere), each bin is divided by the total counts in the binned region
   (the spectrum normalised to sum 1, as published), square-rooted and
   standardised. ``log10`` of the total counts is appended so that the network
   knows how noisy the spectrum is.
2. A trunk: the published MLP (:class:`MLPTrunk`, hidden layers of equal width,
   ReLU) or a 1-D CNN (:class:`CNNTrunk`).
3. :class:`QuantHead`: the mean mass fractions in wt% (softmax x 100 when the
   elements are declared to sum to 100, softplus otherwise) and a heteroscedastic
   Gaussian 1-sigma in wt%.

Torch is imported at module level: this is a core-only module that the public
API imports on first use.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

#: Smallest 1-sigma (wt%) the head may predict; keeps the Gaussian NLL finite
#: for elements that are certainly absent.
MIN_SIGMA_WT = 1e-3
#: Largest 1-sigma (wt%): nothing is more uncertain than the whole range.
MAX_SIGMA_WT = 100.0
#: Total counts below this are treated as this many (log of zero is undefined).
MIN_TOTAL_COUNTS = 1.0


@dataclass
class InputSpec:
    """The fixed input transform of a model, as stored in ``model.json["input"]``.

    Attributes
    ----------
    bin_edges_channel
        ``K + 1`` increasing channel indices: feature ``k`` sums channels
        ``bin_edges_channel[k]`` to ``bin_edges_channel[k + 1] - 1``. Channels
        outside ``[edges[0], edges[-1])`` are ignored.
    scale
        ``"sqrt"`` (square root of the normalised bins: Poisson noise becomes
        about equal in every bin) or ``"linear"`` (the normalised bins as they are).
    feature_mean, feature_std
        Per-feature standardisation after scaling, length ``K``.
    log10_counts_center, log10_counts_scale
        The counts input is ``(log10(total) - center) / scale``.
    """

    bin_edges_channel: list[int]
    scale: str = "sqrt"
    feature_mean: list[float] | None = None
    feature_std: list[float] | None = None
    log10_counts_center: float = 3.75
    log10_counts_scale: float = 1.25

    @property
    def n_features(self) -> int:
        """Number of spectral features ``K`` (bins)."""
        return len(self.bin_edges_channel) - 1

    @property
    def channel_range(self) -> tuple[int, int]:
        """First channel used and one past the last channel used."""
        return int(self.bin_edges_channel[0]), int(self.bin_edges_channel[-1])

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for ``model.json``."""
        return {
            "transform": "binned, normalised to sum 1, scaled, standardised; plus log10 counts",
            "bin_edges_channel": [int(e) for e in self.bin_edges_channel],
            "scale": self.scale,
            "feature_mean": None if self.feature_mean is None else list(self.feature_mean),
            "feature_std": None if self.feature_std is None else list(self.feature_std),
            "log10_counts_center": float(self.log10_counts_center),
            "log10_counts_scale": float(self.log10_counts_scale),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``ValueError`` on bad data."""
        spec = cls(
            bin_edges_channel=[int(e) for e in data["bin_edges_channel"]],
            scale=str(data.get("scale", "sqrt")),
            feature_mean=_float_list_or_none(data.get("feature_mean")),
            feature_std=_float_list_or_none(data.get("feature_std")),
            log10_counts_center=float(data.get("log10_counts_center", 3.75)),
            log10_counts_scale=float(data.get("log10_counts_scale", 1.25)),
        )
        spec.validate()
        return spec

    def validate(self, n_channels: int | None = None) -> None:
        """Raise ``ValueError`` if the spec cannot be applied to a spectrum."""
        edges = np.asarray(self.bin_edges_channel)
        if edges.ndim != 1 or edges.size < 2:
            raise ValueError("bin_edges_channel needs at least two entries")
        if np.any(np.diff(edges) <= 0) or edges[0] < 0:
            raise ValueError("bin_edges_channel must be non-negative and strictly increasing")
        if n_channels is not None and edges[-1] > n_channels:
            raise ValueError(
                f"bin_edges_channel reaches channel {int(edges[-1])} "
                f"but the energy grid has {n_channels} channels"
            )
        if self.scale not in ("sqrt", "linear"):
            raise ValueError(f"unknown input scale {self.scale!r} (use 'sqrt' or 'linear')")
        for name in ("feature_mean", "feature_std"):
            values = getattr(self, name)
            if values is not None and len(values) != self.n_features:
                raise ValueError(f"{name} has {len(values)} entries, expected {self.n_features}")
        if self.feature_std is not None and min(self.feature_std) <= 0:
            raise ValueError("feature_std must be positive")
        if self.log10_counts_scale <= 0:
            raise ValueError("log10_counts_scale must be positive")


def _float_list_or_none(values: Any) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def make_bin_edges(
    energy_keV: np.ndarray, segments: Sequence[tuple[float, float, int]]
) -> list[int]:
    """Channel edges of contiguous bins whose width depends on the energy range.

    Parameters
    ----------
    energy_keV
        Channel-centre energies of the model's grid, shape ``(C,)``, increasing.
    segments
        ``(start_keV, stop_keV, channels_per_bin)`` for consecutive energy ranges,
        e.g. ``[(1.2, 14.0, 2), (14.0, 20.0, 8), (20.0, 31.0, 4)]``. Each range
        starts where the previous one stopped; its last bin absorbs the channels
        left over when the range is not a whole number of bins.

    Returns
    -------
    list of int
        Increasing channel edges (``K + 1`` values).

    Examples
    --------
    >>> import numpy as np
    >>> make_bin_edges(0.035 * np.arange(1024), [(1.0, 1.4, 2), (1.4, 2.0, 4)])
    [29, 31, 33, 35, 37, 40, 44, 48, 52, 58]
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    edges: list[int] = []
    for start_keV, stop_keV, width in segments:
        if int(width) < 1:
            raise ValueError(f"channels_per_bin must be >= 1, got {width}")
        first = edges[-1] if edges else int(np.searchsorted(energy, start_keV, side="left"))
        last = int(np.searchsorted(energy, stop_keV, side="left"))
        if last <= first:
            continue
        n_bins = max((last - first) // int(width), 1)
        segment = [first + i * int(width) for i in range(n_bins)] + [last]
        edges.extend(segment[1:] if edges else segment)
    if len(edges) < 2:
        raise ValueError("the segments select no channels of this energy grid")
    return edges


def _equal_width_runs(edges: Sequence[int]) -> list[tuple[int, int, int]]:
    """Split bin edges into runs of equal-width bins: ``(start, stop, width)`` each."""
    runs: list[tuple[int, int, int]] = []
    for left, right in itertools.pairwise(edges):
        width = right - left
        if runs and runs[-1][2] == width and runs[-1][1] == left:
            runs[-1] = (runs[-1][0], right, width)
        else:
            runs.append((left, right, width))
    return runs


class SpectrumFeatures(nn.Module):
    """Fixed input transform: counts on the model grid -> network inputs.

    Buffers are not saved in the weights file (``persistent=False``): they come
    from ``model.json`` so that the transform is readable without torch.
    """

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        spec.validate()
        self.spec = spec
        edges = torch.as_tensor(spec.bin_edges_channel, dtype=torch.long)
        self.first_channel, self.stop_channel = spec.channel_range
        # Runs of equal-width bins are summed by reshape: memory-bound and several
        # times faster than a cumulative sum with a gather.
        self.runs = _equal_width_runs([int(e) - int(edges[0]) for e in spec.bin_edges_channel])
        self.register_buffer("edges", edges - edges[0], persistent=False)
        mean = torch.zeros(spec.n_features) if spec.feature_mean is None else None
        self.register_buffer(
            "feature_mean",
            mean if mean is not None else torch.tensor(spec.feature_mean, dtype=torch.float32),
            persistent=False,
        )
        std = torch.ones(spec.n_features) if spec.feature_std is None else None
        self.register_buffer(
            "feature_std",
            std if std is not None else torch.tensor(spec.feature_std, dtype=torch.float32),
            persistent=False,
        )

    @property
    def n_features(self) -> int:
        """Spectral features ``K``; the network sees ``K + 1`` inputs (plus log counts)."""
        return self.spec.n_features

    def bin_counts(self, counts: torch.Tensor) -> torch.Tensor:
        """Sum channels into bins: ``(N, C) -> (N, K)``, same dtype."""
        return self.bin_region(counts[:, self.first_channel : self.stop_channel])

    def bin_region(self, region: torch.Tensor) -> torch.Tensor:
        """Sum channels into bins when only channels ``first:stop`` are given: ``(N, K)``."""
        n = region.shape[0]
        parts = [
            region[:, start:stop].reshape(n, -1, width).sum(dim=-1)
            if width > 1
            else region[:, start:stop]
            for start, stop, width in self.runs
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def from_binned(self, binned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Network inputs from binned counts.

        Returns
        -------
        features : Tensor
            ``(N, K)`` standardised spectral features.
        log10_total : Tensor
            ``(N,)`` log10 of the total counts in the binned region.
        """
        total = binned.sum(dim=1).clamp_min(MIN_TOTAL_COUNTS)
        fraction = binned / total[:, None]
        if self.spec.scale == "sqrt":
            fraction = torch.sqrt(fraction.clamp_min(0.0))
        features = (fraction - self.feature_mean) / self.feature_std
        return features, torch.log10(total)

    def counts_input(self, log10_total: torch.Tensor) -> torch.Tensor:
        """The scaled log10-counts input, shape ``(N, 1)``."""
        spec = self.spec
        return ((log10_total - spec.log10_counts_center) / spec.log10_counts_scale)[:, None]


class MLPTrunk(nn.Module):
    """The published MLP: ``hidden_layers`` fully connected layers of ``neurons``, ReLU."""

    def __init__(self, n_features: int, hidden_layers: int, neurons: int) -> None:
        super().__init__()
        if hidden_layers < 1 or neurons < 1:
            raise ValueError("an MLP needs at least one hidden layer of at least one neuron")
        layers: list[nn.Module] = []
        width = n_features + 1
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, neurons), nn.ReLU()]
            width = neurons
        self.layers = nn.Sequential(*layers)
        self.out_features = neurons

    def forward(self, features: torch.Tensor, counts_input: torch.Tensor) -> torch.Tensor:
        """``(N, K), (N, 1) -> (N, neurons)``."""
        return self.layers(torch.cat([features, counts_input], dim=1))


class CNNTrunk(nn.Module):
    """A 1-D CNN over the binned spectrum, then fully connected layers.

    Convolutions (kernel ``kernel_size``, stride 2, ReLU) see the peak shapes;
    the log-counts input joins at the first fully connected layer.
    """

    def __init__(
        self,
        n_features: int,
        conv_channels: Sequence[int],
        kernel_size: int,
        hidden_layers: int,
        neurons: int,
    ) -> None:
        super().__init__()
        if not conv_channels:
            raise ValueError("a CNN needs at least one convolution layer")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        convs: list[nn.Module] = []
        in_ch, length = 1, n_features
        for out_ch in conv_channels:
            convs += [
                nn.Conv1d(in_ch, int(out_ch), kernel_size, stride=2, padding=kernel_size // 2),
                nn.ReLU(),
            ]
            in_ch = int(out_ch)
            length = (length + 2 * (kernel_size // 2) - kernel_size) // 2 + 1
        self.convs = nn.Sequential(*convs)
        dense: list[nn.Module] = []
        width = in_ch * length + 1
        for _ in range(hidden_layers):
            dense += [nn.Linear(width, neurons), nn.ReLU()]
            width = neurons
        self.dense = nn.Sequential(*dense)
        self.out_features = width

    def forward(self, features: torch.Tensor, counts_input: torch.Tensor) -> torch.Tensor:
        """``(N, K), (N, 1) -> (N, out_features)``."""
        maps = self.convs(features[:, None, :]).flatten(1)
        return self.dense(torch.cat([maps, counts_input], dim=1))


class SpectrumDecoder(nn.Module):
    """Composition (wt%) -> expected binned spectrum (fractions summing to 1).

    A small emulator of the physics simulator, trained beside the quantification
    network on the same simulated spectra. It makes the fit-quality check (the
    measured spectrum against the one expected at the predicted composition) a
    few small matrix products instead of a full fundamental-parameter
    simulation per pixel.
    """

    def __init__(self, n_elements: int, n_features: int, hidden_layers: int, neurons: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_elements
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, neurons), nn.SiLU()]
            width = neurons
        layers.append(nn.Linear(width, n_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, wt_percent: torch.Tensor) -> torch.Tensor:
        """``(N, E)`` wt% -> ``(N, K)`` expected binned fractions (softmax: sum 1)."""
        return torch.softmax(self.layers(wt_percent / 100.0), dim=1)


class QuantHead(nn.Module):
    """Mean wt% (closure or non-negative) and heteroscedastic 1-sigma in wt%."""

    def __init__(self, in_features: int, n_elements: int, sum_to_100: bool) -> None:
        super().__init__()
        self.n_elements = n_elements
        self.sum_to_100 = sum_to_100
        self.linear = nn.Linear(in_features, 2 * n_elements)
        # Start with sigma ~ 10 wt% (the spread of a composition nobody knows yet):
        # a tiny initial sigma makes the first NLL gradients explode.
        with torch.no_grad():
            self.linear.bias[n_elements:].fill_(math.log(10.0))
            self.linear.weight[n_elements:].mul_(0.1)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, H) -> mean (N, E), sigma (N, E)``, both in wt%."""
        raw = self.linear(hidden)
        logits, log_sigma = raw[:, : self.n_elements], raw[:, self.n_elements :]
        if self.sum_to_100:
            mean = 100.0 * torch.softmax(logits, dim=1)
        else:
            # Elements may be missing from the declared list: only non-negativity holds.
            mean = 10.0 * nn.functional.softplus(logits)
        sigma = torch.exp(log_sigma.clamp(math.log(MIN_SIGMA_WT), math.log(MAX_SIGMA_WT)))
        return mean, sigma


@dataclass
class ArchitectureSpec:
    """The network layout, as stored in ``model.json["architecture"]``."""

    type: str = "mlp"
    hidden_layers: int = 3
    neurons: int = 50
    conv_channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    kernel_size: int = 7
    #: Layout of the :class:`SpectrumDecoder` used for fit quality (0 neurons: none).
    decoder_layers: int = 2
    decoder_neurons: int = 128

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for ``model.json``."""
        data: dict[str, Any] = {
            "type": self.type,
            "hidden_layers": int(self.hidden_layers),
            "neurons": int(self.neurons),
            "decoder_layers": int(self.decoder_layers),
            "decoder_neurons": int(self.decoder_neurons),
        }
        if self.type == "cnn":
            data["conv_channels"] = [int(c) for c in self.conv_channels]
            data["kernel_size"] = int(self.kernel_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchitectureSpec:
        """Inverse of :meth:`to_dict`."""
        spec = cls(
            type=str(data["type"]),
            hidden_layers=int(data["hidden_layers"]),
            neurons=int(data["neurons"]),
            conv_channels=[int(c) for c in data.get("conv_channels", [16, 32, 32])],
            kernel_size=int(data.get("kernel_size", 7)),
            # bundles written before the decoder existed have none
            decoder_layers=int(data.get("decoder_layers", 0)),
            decoder_neurons=int(data.get("decoder_neurons", 0)),
        )
        if spec.type not in ("mlp", "cnn"):
            raise ValueError(f"unknown architecture type {spec.type!r} (use 'mlp' or 'cnn')")
        return spec


class QuantNet(nn.Module):
    """Spectrum -> (mean wt%, 1-sigma wt%) for a fixed list of elements.

    Parameters
    ----------
    input_spec
        The fixed input transform.
    architecture
        Trunk layout.
    n_elements
        Number of output elements ``E``.
    sum_to_100
        Whether the outputs are closed (sum to 100 wt%).
    """

    def __init__(
        self,
        input_spec: InputSpec,
        architecture: ArchitectureSpec,
        n_elements: int,
        sum_to_100: bool = True,
    ) -> None:
        super().__init__()
        if n_elements < 1:
            raise ValueError("a model needs at least one element")
        self.input_spec = input_spec
        self.architecture = architecture
        self.features = SpectrumFeatures(input_spec)
        k = input_spec.n_features
        if architecture.type == "mlp":
            self.trunk: nn.Module = MLPTrunk(k, architecture.hidden_layers, architecture.neurons)
        elif architecture.type == "cnn":
            self.trunk = CNNTrunk(
                k,
                architecture.conv_channels,
                architecture.kernel_size,
                architecture.hidden_layers,
                architecture.neurons,
            )
        else:
            raise ValueError(f"unknown architecture type {architecture.type!r}")
        self.head = QuantHead(self.trunk.out_features, n_elements, sum_to_100)
        self.decoder: SpectrumDecoder | None = None
        if architecture.decoder_neurons > 0 and architecture.decoder_layers >= 0:
            self.decoder = SpectrumDecoder(
                n_elements, k, architecture.decoder_layers, architecture.decoder_neurons
            )

    @property
    def n_elements(self) -> int:
        """Number of output elements."""
        return self.head.n_elements

    @property
    def sum_to_100(self) -> bool:
        """Whether outputs are closed to 100 wt%."""
        return self.head.sum_to_100

    def forward_binned(self, binned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from binned counts ``(N, K)``: mean and sigma ``(N, E)`` in wt%."""
        features, log10_total = self.features.from_binned(binned)
        hidden = self.trunk(features, self.features.counts_input(log10_total))
        return self.head(hidden)

    def expected_binned(self, wt_percent: torch.Tensor) -> torch.Tensor | None:
        """Expected binned fractions ``(N, K)`` at ``wt_percent``; None without a decoder."""
        return None if self.decoder is None else self.decoder(wt_percent)

    def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from counts on the model grid ``(N, C)``: mean, sigma ``(N, E)`` wt%."""
        return self.forward_binned(self.features.bin_counts(counts))


def build_network(
    input_spec: InputSpec | dict[str, Any],
    architecture: ArchitectureSpec | dict[str, Any],
    n_elements: int,
    sum_to_100: bool = True,
) -> QuantNet:
    """Build a :class:`QuantNet` from specs or their ``model.json`` dictionaries."""
    if isinstance(input_spec, dict):
        input_spec = InputSpec.from_dict(input_spec)
    if isinstance(architecture, dict):
        architecture = ArchitectureSpec.from_dict(architecture)
    return QuantNet(input_spec, architecture, n_elements, sum_to_100)


def count_parameters(network: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)
