"""TIFF stacks as cubes.

Layouts read (tifffile's first series, after it drops length-1 axes):

- a stack of 2-D pages: ``(pages, Y, X)``; the pages are either the energy
  channels (energy first) or the map rows (energy last, each page one row of
  ``cols x channels``);
- one page with many samples per pixel: ``(Y, X, S)`` (energy last, "contig")
  or ``(S, Y, X)`` (energy first, "separate" planes).

Which axis is energy (first or last): ``energy_axis="first"|"last"`` when
given; else the file's axes metadata (ImageJ, OME, tifffile's own, or the
samples axis) when it names the two spatial axes ``Y`` and ``X`` and a third
that is not a generic sequence (``Q``/``I``); else the shape rule of
:func:`~napari_xrfquant.io._checks.guess_energy_axis` (the end axis least like
the middle, spatial one in length).

Lazy cubes memory-map uncompressed contiguous data. Compressed or tiled files
become dask arrays with one chunk per page (or per strip band of a single
page), and one pixel's spectrum decodes only the strips or tiles that hold its
row, never whole chunks.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io._checks import (
    DASK_CHUNK_BYTES,
    DEFAULT_LAZY_THRESHOLD_BYTES,
    SliceOnly,
    check_numeric_dtype,
    check_rank,
    dask_chunks,
    dask_name,
    decide_lazy,
    guess_energy_axis,
    move_energy_last,
    normalise_energy_axis,
    pixel_index,
)
from napari_xrfquant.io.calibration import energy_from_offset_gain, resolve_energy_axis
from napari_xrfquant.io.cube import Cube

_SPATIAL_AXES = "YX"
#: tifffile's axis codes for "some sequence": they say nothing about energy.
_UNNAMED_AXES = "QI"
_JPEG_COMPRESSIONS = {6, 7, 33007, 34892}
#: Decoded strip bands kept for spectrum-on-click in compressed page-per-channel stacks.
_BAND_CACHE_BYTES = 256 * 1024**2
_MICROMETRE_UNITS = {"um", "µm", "\\u00B5m", "micron", "microns", "micrometer", "micrometre"}


# -- strips and tiles -----------------------------------------------------------
def read_page_rows(page: Any, row_start: int, row_stop: int) -> np.ndarray:
    """Decode rows ``[row_start, row_stop)`` of a TIFF page, touching only their segments.

    Parameters
    ----------
    page
        A ``tifffile.TiffPage`` (or ``TiffFrame``) of an open file.
    row_start, row_stop
        Row range in the page's image (``ImageLength``) direction.

    Returns
    -------
    numpy.ndarray
        Shape ``(separate samples, rows, width, contiguous samples)`` in native
        byte order, as tifffile normalises page data.
    """
    key = page.keyframe
    n_sep = key.samplesperpixel if key.planarconfig == 2 else 1
    n_contig = key.samplesperpixel if key.planarconfig == 1 else 1
    height, width = key.imagelength, key.imagewidth
    if key.imagedepth > 1:  # volumetric tiles: rare in spectral stacks, decode whole
        full = page.asarray().reshape(n_sep, height, width, n_contig)
        return full[:, row_start:row_stop]
    if key.is_tiled:
        seg_rows, seg_cols = key.tilelength, key.tilewidth
    else:
        seg_rows, seg_cols = key.rowsperstrip, width
    n_down, n_across = math.ceil(height / seg_rows), math.ceil(width / seg_cols)
    decode = key.decode
    decode_args: dict[str, Any] = {}
    if key.compression in _JPEG_COMPRESSIONS:
        decode_args = {"jpegtables": page.jpegtables, "jpegheader": key.jpegheader}
    handle = page.parent.filehandle
    out = np.zeros(
        (n_sep, row_stop - row_start, width, n_contig), dtype=key.dtype.newbyteorder("=")
    )
    for sample in range(n_sep):
        for down in range(row_start // seg_rows, (row_stop - 1) // seg_rows + 1):
            for across in range(n_across):
                index = (sample * n_down + down) * n_across + across
                offset, count = page.dataoffsets[index], page.databytecounts[index]
                if count == 0:
                    continue  # an empty segment reads as zeros
                with handle.lock:
                    handle.seek(offset)
                    raw = handle.read(count)
                segment, (s, _, y, x, _), _ = decode(raw, index, **decode_args)
                if segment is None:
                    continue
                segment = segment.reshape(segment.shape[-3:])  # (rows, cols, contig)
                lo, hi = max(row_start, y), min(row_stop, y + segment.shape[0], height)
                cols = min(segment.shape[1], width - x)
                out[s, lo - row_start : hi - row_start, x : x + cols] = segment[
                    lo - y : hi - y, :cols
                ]
    return out


# -- metadata -----------------------------------------------------------------
def _file_metadata(tif: tifffile.TiffFile) -> dict[str, Any]:
    """Key/value metadata from tifffile's own JSON, ImageJ, or an ImageJ Info JSON."""
    merged: dict[str, Any] = {}
    if tif.is_shaped and tif.shaped_metadata:
        merged.update(tif.shaped_metadata[0])
    if tif.is_imagej and tif.imagej_metadata:
        ij = dict(tif.imagej_metadata)
        info = ij.pop("Info", None)
        merged.update(ij)
        if isinstance(info, str):
            try:
                parsed = json.loads(info)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                merged.update(parsed)
    return merged


def pixel_size_from_tiff(tif: tifffile.TiffFile, metadata: dict[str, Any]) -> float | None:
    """Pixel size in micrometres: from our JSON, else ImageJ unit + resolution."""
    if metadata.get("pixel_size_um") is not None:
        return float(metadata["pixel_size_um"])
    unit = str(metadata.get("unit", "")).strip().lower()
    if unit not in _MICROMETRE_UNITS:
        return None
    x_resolution = tif.pages[0].resolution[0]
    if not x_resolution:
        return None
    return 1.0 / float(x_resolution)


def _energy_axis_from_axes(axes: str) -> int | None:
    """The energy axis index when ``axes`` names Y, X and one meaningful third axis."""
    if len(axes) != 3 or not set(_SPATIAL_AXES) <= set(axes):
        return None
    (other,) = (i for i, code in enumerate(axes) if code not in _SPATIAL_AXES)
    if axes[other] in _UNNAMED_AXES or other == 1:
        return None
    return other


# -- readers -------------------------------------------------------------------
def _open_tiff(path: Path) -> tifffile.TiffFile:
    if not path.is_file():
        raise CubeReadError(f"{path.name}: no such file")
    try:
        return tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError, ValueError, struct.error) as exc:
        raise CubeReadError(f"{path.name}: not a readable TIFF file ({exc})") from None


def _check_contiguous_size(path: Path, series: Any) -> None:
    """Refuse an uncompressed contiguous series whose image data run past the file's end."""
    if series.dataoffset is None:
        return
    needed = series.dataoffset + math.prod(series.shape) * np.dtype(series.dtype).itemsize
    if path.stat().st_size < needed:
        raise CubeReadError(f"{path.name}: TIFF file is truncated (image data run past its end)")


def _memmap(path: Path, tif: tifffile.TiffFile, series: Any) -> np.ndarray | None:
    """Read-only memmap of the series, or None when it is compressed or scattered."""
    if series.dataoffset is None:
        return None
    _check_contiguous_size(path, series)
    dtype = np.dtype(tif.byteorder + series.dtype.char)
    return np.memmap(path, dtype=dtype, mode="r", offset=series.dataoffset, shape=series.shape)


def _single_page_layout(series: Any) -> str | None:
    """'YXS' or 'SYX' for a one-page cube with samples, else None."""
    if len(series.pages) == 1 and series.axes in ("YXS", "SYX"):
        return series.axes
    return None


def _paged_dask(series: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Dask array with one chunk per 2-D page: ``(pages, A, B)``."""
    import dask.array as da

    pages = list(series.pages)

    def load(block_id: tuple[int, ...] | None = None) -> np.ndarray:
        assert block_id is not None  # dask passes the block's index
        page = pages[block_id[0]]
        return read_page_rows(page, 0, shape[1])[0, :, :, 0][None]

    return da.map_blocks(
        load, dtype=dtype, chunks=((1,) * shape[0], (shape[1],), (shape[2],)), meta=np.empty(0)
    )


def _banded_dask(series: Any, layout: str, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """Dask array over one page with samples, in bands of whole strips/tiles."""
    import dask.array as da

    page = series.pages[0]
    key = page.keyframe
    height = key.imagelength
    seg_rows = key.tilelength if key.is_tiled else key.rowsperstrip
    bytes_per_row = math.prod(shape) // height * dtype.itemsize
    band = max(seg_rows, DASK_CHUNK_BYTES // max(bytes_per_row, 1) // seg_rows * seg_rows)
    band = min(band, height)
    row_chunks = tuple(min(band, height - start) for start in range(0, height, band))
    row_axis = 0 if layout == "YXS" else 1

    def load(block_id: tuple[int, ...] | None = None) -> np.ndarray:
        assert block_id is not None  # dask passes the block's index
        start = block_id[row_axis] * band
        rows = read_page_rows(page, start, start + row_chunks[block_id[row_axis]])
        return rows[0] if layout == "YXS" else rows[..., 0]

    chunks: list[tuple[int, ...]] = [(n,) for n in shape]
    chunks[row_axis] = row_chunks
    return da.map_blocks(load, dtype=dtype, chunks=tuple(chunks), meta=np.empty(0))


def _pixel_reader(
    series: Any, energy_axis: int, where: str = ""
) -> Callable[[int, int], np.ndarray] | None:
    """A reader of one pixel's spectrum that decodes only the segments it needs."""
    pages = list(series.pages)
    layout = _single_page_layout(series)
    if layout is not None:
        if (layout == "YXS") != (energy_axis == 2):
            return None
        page = pages[0]

        def read_sampled(row: int, col: int) -> np.ndarray:
            return read_page_rows(page, row, row + 1)[:, 0, col, :].reshape(-1)

        return read_sampled
    if len(pages) != series.shape[0] or any(p is None for p in pages):
        return None
    if energy_axis == 0:
        return _cached_across_pages(pages, where)

    def read_row_page(row: int, col: int) -> np.ndarray:
        return read_page_rows(pages[row], col, col + 1)[0, 0, :, 0]

    return read_row_page


def _cached_across_pages(pages: list[Any], where: str) -> Callable[[int, int], np.ndarray]:
    """Pixel reader for one page per channel that keeps recently decoded strip bands.

    A compressed strip cannot be read in part, so one spectrum decodes the
    strip (or tile row) holding its row on every page. Neighbouring clicks
    usually fall in the same band: keeping the last few bands (at most
    :data:`_BAND_CACHE_BYTES`) makes them free.
    """
    from functools import lru_cache

    key = pages[0].keyframe
    height = key.imagelength
    band_rows = key.tilelength if key.is_tiled else min(key.rowsperstrip, height)
    band_bytes = band_rows * key.imagewidth * key.dtype.itemsize * len(pages)
    if band_bytes > _BAND_CACHE_BYTES:
        # Strips too tall to keep (e.g. one strip per page): decode, take the row, drop.
        if key.compression != 1:
            warnings.warn(
                f"{where}: each spectrum decodes {band_bytes / 1e6:.0f} MB of compressed "
                "strips (one strip per channel page), so clicking pixels will be slow; "
                "save the cube as CXC HDF5 for fast spectra",
                UserWarning,
                stacklevel=5,
            )
        def read_uncached(row: int, col: int) -> np.ndarray:
            return np.array([read_page_rows(p, row, row + 1)[0, 0, col, 0] for p in pages])

        return read_uncached
    n_bands = _BAND_CACHE_BYTES // band_bytes

    @lru_cache(maxsize=n_bands)
    def band(index: int) -> np.ndarray:
        start = index * band_rows
        stop = min(start + band_rows, height)
        return np.stack([read_page_rows(page, start, stop)[0, :, :, 0] for page in pages])

    def read_across_pages(row: int, col: int) -> np.ndarray:
        return band(row // band_rows)[:, row % band_rows, col].copy()

    return read_across_pages


def open_tiff(
    path: str | os.PathLike[str],
    energy_axis: str | int | None = None,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = DEFAULT_LAZY_THRESHOLD_BYTES,
    calibration: Sequence[float] | None = None,
) -> Cube:
    """Read a cube from a TIFF stack. Parameters as :func:`napari_xrfquant.io.read_cube`."""
    file_path = Path(path)
    where = file_path.name
    axis_choice = normalise_energy_axis(energy_axis, where)
    tif = _open_tiff(file_path)
    try:
        if not tif.series:
            raise CubeReadError(f"{where}: TIFF file holds no image")
        series = tif.series[0]
        shape = tuple(int(n) for n in series.shape)
        if series.dtype is None:
            raise CubeReadError(f"{where}: TIFF sample format is not supported")
        dtype = check_numeric_dtype(series.dtype, where)
        check_rank(shape, where)
        meta = _file_metadata(tif)
        axis = axis_choice
        if axis is None:
            axis = _energy_axis_from_axes(series.axes)
        if axis is None:
            axis = guess_energy_axis(shape, where)
        n_channels = shape[axis]
        energy_in_file = None
        if "energy_keV" in meta:
            energy_in_file = np.asarray(meta["energy_keV"], dtype=np.float64)
        elif "offset_keV" in meta and "gain_keV" in meta:
            energy_in_file = energy_from_offset_gain(
                meta["offset_keV"], meta["gain_keV"], n_channels, where
            )
        energy, source = resolve_energy_axis(file_path, n_channels, energy_in_file, calibration)
        metadata: dict[str, Any] = {
            "format": "TIFF",
            "energy_axis_in_file": {0: "first", 2: "last"}[axis],
            "axes": series.axes,
            "pixel_size_um": pixel_size_from_tiff(tif, meta),
        }
        nbytes = math.prod(shape) * dtype.itemsize
        if decide_lazy(nbytes, lazy, lazy_threshold_bytes):
            data, read_pixel, closer, _mapped = _lazy_tiff(
                file_path, tif, series, shape, dtype, axis
            )
            data = move_energy_last(data, axis)
            return Cube(
                data, energy, source, file_path, metadata, "TIFF",
                _read_pixel=read_pixel, _closer=closer,
            )
        _check_contiguous_size(file_path, series)
        try:
            values = series.asarray()
        except Exception as exc:  # tifffile raises many types for damaged data
            raise CubeReadError(f"{where}: cannot decode the TIFF image data ({exc})") from None
    except BaseException:
        tif.close()
        raise
    tif.close()
    values = np.ascontiguousarray(move_energy_last(values.reshape(shape), axis))
    return Cube(values, energy, source, file_path, metadata, "TIFF")


def _lazy_tiff(
    path: Path, tif: tifffile.TiffFile, series: Any, shape: tuple[int, ...],
    dtype: np.dtype, axis: int,
) -> tuple[
    Any, Callable[[int, int], np.ndarray] | None, Callable[[], None] | None, np.ndarray | None
]:
    """Dask array in file axis order, a one-pixel reader, what closes the file, the memmap."""
    import dask.array as da

    mapped = _memmap(path, tif, series)
    if mapped is not None:
        # The memmap holds its own handle and is released with the last view of
        # it; closing it under live views would be unsafe, so there is no closer.
        tif.close()

        def read_mapped(row: int, col: int) -> np.ndarray:
            return np.array(mapped[pixel_index(row, col, axis)])

        chunks = dask_chunks(shape, mapped.dtype.itemsize, None, axis)
        array = da.from_array(
            SliceOnly(mapped), chunks=chunks, asarray=True, name=dask_name(path, chunks)
        )
        return array, read_mapped, None, mapped
    # dask reads pages from several threads: each seek + read must stay together.
    tif.filehandle.set_lock(True)
    layout = _single_page_layout(series)
    pages = list(series.pages)
    if layout is not None:
        data = _banded_dask(series, layout, shape, dtype)
    elif len(pages) == shape[0] and all(p is not None and len(p.shape) == 2 for p in pages):
        data = _paged_dask(series, shape, dtype)
    else:
        warnings.warn(
            f"{path.name}: this TIFF layout ({series.axes}) cannot be read lazily; loading it",
            UserWarning,
            stacklevel=4,
        )
        values = series.asarray().reshape(shape)
        data = da.from_array(values, chunks=dask_chunks(shape, dtype.itemsize, None, axis))
    return data, _pixel_reader(series, axis, path.name), tif.close, None
