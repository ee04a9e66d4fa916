"""Spectra grouped by the composition of their matrix.

What varies slowly with the matrix (the ratios of an element's lines, the
enhancement by secondary fluorescence) is evaluated once per group of spectra
of like composition rather than per spectrum (costly) or once per map (wrong
where the map holds several materials: a 35 % Cu alloy absorbs Au Lα above the
Cu K edge and leaves Au Lℓ, under Zn Kα, as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Mass-fraction step of the groups for the components' shapes: line ratios move
#: slowly with the matrix, and a spectrum's noise should not split one material
#: into several groups.
SHAPE_STEP = 0.1
#: Most groups: past it the step doubles until the groups are fewer (under a tube
#: each group's shapes cost about 0.3 s).
MAX_GROUPS = 8


def composition_groups(
    fractions: np.ndarray, step: float = SHAPE_STEP, max_groups: int = MAX_GROUPS
) -> np.ndarray:
    """``(N,)`` group index of each composition ``(N, E)`` (mass fractions).

    Compositions that round to the same multiples of ``step`` share a group; a
    map of more compositions than ``max_groups`` is grouped at twice the step,
    and so on (past a step of 1 every composition is one group). Non-finite
    fractions (a spectrum without a composition) count as one value.
    """
    w = np.asarray(fractions, dtype=np.float64)
    while step <= 1.0:
        groups = _row_groups(_levels(w, step))
        if groups.max(initial=0) < max_groups:
            return groups
        step *= 2.0
    return np.zeros(len(w), dtype=int)  # fractions of 0-1 at a step past 1: one group


def _levels(w: np.ndarray, step: float) -> np.ndarray:
    """``(N, E)`` non-negative integer level of each fraction at ``step``; a
    non-finite fraction (a balance fit's spectrum without Compton: NaN) is a level
    of its own, one value for all such spectra: NaN rows would never merge."""
    top = int(np.ceil(1.0 / step)) + 1
    levels = np.clip(np.round(np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0) / step),
                     0, top).astype(np.int64)
    return np.where(np.isfinite(w), levels, top + 1)


def _row_groups(levels: np.ndarray) -> np.ndarray:
    """``(N,)`` index of each distinct row of ``levels`` in lexicographic order (as
    ``np.unique(levels, axis=0)``), column by column on integers: sorting rows as
    records took 2 s of a 30 s frame."""
    groups = np.zeros(len(levels), dtype=np.int64)
    base = int(levels.max(initial=0)) + 1
    for column in levels.T:
        groups = np.unique(groups * base + column, return_inverse=True)[1].reshape(-1)
    return groups


def by_group(
    groups: np.ndarray, evaluate: Callable[[np.ndarray], Sequence[np.ndarray | None]]
) -> tuple[Any, ...]:
    """``evaluate(indices)`` for each group's spectra, its arrays put back in the
    spectra's order (row ``i`` of each is spectrum ``i``'s); an output that is None
    for the groups stays None."""
    parts = [evaluate(np.flatnonzero(groups == g)) for g in range(int(groups.max()) + 1)]
    back = np.argsort(np.argsort(groups, kind="stable"))  # parts hold group after group
    return tuple(None if parts[0][i] is None else np.concatenate([p[i] for p in parts])[back]
                 for i in range(len(parts[0])))
