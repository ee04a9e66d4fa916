"""npe2 reader: XRF cubes (CXC HDF5, NeXus, generic HDF5, TIFF stack, npy) -> layers.

``get_reader(path)`` returns :func:`read_xrf` for a file this plugin can open,
or None, so napari asks other readers. A file with a supported extension that
turns out not to hold a usable cube is reported as a napari error
notification carrying the one-line :class:`~napari_xrfquant.errors.CubeReadError`
message, never a traceback; the reader then returns napari's "nothing to add"
sentinel ``[(None,)]``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._napari._layers import LayerData, cube_layer_data
from napari_xrfquant.io.read import can_read

PathOrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
ReaderFunction = Callable[[PathOrPaths], list[LayerData]]


def get_reader(path: PathOrPaths) -> ReaderFunction | None:
    """The reader for ``path`` if it looks like an XRF cube, else None.

    Parameters
    ----------
    path
        One path, or a list of paths (each opened as its own cube).

    Returns
    -------
    callable or None
        :func:`read_maps` for map TIFFs this plugin wrote, :func:`read_xrf`
        for cubes, or None for unsupported files and for TIFF or npy files
        that hold a single 2D image (left to other readers).
    """
    from napari_xrfquant.io.maps import is_element_maps

    paths = _as_paths(path)
    if not paths:
        return None
    if all(is_element_maps(item) for item in paths):
        return read_maps  # the maps this plugin wrote, back as the layers they were
    for item in paths:
        if not can_read(item):  # the reader table: suffix, signature, or folder contents
            return None
        if _is_plain_image(item) or is_element_maps(item):
            return None
    return read_xrf


def read_maps(path: PathOrPaths) -> list[LayerData]:
    """Map TIFFs written by this plugin as the layers they came from (one per map,
    named, with their unit, colormap and pixel size)."""
    from napari.utils.notifications import show_error

    from napari_xrfquant._napari._result_layers import maps_layer_data
    from napari_xrfquant.errors import XRFQuantError
    from napari_xrfquant.io.maps import read_element_maps

    layers: list[LayerData] = []
    for item in _as_paths(path):
        try:
            layers.extend(maps_layer_data(read_element_maps(item), item.name))
        except XRFQuantError as exc:
            show_error(str(exc))
    install_readout()  # their values with their unit under the mouse
    return layers or [(None,)]  # type: ignore[list-item]


def read_xrf(path: PathOrPaths) -> list[LayerData]:
    """Read each cube in ``path`` as a cube layer plus a total-counts layer.

    Problems a user can fix (unreadable file, no cube inside, bad energy axis)
    become napari error notifications; calibration fallbacks become warnings.

    Returns
    -------
    list of LayerData
        Two layers per readable cube (see
        :func:`napari_xrfquant._napari._layers.cube_layer_data`), or
        ``[(None,)]`` when nothing could be read.
    """
    from napari.utils.notifications import show_error, show_warning

    layers: list[LayerData] = []
    for item in _as_paths(path):
        try:
            cube, messages = read_cube_with_warnings(item)
        except (ValueError, OSError) as exc:
            show_error(_one_line(exc, item))
            continue
        for message in messages:
            show_warning(message)
        layers.extend(cube_layer_data(cube, item.stem))
    if layers:
        install_readout()
    # napari reads [(None,)] as "this reader found nothing to add"
    return layers or [(None,)]  # type: ignore[list-item]


def read_cube_with_warnings(path: Path) -> tuple[Any, list[str]]:
    """:func:`napari_xrfquant.io.read_cube` plus the warnings it raised, as text.

    Raises
    ------
    CubeReadError
        If the file holds no usable cube.
    """
    from napari_xrfquant.io import read_cube
    from napari_xrfquant.io.detectors import check_cube_calibration

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cube = read_cube(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    misplaced = check_cube_calibration(cube)
    if misplaced:
        messages.append(misplaced)
    return cube, list(dict.fromkeys(messages))


def _one_line(exc: BaseException, path: Path) -> str:
    """The user-facing message: XRFQuantError text as is, else name the file."""
    from napari_xrfquant.errors import XRFQuantError

    if isinstance(exc, XRFQuantError):
        return str(exc)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{path}: cannot read ({reason})"


def _as_paths(path: PathOrPaths) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        return [Path(path)]
    return [Path(p) for p in path]


def _is_plain_image(path: Path) -> bool:
    """True for a readable npy/TIFF file holding one 2D (or RGB) image.

    Only cheap header reads; anything unreadable is *not* declined here, so
    the reader can report the problem.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            shape = np.load(path, mmap_mode="r").shape
            return len(shape) < 3
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape = series.shape
                axes = series.axes
            return len(shape) < 3 or (len(shape) == 3 and axes.endswith("S"))
    except Exception:
        return False
    return False


def install_readout() -> None:
    """The read-outs with units (a slice's energy, a map's value) on the current viewer;
    readers get no viewer, so ask napari."""
    try:
        import napari

        from napari_xrfquant._napari._energy_readout import install_energy_readout

        viewer = napari.current_viewer()
    except Exception:
        return
    if viewer is not None:
        install_energy_readout(viewer)
