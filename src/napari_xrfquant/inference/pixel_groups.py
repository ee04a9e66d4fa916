"""What the element search looks at in a map: its sum spectrum and the sums of its
pixel clusters, from spectra in memory or from a cube read a slab of rows at a time.

Clusters are k-means on each pixel's shape over the searched range (64 energy bins,
square-root scaled and normalised: variance-stabilised), so an element present in a
few pixels stands out of its cluster's sum where the whole map's would hide it.
Read from a cube, the pixels' 64 bins are all that is kept between the two passes
(the sum and the features, then the clusters' sums): 36 MB for a 264 x 264 frame
instead of the 570 MB of its counts.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from napari_xrfquant.inference.slabs import row_slabs
from napari_xrfquant.jobs import Progress

#: Pixel clusters searched beside the map's sum (at most; fewer for small maps).
MAX_CLUSTERS = 6
#: Pixels a cluster needs to be searched.
MIN_CLUSTER_PIXELS = 4
#: Energy bins of a pixel's shape.
FEATURE_BINS = 64

Groups = list[tuple[str, np.ndarray]]


def shape_features(spectra: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """``(N, 64)`` counts of each spectrum in 64 bins of the ``fit`` channels."""
    edges = np.linspace(0, int(fit.sum()), FEATURE_BINS + 1, dtype=int)[:-1]
    return np.add.reduceat(spectra[:, fit], edges, axis=1)


def cluster_labels(features: np.ndarray, clusters: int | None) -> np.ndarray:
    """``(N,)`` the cluster of each pixel (k-means on the shapes), -1 for a pixel
    without counts, a cluster too small to search, or no clustering at all."""
    counted = features.sum(axis=1) > 0
    n = int(counted.sum())
    k = min(MAX_CLUSTERS, n // (4 * MIN_CLUSTER_PIXELS)) if clusters is None else clusters
    labels = np.full(features.shape[0], -1)
    if k < 2:
        return labels
    from sklearn.cluster import KMeans

    binned = features[counted]
    shape = np.sqrt(binned / binned.sum(axis=1, keepdims=True))  # variance-stabilised
    labels[counted] = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(shape)
    sizes = np.bincount(labels[counted], minlength=k)
    labels[np.isin(labels, np.flatnonzero(sizes < MIN_CLUSTER_PIXELS))] = -1
    return labels


def named(sums: np.ndarray, labels: np.ndarray) -> Groups:
    """The clusters' sums ``(k, C)`` named as the search reports them."""
    sizes = np.bincount(labels[labels >= 0], minlength=len(sums))
    return [(f"cluster {k + 1} ({sizes[k]} pixels)", sums[k])
            for k in range(len(sums)) if sizes[k] > 0]


def groups_in_memory(x: np.ndarray, fit: np.ndarray, clusters: int | None) -> Groups:
    """The sum and the clusters' sums of spectra ``(N, C)`` held in memory."""
    labels = cluster_labels(shape_features(x, fit), clusters)
    k = int(labels.max()) + 1
    sums = np.stack([x[labels == c].sum(axis=0) for c in range(k)]) if k else np.zeros((0,))
    return [("sum", x.sum(axis=0)), *named(sums, labels)]


def iter_groups_in_cube(
    counts: Any, energy_keV: np.ndarray, target_keV: np.ndarray, fit: np.ndarray,
    clusters: int | None,
) -> Generator[Progress, None, Groups]:
    """The sum and the clusters' sums of a cube ``(H, W, C)`` on ``target_keV``,
    read a slab of rows at a time, twice (progress stage ``"read"``)."""
    rows = int(np.shape(counts)[0])
    summed = np.zeros(len(target_keV))
    features = []
    for first, _last, spectra in row_slabs(counts, energy_keV, target_keV):
        yield Progress(first, 2 * rows, "read")
        summed += spectra.sum(axis=0)
        features.append(shape_features(spectra, fit))
    labels = cluster_labels(np.concatenate(features), clusters)
    k = int(labels.max()) + 1
    sums = np.zeros((k, len(target_keV)))
    start = 0
    for first, _last, spectra in row_slabs(counts, energy_keV, target_keV) if k else ():
        yield Progress(rows + first, 2 * rows, "read")
        mine = labels[start:start + len(spectra)]
        start += len(spectra)
        for c in np.unique(mine[mine >= 0]):
            sums[c] += spectra[mine == c].sum(axis=0)
    yield Progress(2 * rows, 2 * rows, "read")
    return [("sum", summed), *named(sums, labels)]
