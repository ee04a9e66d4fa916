"""Energy grids and the one resampler: counts from one grid into bins of another.

Counts are spread uniformly within a channel, so the cumulative counts are
piecewise linear in energy. Interpolating them at the target's bin edges and
differencing moves every count of the overlapping range into some target bin
and creates none: counts are conserved whatever the two grids are (another
gain, offset, channel count or a quadratic calibration).

It lives with the readers because a multi-element detector is summed onto one
energy axis as it is read (:mod:`.detectors`); :mod:`napari_xrfquant.inference.resample`
uses the same class to bring data onto a model's grid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Relative tolerance (of one channel width) within which two energy grids are the same.
GRID_TOLERANCE = 1e-3


def channel_edges_keV(energy_keV: np.ndarray) -> np.ndarray:
    """Channel boundaries (keV) from channel-centre energies, shape ``(C + 1,)``.

    Inner boundaries lie half-way between centres; the outer ones extend the
    first and last channel symmetrically.
    """
    centres = np.asarray(energy_keV, dtype=np.float64)
    if centres.ndim != 1 or centres.size < 2:
        raise XRFQuantError("an energy axis needs at least two channel energies")
    if not np.all(np.isfinite(centres)) or np.any(np.diff(centres) <= 0):
        raise XRFQuantError("channel energies must be finite and strictly increasing")
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate(
        [[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]]
    )


def same_grid(energy_keV: np.ndarray, other_keV: np.ndarray) -> bool:
    """Whether two channel-centre axes agree within :data:`GRID_TOLERANCE` of a channel."""
    if len(energy_keV) != len(other_keV):
        return False
    step = float(other_keV[1] - other_keV[0])
    return bool(
        np.max(np.abs(np.asarray(energy_keV) - np.asarray(other_keV))) <= GRID_TOLERANCE * step
    )


class Resampler:
    """Counts on ``source_energy_keV`` channels -> counts in bins with ``target_edges_keV``.

    Parameters
    ----------
    source_energy_keV
        Channel-centre energies of the input, ``(C,)``.
    target_edges_keV
        ``(K + 1,)`` increasing bin edges of the output; bins outside the input
        range get 0.

    Examples
    --------
    >>> import numpy as np
    >>> e = 0.035 * np.arange(1024)
    >>> r = Resampler(e, channel_edges_keV(0.0175 + 0.07 * np.arange(512)))
    >>> float(r.numpy(np.ones(1024)).sum())
    1024.0
    """

    def __init__(self, source_energy_keV: np.ndarray, target_edges_keV: np.ndarray) -> None:
        self.source_edges_keV = channel_edges_keV(source_energy_keV)
        self.target_edges_keV = np.asarray(target_edges_keV, dtype=np.float64)
        source = self.source_edges_keV
        index = np.searchsorted(source, self.target_edges_keV, side="right") - 1
        self.index = np.clip(index, 0, len(source) - 2)
        width = source[self.index + 1] - source[self.index]
        self.fraction = np.clip((self.target_edges_keV - source[self.index]) / width, 0.0, 1.0)

    @property
    def n_source(self) -> int:
        """Channels of the input grid."""
        return len(self.source_edges_keV) - 1

    def numpy(self, counts: Any) -> np.ndarray:
        """``[..., C]`` counts -> ``[..., K]`` float64 counts."""
        data = np.asarray(counts, dtype=np.float64)
        if data.shape[-1] != self.n_source:
            raise XRFQuantError(
                f"counts have {data.shape[-1]} channels but the energy axis has {self.n_source}"
            )
        zero = np.zeros((*data.shape[:-1], 1))
        cumulative = np.concatenate([zero, np.cumsum(data, axis=-1)], axis=-1)
        low, high = cumulative[..., self.index], cumulative[..., self.index + 1]
        return np.diff(low + self.fraction * (high - low), axis=-1)

    def torch(self, block: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` counts -> ``(N, K)`` float32 counts (cumulative sums in float64)."""
        import torch

        data = block.double()
        zero = torch.zeros((data.shape[0], 1), dtype=data.dtype, device=data.device)
        cumulative = torch.cat([zero, torch.cumsum(data, dim=1)], dim=1)
        index = torch.as_tensor(self.index, device=data.device)
        fraction = torch.as_tensor(self.fraction, device=data.device)
        low, high = cumulative[:, index], cumulative[:, index + 1]
        # differences of large float64 sums lose no counts; clamp the rounding residue
        return torch.diff(low + fraction * (high - low), dim=1).clamp_min(0.0).float()


def resample_counts(
    counts: np.ndarray, energy_keV: np.ndarray, target_energy_keV: np.ndarray
) -> np.ndarray:
    """Resample counts ``[..., C]`` onto another channel grid, conserving counts.

    Returns ``[..., C2]`` float64 counts; target channels outside the input range get 0.
    """
    return Resampler(energy_keV, channel_edges_keV(target_energy_keV)).numpy(counts)
