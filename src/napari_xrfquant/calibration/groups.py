"""Pixels grouped for calibration: standards by their labels, the rest by k-means.

A 264 x 264 cube holds tens of thousands of spectra but only a handful of
materials. The fit works on summed spectra of pixel groups that share a
composition: each labelled standard region is one group with its certified
composition; the other sample pixels are clustered (scikit-learn's
MiniBatchKMeans on square-root scaled, normalised, binned spectra) into groups
of similar spectra, each with a composition to fit. Summing makes every group
spectrum rich in counts, so a cube costs seconds per iteration, not hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.slabs import SLAB_PIXELS, slab_ranges
from napari_xrfquant.physics.standards import Standard

#: Channels summed into one clustering feature (the clusters need shapes, not detail).
CLUSTER_BIN_CHANNELS = 8


@dataclass
class PixelGroups:
    """Summed spectra of pixel groups and how the pixels map to them.

    Attributes
    ----------
    counts
        ``(G, C)`` float64 summed counts of each group (for clusters: the fitted
        half of the thinned counts).
    names
        Name of each group (the standard's, or ``"cluster 3"``).
    fixed
        ``(G,)`` True for standards (composition known).
    wt_percent
        ``(G, E)`` known compositions (rows of standards; NaN for clusters).
    assignment
        ``(H, W)`` group index of each pixel, -1 for background.
    n_pixels
        ``(G,)`` pixels in each group.
    """

    counts: np.ndarray
    names: list[str]
    fixed: np.ndarray
    wt_percent: np.ndarray
    assignment: np.ndarray
    n_pixels: np.ndarray


def _features(spectra: np.ndarray) -> np.ndarray:
    n, c = spectra.shape
    usable = c - c % CLUSTER_BIN_CHANNELS
    if n == 0:  # a slab without free pixels
        return np.zeros((0, usable // CLUSTER_BIN_CHANNELS))
    binned = spectra[:, :usable].reshape(n, -1, CLUSTER_BIN_CHANNELS).sum(axis=2)
    total = np.maximum(binned.sum(axis=1, keepdims=True), 1.0)
    return np.sqrt(binned / total)


def _free(sample: np.ndarray, labels: np.ndarray | None, standards: Mapping[int, Standard],
          first: int, last: int) -> np.ndarray:
    """Rows ``first:last``'s sample pixels outside every standard's region."""
    free = sample.copy()
    if labels is not None and standards:
        free &= ~np.isin(labels[first:last], list(standards))
    return free


def _thinned(spectra: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One binomial half of ``spectra`` ``(N, C)``, the next draws of ``rng``: the
    pixels thinned slab after slab take the same draws as all at once, so a pass
    that starts ``rng`` again from its seed draws the same halves. Counts stored as
    floats (integer-valued float32 of MAPS, MDA, MSA files) are thinned as the
    integers they are; other floats as their nearest counts."""
    whole = np.rint(np.clip(spectra, 0, None)).astype(np.int64)
    return rng.binomial(whole, 0.5) if len(whole) else whole


def group_pixels(
    counts: Any,
    elements: Sequence[str],
    *,
    labels: np.ndarray | None = None,
    standards: Mapping[int, Standard] | None = None,
    n_clusters: int = 16,
    mask_below_counts: float = 200.0,
    seed: int = 0,
) -> PixelGroups:
    """Group the pixels of ``counts`` ``(H, W, C)`` into standards and clusters.

    The counts of the clustered pixels are split by binomial thinning into two
    independent Poisson halves: k-means sees one, the group spectra sum the
    other. A homogeneous material split into several clusters along its noise
    (more clusters than materials) would otherwise give group spectra that are
    conditioned on that noise and no Poisson draws of the material, which biases
    the fitted instrument; with thinning the selection cannot touch the fitted
    half. Standards, selected by their labels, keep all their counts.

    Parameters
    ----------
    counts
        The cube, channel-last (a lazy one too: it is read a slab of rows at a
        time, twice, never whole).
    elements
        The elements of the compositions.
    labels
        ``(H, W)`` integer region labels (0: not a standard), or None.
    standards
        Label value -> the standard that region holds.
    n_clusters
        Groups for the pixels outside the standards (fewer when there are fewer pixels).
    mask_below_counts
        Pixels with fewer counts in total are background and left out.
    seed
        Seeds k-means.

    Raises
    ------
    XRFQuantError
        For labels of another size, a standard label with no pixel (or only
        background pixels), or a standard holding an element not in ``elements``.
    """
    from sklearn.cluster import MiniBatchKMeans

    rows, cols = (int(n) for n in np.shape(counts)[:2])
    standards = dict(standards or {})
    if standards and labels is None:
        raise XRFQuantError("standards need a label image that marks their regions")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (rows, cols):
            raise XRFQuantError(
                f"labels have shape {labels.shape}, the map is {rows} x {cols}; they must match"
            )
    # two passes over slabs of whole rows (a lazy cube is never read whole): the
    # totals, the standards' sums and the shapes of one thinned half, then, once
    # k-means has grouped those, the other half's sums (the generator started again
    # from its seed: the same halves in both passes, and as if thinned all at once)
    slabs = slab_ranges(rows, cols, SLAB_PIXELS)
    sample = np.zeros((rows, cols), dtype=bool)
    region_sums = {label: 0.0 for label in standards}
    features = []
    rng = np.random.default_rng(seed)
    for first, last in slabs:
        data = np.asarray(counts[first:last])
        sample[first:last] = data.sum(axis=2, dtype=np.float64) >= mask_below_counts
        for label in standards:
            assert labels is not None
            region = (labels[first:last] == label) & sample[first:last]
            region_sums[label] = region_sums[label] + data[region].sum(axis=0, dtype=np.float64)
        free = _free(sample[first:last], labels, standards, first, last)
        features.append(_features(_thinned(data[free], rng).astype(np.float64)))
    assignment = np.full((rows, cols), -1, dtype=np.int64)
    names: list[str] = []
    fixed: list[bool] = []
    wt: list[list[float]] = []
    sums: list[np.ndarray] = []
    for label, standard in standards.items():
        assert labels is not None
        region = (labels == label) & sample
        if not region.any():
            raise XRFQuantError(
                f"standard region {label} ({standard.name}) holds no sample pixel "
                f"(empty, outside the map, or below {mask_below_counts:g} counts)"
            )
        assignment[region] = len(names)
        names.append(standard.name)
        fixed.append(True)
        wt.append(standard.vector(list(elements)))
        sums.append(np.asarray(region_sums[label], dtype=np.float64))
    free_all = _free(sample, labels, standards, 0, rows)
    shapes = np.concatenate(features) if features else np.zeros((0, 1))
    if len(shapes):
        k = max(1, min(int(n_clusters), len(shapes)))
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
        cluster = km.fit_predict(shapes)
        cluster_sums = np.zeros((k, int(np.shape(counts)[2])))
        done = 0
        rng = np.random.default_rng(seed)  # the same halves again
        for first, last in slabs:
            data = np.asarray(counts[first:last])
            spectra = data[_free(sample[first:last], labels, standards, first, last)]
            fitted = spectra.astype(np.float64) - _thinned(spectra, rng)
            mine = cluster[done:done + len(spectra)]
            done += len(spectra)
            for index in np.unique(mine):
                cluster_sums[index] += fitted[mine == index].sum(axis=0)
        first_group = len(names)
        rr, cc = np.nonzero(free_all)
        for index in range(k):
            members = cluster == index
            if not members.any():
                continue
            group = len(names)
            names.append(f"cluster {group - first_group + 1}")
            fixed.append(False)
            wt.append([np.nan] * len(elements))
            sums.append(cluster_sums[index])
            assignment[rr[members], cc[members]] = group
    if not sums:
        raise XRFQuantError(f"no pixel holds {mask_below_counts:g} counts or more; nothing to fit")
    n_pixels = np.array([(assignment == g).sum() for g in range(len(names))])
    return PixelGroups(
        counts=np.stack(sums),
        names=names,
        fixed=np.asarray(fixed, dtype=bool),
        wt_percent=np.asarray(wt, dtype=np.float64),
        assignment=assignment,
        n_pixels=n_pixels,
    )
