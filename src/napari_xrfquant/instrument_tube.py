"""An X-ray tube as the instrument's excitation: the ``[tube]`` table of an instrument file.

Instead of a ``[beam]`` of energies and weights, a set-up excited by a tube
describes the tube; its spectrum (Ebel's model, :mod:`napari_xrfquant.xray_tube`:
the continuum in bins of ``step_keV`` and the anode's K lines, through the
window and filters, times the optic's transmission table when there is one)
becomes the beam the simulator sees. Example::

    [tube]
    anode = "Rh"
    voltage_kV = 28.0
    current_mA = 0.23
    incidence_deg = 90.0          # electrons to anode surface
    takeoff_deg = 90.0            # X-rays used to anode surface
    transmission_thickness_cm = 0.0001   # a transmission anode; leave out for a side window
    window = { material = "Be", density_g_cm3 = 1.848, thickness_cm = 0.01504 }
    optic_file = "Efficiency_profile.txt"   # energy (keV), relative transmission

A tube's beam is unpolarised. The optic table is read when the file is loaded
(relative to it); a saved instrument holds its values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from napari_xrfquant._schema import FrozenSchema
from napari_xrfquant.errors import InstrumentError

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.xray_tube import Tube

NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class TubeLayer(FrozenSchema):
    """A tube window or filter."""

    material: str = Field(min_length=1, description="xraylib NIST compound or chemical formula")
    density_g_cm3: float = Field(gt=0.0, allow_inf_nan=False)
    thickness_cm: float = Field(ge=0.0, allow_inf_nan=False)


class XrayTube(FrozenSchema):
    """An X-ray tube: anode, voltage, geometry, window, filters and optic (see the module)."""

    anode: str = Field(min_length=1, description="element symbol of the anode")
    voltage_kV: float = Field(ge=5.0, le=60.0, description="tube voltage (Ebel's model: 5-60)")
    current_mA: float | None = Field(None, gt=0.0, description="emission current (recorded)")
    incidence_deg: float = Field(90.0, gt=0.0, le=90.0, description="electrons to anode surface")
    takeoff_deg: float = Field(45.0, gt=0.0, le=90.0, description="X-rays to anode surface")
    transmission_thickness_cm: float | None = Field(
        None, gt=0.0, description="anode thickness of a transmission anode; none: side window")
    window: TubeLayer | None = None
    filters: tuple[TubeLayer, ...] = ()
    optic_energies_keV: tuple[NonNegative, ...] = ()
    optic_transmission: tuple[NonNegative, ...] = ()
    l_lines_scale: float = Field(
        1.0, ge=0.0, le=10.0,
        description="factor on the anode's L lines (Ebel's L constants are the least certain "
        "part of the model; fit it on a standard)")
    l2_lines_scale: float = Field(
        1.0, ge=0.0, le=10.0,
        description="a further factor on the L2 subshell's lines (Lb1, Lg1, Ln): Ebel's "
        "L2/L3 ratio is empirical; fit it on a standard")
    step_keV: float = Field(0.5, ge=0.05, le=2.0, description="continuum bin width")
    low_keV: float = Field(1.0, gt=0.0, description="lowest continuum energy kept")

    @model_validator(mode="after")
    def _consistent(self) -> XrayTube:
        if len(self.optic_energies_keV) != len(self.optic_transmission):
            raise ValueError("the tube optic needs one transmission per energy")
        if self.optic_energies_keV and (
                len(self.optic_energies_keV) < 2
                or np.any(np.diff(self.optic_energies_keV) <= 0)):
            raise ValueError("the tube optic's energies must be two or more and increase")
        if self.low_keV >= self.voltage_kV:
            raise ValueError(f"low_keV {self.low_keV:g} must lie below the voltage "
                             f"{self.voltage_kV:g} kV")
        return self

    def physics(self) -> Tube:
        """The tube of the physics model."""
        from napari_xrfquant.xray_tube import Layer, Tube

        def layer(spec: TubeLayer) -> Layer:
            return Layer(spec.material, spec.density_g_cm3, spec.thickness_cm)

        return Tube(self.anode, self.voltage_kV, self.incidence_deg, self.takeoff_deg,
                    None if self.window is None else layer(self.window),
                    tuple(layer(f) for f in self.filters), self.transmission_thickness_cm,
                    self.l_lines_scale, self.l2_lines_scale)

    def beam(self) -> dict[str, Any]:
        """The beam table (energies, weights, polarisation 0) this tube makes."""
        energies, photons, widths = self.physics().binned(self.step_keV, self.low_keV)
        if self.optic_energies_keV:
            photons = photons * np.interp(energies, self.optic_energies_keV,
                                          self.optic_transmission)
        keep = photons > 0
        if not keep.any():
            raise InstrumentError("the tube's window, filters and optic pass no photons")
        return {"energies_keV": energies[keep].tolist(), "weights": photons[keep].tolist(),
                "widths_keV": widths[keep].tolist(), "polarisation": 0.0}


def read_tube_table(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The ``[tube]`` table with its ``optic_file`` (relative to ``folder``) read in."""
    tube = dict(data)
    name = tube.pop("optic_file", None)
    if name is None:
        return tube
    tube["optic_energies_keV"], tube["optic_transmission"] = read_two_columns(
        folder / os.fspath(name), "the tube's optic file")
    return tube


def beam_from_tube(data: dict[str, Any], incident: dict[str, Any] | None = None) -> dict[str, Any]:
    """``data`` (an instrument's plain data) with its beam made from its ``tube``,
    through an ``incident`` layer (the gas path to the sample) when given: the
    tube's table keeps its own filters only.

    A beam given beside the tube must be the one the tube makes (as a saved
    instrument holds it); another is refused.

    Raises
    ------
    ValueError
        For a tube that is not valid, or a beam that is not the tube's.
    """
    from pydantic import ValidationError

    from napari_xrfquant._schema import one_line

    try:
        tube = XrayTube.model_validate(data["tube"])
    except ValidationError as exc:
        raise ValueError(one_line(exc, "tube")) from None
    if incident is not None:
        tube = tube.model_copy(update={"filters": (*tube.filters, TubeLayer(**incident))})
    made = tube.beam()
    given = data.get("beam")
    if given is not None and not _same_beam(given, made):
        raise ValueError("give a [beam] or a [tube], not both: the tube makes the beam")
    return {**data, "beam": made}


def _same_beam(given: Any, made: dict[str, Any]) -> bool:
    if hasattr(given, "model_dump"):
        given = given.model_dump()
    if not isinstance(given, dict):
        return False
    try:
        energies = np.asarray(given.get("energies_keV"), dtype=float)
        weights = np.asarray(given.get("weights"), dtype=float)
    except (TypeError, ValueError):
        return False
    widths = given.get("widths_keV")
    if widths is not None and not np.allclose(widths, made["widths_keV"]):
        return False
    return (energies.shape == (len(made["energies_keV"]),) and weights.shape == energies.shape
            and np.allclose(energies, made["energies_keV"], rtol=1e-9)
            and np.allclose(weights / weights.sum(), np.divide(made["weights"],
                                                                sum(made["weights"])), rtol=1e-6))


def read_two_columns(path: str | os.PathLike[str], what: str) -> tuple[list[float], list[float]]:
    """Energy (keV) and a value per line of a text table: ``#`` comments, comma or blank
    separated (transmission tables, a tube's optic).

    Raises
    ------
    InstrumentError
        If the file cannot be read or a line does not hold two numbers.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstrumentError(f"{file}: cannot read {what} ({exc.strerror})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        values = line.split("#", 1)[0].replace(",", " ").strip()
        if not values:
            continue
        try:
            energy, value = (float(v) for v in values.split())
        except ValueError:
            raise InstrumentError(f"{file.name}, line {number}: need two numbers, energy (keV) "
                                  "and transmission") from None
        rows.append((energy, value))
    return [r[0] for r in rows], [r[1] for r in rows]
