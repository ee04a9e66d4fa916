"""The quantify job the GUI runs in a worker thread, free of Qt so it tests plainly.

:func:`quantify_job` wraps :func:`napari_xrfquant.inference.iter_quantify`: it
passes its :class:`~napari_xrfquant.progress.Progress` events through (the
worker stops at any of these yields when the user cancels) and returns a
:class:`JobOutcome` instead of raising, so the widget decides how each
failure is shown. A run on a GPU that still fails for lack of memory is
repeated on the CPU, announced by a :class:`Notice` yield.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

from napari_xrfquant.inference.devices import is_out_of_memory
from napari_xrfquant.progress import Progress


@dataclass(frozen=True)
class Notice:
    """A message for the user while the job goes on (shown as a warning)."""

    message: str


@dataclass
class JobOutcome:
    """How a job ended: ``result`` (a QuantResult) or ``error``."""

    result: Any = None
    error: BaseException | None = None
    device: str = "cpu"


def _run(
    data: Any,
    energy_keV: Any,
    model: Any,
    device: str,
    batch_size: int | None,
    refine: int = 0,
    counts_scale: Any = None,
) -> Generator[Progress, None, Any]:
    from napari_xrfquant.inference import iter_quantify

    generator = iter_quantify(
        data,
        energy_keV,
        model=model,
        device=device,
        batch_size=batch_size,
        refine=refine,
        counts_scale=counts_scale,
    )
    while True:
        try:
            event = next(generator)
        except StopIteration as stop:
            return stop.value
        try:
            yield event
        except GeneratorExit:
            # cancelled between chunks: let the core release what it holds
            generator.close()
            raise


def quantify_job(
    data: Any,
    energy_keV: Any,
    model: Any,
    device: str = "auto",
    batch_size: int | None = None,
    refine: int = 0,
    maps: Mapping[str, Any] | None = None,
) -> Generator[Progress | Notice, None, JobOutcome]:
    """Quantify a cube, yielding progress; return a :class:`JobOutcome`.

    Parameters
    ----------
    data
        Counts ``(H, W, C)``, numpy or dask.
    energy_keV
        Channel energies of ``data``.
    model
        A loaded model (or anything :func:`~napari_xrfquant.models.load_model` takes).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size
        Spectra per chunk (None: the core's default); smaller chunks mean a
        finer progress bar and a quicker Cancel.
    refine
        Steps of physics refinement per spectrum (0: the network alone).
    maps
        The file's per-pixel maps (``Cube.metadata["maps"]``): non-integer data
        with an I0 map are turned back into counts with it
        (:func:`~napari_xrfquant.inference.counts.resolve_counts_scale`).
    """
    from napari_xrfquant.inference.counts import counts_rule, counts_sample, decide_counts_scale

    # decided here, so that what the data are reaches the user as a Notice (a
    # worker's relayed warning can be lost when a short job ends first)
    try:
        scale, message = decide_counts_scale(None, data, maps)
        if scale is None:
            scale, message = counts_rule(counts_sample(data))
    except Exception as exc:
        return JobOutcome(error=exc, device=device)
    if message:
        yield Notice(message)
    try:
        result = yield from _run(data, energy_keV, model, device, batch_size, refine, scale)
        return JobOutcome(result=result, device=str(getattr(result, "device", device)))
    except Exception as exc:
        if device == "cpu" or not is_out_of_memory(exc):
            return JobOutcome(error=exc, device=device)
    yield Notice("GPU out of memory; quantifying on the CPU instead")
    try:
        result = yield from _run(data, energy_keV, model, "cpu", batch_size, refine, scale)
    except Exception as exc:
        return JobOutcome(error=exc, device="cpu")
    return JobOutcome(result=result, device="cpu")


def guarded_job(generator: Generator[Any, None, Any]) -> Generator[Any, None, JobOutcome]:
    """Pass a core generator's events through; return its value or error as a JobOutcome.

    Closing this generator (the worker's cancel) closes the core's at its
    current yield, so it can release what it holds.
    """
    try:
        result = yield from generator
    except Exception as exc:
        return JobOutcome(error=exc)
    return JobOutcome(result=result)



def physics_job(job: Generator[Progress, None, Any]) -> Generator[Any, None, JobOutcome]:
    """:func:`~napari_xrfquant.inference.physics_quantify.iter_quantify_physics` as a
    job: its progress passed through, its result (without the set-up notes) or
    error returned as a :class:`JobOutcome`."""
    outcome = yield from guarded_job(job)
    if outcome.error is None:
        outcome.result = outcome.result[0]
    return outcome
