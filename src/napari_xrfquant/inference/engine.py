"""Per-pixel quantification of spectra and cubes: chunked, device-aware, resampling.

:func:`quantify` turns counts ``[..., C]`` (a cube ``H x W x C``, numpy or dask)
into element maps in wt% with a calibrated 1-sigma and a fit-quality value per
spectrum (:mod:`.fit_quality`). :func:`iter_quantify` is the same computation as a
generator that yields :class:`~napari_xrfquant.jobs.Progress` after every
chunk and returns the result, so that a GUI worker can show progress and cancel
between chunks.

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

import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.counts import check_counts_scale, counts_sample, infer_counts_scale
from napari_xrfquant.inference.devices import (
    DEFAULT_CPU_BATCH,
    DEFAULT_CUDA_BATCH,
    after_out_of_memory,
    is_out_of_memory,
    resolve_device,
)
from napari_xrfquant.inference.fit_quality import poisson_fit_quality
from napari_xrfquant.inference.forward import forward_model
from napari_xrfquant.inference.fused import FusedCPUPass, supports
from napari_xrfquant.inference.refine import REFINE_BATCH, Refiner
from napari_xrfquant.inference.resample import ModelInput
from napari_xrfquant.jobs import Progress, drive
from napari_xrfquant.results.result import QuantResult

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.models.bundle import QuantModel



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
    refine: int = 0,
    instrument: Instrument | None = None,
    counts_scale: Any = None,
) -> Generator[Progress, None, QuantResult]:
    """Quantify spectra chunk by chunk, yielding :class:`Progress` after each chunk.

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
    input_map = ModelInput(quant_model, energy_keV, n_channels)
    lead_shape = tuple(int(s) for s in array.shape[:-1])
    total = int(np.prod(lead_shape, dtype=np.int64))
    scale = check_counts_scale(
        infer_counts_scale(counts_sample(array)) if counts_scale is None else counts_scale,
        lead_shape,
    )
    flat_scale = scale.reshape(-1) if isinstance(scale, np.ndarray) else None
    run_device = resolve_device(device)
    if batch_size is not None and int(batch_size) < 1:
        raise XRFQuantError(f"batch_size must be a positive number of spectra, got {batch_size}")
    chunk = int(batch_size or (DEFAULT_CPU_BATCH if run_device == "cpu" else DEFAULT_CUDA_BATCH))
    refiner = None
    if int(refine) < 0:
        raise XRFQuantError(f"refine must be 0 or a positive number of steps, got {refine}")
    if refine:
        refiner = Refiner(quant_model, energy_keV, n_channels, run_device, instrument)
        # a refined chunk takes seconds: smaller chunks keep progress and cancel responsive
        chunk = min(chunk, 2 * REFINE_BATCH)

    n_elements = len(quant_model.elements)
    outputs = (
        np.full((total, n_elements), np.nan, dtype=np.float32),
        np.full((total, n_elements), np.nan, dtype=np.float32),
        np.full((total,), np.nan, dtype=np.float32),
        np.zeros((total,), dtype=np.float32),
    )
    original_device = next(quant_model.network.parameters()).device
    quant_model.network.to(run_device)
    fused = (
        FusedCPUPass(quant_model, input_map, threads=torch.get_num_threads())
        if supports(quant_model, run_device, refine) else None
    )
    done = 0
    try:
        for first, slab in _slabs(array, chunk):
            start = 0
            while start < slab.shape[0]:
                stop = min(start + chunk, slab.shape[0])
                block = slab[start:stop]
                if flat_scale is not None:  # counts = data x the scale of each spectrum
                    factor = flat_scale[first + start : first + stop, None]
                    block = block.astype(np.float32) * factor.astype(np.float32)
                elif scale != 1.0:
                    block = block.astype(np.float32) * np.float32(scale)
                try:
                    results = (
                        fused(block) if fused is not None else
                        _quantify_chunk(
                            quant_model, input_map, block, run_device, refiner, int(refine)
                        )
                    )
                except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                    if run_device == "cpu" or not is_out_of_memory(exc):
                        raise
                    run_device, chunk = after_out_of_memory(quant_model.network, chunk)
                    continue
                for target, values in zip(outputs, results, strict=True):
                    target[first + start : first + stop] = values
                done += stop - start
                start = stop
                yield Progress(done, total, "quantify")
    finally:
        quant_model.network.to(original_device)
        if fused is not None:
            fused.close()
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
        counts_scale=scale,
    )


def _quantify_chunk(
    model: QuantModel,
    input_map: ModelInput,
    raw: np.ndarray,
    device: str,
    refiner: Refiner | None = None,
    steps: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concentrations, sigma, fit quality and total counts for ``(n, C)`` raw counts."""
    import torch

    with torch.inference_mode():
        # only the channels the network reads are converted to float32
        counts = input_map.select(raw)
        block = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32)).to(device)
        binned = input_map.binned(model, block)
        mean, sigma = model.predict_binned(binned)
        totals = binned.sum(dim=1)
        expected = forward_model(model, device)(mean) * totals[:, None]
        fit = poisson_fit_quality(binned, expected, n_parameters=len(model.elements))
        if refiner is not None:
            refined = refiner.refine(raw, mean.float().cpu().numpy(), steps)
            mean, sigma, fit = (torch.as_tensor(v, device=device) for v in refined)
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
    progress: Callable[[Progress], Any] | None = None,
    refine: int = 0,
    instrument: Instrument | None = None,
    counts_scale: Any = None,
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
        Called with a :class:`~napari_xrfquant.jobs.Progress` after each chunk.
    refine
        Steps of physics refinement (:mod:`.refine`): the network's composition
        starts a Poisson maximum-likelihood fit of each spectrum with the
        simulator; sigma and fit quality then come from that fit. 0: none.
    instrument
        With ``refine``: the (calibrated) instrument to fit with; default the
        model's. Its channels are the data's channels.
    counts_scale
        What turns the data into counts (``counts = data * counts_scale``): a
        number, or one value per spectrum (``data.shape[:-1]``, e.g. an I0 map
        for I0-normalised data). None: integer-valued data are counts, spectra
        that sum to 1 are noise-free expectations, other data are used as they
        are, with a :class:`~.counts.CountsWarning` (:mod:`.counts`).

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
    generator = iter_quantify(
        data, energy_keV, model, device, batch_size, refine, instrument, counts_scale
    )
    return drive(generator, progress)
