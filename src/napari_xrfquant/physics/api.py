"""Public function :func:`simulate`: spectra of bulk samples, numpy or torch."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_xrfquant.errors import SimulationError
from napari_xrfquant.instrument import Instrument, reference_instrument
from napari_xrfquant.physics import _xraydata as xd

#: Compositions whose sum differs from 100 wt% by more than this are normalised
#: with a warning; closer ones are normalised silently (rounding in tables).
SUM_TOLERANCE_WT_PERCENT = 0.5

@functools.lru_cache(maxsize=16)
def _cached_simulator(elements: tuple[str, ...], instrument: Instrument, dtype: Any, device: str):
    from napari_xrfquant.physics.simulator import XRFSimulator

    return XRFSimulator(list(elements), instrument=instrument, device=device, dtype=dtype)


def _validate_numpy(compositions: Any, n_elements: int) -> np.ndarray:
    try:
        array = np.array(compositions, dtype=np.float64)
    except (TypeError, ValueError):
        raise SimulationError("compositions must be numbers (wt%)") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n_elements:
        raise SimulationError(
            f"compositions have shape {array.shape}; expected (N, {n_elements}) wt% "
            f"for {n_elements} elements"
        )
    if not np.all(np.isfinite(array)):
        rows = np.unique(np.nonzero(~np.isfinite(array))[0])
        raise SimulationError(f"compositions contain NaN or infinite values (rows {rows[:5]})")
    if np.any(array < 0):
        rows = np.unique(np.nonzero(array < 0)[0])
        raise SimulationError(f"compositions contain negative wt% (rows {rows[:5].tolist()})")
    return array


def _normalise_wt_percent(array: np.ndarray) -> np.ndarray:
    total = array.sum(axis=1)
    if np.any(total <= 0):
        rows = np.nonzero(total <= 0)[0]
        raise SimulationError(f"compositions sum to 0 wt% (rows {rows[:5].tolist()})")
    off = np.abs(total - 100.0) > SUM_TOLERANCE_WT_PERCENT
    if np.any(off):
        worst = float(total[np.argmax(np.abs(total - 100.0))])
        warnings.warn(
            f"{int(off.sum())} composition(s) do not sum to 100 wt% (e.g. {worst:.4g}); "
            "normalised to 100 wt%",
            UserWarning,
            stacklevel=3,
        )
    return array / total[:, None]


def _counts_array(counts: Any, n: int) -> np.ndarray:
    totals = np.asarray(counts, dtype=np.float64)
    if totals.ndim == 0:
        totals = np.full(n, float(totals))
    if totals.shape != (n,):
        raise SimulationError(f"counts must be a scalar or have one value per spectrum ({n})")
    if not np.all(np.isfinite(totals)) or np.any(totals < 0):
        raise SimulationError("counts must be finite and non-negative")
    return totals


def simulate(
    compositions: Any,
    elements: Sequence[str] | str,
    instrument: Instrument | None = None,
    counts: float | Sequence[float] | np.ndarray | None = None,
    seed: int | None = None,
) -> Any:
    """Simulate XRF spectra of bulk samples.

    Parameters
    ----------
    compositions
        ``(N, E)`` (or ``(E,)``) concentrations in wt% of ``elements``. A row not
        summing to 100 wt% is normalised to 100 (with a warning when it is off by
        more than :data:`SUM_TOLERANCE_WT_PERCENT`). A numpy array (or list)
        gives a numpy result; a torch tensor gives a tensor on the same device,
        differentiable with respect to the compositions.
    elements
        Element symbols (Z = 11-92) or a comma-separated string.
    instrument
        Set-up; None for the reference instrument.
    counts
        None for the expected spectrum normalised to sum 1; otherwise the total
        counts per spectrum (scalar or ``(N,)``) and Poisson-distributed counts
        are returned.
    seed
        Seed of the Poisson draw.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(N, C)`` spectra (float64 for numpy input; the input dtype for tensors).

    Raises
    ------
    SimulationError
        For unknown elements, compositions of the wrong shape, negative or
        non-finite values, rows summing to zero, or a beam below every edge.

    Examples
    --------
    >>> spectra = simulate([[58.56, 3.90, 35.65, 0, 1.891]], ["Au", "Ag", "Cu", "Ni", "Zn"])
    >>> spectra.shape
    (1, 1024)
    """
    import torch

    symbols, _ = xd.parse_elements(elements, light=True)
    inst = instrument if instrument is not None else reference_instrument()
    if isinstance(compositions, torch.Tensor):
        return _simulate_torch(compositions, symbols, inst, counts, seed)
    array = _normalise_wt_percent(_validate_numpy(compositions, len(symbols)))
    sim = _cached_simulator(symbols, inst, torch.float64, "cpu")
    with torch.no_grad():
        expected = sim(torch.from_numpy(array)).numpy()
    expected = np.clip(expected, 0.0, None)
    expected /= expected.sum(axis=1, keepdims=True)
    if counts is None:
        return expected
    totals = _counts_array(counts, expected.shape[0])
    rng = np.random.default_rng(seed)
    return rng.poisson(expected * totals[:, None]).astype(np.float64)


def _simulate_torch(
    compositions: Any, symbols: tuple[str, ...], inst: Instrument, counts: Any, seed: int | None
) -> Any:
    import torch

    x = compositions
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != len(symbols):
        raise SimulationError(
            f"compositions have shape {tuple(x.shape)}; expected (N, {len(symbols)}) wt%"
        )
    if not bool(torch.isfinite(x).all()):
        raise SimulationError("compositions contain NaN or infinite values")
    if bool((x < 0).any()):
        raise SimulationError("compositions contain negative wt%")
    total = x.sum(dim=1, keepdim=True)
    if bool((total <= 0).any()):
        raise SimulationError("compositions sum to 0 wt%")
    if bool((torch.abs(total - 100.0) > SUM_TOLERANCE_WT_PERCENT).any()):
        warnings.warn(
            "compositions do not sum to 100 wt%; normalised to 100 wt%", UserWarning, stacklevel=3
        )
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    sim = _cached_simulator(symbols, inst, dtype, str(x.device))
    expected = sim((x / total).to(dtype))
    if counts is None:
        return expected
    totals = torch.as_tensor(
        _counts_array(
            counts.detach().cpu().numpy() if isinstance(counts, torch.Tensor) else counts,
            x.shape[0],
        ),
        dtype=dtype,
        device=x.device,
    )
    generator = torch.Generator(device=x.device)
    generator.manual_seed(int(seed) if seed is not None else int(torch.seed() % (2**63)))
    rates = expected.detach().clamp_min(0.0) * totals[:, None]
    return torch.poisson(rates, generator=generator)
