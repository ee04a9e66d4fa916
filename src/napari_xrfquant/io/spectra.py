"""The one training-set file format: spectra with their compositions (HDF5).

``xrfquant simulate`` writes it, training reads it (the ``training_set`` key of
a :class:`~napari_xrfquant.training.config.TrainingConfig`) and caches its own
simulations in it, and labelled measured spectra can be stored in it too.

Layout (``format = "xrfquant-spectra"``, ``format_version = 1``)::

    /                      attrs: format, format_version, elements (list of str),
                                  noiseless (bool), instrument (TOML text, optional),
                                  plus whatever the writer records (seed, jitter,
                                  counts_min, counts_max, absent_probability,
                                  generator, cache_key)
    /spectra               (N, C) Poisson counts (uint16/uint32), or float32
                           expected counts when noiseless; chunked by rows,
                           gzip + shuffle; attr units
    /wt_percent            (N, E) float32, rows sum to 100; attr elements
    /counts                (N,) float64 expected total counts of each spectrum
    /energy_keV            (C,) float64 channel centres
    /instrument_overrides  (N, P) float32, optional; attr names: the simulator
                           parameter of each column

Files are written to a temporary name and renamed at the end
(:func:`~napari_xrfquant._files.atomic_path`), so no reader sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import XRFQuantError

FORMAT = "xrfquant-spectra"
FORMAT_VERSION = 1
#: HDF5 chunk rows: one chunk holds a jitter group of spectra.
CHUNK_ROWS = 256


@dataclass
class SpectraSet:
    """Spectra and their compositions, as stored in a training-set file.

    Attributes
    ----------
    spectra
        ``(N, C)`` counts, or expected counts when ``noiseless``.
    wt_percent
        ``(N, E)`` compositions in wt%.
    elements
        Element symbols of the columns of ``wt_percent``.
    energy_keV
        ``(C,)`` channel centres.
    counts
        ``(N,)`` expected total counts of each spectrum.
    noiseless
        Whether ``spectra`` are expectations rather than Poisson draws.
    instrument
        The instrument as TOML text, when the file records it.
    overrides, override_names
        Per-spectrum instrument parameters ``(N, P)`` and their names, if any.
    attrs
        Other file attributes (seed, generator, cache_key, ...).
    """

    spectra: np.ndarray
    wt_percent: np.ndarray
    elements: list[str]
    energy_keV: np.ndarray
    counts: np.ndarray
    noiseless: bool
    instrument: str | None = None
    overrides: np.ndarray | None = None
    override_names: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.wt_percent.shape[0])


class SpectraWriter:
    """Rows of an open training-set file, written block by block."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, start: int, spectra: np.ndarray, overrides: np.ndarray | None = None) -> None:
        """Store spectra (and their instrument parameters) from row ``start`` on."""
        stop = start + spectra.shape[0]
        self._handle["spectra"][start:stop] = spectra
        if overrides is not None:
            self._handle["instrument_overrides"][start:stop] = overrides


@contextmanager
def create_spectra_file(
    path: str | os.PathLike[str],
    *,
    wt_percent: np.ndarray,
    elements: Sequence[str],
    energy_keV: np.ndarray,
    counts: np.ndarray,
    noiseless: bool,
    dtype: Any,
    instrument: str | None = None,
    override_names: Sequence[str] = (),
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Iterator[SpectraWriter]:
    """Create a training-set file whose spectra the caller writes block by block.

    Compositions, totals and the energy axis are written at once; the yielded
    :class:`SpectraWriter` fills ``/spectra``. The file appears under ``path``
    only when the block ends without an error.
    """
    import h5py

    n, n_channels = int(wt_percent.shape[0]), int(np.asarray(energy_keV).size)
    with atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["format"] = FORMAT
        handle.attrs["format_version"] = FORMAT_VERSION
        handle.attrs["elements"] = list(elements)
        handle.attrs["noiseless"] = bool(noiseless)
        if instrument is not None:
            handle.attrs["instrument"] = instrument
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        spectra = handle.create_dataset(
            "spectra",
            shape=(n, n_channels),
            dtype=dtype,
            chunks=(max(min(n, CHUNK_ROWS), 1), n_channels),
            compression="gzip",
            shuffle=True,
        )
        spectra.attrs["units"] = "expected counts" if noiseless else "counts"
        handle.create_dataset("wt_percent", data=np.asarray(wt_percent, dtype=np.float32))
        handle["wt_percent"].attrs["elements"] = list(elements)
        handle.create_dataset("counts", data=np.asarray(counts, dtype=np.float64))
        handle.create_dataset("energy_keV", data=np.asarray(energy_keV, dtype=np.float64))
        if override_names:
            names = list(override_names)
            overrides = handle.create_dataset(
                "instrument_overrides", (n, len(names)), dtype=np.float32
            )
            overrides.attrs["names"] = names
        yield SpectraWriter(handle)


def write_spectra_set(
    path: str | os.PathLike[str], data: SpectraSet, overwrite: bool = False
) -> Path:
    """Write a whole :class:`SpectraSet` (atomically)."""
    spectra = np.asarray(data.spectra)
    with create_spectra_file(
        path,
        wt_percent=data.wt_percent,
        elements=data.elements,
        energy_keV=data.energy_keV,
        counts=data.counts,
        noiseless=data.noiseless,
        dtype=spectra.dtype,
        instrument=data.instrument,
        override_names=data.override_names if data.overrides is not None else (),
        attrs=data.attrs,
        overwrite=overwrite,
    ) as writer:
        writer.write(0, spectra, data.overrides)
    return Path(path)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_spectra_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The root attributes of a training-set file (cheap: no spectra read).

    Raises
    ------
    XRFQuantError
        ``"<file>: <problem>"`` if it is not a readable training-set file.
    """
    import h5py

    file = Path(path)
    try:
        with h5py.File(file, "r") as handle:
            return _check_layout(handle, file.name)
    except OSError as exc:
        raise XRFQuantError(f"{file.name}: not a readable HDF5 training set ({exc})") from None


def _check_layout(handle: Any, name: str) -> dict[str, Any]:
    attrs = {key: handle.attrs[key] for key in handle.attrs}
    if _text(attrs.get("format", "")) != FORMAT:
        raise XRFQuantError(f"{name}: not an {FORMAT} file (format {attrs.get('format')!r})")
    version = int(attrs.get("format_version", 0))
    if not 1 <= version <= FORMAT_VERSION:
        raise XRFQuantError(f"{name}: {FORMAT} version {version} is not supported")
    for dataset in ("spectra", "wt_percent", "energy_keV"):
        if dataset not in handle:
            raise XRFQuantError(f"{name}: no {dataset} dataset; not a labelled training set")
    n, n_channels = handle["spectra"].shape
    if handle["wt_percent"].shape[0] != n or handle["energy_keV"].shape != (n_channels,):
        raise XRFQuantError(
            f"{name}: spectra {handle['spectra'].shape}, wt_percent "
            f"{handle['wt_percent'].shape} and energy_keV {handle['energy_keV'].shape} disagree"
        )
    return attrs


def read_spectra_set(path: str | os.PathLike[str]) -> SpectraSet:
    """Read a training-set file.

    Raises
    ------
    XRFQuantError
        ``"<file>: <problem>"`` for a file that is missing, not HDF5, of another
        format or version, lacks ``spectra``/``wt_percent``/``energy_keV``, has
        datasets that disagree in length, or holds NaN compositions.
    """
    import h5py

    file = Path(path)
    if not file.is_file():
        raise XRFQuantError(f"{file.name}: no such file")
    try:
        with h5py.File(file, "r") as handle:
            attrs = _check_layout(handle, file.name)
            wt = np.asarray(handle["wt_percent"][...], dtype=np.float32)
            spectra = np.asarray(handle["spectra"][...])
            energy = np.asarray(handle["energy_keV"][...], dtype=np.float64)
            counts = (
                np.asarray(handle["counts"][...], dtype=np.float64)
                if "counts" in handle
                else spectra.sum(axis=1, dtype=np.float64)
            )
            overrides, names = None, []
            if "instrument_overrides" in handle:
                overrides = np.asarray(handle["instrument_overrides"][...])
                names = [_text(v) for v in handle["instrument_overrides"].attrs.get("names", [])]
    except OSError as exc:
        raise XRFQuantError(f"{file.name}: not a readable HDF5 training set ({exc})") from None
    if not np.all(np.isfinite(wt)):
        raise XRFQuantError(f"{file.name}: wt_percent holds NaN or infinite values")
    elements = [_text(e) for e in attrs.get("elements", [])]
    if len(elements) != wt.shape[1]:
        raise XRFQuantError(f"{file.name}: {len(elements)} elements for {wt.shape[1]} wt% columns")
    instrument = attrs.get("instrument")
    return SpectraSet(
        spectra=spectra,
        wt_percent=wt,
        elements=elements,
        energy_keV=energy,
        counts=counts,
        noiseless=bool(attrs.get("noiseless", False)),
        instrument=None if instrument is None else _text(instrument),
        overrides=overrides,
        override_names=names,
        attrs={k: v for k, v in attrs.items() if k not in ("format", "format_version")},
    )
