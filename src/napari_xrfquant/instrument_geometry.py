"""Where beam and detector point: the ``[geometry]`` table of an instrument file.

One detector is described by its take-off angle (sample surface to detector
axis), its scattering angle (detector axis to beam) and the half-width of the
cone it accepts. A multi-element detector whose spectra are summed lists its
elements, each with its own direction and solid angle::

    [geometry]
    incidence_deg = 45.0
    takeoff_deg = 45.0          # the array's axis: estimates that take one angle
    scattering_deg = 90.0
    acceptance_deg = 5.0

    [[geometry.detector_elements]]
    takeoff_deg = 35.0
    scattering_deg = 80.0
    azimuth_deg = 0.0           # around the beam, from the polarisation plane
    solid_angle_sr = 0.05

The simulator then sums every element's spectrum weighted by its solid angle:
fluorescence leaves the sample towards each element through its own absorption
path (its take-off angle), and each element sees scatter at its own angles.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import Field

from napari_xrfquant._schema import FrozenSchema


class DetectorElement(FrozenSchema):
    """One element of a multi-element detector: its direction and solid angle."""

    takeoff_deg: float = Field(gt=0.0, le=90.0, description="sample surface to the element's axis")
    scattering_deg: float = Field(ge=0.0, le=180.0, description="the element's axis to the beam")
    azimuth_deg: float = Field(
        0.0, ge=-180.0, le=180.0,
        description="the element's axis around the beam, from the polarisation plane",
    )
    solid_angle_sr: float = Field(
        gt=0.0, le=12.57, allow_inf_nan=False,
        description="solid angle the element subtends (only ratios between elements matter)",
    )


class Direction(NamedTuple):
    """One detector direction the simulator sums over, with its share of the counts."""

    takeoff_deg: float
    scattering_deg: float
    azimuth_deg: float
    share: float


class Geometry(FrozenSchema):
    """Angles of beam and detector, in degrees."""

    incidence_deg: float = Field(gt=0.0, le=90.0, description="beam to sample surface")
    takeoff_deg: float = Field(gt=0.0, le=90.0, description="sample surface to detector axis")
    scattering_deg: float = Field(ge=0.0, le=180.0, description="detector axis to beam")
    acceptance_deg: float = Field(
        ge=0.0, lt=90.0, description="half-width of the scattering angles the optic accepts"
    )
    detector_elements: tuple[DetectorElement, ...] = Field(
        default=(),
        description="elements of a detector whose spectra are summed, each with its own "
        "direction (empty: one detector along takeoff_deg and scattering_deg)",
    )

    def directions(self) -> tuple[Direction, ...]:
        """Every detector direction with its share of the counts (shares sum to 1).

        One direction, the geometry's own angles, when no elements are listed.
        """
        if not self.detector_elements:
            return (Direction(self.takeoff_deg, self.scattering_deg, 0.0, 1.0),)
        total = sum(e.solid_angle_sr for e in self.detector_elements)
        return tuple(
            Direction(e.takeoff_deg, e.scattering_deg, e.azimuth_deg, e.solid_angle_sr / total)
            for e in self.detector_elements
        )

    def of_element(self, index: int) -> Geometry:
        """The geometry of detector element ``index`` alone (a file read one element at
        a time); the geometry itself when it lists no elements.

        Raises
        ------
        ValueError
            If ``index`` names no listed element.
        """
        if not self.detector_elements:
            return self
        if not 0 <= index < len(self.detector_elements):
            raise ValueError(f"detector element {index} is not among the "
                             f"{len(self.detector_elements)} of [[geometry.detector_elements]]")
        return self.model_copy(update={"detector_elements": (self.detector_elements[index],)})
