"""Spectra grouped by composition: like compositions share a group, and a map of many
compositions is grouped more coarsely rather than into more groups than the cap."""

from __future__ import annotations

import numpy as np

from napari_xrfquant.inference.composition_groups import composition_groups


def test_like_compositions_share_a_group_and_unlike_ones_do_not():
    w = np.array([[0.58, 0.04, 0.36], [0.59, 0.04, 0.37], [0.75, 0.25, 0.0]])
    groups = composition_groups(w, step=0.1)
    assert groups[0] == groups[1] != groups[2]


def test_a_map_of_every_composition_is_grouped_more_coarsely_up_to_the_cap():
    w = np.random.default_rng(0).dirichlet(np.ones(5), size=5000)
    fine = composition_groups(w, step=0.05, max_groups=10_000)
    capped = composition_groups(w, step=0.05, max_groups=16)
    assert fine.max() + 1 > 16 >= capped.max() + 1 > 1
    assert composition_groups(w[:1]).tolist() == [0]


def test_spectra_without_a_composition_are_one_group_and_the_grouping_ends():
    """A balance fit gives NaN where a spectrum has no Compton amount: NaN rows are
    one value (as unique rows they never merged, and the grouping never ended)."""
    w = np.full((40, 3), np.nan)
    w[:5] = [0.01, 0.02, 0.0]
    groups = composition_groups(w, max_groups=8)
    assert len(set(groups[:5])) == 1 and len(set(groups[5:])) == 1 and groups.max() == 1
    assert composition_groups(np.random.default_rng(1).random((500, 6)), max_groups=2).max() == 0


def test_the_groups_are_the_distinct_rounded_rows():
    """The integer grouping, column by column, partitions spectra exactly as the
    distinct rows of their rounded fractions do (``np.unique`` of the rows)."""
    w = np.random.default_rng(2).dirichlet(np.ones(4), size=3000)
    w[::50] = np.nan
    groups = composition_groups(w, step=0.05, max_groups=10_000)
    rounded = np.round(np.nan_to_num(w, nan=-1.0) / 0.05)
    distinct = np.unique(rounded, axis=0, return_inverse=True)[1].reshape(-1)
    pairs = set(zip(groups.tolist(), distinct.tolist(), strict=True))
    assert len(pairs) == distinct.max() + 1 == groups.max() + 1
