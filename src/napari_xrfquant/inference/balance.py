"""A balance matrix: the elements fitted in absolute terms, the rest one compound the
detector cannot see (an organic section, water, a polymer), normalised by its Compton
scatter.

Closing the fitted elements to 100 % is wrong when most of the sample shows no line:
a dried tissue is 99 % C, H, N and O. With a balance compound ``B`` the sample is
``w_e`` of each fitted element and ``1 - sum w_e`` of ``B``, and the scale comes from
the scatter instead of the closure (Compton normalisation): the Compton amount ``A_C``
of a spectrum over the simulator's Compton photons ``C(w)`` per incident photon (in
the same matrix, ``scatter.scale`` included) is the counts per incident photon ``k``,
so ``w_e = A_e / (k s_e(w)) = A_e C(w) / (A_C s_e(w))``, iterated as the closure is.
What the simulator gets wrong about the scatter (``scatter.scale``, which a
calibration fits) scales every element alike.
"""

from __future__ import annotations

import numpy as np

from napari_xrfquant.errors import XRFQuantError

#: Names of a matrix that are not a balance compound.
CLOSED_MATRICES = ("elements", "oxides")


def balance_fractions(name: str, fitted: list[str]) -> dict[str, float]:
    """Mass fractions of the balance compound ``name`` (a formula or an xraylib NIST
    compound), which must hold none of the ``fitted`` elements.

    Raises
    ------
    XRFQuantError
        For what is neither, or a compound with a fitted element (one line).
    """
    from napari_xrfquant.errors import InstrumentError
    from napari_xrfquant.physics._xraydata import material, z_to_symbol

    try:
        compound = material(name)
    except InstrumentError:
        raise XRFQuantError(f"matrix {name!r}: give elements, oxides or a balance compound "
                            "(a chemical formula such as C5H8NO2, or an xraylib NIST "
                            "compound)") from None
    fractions = {z_to_symbol(z): w for z, w in zip(compound.z, compound.mass_fractions,
                                                   strict=True)}
    shared = sorted(set(fractions) & set(fitted))
    if shared:
        raise XRFQuantError(f"matrix {name!r} holds {', '.join(shared)} (fitted as "
                            "elements): a balance compound is what the detector does not see")
    return fractions


def with_balance(w: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """``(N, E + B)``: the fitted fractions ``w`` ``(N, E)`` and the balance compound's
    elements (mass fractions ``balance`` ``(B,)``) filling the rest."""
    rest = np.clip(1.0 - w.sum(axis=1, keepdims=True), 0.0, None)
    return np.concatenate([w, rest * balance[None, :]], axis=1)


def absolute_fractions(
    amounts: np.ndarray, sensitivities: np.ndarray, compton_amount: np.ndarray,
    compton_per_photon: np.ndarray,
) -> np.ndarray:
    """``(N, E)`` mass fractions ``A_e C / (A_C s_e)``; spectra whose fractions would
    pass 1 are scaled back to 1 (a scatter the simulator overestimates), and those
    with no Compton amount are NaN."""
    k = compton_amount / np.clip(compton_per_photon, 1e-300, None)  # counts per photon
    with np.errstate(divide="ignore", invalid="ignore"):
        w = amounts / (k[:, None] * sensitivities)
    w = np.where(compton_amount[:, None] > 0, w, np.nan)
    total = np.nansum(w, axis=1, keepdims=True)
    return np.where(total > 1.0, w / np.clip(total, 1e-300, None), w)


def absolute_sigma(
    w: np.ndarray, amounts: np.ndarray, covariance: np.ndarray, element_columns: int,
    compton_column: int,
) -> np.ndarray:
    """``(N, E + 1)`` 1-sigma of the fractions ``w_e = A_e C / (A_C s_e)`` and, last, of
    the balance ``1 - sum w_e``, from the covariance ``(N, K, K)`` of all amounts
    (``dw_e / dA_e = w_e / A_e``, ``dw_e / dA_C = -w_e / A_C``)."""
    n, e = w.shape[0], element_columns
    jacobian = np.zeros((n, e + 1, covariance.shape[1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(amounts[:, :e] > 0, w / amounts[:, :e], 0.0)
        by_compton = -w / amounts[:, compton_column:compton_column + 1]
    index = np.arange(e)
    jacobian[:, index, index] = own
    jacobian[:, :e, compton_column] = by_compton
    jacobian[:, e] = -jacobian[:, :e].sum(axis=1)
    variance = np.einsum("nik,nkl,nil->ni", jacobian, covariance, jacobian)
    return np.sqrt(np.clip(np.nan_to_num(variance, nan=0.0), 0.0, None))
