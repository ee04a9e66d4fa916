"""Torch devices: choosing one, and falling back when a GPU runs out of memory."""

from __future__ import annotations

import warnings
from typing import Any

from napari_xrfquant.errors import XRFQuantError

#: Spectra per chunk on the CPU: large enough that matrix products run near
#: peak speed, small enough that a float32 chunk of 1024 channels stays at 64 MB.
DEFAULT_CPU_BATCH = 16384
#: Spectra per chunk on a GPU.
DEFAULT_CUDA_BATCH = 65536
#: Below this chunk size an out-of-memory GPU gives up and the CPU takes over.
MIN_CUDA_BATCH = 512


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


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU running out of memory."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def after_out_of_memory(network: Any, chunk: int) -> tuple[str, int]:
    """Halve the chunk after a GPU out-of-memory error, or move ``network`` to the CPU.

    Returns the device and chunk size to carry on with.
    """
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
    network.to("cpu")
    return "cpu", DEFAULT_CPU_BATCH
