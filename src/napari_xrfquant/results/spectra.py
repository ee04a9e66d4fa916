"""Spectra as CSV: an energy column and one column of counts per spectrum."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_xrfquant._files import atomic_path


def write_spectra_csv(
    path: str | os.PathLike[str],
    energy_keV: np.ndarray,
    columns: Mapping[str, np.ndarray],
    notes: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``energy_keV`` and each column of counts as CSV, notes as ``#`` lines first.

    Parameters
    ----------
    path
        The CSV file; written atomically.
    energy_keV
        Channel energies ``(C,)``.
    columns
        Column name -> values ``(C,)``.
    notes
        Lines written first, each after ``# `` (what the spectra are).
    overwrite
        Replace an existing file.

    Raises
    ------
    ValueError
        When a column's length differs from the energy axis.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    values = {name: np.asarray(v, dtype=np.float64) for name, v in columns.items()}
    for name, column in values.items():
        if column.shape != energy.shape:
            raise ValueError(f"column {name!r} has {column.size} values for {energy.size} channels")
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            for note in notes:
                handle.write(f"# {note}\n")
            writer = csv.writer(handle)
            writer.writerow(["energy_keV", *values])
            table = np.column_stack([energy, *values.values()])
            writer.writerows([f"{x:.6g}" for x in row] for row in table)
    return target
