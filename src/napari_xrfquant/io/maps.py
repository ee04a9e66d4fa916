"""Element maps as float32 TIFFs that ImageJ/Fiji, tifffile and this package all read.

Each file is an ImageJ hyperstack ``(channels, Y, X)``, float32, one channel per
element, with

- channel ``Labels`` = the element names (``"Au"``, or ``"Au ±1σ"`` for
  uncertainty maps), so Fiji's channel slider names the elements;
- the pixel size as resolution (pixels per micrometre) with ``unit=um``, so
  Fiji's scale bar and measurements are in micrometres;
- per-channel display ``Ranges`` (finite min / max);
- ``Info`` = a JSON description of our own that makes the file round-trip
  exactly::

      {"napari_xrfquant": "element-maps", "version": 1,
       "elements": ["Au", "Ag"], "labels": ["Au", "Ag"], "unit": "wt%",
       "kind": "concentration", "pixel_size_um": 48.0, "extra": {"model_id": ...}}

Plain ``tifffile.imread`` returns the same float32 numbers, ``(E, H, W)`` (or
``(H, W)`` for a single map).

Layouts (``write_element_maps(layout=...)``):

- ``"stack"``: one file, ``path`` itself (``.tif``/``.tiff``; a ``path``
  without a suffix gets ``.tif``).
- ``"per-element"``: one single-channel file per element, named
  ``<stem>_<label>.tif``. When ``path`` ends in ``.tif``/``.tiff`` the files go
  beside it and ``<stem>`` is its stem (``out/run1.tif`` -> ``out/run1_Au.tif``,
  ...); otherwise ``path`` is a folder (created if needed) and ``<stem>`` is the
  folder's name (``out/run1`` -> ``out/run1/run1_Au.tif``). Characters that do
  not belong in file names are replaced: ``"Au ±1σ"`` -> ``Au_sigma``.
"""

from __future__ import annotations

import json
import math
import os
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import XRFQuantError

#: What a map holds; the unit a caller passes goes with it (wt% for the first
#: two, "" or "chi2/dof" for fit quality).
MAP_KINDS = ("concentration", "uncertainty", "fit-quality")
LAYOUTS = ("stack", "per-element")
_TIFF_SUFFIXES = (".tif", ".tiff")
_DESCRIPTION_KEY = "napari_xrfquant"
_DESCRIPTION_VALUE = "element-maps"
_DESCRIPTION_VERSION = 1
_SIGMA_SUFFIX = " ±1σ"
_MICROMETRE_UNITS = {"um", "µm", "μm", "\\u00b5m", "micron", "microns", "micrometer", "micrometre"}


@dataclass
class ElementMaps:
    """Element maps read back from TIFF.

    Attributes
    ----------
    maps
        ``(E, H, W)`` float32 values.
    elements
        Element symbol (or map name) of each of the ``E`` maps.
    unit
        Unit of the values, e.g. ``"wt%"``, ``"chi2/dof"`` or ``""``.
    pixel_size_um
        Pixel size in micrometres, or None when the file does not say.
    kind
        ``"concentration"``, ``"uncertainty"`` or ``"fit-quality"``.
    labels
        Channel labels as written (``"Au ±1σ"`` for uncertainties).
    extra
        Other facts stored with the maps (e.g. ``model_id``).
    paths
        The file(s) read.
    """

    maps: np.ndarray
    elements: list[str]
    unit: str = "wt%"
    pixel_size_um: float | None = None
    kind: str = "concentration"
    labels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


# -- writing ------------------------------------------------------------------
def map_label(element: str, kind: str) -> str:
    """Channel label of a map: the element, with ``±1σ`` for uncertainty maps."""
    if kind == "uncertainty" and "±" not in element:
        return f"{element}{_SIGMA_SUFFIX}"
    return element


def file_label(label: str) -> str:
    """A label made safe for a file name: ``"Au ±1σ"`` -> ``"Au_sigma"``."""
    text = label.replace("±1σ", "sigma").replace("σ", "sigma").replace("±", "")
    text = re.sub(r"[^0-9A-Za-z.+-]+", "_", text).strip("_.")
    return text or "map"


def _check_maps(maps: Any, elements: Any) -> tuple[np.ndarray, list[str]]:
    array = np.asarray(maps)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise XRFQuantError(
            f"element maps must be (elements, rows, cols), got shape {np.shape(maps)}"
        )
    if array.dtype.kind not in "biuf":
        raise XRFQuantError(f"element maps must be numbers, got dtype {array.dtype}")
    names = [elements] if isinstance(elements, str) else [str(e) for e in elements]
    if len(names) != array.shape[0]:
        raise XRFQuantError(f"{len(names)} element names for {array.shape[0]} maps")
    if any(not name.strip() for name in names) or len(set(names)) != len(names):
        raise XRFQuantError(f"element names must be non-empty and distinct, got {names}")
    return np.ascontiguousarray(array, dtype=np.float32), names


def _targets(path: Path, layout: str, labels: list[str]) -> list[Path]:
    if layout == "stack":
        if not path.suffix:
            return [path.with_name(path.name + ".tif")]
        if path.suffix.lower() not in _TIFF_SUFFIXES:
            raise XRFQuantError(f"{path.name}: element maps are written as .tif, not {path.suffix}")
        return [path]
    if path.suffix.lower() in _TIFF_SUFFIXES:
        folder, stem = path.parent, path.stem
    else:
        folder, stem = path, path.name
    names = [file_label(label) for label in labels]
    if len(set(names)) != len(names):
        raise XRFQuantError(f"element names {labels} give clashing file names {names}")
    return [folder / f"{stem}_{name}.tif" for name in names]


def _description(
    elements: list[str], labels: list[str], unit: str, kind: str,
    pixel_size_um: float | None, extra: dict[str, Any] | None,
    part: tuple[int, int] | None = None,
) -> str:
    record: dict[str, Any] = {
        _DESCRIPTION_KEY: _DESCRIPTION_VALUE,
        "version": _DESCRIPTION_VERSION,
        "elements": elements,
        "labels": labels,
        "unit": unit,
        "kind": kind,
        "pixel_size_um": pixel_size_um,
    }
    if part is not None:
        # Per-element files remember their place, so a folder reads back in
        # the order written rather than alphabetically.
        record["part"], record["parts"] = part
    if extra:
        record["extra"] = extra
    try:
        return json.dumps(record, ensure_ascii=True)
    except TypeError as exc:
        raise XRFQuantError(f"extra metadata must be JSON-serialisable ({exc})") from None


def _display_ranges(maps: np.ndarray) -> tuple[float, ...]:
    ranges: list[float] = []
    for plane in maps:
        finite = plane[np.isfinite(plane)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        ranges += [low, high if high > low else low + 1.0]
    return tuple(ranges)


def _write_one(
    path: Path, maps: np.ndarray, labels: list[str], description: str,
    pixel_size_um: float | None,
) -> None:
    import tifffile

    metadata: dict[str, Any] = {
        "axes": "CYX",
        "Labels": labels if len(labels) > 1 else labels[0],
        "Info": description,
        "Ranges": _display_ranges(maps),
        "mode": "grayscale",
    }
    options: dict[str, Any] = {}
    if pixel_size_um is not None:
        metadata["unit"] = "um"
        options["resolution"] = (1.0 / pixel_size_um, 1.0 / pixel_size_um)
    tifffile.imwrite(path, maps, imagej=True, metadata=metadata, **options)


def write_element_maps(
    path: str | os.PathLike[str],
    maps: Any,
    elements: list[str] | tuple[str, ...],
    unit: str = "wt%",
    pixel_size_um: float | None = None,
    layout: str = "stack",
    overwrite: bool = False,
    kind: str = "concentration",
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Write element maps as ImageJ-compatible float32 TIFF(s), atomically.

    Parameters
    ----------
    path
        Stack file, or per-element folder / stem (see the module docstring).
    maps
        ``(E, H, W)`` values (``(H, W)`` for one map), stored as float32;
        NaN marks pixels without a value.
    elements
        ``E`` element symbols (or map names), distinct.
    unit
        Unit of the values: ``"wt%"`` for concentrations and their
        uncertainties, ``""`` or ``"chi2/dof"`` for fit quality.
    pixel_size_um
        Pixel size in micrometres, stored as the TIFF resolution and in the
        description; None leaves the scale unset.
    layout
        ``"stack"`` (one file) or ``"per-element"`` (one file per map).
    overwrite
        Replace existing files; otherwise refuse before writing anything.
    kind
        ``"concentration"``, ``"uncertainty"`` (labels become ``"Au ±1σ"``) or
        ``"fit-quality"``.
    extra
        JSON-serialisable facts stored with the maps, e.g.
        ``{"model_id": "...", "source": "scan.h5"}``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    XRFQuantError
        If the maps, names, layout, kind or pixel size are not usable.
    FileExistsError
        If any target exists and ``overwrite`` is False (nothing is written).

    Examples
    --------
    >>> write_element_maps("maps.tif", wt, ["Au", "Ag", "Cu"], pixel_size_um=48.0)  # doctest: +SKIP
    [PosixPath('maps.tif')]
    """
    if layout not in LAYOUTS:
        raise XRFQuantError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if kind not in MAP_KINDS:
        raise XRFQuantError(f"kind must be one of {', '.join(MAP_KINDS)}, got {kind!r}")
    if pixel_size_um is not None:
        pixel_size_um = float(pixel_size_um)
        if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
            raise XRFQuantError(f"pixel size must be a positive number of µm, got {pixel_size_um}")
    values, names = _check_maps(maps, elements)
    labels = [map_label(name, kind) for name in names]
    targets = _targets(Path(path), layout, labels)
    if not overwrite:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise FileExistsError(
                f"{', '.join(existing)}: exists; choose another name or allow overwriting"
            )
    unit = str(unit)
    # Every file goes to a temporary name first and all are renamed only after
    # the last one is complete: a failure midway leaves no partial set behind.
    with ExitStack() as stack:
        temporaries = [stack.enter_context(atomic_path(t, overwrite=overwrite)) for t in targets]
        if layout == "stack":
            description = _description(names, labels, unit, kind, pixel_size_um, extra)
            _write_one(temporaries[0], values, labels, description, pixel_size_um)
        else:
            for index, tmp in enumerate(temporaries):
                description = _description(
                    [names[index]], [labels[index]], unit, kind, pixel_size_um, extra,
                    part=(index, len(names)),
                )
                _write_one(tmp, values[index : index + 1], [labels[index]], description,
                           pixel_size_um)
    return targets


# -- reading ------------------------------------------------------------------
def _ours(info: Any) -> dict[str, Any] | None:
    if not isinstance(info, str):
        return None
    try:
        record = json.loads(info)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get(_DESCRIPTION_KEY) == _DESCRIPTION_VALUE:
        return record
    return None


def is_element_maps(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a map TIFF this package wrote (:func:`write_element_maps`).

    Reads the ImageJ metadata only; any file that is not such a TIFF gives False.
    """
    import tifffile

    file = Path(path)
    if file.suffix.lower() not in _TIFF_SUFFIXES or not file.is_file():
        return False
    try:
        with tifffile.TiffFile(file) as tif:
            info = dict(tif.imagej_metadata or {}).get("Info")
    except Exception:  # tifffile raises many types for files that are not TIFFs
        return False
    return _ours(info) is not None


def _read_one(path: Path) -> ElementMaps:
    return _read_with_record(path)[0]


def _read_with_record(path: Path) -> tuple[ElementMaps, dict[str, Any] | None]:
    import tifffile

    name = path.name
    if not path.is_file():
        raise XRFQuantError(f"{name}: no such file")
    try:
        with tifffile.TiffFile(path) as tif:
            values = tif.series[0].asarray()
            imagej = dict(tif.imagej_metadata or {})
            resolution = tif.pages[0].resolution
    except Exception as exc:  # tifffile raises many types for damaged files
        raise XRFQuantError(f"{name}: not a readable TIFF file ({exc})") from None
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3 or values.dtype.kind not in "biuf":
        raise XRFQuantError(f"{name}: expected (maps, rows, cols) numbers, got {values.shape}")
    record = _ours(imagej.get("Info"))
    if record is not None:
        elements = [str(e) for e in record.get("elements", [])]
        if len(elements) != values.shape[0]:
            raise XRFQuantError(
                f"{name}: description lists {len(elements)} elements for {values.shape[0]} maps"
            )
        pixel = record.get("pixel_size_um")
        return ElementMaps(
            maps=values.astype(np.float32, copy=False),
            elements=elements,
            unit=str(record.get("unit", "")),
            pixel_size_um=None if pixel is None else float(pixel),
            kind=str(record.get("kind", "concentration")),
            labels=[str(x) for x in record.get("labels", elements)],
            extra=dict(record.get("extra", {})),
            paths=[path],
        ), record
    # A TIFF from elsewhere: ImageJ labels and scale when present.
    labels = imagej.get("Labels")
    if isinstance(labels, str):
        labels = [labels]
    if not labels or len(labels) != values.shape[0]:
        labels = [f"map {i}" for i in range(values.shape[0])]
    pixel_size = None
    if str(imagej.get("unit", "")).lower() in _MICROMETRE_UNITS and resolution[0]:
        pixel_size = 1.0 / float(resolution[0])
    return ElementMaps(
        maps=values.astype(np.float32, copy=False),
        elements=[str(x) for x in labels],
        unit="",
        pixel_size_um=pixel_size,
        labels=[str(x) for x in labels],
        paths=[path],
    ), None


def read_element_maps(path: str | os.PathLike[str]) -> ElementMaps:
    """Read element maps written by :func:`write_element_maps` (or any float TIFF).

    Parameters
    ----------
    path
        A stack file, one per-element file, or a folder of per-element files
        (all ``.tif`` files in it that carry our description, in name order,
        stacked; they must agree in shape, unit, kind and pixel size).

    Returns
    -------
    ElementMaps
        ``maps`` ``(E, H, W)`` float32, ``elements``, ``unit``,
        ``pixel_size_um`` and the rest of our description. A TIFF without it
        gives the ImageJ labels (else ``"map 0"``, ...) and scale, unit ``""``.

    Raises
    ------
    XRFQuantError
        ``"<file name>: <problem>"`` for a missing or unreadable file, or
        per-element files that do not fit together.
    """
    target = Path(path)
    if not target.is_dir():
        return _read_one(target)
    files = sorted(p for p in target.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES)
    found = [_read_with_record(f) for f in files]
    ours = [(maps, record) for maps, record in found if record is not None]
    ours.sort(key=lambda item: (int(item[1].get("part", 0)), item[0].paths[0].name))
    parts = [maps for maps, _ in ours]
    if not parts:
        raise XRFQuantError(f"{target.name}: no element-map TIFFs in the folder")
    first = parts[0]
    for part in parts[1:]:
        same = (
            part.maps.shape[1:] == first.maps.shape[1:]
            and (part.unit, part.kind, part.pixel_size_um)
            == (first.unit, first.kind, first.pixel_size_um)
        )
        if not same:
            raise XRFQuantError(
                f"{part.paths[0].name}: does not match {first.paths[0].name} "
                "(shape, unit, kind or pixel size)"
            )
    elements = [e for p in parts for e in p.elements]
    if len(set(elements)) != len(elements):
        raise XRFQuantError(
            f"{target.name}: holds more than one set of maps ({', '.join(elements)}); "
            "read the files one by one"
        )
    return ElementMaps(
        maps=np.concatenate([p.maps for p in parts]),
        elements=elements,
        unit=first.unit,
        pixel_size_um=first.pixel_size_um,
        kind=first.kind,
        labels=[label for p in parts for label in p.labels],
        extra=first.extra,
        paths=[p.paths[0] for p in parts],
    )
