"""The fixed input transform of every network: channels -> bins -> standardised features.

Stored in ``model.json["input"]`` (:class:`InputSpec`) so it is readable
without torch: channels are summed into bins (fine where the lines are, coarse
elsewhere), each bin is divided by the total counts in the binned region (the
spectrum normalised to sum 1, as published), square-rooted and standardised;
``log10`` of the total counts joins as the noise level.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

#: Total counts below this are treated as this many (log of zero is undefined).
MIN_TOTAL_COUNTS = 1.0

#: Total counts given to noise-free spectra: the network reads log10(counts) as
#: its noise level, and noise-free spectra are presented as the top of the
#: training range (counts_max of the bundled model).
NOISELESS_COUNTS = 1e6


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
    excluded_bins
        Bins the network does not read (e.g. lines of the set-up itself): their
        counts are set to 0 before anything else, so they count neither in the
        features nor in the total.
    """

    bin_edges_channel: list[int]
    scale: str = "sqrt"
    feature_mean: list[float] | None = None
    feature_std: list[float] | None = None
    log10_counts_center: float = 3.75
    log10_counts_scale: float = 1.25
    excluded_bins: list[int] = field(default_factory=list)

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
            "excluded_bins": [int(b) for b in self.excluded_bins],
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
            excluded_bins=[int(b) for b in data.get("excluded_bins", ())],
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
        if any(not 0 <= b < self.n_features for b in self.excluded_bins):
            raise ValueError(f"excluded_bins must lie in 0-{self.n_features - 1}")


def bins_in_ranges(
    edges_channel: Sequence[int], energy_keV: np.ndarray, ranges_keV: Sequence[tuple[float, float]]
) -> list[int]:
    """Bins that hold a channel whose centre lies in one of ``ranges_keV``."""
    energy = np.asarray(energy_keV, dtype=np.float64)
    excluded = []
    for k, (left, right) in enumerate(itertools.pairwise(edges_channel)):
        centres = energy[left:right]
        if any(((centres >= low) & (centres <= high)).any() for low, high in ranges_keV):
            excluded.append(k)
    return excluded


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

    edges: torch.Tensor
    keep: torch.Tensor
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        spec.validate()
        self.spec = spec
        edges = torch.as_tensor(spec.bin_edges_channel, dtype=torch.long)
        self.first_channel, self.stop_channel = spec.channel_range
        # Runs of equal-width bins are summed by reshape: memory-bound and several
        # times faster than a cumulative sum with a gather.
        first = int(spec.bin_edges_channel[0])  # plain ints: no tensor read (meta device)
        self.runs = _equal_width_runs([int(e) - first for e in spec.bin_edges_channel])
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
        keep = torch.ones(spec.n_features)
        keep[list(spec.excluded_bins)] = 0.0
        self.register_buffer("keep", keep, persistent=False)
        self.excluding = bool(spec.excluded_bins)

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
        binned = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return binned * self.keep.to(binned.dtype) if self.excluding else binned

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
