"""The sample's form in an instrument file: bulk (the default) or a layer of finite mass.

A ``[sample]`` table makes every spectrum of the set-up that of a single
layer: a thin film on a window, a section, a coating. Either its areal
density, as thin-film standards are certified (µg/cm²)::

    [sample]
    areal_density_ug_cm2 = 5.0

or its thickness and density::

    [sample]
    thickness_cm = 1e-4
    density_g_cm3 = 2.5

Without it the sample is infinitely thick. Only the mass per area matters to
the spectra (absorption and secondary fluorescence of a layer, de Boer); a
substrate under the layer is not modelled.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from napari_xrfquant._schema import FrozenSchema

UG_PER_G = 1e6


class Sample(FrozenSchema):
    """A single layer: areal density, or thickness and density."""

    areal_density_ug_cm2: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    thickness_cm: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    density_g_cm3: float | None = Field(None, gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_way(self) -> Sample:
        by_thickness = self.thickness_cm is not None or self.density_g_cm3 is not None
        if self.areal_density_ug_cm2 is not None and by_thickness:
            raise ValueError("give areal_density_ug_cm2, or thickness_cm and density_g_cm3, "
                             "not both")
        if self.areal_density_ug_cm2 is None and (
                self.thickness_cm is None or self.density_g_cm3 is None):
            raise ValueError("a thin sample needs areal_density_ug_cm2, or thickness_cm "
                             "and density_g_cm3")
        return self

    @property
    def mass_g_cm2(self) -> float:
        """Mass per area of the layer (g/cm²)."""
        if self.areal_density_ug_cm2 is not None:
            return self.areal_density_ug_cm2 / UG_PER_G
        assert self.thickness_cm is not None and self.density_g_cm3 is not None
        return self.thickness_cm * self.density_g_cm3
