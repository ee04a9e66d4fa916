"""NeXus ``NXdata`` cubes: the signal, its axes, and which axis is energy."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import guess_energy_axis
from napari_xrfquant.io._h5 import Located, check_dataset, get_dataset, nx_class, text, text_list
from napari_xrfquant.io.calibration import energy_from_units


# -- NeXus ---------------------------------------------------------------------
def find_nxdata(file: h5py.File) -> h5py.Group | None:
    """The NXdata group to plot, following the ``default`` attributes first."""
    entries = [g for g in file.values() if isinstance(g, h5py.Group) and nx_class(g) == "NXentry"]
    if not entries:
        return None
    default = text(file.attrs.get("default", ""))
    if default in file and nx_class(file[default]) == "NXentry":
        entries.insert(0, file[default])
    for entry in entries:
        data_name = text(entry.attrs.get("default", ""))
        if data_name in entry and nx_class(entry[data_name]) == "NXdata":
            return entry[data_name]
        for child in entry.values():
            if isinstance(child, h5py.Group) and nx_class(child) == "NXdata":
                return child
    found: list[h5py.Group] = []

    def visit(_name: str, obj: h5py.HLObject) -> None:
        if not found and isinstance(obj, h5py.Group) and nx_class(obj) == "NXdata":
            found.append(obj)

    file.visititems(visit)
    return found[0] if found else None


def _nx_signal(group: h5py.Group, where: str) -> h5py.Dataset:
    name = text(group.attrs.get("signal", ""))
    if name:
        return get_dataset(group, name, where)
    for child in group.values():  # NeXus before 2014: signal=1 on the dataset
        if isinstance(child, h5py.Dataset) and text(child.attrs.get("signal", "")) == "1":
            return child
    if "data" in group and isinstance(group["data"], h5py.Dataset):
        return group["data"]
    raise CubeReadError(f"{where}: NXdata group {group.name} names no signal dataset")


def _nx_axis_names(group: h5py.Group, signal: h5py.Dataset) -> list[str]:
    """One axis name per signal dimension ('.' where there is none)."""
    names = ["."] * signal.ndim
    if "axes" in group.attrs:
        listed = text_list(group.attrs["axes"])
        if len(listed) == signal.ndim:
            names = listed
    elif "axes" in signal.attrs:
        listed = text_list(signal.attrs["axes"])
        if len(listed) == signal.ndim:
            names = listed
    for key, value in group.attrs.items():
        if key.endswith("_indices"):
            indices = np.atleast_1d(np.asarray(value)).astype(int)
            if indices.size == 1 and 0 <= indices[0] < signal.ndim:
                names[int(indices[0])] = key[: -len("_indices")]
    return names


def _is_energy_axis(group: h5py.Group, name: str) -> bool:
    if name in (".", "") or name not in group:
        return "energy" in name.lower()
    units = text(group[name].attrs.get("units", "")).strip().lower()
    return units in ("kev", "ev") or "energy" in name.lower()


def locate_nexus(group: h5py.Group, where: str) -> Located:
    signal = _nx_signal(group, where)
    check_dataset(signal, where)
    names = _nx_axis_names(group, signal)
    candidates = [i for i, name in enumerate(names) if _is_energy_axis(group, name)]
    metadata: dict[str, Any] = {"nexus_axes": names}
    if not candidates:
        axis = guess_energy_axis(signal.shape, where)
        return Located(signal, axis, None, "NeXus", metadata)
    axis = candidates[0]
    name = names[axis]
    energy = None
    if name in group and isinstance(group[name], h5py.Dataset):
        node = group[name]
        values = np.asarray(node[...], dtype=np.float64).reshape(-1)
        units = text(node.attrs["units"]) if "units" in node.attrs else None
        values = energy_from_units(values, units, f"{where}: {node.name}")
        n_channels = signal.shape[axis]
        if values.size == n_channels + 1:  # bin edges: take the centres
            values = 0.5 * (values[:-1] + values[1:])
        energy = values
    return Located(signal, axis, energy, "NeXus", metadata)
