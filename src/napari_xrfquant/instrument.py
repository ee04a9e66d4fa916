"""The measurement set-up: beam, geometry, attenuators, detector, continuum.

An :class:`Instrument` is an immutable, validated description (pydantic) read from
a TOML or JSON file. The reference instrument (``reference.toml`` beside this
module) is the default for the simulator, the bundled model and the sample data,
and the only place its numbers are written: the schema below declares fields and
ranges, not values.

Examples
--------
>>> from napari_xrfquant.instrument import load_instrument
>>> inst = load_instrument()
>>> inst.detector.n_channels
1024
>>> round(float(inst.fwhm_keV(5.9)) * 1000)
160
"""

from __future__ import annotations

import functools
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from napari_xrfquant._files import atomic_path
from napari_xrfquant._schema import FrozenSchema, one_line
from napari_xrfquant.errors import InstrumentError
from napari_xrfquant.instrument_geometry import Geometry
from napari_xrfquant.instrument_path import GasPath, read_path, with_gas_lines
from napari_xrfquant.instrument_sample import Sample
from napari_xrfquant.instrument_tube import (
    XrayTube,
    beam_from_tube,
    read_tube_table,
    read_two_columns,
)

REFERENCE_INSTRUMENT_PATH = Path(__file__).with_name("reference.toml")

#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

PositiveKeV = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class Beam(FrozenSchema):
    """Excitation beam: energies (keV) with relative weights and polarisation."""

    energies_keV: tuple[PositiveKeV, ...] = Field(
        min_length=1, description="excitation energies; nothing above the highest is excited"
    )
    weights: tuple[Annotated[float, Field(ge=0.0, allow_inf_nan=False)], ...] | None = Field(
        default=None, description="relative weight of each energy (default: equal)"
    )
    polarisation: float = Field(
        ge=0.0, le=1.0, description="degree of linear polarisation in the horizontal plane"
    )
    widths_keV: tuple[Annotated[float, Field(ge=0.0, allow_inf_nan=False)], ...] | None = Field(
        default=None,
        description="width of the energy band each energy stands for (a tube's continuum "
        "bins; 0: a line; default: all lines)",
    )

    @model_validator(mode="after")
    def _weights_fit(self) -> Beam:
        if self.weights is None:
            object.__setattr__(self, "weights", (1.0,) * len(self.energies_keV))
        assert self.weights is not None
        if len(self.weights) != len(self.energies_keV):
            raise ValueError("beam weights and energies differ in length")
        if self.widths_keV is not None and len(self.widths_keV) != len(self.energies_keV):
            raise ValueError("beam widths and energies differ in length")
        if sum(self.weights) <= 0:
            raise ValueError("beam weights must not all be zero")
        return self


class Attenuator(FrozenSchema):
    """A layer between sample and detector (air path, window)."""

    name: str = Field(min_length=1)
    material: str = Field(min_length=1, description="xraylib NIST compound or chemical formula")
    density_g_cm3: float = Field(gt=0.0, allow_inf_nan=False)
    thickness_cm: float = Field(ge=0.0, allow_inf_nan=False)


class TabulatedTransmission(FrozenSchema):
    """A transmission curve given as a table (a filter, window or optic known only so).

    ``T`` is interpolated linearly in ``log T`` between the tabulated energies
    and held flat outside them. In an instrument file either inline
    (``energies_keV`` and ``transmission``) or as ``file = "filter.csv"``: two
    columns, energy in keV and transmission, ``#`` comments, comma or blank
    separated; the path is relative to the instrument file, whose table is read
    in when the file is loaded (a saved instrument holds the values).
    """

    name: str = Field(min_length=1)
    energies_keV: tuple[Annotated[float, Field(gt=0.0, allow_inf_nan=False)], ...]
    transmission: tuple[Annotated[float, Field(gt=0.0, allow_inf_nan=False)], ...]

    @model_validator(mode="after")
    def _table(self) -> TabulatedTransmission:
        if len(self.energies_keV) < 2 or len(self.energies_keV) != len(self.transmission):
            raise ValueError("a transmission table needs >= 2 energies and one value each")
        if any(b <= a for a, b in zip(self.energies_keV, self.energies_keV[1:], strict=False)):
            raise ValueError("the energies of a transmission table must increase")
        return self

    def at(self, energy_keV: np.ndarray) -> np.ndarray:
        """``T(E)``: linear in ``log T`` between the table's energies, flat outside."""
        log_t = np.log(np.asarray(self.transmission, dtype=np.float64))
        return np.exp(np.interp(np.asarray(energy_keV, dtype=np.float64), self.energies_keV, log_t))


def read_transmission_table(
    path: str | os.PathLike[str], name: str | None = None
) -> dict[str, Any]:
    """The plain data of a :class:`TabulatedTransmission` from a two-column text file.

    Raises
    ------
    InstrumentError
        If the file cannot be read or does not hold two numeric columns.
    """
    file = Path(path)
    energies, values = read_two_columns(file, "transmission table")
    return {"name": name or file.stem, "energies_keV": energies, "transmission": values}


class Detector(FrozenSchema):
    """Energy-dispersive detector: sensor, calibration and line shape."""

    material: str = Field(min_length=1)
    density_g_cm3: float = Field(gt=0.0, allow_inf_nan=False)
    thickness_cm: float = Field(gt=0.0, allow_inf_nan=False)
    pixels: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    pixel_size_um: float = Field(gt=0.0, allow_inf_nan=False)
    n_channels: int = Field(ge=2, description="channels of a spectrum (at least 2 channels)")
    offset_keV: float = Field(allow_inf_nan=False, description="energy of channel 0's centre")
    gain_keV: float = Field(allow_inf_nan=False, description="keV per channel")
    quadratic_keV: float = Field(
        0.0, allow_inf_nan=False, description="E = offset + gain k + quadratic k^2 (0: linear)"
    )
    noise_keV: float = Field(ge=0.0, allow_inf_nan=False, description="electronic noise (FWHM)")
    pileup_fraction: float = Field(
        0.0, ge=0.0, le=0.5, description="share of events that are two photons summed (sum peaks)"
    )
    fano: float = Field(gt=0.0, le=1.0)
    pair_energy_keV: float = Field(gt=0.0, allow_inf_nan=False)
    escape: bool = Field(description="simulate Si K escape peaks")
    tail_fraction: Fraction
    tail_slope_keV: float = Field(gt=0.0, allow_inf_nan=False)
    shelf_fraction: Fraction
    high_tail_fraction: float = Field(
        0.0, ge=0.0, le=0.5,
        description="share of each peak in an exponential tail above it (events summed with "
        "pulses below the trigger threshold, which pile-up rejection cannot see)",
    )
    high_tail_slope_keV: float = Field(
        0.1, gt=0.0, allow_inf_nan=False, description="decay length of the high-energy tail"
    )
    threshold_keV: float = Field(
        0.0, ge=0.0, allow_inf_nan=False,
        description="the pulse processor's low-energy threshold: events read below it are "
        "not recorded (0: none; the spectrum falls to 0 there, shelf and tails included)",
    )
    threshold_width_keV: float = Field(
        0.05, gt=0.0, allow_inf_nan=False,
        description="the threshold's width (the sigma of its erf edge: the noise on the "
        "trigger); does nothing while threshold_keV is 0",
    )
    shelf_start: Literal["zero", "k_edge"] = Field(
        "zero",
        description="where each peak's shelf starts: 'zero' (flat from 0 to the peak) or "
        "'k_edge' (Scholze and Procop 2009: from the sensor's K edge for photons above it, "
        "whose escaping K photoelectron carries at most E - E_K)",
    )

    @field_validator("gain_keV")
    @classmethod
    def _gain_increases(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"energy calibration must increase with channel (gain_keV={value})")
        return value

    @model_validator(mode="after")
    def _monotonic(self) -> Detector:
        # dE/dk = gain + 2 quadratic k must stay positive over all channels
        slope_at_end = self.gain_keV + 2.0 * self.quadratic_keV * (self.n_channels - 1)
        if slope_at_end <= 0:
            raise ValueError(
                f"quadratic_keV={self.quadratic_keV:g} makes the energy axis decrease before "
                f"channel {self.n_channels - 1} (it must increase with channel)"
            )
        return self



def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` as ``(1 + tanh(x / 2)) / 2``: no overflow far below an edge."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))

class Optic(FrozenSchema):
    """Energy-dependent transmission between sample and detector not in the attenuators.

    A polycapillary optic transmits well at a few keV and less at high energies,
    where the critical angle of total reflection shrinks; any other unmodelled
    efficiency has the same form. Two models, both differentiable in the simulator:

    - ``"sigmoids"`` (the published analysis-by-synthesis form):
      ``T(E) = sigmoid((E - low_keV) / low_width_keV) * sigmoid((high_keV - E) / high_width_keV)``;
    - ``"knots"``: ``log T`` given at ``knots_keV``, a monotone cubic (PCHIP: smooth,
      no overshoot) in between and flat outside; ``monotone = true`` keeps ``T``
      non-increasing with energy (a polycapillary above its low-energy edge) when
      a calibration fits the knots.

    Only the shape matters to spectra normalised to their total; the level is
    absorbed by the counts.
    """

    model: Literal["sigmoids", "knots"]
    low_keV: float | None = Field(None, allow_inf_nan=False)
    low_width_keV: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    high_keV: float | None = Field(None, allow_inf_nan=False)
    high_width_keV: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    knots_keV: tuple[float, ...] = ()
    log_transmission: tuple[Annotated[float, Field(le=0.0, allow_inf_nan=False)], ...] = ()
    monotone: bool = False

    @model_validator(mode="after")
    def _complete(self) -> Optic:
        if self.model == "sigmoids":
            missing = [
                name
                for name in ("low_keV", "low_width_keV", "high_keV", "high_width_keV")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"a sigmoids optic needs {', '.join(missing)}")
        else:
            if len(self.knots_keV) < 2 or len(self.knots_keV) != len(self.log_transmission):
                raise ValueError("a knots optic needs >= 2 knots_keV and one log_transmission each")
            if any(b <= a for a, b in zip(self.knots_keV, self.knots_keV[1:], strict=False)):
                raise ValueError("optic knots_keV must increase")
            if self.monotone and np.any(np.diff(self.log_transmission) > 0):
                raise ValueError("a monotone optic's log_transmission must not increase")
        return self

    def transmission(self, energy_keV: np.ndarray) -> np.ndarray:
        """``T(E)`` (numpy), the same formula the simulator differentiates."""
        energy = np.asarray(energy_keV, dtype=np.float64)
        if self.model == "sigmoids":
            assert self.low_keV is not None and self.low_width_keV is not None
            assert self.high_keV is not None and self.high_width_keV is not None
            rise = _sigmoid((energy - self.low_keV) / self.low_width_keV)
            fall = _sigmoid((self.high_keV - energy) / self.high_width_keV)
            return rise * fall
        from scipy.interpolate import PchipInterpolator

        knots = np.asarray(self.knots_keV)
        curve = PchipInterpolator(knots, np.asarray(self.log_transmission))
        return np.exp(curve(np.clip(energy, knots[0], knots[-1])))


class SetupLineSource(FrozenSchema):
    """Elements of the set-up that fluoresce into every spectrum (Ar of the air path,
    a collimator's or window's elements), with their share of the detected counts."""

    elements: tuple[str, ...] = Field(min_length=1)
    fraction: float = Field(ge=0.0, le=0.5, description="share of all detected counts")


class Scatter(FrozenSchema):
    """How much more (or less) scatter reaches the detector than the simulator's
    Rayleigh and Compton of the sample give: scatter off the holder, the air or
    an unmodelled light matrix (a calibration can fit it)."""

    scale: float = Field(default=1.0, gt=0.0, le=1000.0, allow_inf_nan=False,
                         description="multiplies the simulated Rayleigh and Compton scatter")


class Continuum(FrozenSchema):
    """Parametric smooth background, ``E**power * exp(-E / decay_keV)``."""

    fraction: Fraction = Field(description="share of all detected counts")
    power: float = Field(ge=-10.0, le=10.0)
    decay_keV: float = Field(gt=0.0, allow_inf_nan=False)


class Instrument(FrozenSchema):
    """A complete measurement set-up, as in ``reference.toml``.

    Every number comes from an instrument file: the reference one
    (:func:`reference_instrument`) or a user's. Use :meth:`replace` to derive a
    variant (``inst.replace(**{"beam.energies_keV": (20.0,)})``).
    """

    name: str = "unnamed instrument"
    beam: Beam
    tube: XrayTube | None = None
    geometry: Geometry
    attenuators: tuple[Attenuator, ...] = ()
    transmission_tables: tuple[TabulatedTransmission, ...] = ()
    detector: Detector
    continuum: Continuum
    optic: Optic | None = None
    setup_lines: SetupLineSource | None = None
    path: GasPath | None = None
    sample: Sample | None = None
    scatter: Scatter = Scatter()

    @model_validator(mode="before")
    @classmethod
    def _beam_of_the_tube(cls, data: Any) -> Any:
        # an X-ray tube's spectrum is the beam (instrument_tube.py), through the
        # incident gas path; a gas with argon adds Ar K lines (instrument_path.py)
        if not isinstance(data, dict):
            return data
        path = read_path(data)
        data = with_gas_lines(data, path)
        if data.get("tube") is not None:
            incident = None if path is None else path.layer(path.incident_cm)
            return beam_from_tube(data, incident)
        return data

    # -- derived quantities -------------------------------------------------
    def energy_axis_keV(self) -> np.ndarray:
        """Energy of each channel centre in keV, shape ``(n_channels,)``."""
        det = self.detector
        k = np.arange(det.n_channels, dtype=np.float64)
        return det.offset_keV + det.gain_keV * k + det.quadratic_keV * k**2

    def fwhm_keV(self, energy_keV: float | np.ndarray) -> np.ndarray:
        """Detector resolution (FWHM, keV) at ``energy_keV`` from noise and Fano."""
        det = self.detector
        energy = np.asarray(energy_keV, dtype=np.float64)
        variance = det.noise_keV**2 + FWHM_PER_SIGMA**2 * det.fano * det.pair_energy_keV * energy
        return np.sqrt(variance)

    @property
    def max_beam_energy_keV(self) -> float:
        """Highest excitation energy; nothing above it is excited."""
        return max(self.beam.energies_keV)

    # -- conversions --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists instead of tuples), as written to TOML/JSON."""
        data = _tuples_to_lists(self.model_dump(mode="python", exclude_none=True))
        if self.tube is not None:
            data.pop("beam")  # the tube makes it again when the file is read
        if not data.get("transmission_tables"):
            data.pop("transmission_tables", None)  # most set-ups have none: keep files short
        if not data["geometry"].get("detector_elements"):
            data["geometry"].pop("detector_elements", None)  # nor several detector elements
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> Instrument:
        """Build and validate an instrument from the plain-data form of :meth:`to_dict`.

        Raises
        ------
        InstrumentError
            One line naming ``where`` and the first field that is missing,
            unknown or out of range.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InstrumentError(one_line(exc, where)) from None

    def replace(self, **changes: Any) -> Instrument:
        """Return a validated copy with some values changed.

        Parameters
        ----------
        **changes
            Dotted names to new values, e.g. ``{"detector.gain_keV": 0.036}``
            or ``{"beam.energies_keV": (20.0,)}``. Top-level fields use plain names.
        """
        # the full dump, unset optional fields (an optic) included, so every
        # parameter of the schema has its key and anything else is unknown
        data = _tuples_to_lists(self.model_dump(mode="python"))
        for dotted, value in changes.items():
            target = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                target = target.get(key) if isinstance(target, dict) else None
                if target is None:
                    raise InstrumentError(f"unknown instrument parameter {dotted!r}")
            if leaf not in target:
                raise InstrumentError(f"unknown instrument parameter {dotted!r}")
            target[leaf] = list(value) if isinstance(value, tuple) else value
        if data.get("tube") is not None:
            if any(name.split(".")[0] == "beam" for name in changes):
                raise InstrumentError("the beam comes from the [tube]: change the tube instead")
            data.pop("beam")  # made again from the (changed) tube
        return Instrument.from_dict(data)


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tuples_to_lists(v) for v in value]
    return value


def load_instrument(path: str | os.PathLike[str] | None = None) -> Instrument:
    """Read an instrument from a TOML or JSON file.

    Parameters
    ----------
    path
        File to read; ``None`` reads the reference instrument shipped with the
        package.

    Returns
    -------
    Instrument
        The validated instrument.

    Raises
    ------
    InstrumentError
        If the file is unreadable or describes an impossible set-up.
    """
    file = REFERENCE_INSTRUMENT_PATH if path is None else Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InstrumentError(f"{file}: cannot read instrument file ({exc.strerror})") from None
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except ValueError as exc:
        raise InstrumentError(f"{file}: not a valid instrument file ({exc})") from None
    if not isinstance(data, dict):
        raise InstrumentError(f"{file}: not a valid instrument file (expected a table)")
    if isinstance(data.get("tube"), dict):
        data["tube"] = read_tube_table(data["tube"], file.parent)
    tables = data.get("transmission_tables")
    if isinstance(tables, list):
        data["transmission_tables"] = [
            read_transmission_table(file.parent / entry["file"], entry.get("name"))
            if isinstance(entry, dict) and set(entry) <= {"file", "name"} and "file" in entry
            else entry
            for entry in tables
        ]
    return Instrument.from_dict(data, where=str(file))


@functools.lru_cache(maxsize=1)
def reference_instrument() -> Instrument:
    """The reference CXC instrument (``reference.toml``; read once, immutable)."""
    return load_instrument(None)


def instrument_to_toml(inst: Instrument) -> str:
    """Serialise ``inst`` to TOML text that :func:`load_instrument` reads back."""
    import tomli_w

    return tomli_w.dumps(inst.to_dict())


def save_instrument(
    inst: Instrument, path: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Write ``inst`` to ``path`` (TOML, or JSON for a ``.json`` suffix) atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    if target.suffix.lower() == ".json":
        text = json.dumps(inst.to_dict(), indent=2)
    else:
        text = instrument_to_toml(inst)
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
