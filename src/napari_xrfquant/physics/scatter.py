"""Scatter of the beam into the detector's cone: cross sections and Compton profiles.

Part of the physics tables (:mod:`.tables`): Rayleigh and Compton ``4 pi
<d sigma / d Omega>`` averaged over the acceptance cone, and the
Doppler-broadened Compton spectrum as sub-lines.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from napari_xrfquant.instrument import Instrument
from napari_xrfquant.physics import _xraydata as xd

#: Rings and azimuths sampling the detector's acceptance cone.
CONE_RINGS, CONE_AZIMUTHS = 6, 12

#: Scattering angles closer than this share one Compton profile (degrees).
THETA_STEP_DEG = 0.5

#: Energy step (keV) of the sub-lines that represent a Compton profile. Each
#: becomes a Gaussian of sigma >= 0.11 keV at 25-30 keV; a comb of Gaussians
#: spaced h apart ripples by about 2 exp(-2 pi^2 sigma^2 / h^2) < 1e-10 here.
COMPTON_SUBLINE_STEP_KEV = 0.100


class Cone(NamedTuple):
    """Directions a detector accepts: scattering angle, azimuth, weight, and the
    detector direction (element of a detector array) each belongs to; a direction's
    weights sum to its share of the counts."""

    theta: np.ndarray
    phi: np.ndarray
    weight: np.ndarray
    direction: np.ndarray


def acceptance_cone(instrument: Instrument) -> Cone:
    """Directions accepted by the detector, or by every element of a detector array.

    Beam along z, polarisation vector along x; a detector axis at scattering
    angle ``theta`` lies in the x-z plane rotated by its azimuth about the beam.
    Each element's cone of half-angle ``acceptance_deg`` is sampled with
    midpoint rings (weights proportional to the ring's solid angle) and even
    azimuths; an element's weights sum to its share of the counts.
    """
    geo = instrument.geometry
    half = math.radians(max(geo.acceptance_deg, 0.0))
    if half == 0.0:
        r, w_r = np.array([0.0]), np.array([1.0])
    else:
        edges = np.linspace(0.0, half, CONE_RINGS + 1)
        r = 0.5 * (edges[1:] + edges[:-1])
        w_r = np.cos(edges[:-1]) - np.cos(edges[1:])  # exact ring solid angles
    psi = (np.arange(CONE_AZIMUTHS) + 0.5) * (2.0 * math.pi / CONE_AZIMUTHS)
    rr, pp = np.meshgrid(r, psi, indexing="ij")
    ring_weights = np.repeat(w_r[:, None], CONE_AZIMUTHS, axis=1).ravel()
    parts = []
    for index, direction in enumerate(geo.directions()):
        axis_t = math.radians(direction.scattering_deg)
        axis_p = math.radians(direction.azimuth_deg)
        axis = np.array([math.sin(axis_t) * math.cos(axis_p),
                         math.sin(axis_t) * math.sin(axis_p), math.cos(axis_t)])
        # two unit vectors perpendicular to the axis
        u = np.array([-math.sin(axis_p), math.cos(axis_p), 0.0])
        v = np.cross(axis, u)
        d = np.cos(rr)[..., None] * axis + np.sin(rr)[..., None] * (
            np.cos(pp)[..., None] * u + np.sin(pp)[..., None] * v
        )
        theta = np.arccos(np.clip(d[..., 2], -1.0, 1.0)).ravel()
        phi = np.arctan2(d[..., 1], d[..., 0]).ravel()
        weight = direction.share * ring_weights / ring_weights.sum()
        parts.append((theta, phi, weight, np.full(theta.size, index)))
    return Cone(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _compton_profile_shape(
    z: int, energy_keV: float, theta_rad: np.ndarray, grid_keV: np.ndarray
) -> np.ndarray:
    """Doppler-broadened Compton spectra (1/keV, unit area) on ``grid_keV``.

    One row per scattering angle in ``theta_rad`` ``(D,)``: ``(D, G)``. Impulse
    approximation with the Hartree-Fock shell profiles J_s(p_z) of xraylib; a
    shell contributes only where the energy transfer exceeds its binding energy.
    """
    theta = np.atleast_1d(np.asarray(theta_rad, dtype=np.float64))[:, None]
    pz, dpz_de = xd.compton_pz_and_slope(energy_keV, grid_keV, theta)  # (D, G) each
    transfer = energy_keV - grid_keV
    density = np.zeros_like(pz)
    magnitude = np.abs(pz)
    # Interpolation is linear in the profile, so where the same shells are open
    # (energy transfer above their binding) their summed profile is interpolated
    # once: one pass over the grid instead of one per shell.
    shells = sorted(xd.compton_shells(z), key=lambda shell: shell[0])
    bindings = np.array([binding for binding, _ in shells])
    open_profiles = np.cumsum([profile for _, profile in shells], axis=0)
    n_open = np.searchsorted(bindings, transfer, side="left")  # shells with binding < transfer
    # runs of columns with the same shells open (one run per count on a sorted grid)
    starts = np.flatnonzero(np.diff(n_open, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], n_open.size], strict=True):
        if n_open[start] > 0:
            density[:, start:stop] = np.interp(magnitude[:, start:stop], xd.PZ_GRID_AU,
                                               open_profiles[n_open[start] - 1], right=0.0)
    density *= np.abs(dpz_de)  # J(p_z) per keV
    area = np.trapezoid(density, grid_keV, axis=1)[:, None]
    return np.divide(density, area, out=density, where=area > 0)


class ScatterTable(NamedTuple):
    """Scatter of one sample element at one beam energy into the detector
    (:func:`scatter_tables`)."""

    rayleigh: float  #: 4 pi <d sigma / d Omega> (cm^2/g) over every accepted direction
    compton: float
    sub_energy_keV: np.ndarray  #: the Compton spectrum as sub-lines
    sub_weight: np.ndarray  #: their weights, summing to 1
    rayleigh_by_direction: np.ndarray  #: (D,) the same over each detector element's own cone
    compton_by_direction: np.ndarray


def scatter_tables(
    z: int, energy_keV: float, instrument: Instrument, cone: Cone | None = None
) -> ScatterTable:
    """Scatter of one element at one beam energy into the detector's cone.

    The cross sections are ``4 pi <d sigma / d Omega>`` (cm^2/g) averaged over
    the cone, so that they compare with fluorescence production cross sections
    (isotropic); for a detector array, over every element's cone weighted by its
    share, and over each element's own. The Compton spectrum (Doppler
    broadening and the spread of scattering angles in the cone) comes as
    sub-lines with weights summing to 1. ``cone`` is the instrument's
    :func:`acceptance_cone`, when the caller already has it (one per set-up,
    however many elements and beam energies).

    Kept for the set-ups met since (the same element, beam energy, polarisation and
    cone): its Compton profile is most of a table build's time under a tube (72 beam
    energies per element), and an element search builds the tables of its candidates,
    then those of the elements it found.
    """
    if cone is None:
        cone = acceptance_cone(instrument)
    return _scatter_table(z, float(energy_keV), float(instrument.beam.polarisation),
                          _ConeKey(cone))


class _ConeKey:
    """A cone as a cache key: equal to another with the same directions and weights."""

    __slots__ = ("_hash", "cone")

    def __init__(self, cone: Cone):
        self.cone = cone
        self._hash = hash(tuple(np.ascontiguousarray(column).tobytes() for column in cone))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ConeKey) and all(
            np.array_equal(mine, theirs) for mine, theirs in zip(self.cone, other.cone,
                                                                 strict=True))


@functools.lru_cache(maxsize=50_000)
def _scatter_table(z: int, energy_keV: float, pol: float, key: _ConeKey) -> ScatterTable:
    """:func:`scatter_tables` of a cone, computed once (its arrays read-only)."""
    theta, phi, weight, direction = key.cone
    ray = xd.dcs_scatter_sr(z, energy_keV, theta, phi, pol, "rayleigh")
    com = xd.dcs_scatter_sr(z, energy_keV, theta, phi, pol, "compton")
    share = np.bincount(direction, weights=weight)
    ray_by_direction = 4.0 * math.pi * np.bincount(direction, weights=weight * ray) / share
    com_by_direction = 4.0 * math.pi * np.bincount(direction, weights=weight * com) / share
    centre = xd.compton_energy_keV(energy_keV, theta)
    lo = max(float(centre.min()) - 4.0, 0.5 * energy_keV)
    grid = np.linspace(lo, energy_keV, round((energy_keV - lo) / 0.002) + 1)
    # directions within THETA_STEP_DEG share one profile at their mean angle
    # (the Compton energy moves by < 3 eV across such a step below 30 keV)
    group = np.round(np.degrees(theta) / THETA_STEP_DEG).astype(np.int64)
    _, inverse = np.unique(group, return_inverse=True)
    strength = np.bincount(inverse, weights=weight * com)
    mean_theta = np.bincount(inverse, weights=weight * com * theta) / strength
    spectrum = strength @ _compton_profile_shape(z, energy_keV, mean_theta, grid)
    step = COMPTON_SUBLINE_STEP_KEV
    bins = np.floor((grid - lo) / step).astype(int)
    n_bins = int(bins.max()) + 1
    per_point = spectrum * np.gradient(grid)  # each grid point's share of the area
    mass = np.bincount(bins, weights=per_point, minlength=n_bins)
    first_moment = np.bincount(bins, weights=per_point * grid, minlength=n_bins)
    keep = mass > 1e-5 * mass.max()
    sub_energy = first_moment[keep] / mass[keep]
    sub_weight = mass[keep] / mass[keep].sum()
    for array in (sub_energy, sub_weight, ray_by_direction, com_by_direction):
        array.setflags(write=False)  # shared by every build that meets this table
    return ScatterTable(float(share @ ray_by_direction), float(share @ com_by_direction),
                        sub_energy, sub_weight, ray_by_direction, com_by_direction)
