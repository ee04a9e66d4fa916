"""The measurement set-up: beam, geometry, attenuators, detector, continuum.

An :class:`Instrument` is an immutable description read from a TOML file. The
reference instrument (``reference.toml`` beside this module) is the default for
the simulator, the bundled model and the sample data.

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

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import InstrumentError

REFERENCE_INSTRUMENT_PATH = Path(__file__).with_name("reference.toml")

#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Beam:
    """Excitation beam: energies (keV) with relative weights and polarisation."""

    energies_keV: tuple[float, ...] = (30.0,)
    weights: tuple[float, ...] = (1.0,)
    polarisation: float = 1.0


@dataclass(frozen=True)
class Geometry:
    """Angles of beam and detector, in degrees."""

    incidence_deg: float = 45.0
    takeoff_deg: float = 45.0
    scattering_deg: float = 90.0
    acceptance_deg: float = 12.0


@dataclass(frozen=True)
class Attenuator:
    """A layer between sample and detector (air path, window)."""

    name: str
    material: str
    density_g_cm3: float
    thickness_cm: float


@dataclass(frozen=True)
class Detector:
    """Energy-dispersive detector: sensor, calibration and line shape."""

    material: str = "Si"
    density_g_cm3: float = 2.33
    thickness_cm: float = 0.045
    pixels: tuple[int, int] = (264, 264)
    pixel_size_um: float = 48.0
    n_channels: int = 1024
    offset_keV: float = 0.0
    gain_keV: float = 0.035
    noise_keV: float = 0.100
    fano: float = 0.114
    pair_energy_keV: float = 0.00385
    escape: bool = True
    tail_fraction: float = 0.03
    tail_slope_keV: float = 0.25
    shelf_fraction: float = 0.005


@dataclass(frozen=True)
class Continuum:
    """Parametric smooth background, ``E**power * exp(-E / decay_keV)``."""

    fraction: float = 0.02
    power: float = 1.0
    decay_keV: float = 6.0


@dataclass(frozen=True)
class Instrument:
    """A complete measurement set-up.

    Use :func:`load_instrument` to read one from a file and
    :meth:`replace` to derive a variant (``inst.replace(**{"beam.energies_keV": (20.0,)})``).
    """

    name: str = "unnamed instrument"
    beam: Beam = field(default_factory=Beam)
    geometry: Geometry = field(default_factory=Geometry)
    attenuators: tuple[Attenuator, ...] = ()
    detector: Detector = field(default_factory=Detector)
    continuum: Continuum = field(default_factory=Continuum)

    def __post_init__(self) -> None:
        validate_instrument(self)

    # -- derived quantities -------------------------------------------------
    def energy_axis_keV(self) -> np.ndarray:
        """Energy of each channel centre in keV, shape ``(n_channels,)``."""
        det = self.detector
        return det.offset_keV + det.gain_keV * np.arange(det.n_channels, dtype=np.float64)

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
        return _tuples_to_lists(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instrument:
        """Build an instrument from the plain-data form of :meth:`to_dict`."""
        try:
            beam = Beam(
                energies_keV=tuple(float(e) for e in data["beam"]["energies_keV"]),
                weights=tuple(float(w) for w in data["beam"].get("weights", [1.0])),
                polarisation=float(data["beam"].get("polarisation", 1.0)),
            )
            geometry = Geometry(**{k: float(v) for k, v in data.get("geometry", {}).items()})
            attenuators = tuple(
                Attenuator(
                    name=str(a.get("name", a["material"])),
                    material=str(a["material"]),
                    density_g_cm3=float(a["density_g_cm3"]),
                    thickness_cm=float(a["thickness_cm"]),
                )
                for a in data.get("attenuators", [])
            )
            det_data = dict(data.get("detector", {}))
            if "pixels" in det_data:
                det_data["pixels"] = tuple(int(p) for p in det_data["pixels"])
            detector = Detector(**det_data)
            continuum = Continuum(**data.get("continuum", {}))
        except (KeyError, TypeError) as exc:
            raise InstrumentError(f"incomplete or unknown instrument entry: {exc}") from None
        return cls(
            name=str(data.get("name", "unnamed instrument")),
            beam=beam,
            geometry=geometry,
            attenuators=attenuators,
            detector=detector,
            continuum=continuum,
        )

    def replace(self, **changes: Any) -> Instrument:
        """Return a copy with some values changed.

        Parameters
        ----------
        **changes
            Dotted names to new values, e.g. ``{"detector.gain_keV": 0.036}``
            or ``{"beam.energies_keV": (20.0,)}``. Top-level fields use plain names.

        Returns
        -------
        Instrument
            The changed copy (validated).
        """
        data = self.to_dict()
        for dotted, value in changes.items():
            target = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                target = target[key]
            if leaf not in target:
                raise InstrumentError(f"unknown instrument parameter {dotted!r}")
            target[leaf] = list(value) if isinstance(value, tuple) else value
        return Instrument.from_dict(data)


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tuples_to_lists(v) for v in value]
    return value


def validate_instrument(inst: Instrument) -> None:
    """Raise :class:`InstrumentError` if ``inst`` cannot describe a measurement."""
    beam, det = inst.beam, inst.detector
    if not beam.energies_keV:
        raise InstrumentError("the beam needs at least one energy")
    if len(beam.weights) != len(beam.energies_keV):
        raise InstrumentError("beam weights and energies differ in length")
    if any(not math.isfinite(e) or e <= 0 for e in beam.energies_keV):
        raise InstrumentError("beam energies must be positive keV values")
    if any(not math.isfinite(w) or w < 0 for w in beam.weights) or sum(beam.weights) <= 0:
        raise InstrumentError("beam weights must be non-negative and not all zero")
    if not 0.0 <= beam.polarisation <= 1.0:
        raise InstrumentError("beam polarisation must lie between 0 and 1")
    geo = inst.geometry
    for name in ("incidence_deg", "takeoff_deg"):
        angle = getattr(geo, name)
        if not 0.0 < angle <= 90.0:
            raise InstrumentError(f"geometry {name} must lie in (0, 90] degrees, got {angle}")
    if det.n_channels < 2:
        raise InstrumentError("the detector needs at least 2 channels")
    if not (math.isfinite(det.gain_keV) and det.gain_keV > 0):
        raise InstrumentError(
            f"energy calibration must increase with channel (gain_keV={det.gain_keV})"
        )
    if det.thickness_cm <= 0 or det.density_g_cm3 <= 0:
        raise InstrumentError("detector thickness and density must be positive")
    if det.noise_keV < 0 or det.fano <= 0 or det.pair_energy_keV <= 0:
        raise InstrumentError("detector noise, Fano factor and pair energy must be positive")
    for att in inst.attenuators:
        if att.thickness_cm < 0 or att.density_g_cm3 <= 0:
            raise InstrumentError(f"attenuator {att.name!r} needs positive density and thickness")
    if not 0.0 <= inst.continuum.fraction < 1.0:
        raise InstrumentError("continuum fraction must lie in [0, 1)")


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
        if file.suffix.lower() == ".json":
            import json

            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except ValueError as exc:
        raise InstrumentError(f"{file}: not a valid instrument file ({exc})") from None
    try:
        return Instrument.from_dict(data)
    except InstrumentError as exc:
        raise InstrumentError(f"{file}: {exc}") from None


def reference_instrument() -> Instrument:
    """The reference CXC instrument (``reference.toml``)."""
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
        import json

        text = json.dumps(inst.to_dict(), indent=2)
    else:
        text = instrument_to_toml(inst)
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
