"""The quantify job the GUI runs in a worker thread, free of Qt so it tests plainly.

:func:`quantify_job` is a :mod:`napari_xrfquant.jobs` job over
:func:`napari_xrfquant.inference.iter_quantify`: it passes its
:class:`~napari_xrfquant.jobs.Progress` events through, says what the data are
(counts, or what turns them into counts) in a :class:`~napari_xrfquant.jobs.Notice`
and returns the :class:`~napari_xrfquant.results.QuantResult`. A run on a GPU
that still fails for lack of memory is repeated on the CPU, announced by a Notice.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING

from napari_xrfquant.inference.devices import is_out_of_memory
from napari_xrfquant.jobs import Notice, Progress

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from napari_xrfquant._napari._layers import Counts
    from napari_xrfquant.inference.physics_quantify import PhysicsNotes
    from napari_xrfquant.models.bundle import QuantModel
    from napari_xrfquant.results import QuantResult

__all__ = ["Notice", "is_out_of_memory", "physics_job", "quantify_job"]


def quantify_job(
    data: Counts,
    energy_keV: np.ndarray,
    model: QuantModel,
    device: str = "auto",
    batch_size: int | None = None,
    refine: int = 0,
    maps: Mapping[str, np.ndarray] | None = None,
) -> Generator[Progress | Notice, None, QuantResult]:
    """Quantify a cube, yielding progress; return its QuantResult (see the module).

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
    from napari_xrfquant.inference import iter_quantify
    from napari_xrfquant.inference.counts import counts_rule, counts_sample, decide_counts_scale

    # decided here, so that what the data are reaches the user as a Notice (a
    # worker's relayed warning can be lost when a short job ends first)
    scale, message = decide_counts_scale(None, data, maps)
    if scale is None:
        scale, message = counts_rule(counts_sample(data))
    if message:
        yield Notice(message)
    try:
        return (yield from iter_quantify(data, energy_keV, model=model, device=device,
                                         batch_size=batch_size, refine=refine,
                                         counts_scale=scale))
    except Exception as exc:
        if device == "cpu" or not is_out_of_memory(exc):
            raise
    yield Notice("GPU out of memory; quantifying on the CPU instead")
    return (yield from iter_quantify(data, energy_keV, model=model, device="cpu",
                                     batch_size=batch_size, refine=refine, counts_scale=scale))


def physics_job(
    job: Generator[Progress, None, tuple[QuantResult, PhysicsNotes]],
) -> Generator[Progress, None, QuantResult]:
    """:func:`~napari_xrfquant.inference.physics_quantify.iter_quantify_physics` as a
    job: its progress passed through, its result without the set-up notes returned."""
    result = yield from job
    return result[0]
