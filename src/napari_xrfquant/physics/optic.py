"""The optic's transmission in torch: two sigmoids or log-transmission knots.

See :class:`napari_xrfquant.instrument.Optic` for the models; the numpy twin is
``Optic.transmission``. A knots optic's values can be overridden as *drops*
``optic_drop_i = log T[i-1] - log T[i]`` (shift-free, since only the shape of
``T`` matters), which is how a calibration fits them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from napari_xrfquant.instrument import Instrument
from napari_xrfquant.instrument_parameters import drop_index

#: The optic's scalar simulator parameters.
OPTIC_NAMES = ("optic_low_keV", "optic_low_width_keV", "optic_high_keV", "optic_high_width_keV")


def override_problem(name: str, ndim: int, n_knots: int, known: Sequence[str]) -> str | None:
    """Why an instrument override ``name`` of ``ndim`` dimensions is refused, or None.

    ``known`` names take scalars and per-spectrum ``(N,)`` values; a drop only a
    scalar, and only for a knot the optic (of ``n_knots`` knots, 0 for none) has.
    """
    drop = drop_index(name)
    if drop is None and name not in known:
        names = ", ".join((*known, "optic_drop_<i>"))
        return f"unknown instrument override {name!r} (known: {names})"
    if ndim > 1 or (drop is not None and ndim > 0):
        return f"instrument override {name!r} must be a scalar" + ("" if drop else " or (N,)")
    if drop is not None and drop >= n_knots:
        return f"instrument override {name!r}: the optic has no knot {drop}"
    return None


def optic_transmission(
    model: str | None,
    energy_keV: torch.Tensor,
    values: Mapping[str, torch.Tensor],
    knots_keV: torch.Tensor,
    log_transmission: torch.Tensor,
) -> torch.Tensor:
    """``T(E)`` of an optic of ``model`` ("sigmoids", "knots" or None: 1)."""
    if model == "sigmoids":
        rise = torch.sigmoid((energy_keV - values["optic_low_keV"]) / values["optic_low_width_keV"])
        fall = torch.sigmoid(
            (values["optic_high_keV"] - energy_keV) / values["optic_high_width_keV"]
        )
        return rise * fall
    if model == "knots":
        log_t = knot_log_transmission(log_transmission, values)
        return torch.exp(pchip(energy_keV, knots_keV, log_t))
    return torch.ones_like(energy_keV)


def knot_log_transmission(
    log_transmission: torch.Tensor, values: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """The knots' ``log T`` with any ``optic_drop_<i>`` of ``values`` applied.

    Knot 0 keeps its value; knot i is knot i-1 less its drop (overridden or as
    stored), so one override moves every knot above it by the same amount.
    """
    drops = {drop_index(name): value for name, value in values.items() if drop_index(name)}
    if not drops:
        return log_transmission
    stored = log_transmission[:-1] - log_transmission[1:]
    steps = [
        drops[i].reshape(()) if i in drops else stored[i - 1]
        for i in range(1, log_transmission.numel())
    ]
    return torch.cat(
        [log_transmission[:1], log_transmission[0] - torch.cumsum(torch.stack(steps), 0)]
    )


def optic_values(instrument: Instrument) -> dict[str, float]:
    """The optic's scalar parameters (placeholders for an optic of another model)."""
    optic = instrument.optic
    if optic is not None and optic.model == "sigmoids":
        return {
            "optic_low_keV": float(optic.low_keV or 0.0),
            "optic_low_width_keV": float(optic.low_width_keV or 1.0),
            "optic_high_keV": float(optic.high_keV or 0.0),
            "optic_high_width_keV": float(optic.high_width_keV or 1.0),
        }
    return dict.fromkeys(OPTIC_NAMES, 1.0)


def pchip(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Monotone piecewise-cubic (PCHIP) interpolation, flat outside ``xp``.

    The slopes are those of ``scipy.interpolate.PchipInterpolator`` (Fritsch-
    Carlson weighted harmonic means, shape-preserving ends), so the curve is
    smooth (C1), never overshoots the knots, and is monotone wherever ``fp``
    is; differentiable in ``fp``.
    """
    h = xp[1:] - xp[:-1]
    m = (fp[1:] - fp[:-1]) / h
    if fp.numel() == 2:
        slopes = torch.stack([m[0], m[0]])
    else:
        slopes = torch.cat(
            [
                _end_slope(h[0], h[1], m[0], m[1]),
                _inner_slopes(h, m),
                _end_slope(h[-1], h[-2], m[-1], m[-2]),
            ]
        )
    inside = x.clamp(xp[0], xp[-1])
    k = (torch.searchsorted(xp, inside, right=True) - 1).clamp(0, len(xp) - 2)
    t = (inside - xp[k]) / h[k]
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * fp[k]
        + (t3 - 2 * t2 + t) * h[k] * slopes[k]
        + (3 * t2 - 2 * t3) * fp[k + 1]
        + (t3 - t2) * h[k] * slopes[k + 1]
    )


def _inner_slopes(h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    left, right = m[:-1], m[1:]
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    flat = (torch.sign(left) != torch.sign(right)) | (left == 0) | (right == 0)
    # the harmonic mean written without divisions by a zero slope, so that the
    # flat branch has finite gradients too
    denominator = torch.where(flat, torch.ones_like(left), w1 * right + w2 * left)
    return torch.where(flat, torch.zeros_like(left), (w1 + w2) * left * right / denominator)


def _end_slope(
    h0: torch.Tensor, h1: torch.Tensor, m0: torch.Tensor, m1: torch.Tensor
) -> torch.Tensor:
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    d = torch.where(torch.sign(d) != torch.sign(m0), torch.zeros_like(d), d)
    overshoot = (torch.sign(m0) != torch.sign(m1)) & (d.abs() > 3 * m0.abs())
    return torch.where(overshoot, 3 * m0, d).reshape(1)
