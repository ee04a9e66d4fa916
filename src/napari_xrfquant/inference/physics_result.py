"""What :class:`~.physics_fit.PhysicsQuantifier` returns: each spectrum's
concentrations, their 1-sigma, the components' amounts and the fit quality."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PhysicsFit:
    """What :meth:`PhysicsQuantifier.fit` found, per spectrum.

    Attributes
    ----------
    values
        ``(N, E)`` concentrations of :attr:`elements`: wt% (bulk) or µg/cm²
        (thin sample), see :attr:`unit`.
    sigma
        ``(N, E)`` 1-sigma, same unit.
    amounts
        ``(N, K)`` counts in each component (:attr:`components`).
    amount_sigma
        ``(N, K)`` their 1-sigma.
    fit_quality
        ``(N,)`` Poisson deviance over its expectation on the fitted channels.
    expected
        ``(N, C)`` the fitted spectra on all channels, when asked for
        (``fit(keep_expected=True)``; a frame's would be gigabytes), else None.
    elements, components, unit
        Names of the columns and the unit of ``values``.
    oxygen_wt_percent
        ``(N,)`` oxygen by stoichiometry (matrix ``"oxides"``), else None.
    balance_wt_percent, balance_sigma
        ``(N,)`` the balance compound and its 1-sigma (a balance matrix), else None.
    """

    values: np.ndarray
    sigma: np.ndarray
    amounts: np.ndarray
    amount_sigma: np.ndarray
    fit_quality: np.ndarray
    expected: np.ndarray | None
    elements: list[str]
    components: list[str]
    unit: str
    oxygen_wt_percent: np.ndarray | None = field(default=None, repr=False)
    balance_wt_percent: np.ndarray | None = field(default=None, repr=False)
    balance_sigma: np.ndarray | None = field(default=None, repr=False)
