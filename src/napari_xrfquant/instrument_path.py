"""The gas between source, sample and detector: air, helium, vacuum or another gas at a
given pressure, with the lines of the gas.

A ``[path]`` table of an instrument file::

    [path]
    gas = "He"               # "air", "vacuum", "He", "N2", "Ar" or another formula
    pressure_mbar = 1013.25  # default; 7 for Mars' CO2, 0 for vacuum
    temperature_K = 293.15   # default
    air_fraction = 0.05      # optional: mole share of air in the gas (a leaking He flush)
    incident_cm = 2.0        # source (tube window) to sample; a [tube]'s beam only
    emergent_cm = 3.2        # sample to detector window

The gas's density is the ideal gas law's, ``rho = p M / (R T)``, with ``M`` the
mean molar mass of the mixture (dry air: N 1.5617, O 0.4198, Ar 0.00934, C
0.0004 atoms a molecule, 28.96 g/mol). The emergent path attenuates what reaches
the detector, as an ``[[attenuators]]`` layer would; the incident path filters a
``[tube]``'s spectrum (a ``[beam]`` is the beam at the sample, so it is left as
given). A gas that holds argon (air) adds Ar to the set-up's own lines
(``[setup_lines]``): the Ar K lines at 2.96 keV that every spectrum taken in air
shows, with their share of the counts fitted like the other set-up lines.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, model_validator

from napari_xrfquant._schema import FrozenSchema

#: Atoms of each element in one molecule of dry air (mole fractions of N2, O2,
#: Ar, CO2 at sea level: 78.08, 20.95, 0.934, 0.04 %).
AIR_ATOMS = {"N": 1.5617, "O": 0.4198, "Ar": 0.00934, "C": 0.0004}
#: Gas constant in mbar cm^3 / (mol K): rho [g/cm^3] = p [mbar] M [g/mol] / (R T).
GAS_CONSTANT = 83144.6
#: Gases named rather than given as formulas.
NAMED = {"air": AIR_ATOMS, "vacuum": {}}


class GasPath(FrozenSchema):
    """The gas of the beam path and its lengths (see the module)."""

    gas: str = Field("air", min_length=1, description="air, vacuum or a formula (He, N2, CO2)")
    pressure_mbar: float = Field(1013.25, ge=0.0, le=3000.0, allow_inf_nan=False)
    temperature_K: float = Field(293.15, gt=0.0, le=2000.0, allow_inf_nan=False)
    air_fraction: float = Field(0.0, ge=0.0, le=1.0, description="mole share of air mixed in")
    incident_cm: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="source to sample")
    emergent_cm: float = Field(ge=0.0, allow_inf_nan=False, description="sample to detector")

    @model_validator(mode="after")
    def _known_gas(self) -> GasPath:
        if self.gas.lower() not in NAMED:
            try:
                _formula_atoms(self.gas)
            except ValueError:
                raise ValueError(f"gas {self.gas!r} is neither air, vacuum nor a chemical "
                                 "formula (He, N2, CO2, Ar)") from None
        return self

    def atoms(self) -> dict[str, float]:
        """Atoms of each element in one molecule of the mixture (mole-weighted)."""
        own = NAMED.get(self.gas.lower())
        own = _formula_atoms(self.gas) if own is None else own
        mixed: dict[str, float] = {}
        for atoms, share in ((own, 1.0 - self.air_fraction), (AIR_ATOMS, self.air_fraction)):
            for element, count in atoms.items():
                if share > 0.0:
                    mixed[element] = mixed.get(element, 0.0) + share * count
        return mixed

    def formula(self) -> str:
        """The mixture as a formula xraylib parses (``He0.95N0.078...``), "" for none."""
        return "".join(f"{element}{_decimal(count)}" for element, count in self.atoms().items()
                       if count >= 5e-7)

    def density_g_cm3(self) -> float:
        """The ideal gas law's density of the mixture (0 for vacuum or no pressure)."""
        molar_mass = sum(count * _atomic_weight(e) for e, count in self.atoms().items())
        return self.pressure_mbar * molar_mass / (GAS_CONSTANT * self.temperature_K)

    def holds_argon(self) -> bool:
        """Whether the gas fluoresces Ar K into the spectra."""
        return self.atoms().get("Ar", 0.0) > 0.0 and self.pressure_mbar > 0.0

    def layer(self, length_cm: float) -> dict[str, Any] | None:
        """A layer of ``length_cm`` of the gas (material, density, thickness), None for none."""
        density = self.density_g_cm3()
        if length_cm <= 0.0 or density <= 0.0:
            return None
        return {"material": self.formula(), "density_g_cm3": density, "thickness_cm": length_cm}


def read_path(data: dict[str, Any]) -> GasPath | None:
    """The ``path`` of an instrument's plain data, validated (None without one).

    Raises
    ------
    ValueError
        For a ``path`` that is not valid (one line naming the field).
    """
    from pydantic import ValidationError

    from napari_xrfquant._schema import one_line

    given = data.get("path")
    if given is None or isinstance(given, GasPath):
        return given
    try:
        return GasPath.model_validate(given)
    except ValidationError as exc:
        raise ValueError(one_line(exc, "path")) from None


def with_gas_lines(data: dict[str, Any], path: GasPath | None) -> dict[str, Any]:
    """``data`` with Ar in its ``setup_lines`` when the ``path`` gas holds argon (a
    saved instrument then lists it, and reading it again adds nothing)."""
    if path is None or not path.holds_argon():
        return data
    given: Any = data.get("setup_lines") or {}
    lines: dict[str, Any] = given.model_dump() if isinstance(given, FrozenSchema) else dict(given)
    elements = list(lines.get("elements", ()))
    if "Ar" in elements:
        return data
    return {**data, "setup_lines": {"fraction": 0.0, **lines, "elements": [*elements, "Ar"]}}


def _decimal(count: float) -> str:
    # a formula takes plain decimals, not 2e-05
    return f"{count:.6f}".rstrip("0").rstrip(".")


@functools.lru_cache(maxsize=32)
def _formula_atoms(formula: str) -> dict[str, float]:
    import xraylib

    parsed = xraylib.CompoundParser(formula)  # ValueError for what is not a formula
    return {xraylib.AtomicNumberToSymbol(int(z)): float(n)
            for z, n in zip(parsed["Elements"], parsed["nAtoms"], strict=True)}


@functools.lru_cache(maxsize=32)
def _atomic_weight(symbol: str) -> float:
    import xraylib

    return float(xraylib.AtomicWeight(xraylib.SymbolToAtomicNumber(symbol)))
