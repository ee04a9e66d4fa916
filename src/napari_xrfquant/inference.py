"""Per-pixel quantification of spectra and cubes: chunked, device-aware, resampling.

:func:`quantify` turns counts ``[..., C]`` (a cube ``H x W x C``, numpy or dask)
into element maps in wt% with a calibrated 1-sigma and a fit-quality value per
spectrum. :func:`iter_quantify` is the same computation as a generator that
yields ``(done, total)`` after every chunk and returns the result, so that a GUI
worker can show progress and cancel between chunks.

Fit quality is the Poisson deviance between the measured spectrum (in the
model's input bins) and the spectrum re-simulated from the predicted
composition, divided by its expectation under Poisson noise: about 1 for a
spectrum the model explains, large for one it does not (an element it does not
know, a shifted energy calibration, pile-up).

Examples
--------
>>> import numpy as np
>>> import napari_xrfquant as xq
>>> cube = np.random.default_rng(0).poisson(2.0, size=(4, 4, 1024))
>>> result = xq.quantify(cube)
>>> result.concentrations.shape
(4, 4, 5)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.errors import ModelBundleError, XRFQuantError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from napari_xrfquant.models.bundle import QuantModel

#: Spectra per chunk on the CPU: large enough that matrix products run near
#: peak speed, small enough that a float32 chunk of 1024 channels stays at 64 MB.
DEFAULT_CPU_BATCH = 16384
#: Spectra per chunk on a GPU.
DEFAULT_CUDA_BATCH = 65536
#: Below this chunk size an out-of-memory GPU gives up and the CPU takes over.
MIN_CUDA_BATCH = 512
#: Relative tolerance (of one channel width) within which two energy grids are the same.
GRID_TOLERANCE = 1e-3

ProgressCallback = Callable[[int, int], Any]


@dataclass
class QuantResult:
    """Element maps from :func:`quantify`.

    Attributes
    ----------
    concentrations
        ``[..., E]`` mass fractions in wt% (float32); NaN where a spectrum has no counts.
    uncertainty
        ``[..., E]`` calibrated 1-sigma in wt%.
    fit_quality
        ``[...]`` Poisson deviance of the re-simulated spectrum divided by its
        expectation: about 1 when the model explains the spectrum.
    elements
        Element symbols, in the order of the last axis.
    model_id
        Name and weights checksum of the model used.
    device
        Torch device the network ran on (after any fallback).
    seconds
        Wall time of the computation.
    resampled
        Whether the input was resampled onto the model's energy grid.
    """

    concentrations: np.ndarray
    uncertainty: np.ndarray
    fit_quality: np.ndarray
    elements: list[str]
    model_id: str
    device: str = "cpu"
    seconds: float = 0.0
    resampled: bool = False
    total_counts: np.ndarray | None = field(default=None, repr=False)

    def map(self, element: str) -> np.ndarray:
        """The concentration map (wt%) of one element."""
        try:
            return self.concentrations[..., self.elements.index(element)]
        except ValueError:
            raise XRFQuantError(
                f"element {element!r} is not quantified by {self.model_id} "
                f"(elements: {', '.join(self.elements)})"
            ) from None


# ---------------------------------------------------------------------------
# background pixels
# ---------------------------------------------------------------------------
#: Default threshold (counts per pixel) below which a pixel is background: air
#: around the sample gives only scattered beam (tens of counts on the CXC sample,
#: against thousands on metal), and a composition fitted to it is noise.
DEFAULT_MASK_BELOW_COUNTS = 200.0


def background_mask(total_counts: Any, mask_below_counts: float) -> np.ndarray | None:
    """Pixels too weak to quantify: total counts below ``mask_below_counts``.

    The network returns a composition for any spectrum, including the few tens
    of scattered counts of air beside the sample; masking those pixels keeps
    maps and region statistics about the sample.

    Parameters
    ----------
    total_counts
        Counts per pixel, any shape.
    mask_below_counts
        Threshold in counts; 0 (or less) switches masking off.

    Returns
    -------
    numpy.ndarray or None
        Boolean array shaped like ``total_counts``, True where masked; None when
        masking is off.
    """
    threshold = float(mask_below_counts)
    if not threshold > 0:
        return None
    counts = np.asarray(total_counts, dtype=np.float64)
    # a pixel whose counts are unknown (NaN) cannot pass the threshold either
    return ~(counts >= threshold)


def mask_background(result: QuantResult, mask: np.ndarray | None) -> QuantResult:
    """A copy of ``result`` with NaN concentrations and uncertainties where ``mask``.

    Fit quality keeps its values: it is what shows the masked pixels are not sample.

    Parameters
    ----------
    result
        The quantification of an image (or any batch of spectra).
    mask
        Boolean, shaped like ``result.fit_quality``; None returns ``result`` as is.

    Returns
    -------
    QuantResult
        The masked copy.
    """
    if mask is None:
        return result
    if mask.shape != result.fit_quality.shape:
        raise XRFQuantError(
            f"background mask of shape {mask.shape} does not match the result "
            f"{result.fit_quality.shape}"
        )
    concentrations = result.concentrations.copy()
    uncertainty = result.uncertainty.copy()
    concentrations[mask] = np.nan
    uncertainty[mask] = np.nan
    return replace(result, concentrations=concentrations, uncertainty=uncertainty)


# ---------------------------------------------------------------------------
# energy grids and resampling
# ---------------------------------------------------------------------------


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


def _cumulative_weights(
    source_edges_keV: np.ndarray, target_edges_keV: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index and fraction to interpolate the cumulative counts at ``target_edges_keV``.

    The cumulative counts are piecewise linear in energy (counts spread
    uniformly within a channel), so ``cum(E) = cum[i] + t * (cum[i + 1] - cum[i])``.
    """
    index = np.searchsorted(source_edges_keV, target_edges_keV, side="right") - 1
    index = np.clip(index, 0, len(source_edges_keV) - 2)
    width = source_edges_keV[index + 1] - source_edges_keV[index]
    fraction = np.clip((target_edges_keV - source_edges_keV[index]) / width, 0.0, 1.0)
    return index, fraction


def resample_counts(
    counts: np.ndarray, energy_keV: np.ndarray, target_energy_keV: np.ndarray
) -> np.ndarray:
    """Resample counts ``[..., C]`` onto another energy grid, conserving counts.

    The cumulative counts over channel edges are interpolated linearly at the
    target channel edges and differenced, so every count of the overlapping
    energy range lands in some target channel and none is created.

    Parameters
    ----------
    counts
        Counts on the grid ``energy_keV`` (last axis).
    energy_keV
        Channel-centre energies of the input, shape ``(C,)``.
    target_energy_keV
        Channel-centre energies of the output grid, shape ``(C2,)``.

    Returns
    -------
    ndarray
        ``[..., C2]`` float64 counts; target channels outside the input range get 0.

    Examples
    --------
    >>> import numpy as np
    >>> e = 0.035 * np.arange(1024)
    >>> x = np.ones(1024)
    >>> y = resample_counts(x, e, 0.0175 + 0.07 * np.arange(512))
    >>> float(y.sum())
    1024.0
    """
    data = np.asarray(counts, dtype=np.float64)
    source = channel_edges_keV(energy_keV)
    target = channel_edges_keV(target_energy_keV)
    if data.shape[-1] != len(source) - 1:
        raise XRFQuantError(
            f"counts have {data.shape[-1]} channels but the energy axis has {len(source) - 1}"
        )
    index, fraction = _cumulative_weights(source, target)
    cumulative = np.concatenate(
        [np.zeros((*data.shape[:-1], 1)), np.cumsum(data, axis=-1)], axis=-1
    )
    at_edges = cumulative[..., index] + fraction * (
        cumulative[..., index + 1] - cumulative[..., index]
    )
    return np.diff(at_edges, axis=-1)


def _same_grid(energy_keV: np.ndarray, model_energy_keV: np.ndarray) -> bool:
    if len(energy_keV) != len(model_energy_keV):
        return False
    step = float(model_energy_keV[1] - model_energy_keV[0])
    return bool(np.max(np.abs(energy_keV - model_energy_keV)) <= GRID_TOLERANCE * step)


class _InputMap:
    """How raw channels of the input become the model's input bins.

    Either the identity grid (the network bins channels itself) or a resampling
    straight onto the model's bin edges: cumulative counts interpolated at the
    bins' energy boundaries, which equals resampling onto the model grid and
    then binning, without the intermediate array.
    """

    def __init__(self, model: QuantModel, energy_keV: np.ndarray | None, n_channels: int):
        model_energy = model.energy_keV
        self.resampled = False
        first, stop = model.network.input_spec.channel_range
        self.region = (first, stop)
        self.region_channels = stop - first
        if energy_keV is None:
            if n_channels != len(model_energy):
                raise ModelBundleError(
                    f"the data have {n_channels} channels but model {model.model_id} expects "
                    f"{len(model_energy)}; pass the data's energy axis (energy_keV) to resample"
                )
            return
        energy = np.asarray(energy_keV, dtype=np.float64).ravel()
        if len(energy) != n_channels:
            raise XRFQuantError(
                f"energy_keV has {len(energy)} values but the data have {n_channels} channels"
            )
        if _same_grid(energy, model_energy):
            return
        source_edges = channel_edges_keV(energy)
        model_edges = channel_edges_keV(model_energy)
        spec = model.network.input_spec
        bin_edges_keV = model_edges[np.asarray(spec.bin_edges_channel)]
        lo, hi = bin_edges_keV[0], bin_edges_keV[-1]
        # Half a source channel of slack: a grid that ends mid-channel still covers.
        slack = 0.5 * float(np.min(np.diff(source_edges)))
        if source_edges[0] > lo + slack or source_edges[-1] < hi - slack:
            raise ModelBundleError(
                f"the data cover {source_edges[0]:.2f}-{source_edges[-1]:.2f} keV but model "
                f"{model.model_id} needs {lo:.2f}-{hi:.2f} keV; it cannot quantify these data"
            )
        self.resampled = True
        index, fraction = _cumulative_weights(source_edges, bin_edges_keV)
        self._index = index
        self._fraction = fraction.astype(np.float64)
        warnings.warn(
            f"the data's energy axis ({n_channels} channels, "
            f"{energy[0]:.4f}-{energy[-1]:.4f} keV) differs from model {model.model_id}'s "
            f"({len(model_energy)} channels, {model_energy[0]:.4f}-{model_energy[-1]:.4f} keV); "
            "counts are resampled onto the model grid",
            UserWarning,
            stacklevel=4,
        )

    def binned(self, model: QuantModel, block: torch.Tensor) -> torch.Tensor:
        """Binned counts ``(n, K)`` for raw counts ``(n, C)`` (float32 tensor)."""
        import torch

        if not self.resampled:
            if block.shape[1] == self.region_channels:  # already cut to the input region
                return model.network.features.bin_region(block)
            return model.network.features.bin_counts(block)
        # float64 cumulative sums: differences of large sums lose no counts
        data = block.double()
        zero = torch.zeros((data.shape[0], 1), dtype=data.dtype, device=data.device)
        cumulative = torch.cat([zero, torch.cumsum(data, dim=1)], dim=1)
        index = torch.as_tensor(self._index, device=data.device)
        fraction = torch.as_tensor(self._fraction, device=data.device)
        low, high = cumulative[:, index], cumulative[:, index + 1]
        at_edges = low + fraction * (high - low)
        return torch.diff(at_edges, dim=1).clamp_min(0.0).float()


# ---------------------------------------------------------------------------
# fit quality
# ---------------------------------------------------------------------------
#: Grid of the expected-deviance lookup table: log10(lambda) from -4 to 4.
_LOG_LAMBDA_MIN, _LOG_LAMBDA_MAX, _TABLE_SIZE = -4.0, 4.0, 1601


def _expected_deviance_table() -> np.ndarray:
    """``E[D(lambda)]`` of the Poisson unit deviance on a fine uniform grid of log10(lambda).

    ``D = 2 (x log(x / lambda) - (x - lambda))`` with ``x ~ Poisson(lambda)``;
    its mean is 1 for large lambda and falls to 0 as lambda -> 0, so dividing the
    deviance by it makes fit quality about 1 at every count level. The grid is
    fine enough (0.005 decades) for a nearest-neighbour lookup.
    """
    from scipy.stats import poisson

    log_lambda = np.linspace(_LOG_LAMBDA_MIN, _LOG_LAMBDA_MAX, _TABLE_SIZE)
    values = np.empty_like(log_lambda)
    for i, lam in enumerate(10.0**log_lambda):
        upper = int(lam + 12.0 * math.sqrt(lam) + 30.0)
        x = np.arange(upper + 1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(x > 0, x * np.log(x / lam), 0.0) - (x - lam)
        values[i] = float(np.sum(poisson.pmf(x, lam) * 2.0 * term))
    return values


_DEVIANCE_TABLE: np.ndarray | None = None


def poisson_fit_quality(
    observed: torch.Tensor, expected: torch.Tensor, n_parameters: int
) -> torch.Tensor:
    """Poisson deviance over its expectation, per spectrum.

    Parameters
    ----------
    observed
        Counts ``(N, K)``.
    expected
        Expected counts ``(N, K)`` with the same total as ``observed`` per row
        (the ``x - lambda`` terms of the deviance then cancel in the sum).
    n_parameters
        Parameters fitted to the spectrum; the expectation is reduced by the
        factor ``(K - n_parameters) / K`` (degrees of freedom).

    Returns
    -------
    Tensor
        ``(N,)``; about 1 when ``observed`` is Poisson noise around ``expected``.
    """
    import torch

    global _DEVIANCE_TABLE
    if _DEVIANCE_TABLE is None:
        _DEVIANCE_TABLE = _expected_deviance_table()
    log_expected = torch.log(expected.clamp_min(1e-12))
    # sum over bins of 2 (x log x - x log lambda); sum(x - lambda) = 0 by construction
    deviance = 2.0 * (torch.xlogy(observed, observed) - observed * log_expected).sum(dim=1)
    step = (_LOG_LAMBDA_MAX - _LOG_LAMBDA_MIN) / (_TABLE_SIZE - 1)
    scale = 1.0 / (math.log(10.0) * step)
    index = (log_expected * scale - _LOG_LAMBDA_MIN / step).round_().clamp_(0, _TABLE_SIZE - 1)
    table = torch.as_tensor(_DEVIANCE_TABLE, dtype=expected.dtype, device=expected.device)
    mean_deviance = table[index.long()].sum(dim=1)
    n_bins = observed.shape[1]
    dof_factor = max(n_bins - n_parameters, 1) / n_bins
    return deviance / (mean_deviance * dof_factor).clamp_min(1e-12)


class SimulatorForwardModel:
    """Expected binned spectrum (fractions summing to 1) for compositions in wt%.

    Wraps the physics simulator (:class:`napari_xrfquant.physics.XRFSimulator`)
    for the model's instrument and bins its output like the network's input.
    """

    def __init__(self, model: QuantModel, device: str) -> None:
        import torch

        from napari_xrfquant.physics import XRFSimulator

        self.simulator = XRFSimulator(
            model.elements, instrument=model.instrument, device=device, dtype=torch.float32
        )
        self.simulator.eval()
        self.features = model.network.features
        self.device = device

    def __call__(self, wt_percent: torch.Tensor) -> torch.Tensor:
        """``(N, E)`` wt% -> ``(N, K)`` binned fractions summing to 1."""
        import torch

        with torch.inference_mode():
            fractions = (wt_percent.to(self.device) / 100.0).clamp_min(0.0)
            spectrum = self.simulator(fractions)
            binned = self.features.bin_counts(spectrum.to(wt_percent.device, torch.float32))
            return binned / binned.sum(dim=1, keepdim=True).clamp_min(1e-30)


def forward_model_for(model: QuantModel, device: str) -> Callable[[Any], Any] | None:
    """The cached forward model of ``model`` on ``device``; None if no simulator exists."""
    key = f"forward_model:{device}"
    if key not in model._cache:
        try:
            model._cache[key] = SimulatorForwardModel(model, device)
        except ImportError:
            warnings.warn(
                "the physics simulator is not available; fit quality is NaN",
                UserWarning,
                stacklevel=3,
            )
            model._cache[key] = None
    return model._cache[key]


def _decoder_forward(model: QuantModel) -> Callable[[Any], Any] | None:
    """The bundle's learned simulator emulator (cheap), or None if it has none."""
    decoder = model.network.decoder
    return None if decoder is None else decoder


# ---------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------
def resolve_device(device: str | None) -> str:
    """``"auto"``/None -> ``"cuda"`` when available, else ``"cpu"``; validate others.

    Raises
    ------
    XRFQuantError
        If a CUDA device is asked for and none is available, or the name is unknown.
    """
    import torch

    name = (device or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise XRFQuantError(f"device {device!r}: no CUDA GPU is available (use 'cpu')")
        return name
    if name == "cpu":
        return "cpu"
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise XRFQuantError(f"device {device!r}: Apple MPS is not available (use 'cpu')")
        return name
    raise XRFQuantError(f"unknown device {device!r} (use 'auto', 'cpu' or 'cuda')")


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc)


# ---------------------------------------------------------------------------
# chunking
# ---------------------------------------------------------------------------
def _is_dask(data: Any) -> bool:
    return type(data).__module__.split(".")[0] == "dask"


def _slabs(data: Any, spectra_per_slab: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_spectrum, counts (n, C))`` in C order over the leading axes.

    Slabs are whole rows of the first axis, about ``spectra_per_slab`` spectra
    each, so their spectra are consecutive in the flattened output. A dask array
    is computed one slab at a time and a non-contiguous numpy view is copied one
    slab at a time: memory stays bounded for cubes of any size.
    """
    n_channels = int(data.shape[-1])
    if data.ndim == 1:
        yield 0, np.asarray(data).reshape(1, n_channels)
        return
    per_row = int(np.prod(data.shape[1:-1], dtype=np.int64))
    rows = max(1, spectra_per_slab // max(per_row, 1))
    if _is_dask(data):
        data = data.rechunk({0: rows, **{axis: -1 for axis in range(1, data.ndim)}})
    for row in range(0, int(data.shape[0]), rows):
        slab = data[row : row + rows]
        if _is_dask(slab):
            slab = slab.compute()
        yield row * per_row, np.asarray(slab).reshape(-1, n_channels)


def _as_array(data: Any) -> Any:
    if _is_dask(data) or isinstance(data, np.ndarray):
        return data
    if type(data).__module__.split(".")[0] == "torch":
        return data.detach().cpu().numpy()
    return np.asarray(data)


def iter_quantify(
    data: Any,
    energy_keV: np.ndarray | None = None,
    model: Any = None,
    device: str = "auto",
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> Generator[tuple[int, int], None, QuantResult]:
    """Quantify spectra chunk by chunk, yielding ``(done, total)`` after each chunk.

    Same arguments as :func:`quantify`; the generator's return value
    (``StopIteration.value``, or ``result = yield from iter_quantify(...)``) is the
    :class:`QuantResult`. Closing the generator between chunks cancels the work.
    """
    import torch

    from napari_xrfquant.models.bundle import load_model

    started = time.perf_counter()
    quant_model = load_model(model)
    array = _as_array(data)
    if array.ndim < 1 or array.shape[-1] < 2:
        raise XRFQuantError(
            f"data of shape {tuple(array.shape)} hold no spectra (need [..., channels])"
        )
    if not _is_dask(array) and not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise XRFQuantError(f"data of type {array.dtype} are not counts")
    n_channels = int(array.shape[-1])
    input_map = _InputMap(quant_model, energy_keV, n_channels)
    lead_shape = tuple(int(s) for s in array.shape[:-1])
    total = int(np.prod(lead_shape, dtype=np.int64))
    run_device = resolve_device(device)
    if batch_size is not None and int(batch_size) < 1:
        raise XRFQuantError(f"batch_size must be a positive number of spectra, got {batch_size}")
    chunk = int(batch_size or (DEFAULT_CPU_BATCH if run_device == "cpu" else DEFAULT_CUDA_BATCH))

    n_elements = len(quant_model.elements)
    outputs = (
        np.full((total, n_elements), np.nan, dtype=np.float32),
        np.full((total, n_elements), np.nan, dtype=np.float32),
        np.full((total,), np.nan, dtype=np.float32),
        np.zeros((total,), dtype=np.float32),
    )
    original_device = next(quant_model.network.parameters()).device
    quant_model.network.to(run_device)
    done = 0
    try:
        for first, slab in _slabs(array, chunk):
            start = 0
            while start < slab.shape[0]:
                stop = min(start + chunk, slab.shape[0])
                try:
                    results = _quantify_chunk(quant_model, input_map, slab[start:stop], run_device)
                except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                    if run_device == "cpu" or not _is_out_of_memory(exc):
                        raise
                    run_device, chunk = _after_out_of_memory(quant_model, chunk)
                    continue
                for target, values in zip(outputs, results, strict=True):
                    target[first + start : first + stop] = values
                done += stop - start
                start = stop
                if progress is not None:
                    progress(done, total)
                yield done, total
    finally:
        quant_model.network.to(original_device)
    concentrations, uncertainty, fit_quality, total_counts = outputs
    return QuantResult(
        concentrations=concentrations.reshape((*lead_shape, n_elements)),
        uncertainty=uncertainty.reshape((*lead_shape, n_elements)),
        fit_quality=fit_quality.reshape(lead_shape),
        elements=quant_model.elements,
        model_id=quant_model.model_id,
        device=run_device,
        seconds=time.perf_counter() - started,
        resampled=input_map.resampled,
        total_counts=total_counts.reshape(lead_shape),
    )


def _after_out_of_memory(model: QuantModel, chunk: int) -> tuple[str, int]:
    """Halve the chunk after a GPU out-of-memory error, or move to the CPU."""
    import torch

    torch.cuda.empty_cache()
    if chunk > MIN_CUDA_BATCH:
        chunk = max(chunk // 2, MIN_CUDA_BATCH)
        warnings.warn(
            f"GPU out of memory; retrying with {chunk} spectra per chunk", UserWarning, stacklevel=3
        )
        return "cuda", chunk
    warnings.warn(
        "GPU out of memory even with small chunks; continuing on the CPU", UserWarning, stacklevel=3
    )
    model.network.to("cpu")
    return "cpu", DEFAULT_CPU_BATCH


def _quantify_chunk(
    model: QuantModel, input_map: _InputMap, counts: np.ndarray, device: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concentrations, sigma, fit quality and total counts for ``(n, C)`` raw counts."""
    import torch

    with torch.inference_mode():
        if not input_map.resampled:
            # only the channels the network reads are converted to float32
            counts = counts[:, input_map.region[0] : input_map.region[1]]
        block = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32)).to(device)
        binned = input_map.binned(model, block)
        mean, sigma = model.predict_binned(binned)
        totals = binned.sum(dim=1)
        fit = torch.full_like(totals, float("nan"))
        forward = _decoder_forward(model) or forward_model_for(model, device)
        if forward is not None:
            expected = forward(mean) * totals[:, None]
            fit = poisson_fit_quality(binned, expected, n_parameters=len(model.elements))
        empty = totals <= 0
        if bool(empty.any()):
            mean[empty] = float("nan")
            sigma[empty] = float("nan")
            fit[empty] = float("nan")
        return (
            mean.float().cpu().numpy(),
            sigma.float().cpu().numpy(),
            fit.float().cpu().numpy(),
            totals.float().cpu().numpy(),
        )


def quantify(
    data: Any,
    energy_keV: np.ndarray | None = None,
    model: Any = None,
    device: str = "auto",
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> QuantResult:
    """Quantify every spectrum of ``data``: wt% per element, 1-sigma and fit quality.

    Parameters
    ----------
    data
        Counts ``[..., C]``: one spectrum, a list of spectra or a cube ``H x W x C``;
        numpy, dask (processed block by block) or anything ``np.asarray`` accepts.
    energy_keV
        Channel-centre energies of ``data`` (keV). None means the model's own grid;
        another grid is resampled onto the model's (counts conserved, with a warning).
    model
        A :class:`~napari_xrfquant.models.bundle.QuantModel`, a bundle name or
        path, or None for the bundled default.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``. On CUDA
        out-of-memory the chunk is halved, then the CPU takes over (with a warning).
    batch_size
        Spectra per chunk (default 16384 on the CPU, 65536 on a GPU).
    progress
        Called as ``progress(done, total)`` after each chunk.

    Returns
    -------
    QuantResult
        ``.concentrations [..., E]`` wt%, ``.uncertainty [..., E]`` 1-sigma wt%,
        ``.fit_quality [...]``, ``.elements``, ``.model_id``.

    Raises
    ------
    ModelBundleError
        If the model cannot be loaded or the data's energy range does not cover
        the range the model reads.
    XRFQuantError
        For data without a channel axis, a mismatched energy axis or an unknown device.
    """
    generator = iter_quantify(data, energy_keV, model, device, batch_size, progress)
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
