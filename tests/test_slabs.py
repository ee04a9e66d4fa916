"""A cube read a slab of rows at a time: a lazy (dask) cube's chunks of rows are each
computed once, however the slabs and the fits' reads fall across them."""

from __future__ import annotations

import dask.array as da
import numpy as np

from conftest import RowCountingCube
from napari_xrfquant.inference.slabs import RowReader, row_slabs

ENERGY = np.linspace(1.0, 20.0, 16)


def _lazy(rows: int = 23, cols: int = 6, chunk_rows: int = 5):
    data = np.random.default_rng(0).poisson(3.0, (rows, cols, ENERGY.size)).astype(np.uint16)
    stored = RowCountingCube(data)  # the file: the rows each computed chunk reads
    stored.dtype, stored.ndim = data.dtype, data.ndim
    return data, stored, da.from_array(stored, chunks=(chunk_rows, cols, ENERGY.size),
                                       asarray=True, fancy=False)


def test_each_chunk_of_rows_is_computed_once_for_all_its_slabs():
    data, stored, lazy = _lazy()
    seen = []
    for first, last, spectra in row_slabs(lazy, ENERGY, ENERGY, slab_pixels=12):  # 2 rows
        assert spectra.dtype == np.float64
        np.testing.assert_array_equal(spectra, data[first:last].reshape(-1, ENERGY.size))
        seen.extend(range(first, last))
    assert seen == list(range(23))
    assert [n for n in stored.rows_read if n] == [5, 5, 5, 5, 3]  # dask reads 0 for its meta


def test_reads_across_chunks_give_the_rows_asked_and_compute_each_chunk_once():
    data, stored, lazy = _lazy()
    reader = RowReader(lazy, ENERGY, ENERGY)
    for first, last in [(0, 3), (3, 8), (8, 21), (21, 23)]:  # the fits' chunks of pixels
        np.testing.assert_array_equal(reader.rows(first, last),
                                      data[first:last].reshape(-1, ENERGY.size))
    assert [n for n in stored.rows_read if n] == [5, 5, 5, 5, 3]  # dask reads 0 for its meta


def test_a_cube_of_another_kind_is_read_as_asked():
    data = np.ones((7, 2, ENERGY.size))
    stored = RowCountingCube(data)
    slabs = row_slabs(stored, ENERGY, ENERGY, 4)
    assert [last - first for first, last, _ in slabs] == [2, 2, 2, 1]
    assert stored.rows_read == [2, 2, 2, 1]


def test_a_chunk_of_rows_too_large_to_hold_is_read_a_slab_at_a_time(monkeypatch):
    from napari_xrfquant.inference import slabs

    monkeypatch.setattr(slabs, "HOLD_BYTES", 4 * 6 * ENERGY.size * 2)  # 4 rows of uint16
    data, _stored, lazy = _lazy()
    reader = RowReader(lazy, ENERGY, ENERGY)
    np.testing.assert_array_equal(reader.rows(2, 9), data[2:9].reshape(-1, ENERGY.size))
    assert reader._held is None  # sliced as asked, nothing kept
