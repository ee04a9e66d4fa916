"""Shared pieces of the HDF5 readers: opening files, decoding attributes, located cubes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import check_numeric_dtype, check_rank

#: HDF5 chunk cache per open file: holds a neighbourhood of recently clicked
#: pixels, so moving the mouse around one area does not decompress again.
CHUNK_CACHE_BYTES = 32 * 1024**2


@dataclass
class Located:
    """The cube dataset a layout parser found, and what the file says about it."""

    dataset: h5py.Dataset
    energy_axis: int
    energy_keV: np.ndarray | None
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)


# -- small decoders ------------------------------------------------------------
def text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value.item())
    return str(value)


def text_list(value: Any) -> list[str]:
    if isinstance(value, (str, bytes, np.bytes_)):
        decoded = text(value)
        try:
            parsed = json.loads(decoded)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
        # NeXus's older style separates axis names with colons.
        return [part for part in decoded.replace(",", ":").split(":")] if decoded else []
    return [text(v) for v in np.asarray(value).reshape(-1)]


def plain(value: Any) -> Any:
    """An HDF5 attribute as plain Python data (str, number, list)."""
    if isinstance(value, (bytes, np.bytes_, str)):
        return text(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [text(v) for v in value.reshape(-1)]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def nx_class(obj: h5py.HLObject) -> str:
    return text(obj.attrs.get("NX_class", ""))


# -- opening ------------------------------------------------------------------
def open_file(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES, rdcc_nslots=10007)
    except FileNotFoundError:
        raise CubeReadError(f"{path.name}: no such file") from None
    except OSError as exc:
        message = str(exc)
        if "truncated" in message:
            problem = "HDF5 file is truncated (an incomplete copy or an interrupted write?)"
        elif "signature" in message:
            problem = "not an HDF5 file"
        else:
            problem = f"not a readable HDF5 file ({message})"
        raise CubeReadError(f"{path.name}: {problem}") from None


def get_dataset(file: h5py.File, name: str, where: str) -> h5py.Dataset:
    try:
        obj = file[name]
    except (KeyError, ValueError):
        raise CubeReadError(f"{where}: no dataset {name!r} in the file") from None
    except OSError as exc:
        raise CubeReadError(f"{where}: cannot read {name!r} ({exc})") from None
    if not isinstance(obj, h5py.Dataset):
        raise CubeReadError(f"{where}: {name!r} is a group, not a dataset")
    return obj


def check_dataset(dataset: h5py.Dataset, where: str) -> None:
    check_numeric_dtype(dataset.dtype, f"{where}: {dataset.name}")
    check_rank(dataset.shape, f"{where}: {dataset.name}")
