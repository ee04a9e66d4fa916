"""The CPU fast path of quantification: one fused pass over preallocated buffers.

For the bundled kind of model (an MLP trunk, the Gaussian head and the
emulator decoder, :mod:`napari_xrfquant.models.architectures`) on the CPU,
:class:`FusedCPUPass` computes what the general path computes -- binned
counts, network inputs, mean and 1-sigma, the decoder's expected spectrum and
the fit quality -- with the same formulas, but:

- every intermediate array is allocated once per quantification and reused for
  every block of spectra. Fresh tens-of-megabyte temporaries cost a page fault
  per 4 KiB on first touch; on this project's 2-core machines that halved the
  speed of every matrix product and element-wise pass;
- matrix products go to numpy's BLAS with ``out=``; on the AMD CPUs we
  measured, OpenBLAS ran these shapes at 120-137 GFLOPS and torch's MKL at
  67-79 GFLOPS;
- counts are binned on their own integer type (uint16 from the camera) into
  float32, not converted channel by channel first;
- blocks run on every core side by side (numpy's element-wise passes are
  single-threaded), each with a one-thread BLAS.

The numbers equal the general path's within float32 rounding (tested); the
general path stays for other architectures, refinement and the GPU.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant.inference.fit_quality import (
    _LOG_LAMBDA_MAX,
    _LOG_LAMBDA_MIN,
    _TABLE_SIZE,
    expected_deviance_table,
)

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.inference.resample import ModelInput
    from napari_xrfquant.models.bundle import QuantModel

#: Spectra per pass: buffers of a few MB stay in cache and below glibc's mmap threshold.
FUSED_BLOCK = 2048


def supports(model: QuantModel, device: str, refine: int) -> bool:
    """Whether :class:`FusedCPUPass` can quantify with ``model`` here."""
    from torch import nn

    from napari_xrfquant.models.architectures import SpectrumDecoder
    from napari_xrfquant.models.trunks.mlp import MLPTrunk

    network = model.network
    return (
        device == "cpu"
        and not refine
        and isinstance(network.trunk, MLPTrunk)
        and isinstance(network.decoder, SpectrumDecoder)
        and all(isinstance(m, (nn.Linear, nn.ReLU)) for m in network.trunk.layers)
        and all(isinstance(m, (nn.Linear, nn.SiLU)) for m in network.decoder.layers)
    )


def _linear_layers(sequential: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W^T, b)`` float32 numpy pairs of the Linear layers, in order."""
    from torch import nn

    return [
        (np.ascontiguousarray(m.weight.detach().cpu().numpy().T, dtype=np.float32),
         m.bias.detach().cpu().numpy().astype(np.float32))
        for m in sequential
        if isinstance(m, nn.Linear)
    ]


class FusedCPUPass:
    """Quantify blocks of spectra with reused buffers (see the module notes).

    Parameters
    ----------
    model
        A model for which :func:`supports` is true.
    input_map
        How the data's channels reach the model's bins.
    threads
        Blocks run side by side (default 1; the engine gives torch's thread count).
    """

    def __init__(self, model: QuantModel, input_map: ModelInput, threads: int = 1) -> None:
        network = model.network
        features = network.features
        self.model = model
        self.input_map = input_map
        self.features = features
        self.n_elements = len(model.elements)
        self.n_bins = int(features.n_features)
        self.runs = list(features.runs)
        self.sqrt = features.spec.scale == "sqrt"
        self.mean = features.feature_mean.cpu().numpy().astype(np.float32)
        self.inverse_std = (1.0 / features.feature_std.cpu().numpy()).astype(np.float32)
        self.keep = features.keep.cpu().numpy().astype(np.float32) if features.excluding else None
        spec = features.spec
        self.counts_center = np.float32(spec.log10_counts_center)
        self.counts_scale = np.float32(spec.log10_counts_scale)
        self.trunk = _linear_layers(network.trunk.layers)
        self.head_weight, self.head_bias = _linear_layers([network.head.linear])[0]
        self.head = network.head
        if network.decoder is None:
            raise ValueError("the fused pass needs a model with a decoder (see supports())")
        self.decoder = _linear_layers(network.decoder.layers)
        self.table = expected_deviance_table().astype(np.float32)
        step = (_LOG_LAMBDA_MAX - _LOG_LAMBDA_MIN) / (_TABLE_SIZE - 1)
        self.index_scale = np.float32(1.0 / (math.log(10.0) * step))
        self.index_offset = np.float32(_LOG_LAMBDA_MIN / step)
        self.dof_factor = max(self.n_bins - self.n_elements, 1) / self.n_bins
        self._local = threading.local()  # buffers of each thread that runs blocks
        self.threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None
        self._blas: Any = None

    def _buffer(self, name: str, n: int, width: int, dtype: Any = np.float32) -> np.ndarray:
        """The first ``n`` rows of this thread's reused ``(FUSED_BLOCK, width)`` array."""
        buffers = self._local.__dict__.setdefault("buffers", {})
        array = buffers.get(name)
        if array is None or array.shape[1] != width or array.dtype != dtype:
            array = np.empty((FUSED_BLOCK, width), dtype=dtype)
            buffers[name] = array
        return array[:n]

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Concentrations, sigma, fit quality and total counts for raw counts ``(n, C)``.

        With ``threads > 1`` blocks run side by side, each thread with its own
        buffers and a one-thread BLAS: numpy's element-wise passes then use
        every core too, not only the matrix products.
        """
        blocks = [raw[i : i + FUSED_BLOCK] for i in range(0, len(raw), FUSED_BLOCK)]
        if self.threads == 1 or len(blocks) == 1:
            parts = [self._block(block) for block in blocks]
        else:
            from threadpoolctl import ThreadpoolController

            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="xrfquant-fused")
                # found once: looking up the loaded BLAS libraries takes milliseconds a call
                self._blas = ThreadpoolController()
            with self._blas.limit(limits=1, user_api="blas"):
                parts = list(self._pool.map(self._block, blocks))
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the block threads (they are started on first use)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # -- one block ------------------------------------------------------------
    # numpy and scipy only, apart from the head's few columns: a torch element-wise
    # op runs on OpenMP threads that fight OpenBLAS's for the same two cores.
    def _binned(self, raw: np.ndarray) -> np.ndarray:
        n = raw.shape[0]
        binned = self._buffer("binned", n, self.n_bins)
        if self.input_map.resampled or not np.issubdtype(raw.dtype, np.number):
            import torch

            block = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))
            binned[...] = self.input_map.binned(self.model, block).numpy()
            return binned
        first = self.features.first_channel
        column = 0
        for start, stop, width in self.runs:
            region = raw[:, first + start : first + stop]
            count = (stop - start) // width
            target = binned[:, column : column + count]
            # a strided add per channel of the bin: numpy's reduce over a short last
            # axis is several times slower
            target[...] = region[:, 0::width]
            for offset in range(1, width):
                np.add(target, region[:, offset::width], out=target)
            column += count
        if self.keep is not None:
            binned *= self.keep
        return binned

    def _block(self, raw: np.ndarray) -> tuple[np.ndarray, ...]:
        n, bins = raw.shape[0], self.n_bins
        binned = self._binned(raw)
        total = binned.sum(axis=1, dtype=np.float32)
        # network inputs: sqrt(fraction), standardised, and the scaled log10 counts
        inputs = self._buffer("inputs", n, bins + 1)
        x = inputs[:, :bins]
        floored = np.maximum(total, np.float32(1.0))
        np.divide(binned, floored[:, None], out=x)
        if self.sqrt:
            np.sqrt(np.maximum(x, 0, out=x), out=x)
        x -= self.mean
        x *= self.inverse_std
        log10_total = np.log10(floored)
        inputs[:, bins] = (log10_total - self.counts_center) / self.counts_scale
        hidden = inputs
        for i, (weight, bias) in enumerate(self.trunk):
            hidden = self._dense(f"trunk{i}", hidden, weight, bias)
            np.maximum(hidden, 0, out=hidden)
        raw_head = hidden @ self.head_weight
        raw_head += self.head_bias
        mean, sigma = self._head_outputs(raw_head)
        if self.model.calibration.scale is not None:
            sigma = sigma * self.model.calibration.factors(log10_total, self.n_elements)
        fit = self._fit_quality(binned, total, mean)
        empty = total <= 0
        if empty.any():
            mean[empty] = sigma[empty] = fit[empty] = np.nan
        return mean, sigma, fit, total

    def _head_outputs(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`QuantHead.outputs <napari_xrfquant.models.architectures.QuantHead.outputs>`
        in numpy (a test holds the two equal)."""
        from napari_xrfquant.models.architectures import MAX_SIGMA_WT, MIN_SIGMA_WT

        logits, log_sigma = raw[:, : self.n_elements], raw[:, self.n_elements :]
        if self.head.sum_to_100:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            mean = np.float32(100.0) * shifted / shifted.sum(axis=1, keepdims=True)
        else:
            mean = np.float32(10.0) * np.logaddexp(np.float32(0.0), logits)  # softplus
        sigma = np.exp(np.clip(log_sigma, np.float32(math.log(MIN_SIGMA_WT)),
                               np.float32(math.log(MAX_SIGMA_WT))))
        return mean.astype(np.float32), sigma.astype(np.float32)

    def _dense(self, name: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        out = self._buffer(name, x.shape[0], weight.shape[1])
        np.matmul(x, weight, out=out)
        out += bias
        return out

    def _fit_quality(self, binned: np.ndarray, total: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Poisson deviance over its expectation, as :func:`~.fit_quality.poisson_fit_quality`."""
        n, bins = binned.shape
        hidden = mean / np.float32(100.0)
        last = len(self.decoder) - 1
        for i, (weight, bias) in enumerate(self.decoder):
            hidden = self._dense(f"decoder{i}", hidden, weight, bias)
            if i < last:  # SiLU: x / (1 + exp(-x)), fewer passes than scipy's expit
                gate = self._buffer(f"gate{i}", n, hidden.shape[1])
                np.negative(hidden, out=gate)
                with np.errstate(over="ignore"):  # exp(-x) = inf: x / inf = 0, SiLU's limit
                    np.exp(gate, out=gate)
                gate += np.float32(1.0)
                hidden /= gate
        # lambda = softmax(z) x total, floored and logged as the general path does
        # (log_softmax + log total would add float32 errors of terms near 10)
        log_lambda = hidden
        scratch = self._buffer("scratch", n, bins)
        log_lambda -= log_lambda.max(axis=1, keepdims=True)
        np.exp(log_lambda, out=scratch)
        factor = total / scratch.sum(axis=1)
        np.multiply(scratch, factor[:, None], out=log_lambda)
        np.maximum(log_lambda, np.float32(1e-12), out=log_lambda)
        np.log(log_lambda, out=log_lambda)
        # x (log x - log lambda), x log x = 0 where x = 0, summed per spectrum: the
        # difference before the sum, as the general path, or float32 loses it
        np.equal(binned, 0, out=scratch)
        scratch += binned
        np.log(scratch, out=scratch)
        scratch -= log_lambda
        scratch *= binned
        deviance = np.float32(2.0) * scratch.sum(axis=1)
        # E[deviance]: the table at the nearest log10(lambda), as the general path looks it up
        np.multiply(log_lambda, self.index_scale, out=scratch)
        scratch -= self.index_offset
        np.rint(scratch, out=scratch)
        np.clip(scratch, 0, _TABLE_SIZE - 1, out=scratch)
        index = self._buffer("index", n, bins, np.intp)
        index[...] = scratch
        np.take(self.table, index, out=scratch)
        expected = scratch.sum(axis=1) * np.float32(self.dof_factor)
        return (deviance / np.maximum(expected, np.float32(1e-12))).astype(np.float32)
