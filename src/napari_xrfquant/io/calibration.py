"""Energy calibration of a cube: from the file, a sidecar JSON, or the reference.

The energy of channel ``k`` is the centre of that channel in keV. Files that
carry no energy axis get one from a sidecar ``<name>.calib.json`` beside them
(``<name>`` is the file name without its last extension, so ``map.tif`` ->
``map.calib.json``)::

    {"offset_keV": 0.0, "gain_keV": 0.035, "quadratic_keV": 0.0}

(``E = offset + gain * k + quadratic * k**2`` for channel ``k``; the quadratic
term is optional)
and otherwise from the reference instrument (``reference.toml``), with a
:class:`CalibrationWarning` saying so.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant.errors import CubeReadError

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.instrument import Instrument

#: Where an energy axis came from, as recorded in ``Cube.calibration_source``
#: ("argument": ``read_cube(calibration=...)``; "lines": the file's, refined on
#: the lines the spectrum shows, :mod:`napari_xrfquant.io.detectors`).
CALIBRATION_SOURCES = ("file", "sidecar", "reference", "argument", "lines")
#: Sidecar keys that say where a generic HDF5 file keeps its cube (see :func:`read_mapping`).
MAPPING_KEYS = ("dataset", "energy_axis", "calibration_dataset")
#: Energy axes of file and sidecar that differ by more than this disagree (keV).
AGREEMENT_KEV = 1e-3

_EV_PER_KEV = 1000.0


class CalibrationWarning(UserWarning):
    """The energy axis was not in the file and came from a fallback."""


def linear_energy_axis(offset_keV: float, gain_keV: float, n_channels: int) -> np.ndarray:
    """Channel-centre energies ``offset_keV + gain_keV * k`` for ``k < n_channels``.

    Parameters
    ----------
    offset_keV
        Energy of channel 0 in keV.
    gain_keV
        Width of one channel in keV.
    n_channels
        Number of channels.

    Returns
    -------
    numpy.ndarray
        ``(n_channels,)`` float64 energies in keV.
    """
    return float(offset_keV) + float(gain_keV) * np.arange(n_channels, dtype=np.float64)


def polynomial_energy_axis(
    offset_keV: float, gain_keV: float, quadratic_keV: float, n_channels: int
) -> np.ndarray:
    """Channel-centre energies ``offset + gain * k + quadratic * k**2`` (keV)."""
    k = np.arange(n_channels, dtype=np.float64)
    return float(offset_keV) + float(gain_keV) * k + float(quadratic_keV) * k * k


def fit_calibration(energy_keV: np.ndarray) -> tuple[float, float, float]:
    """``(offset_keV, gain_keV, quadratic_keV)`` of an energy axis.

    Exact for an axis built from such a polynomial (a linear axis gives a
    quadratic term of exactly 0); a least-squares fit otherwise.
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    if energy.size < 3 or is_linear(energy):
        return (*fit_linear_calibration(energy), 0.0)
    k = np.arange(energy.size, dtype=np.float64)
    quadratic, gain, offset = np.polyfit(k, energy, 2)
    return float(offset), float(gain), float(quadratic)


def on_energy_axis(instrument: Instrument, energy_keV: np.ndarray) -> Instrument:
    """``instrument`` read on a cube's channels: its channel count and calibration
    (:func:`fit_calibration`, up to the quadratic term) in place of the detector's."""
    offset, gain, quadratic = fit_calibration(np.asarray(energy_keV, dtype=np.float64))
    return instrument.replace(**{
        "detector.n_channels": int(np.asarray(energy_keV).size),
        "detector.offset_keV": offset,
        "detector.gain_keV": gain,
        "detector.quadratic_keV": quadratic,
    })


def fit_linear_calibration(energy_keV: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(offset_keV, gain_keV)`` of an energy axis.

    Parameters
    ----------
    energy_keV
        ``(C,)`` channel-centre energies, ``C >= 2``.

    Returns
    -------
    tuple of float
        Offset (energy of channel 0) and gain (keV per channel).
    """
    energy = np.asarray(energy_keV, dtype=np.float64)
    if _is_linear(energy, *_least_squares(energy)):
        # The end points give the exact numbers a linear axis was built from
        # (offset 0 stays 0), where the least-squares solve leaves ~1e-16 residue.
        return float(energy[0]), float((energy[-1] - energy[0]) / (energy.size - 1))
    return _least_squares(energy)


def _least_squares(energy: np.ndarray) -> tuple[float, float]:
    channel = np.arange(energy.size, dtype=np.float64)
    gain, offset = np.polyfit(channel, energy, 1)
    return float(offset), float(gain)


def _is_linear(
    energy: np.ndarray, offset_keV: float, gain_keV: float, tolerance_keV: float = 1e-6
) -> bool:
    residual = energy - linear_energy_axis(offset_keV, gain_keV, energy.size)
    return bool(np.max(np.abs(residual)) <= tolerance_keV + 1e-12 * np.max(np.abs(energy)))


def is_linear(energy_keV: np.ndarray, tolerance_keV: float = 1e-6) -> bool:
    """Whether ``energy_keV`` is ``offset + gain * k`` within ``tolerance_keV``."""
    energy = np.asarray(energy_keV, dtype=np.float64)
    return _is_linear(energy, *_least_squares(energy), tolerance_keV=tolerance_keV)


def check_energy_axis(energy_keV: np.ndarray, n_channels: int, where: str) -> np.ndarray:
    """Validate an energy axis against the cube it describes.

    Parameters
    ----------
    energy_keV
        Candidate channel-centre energies in keV.
    n_channels
        Number of channels of the cube.
    where
        Name for messages: the file (and the source of the axis).

    Returns
    -------
    numpy.ndarray
        The axis as a ``(n_channels,)`` float64 array.

    Raises
    ------
    CubeReadError
        If the axis has the wrong length, holds NaN or inf, or does not
        increase strictly with channel (a gain <= 0 or a non-monotonic axis).
    """
    energy = np.asarray(energy_keV, dtype=np.float64).reshape(-1)
    if energy.size != n_channels:
        raise CubeReadError(
            f"{where}: energy axis has {energy.size} values for {n_channels} channels"
        )
    if not np.all(np.isfinite(energy)):
        raise CubeReadError(f"{where}: energy axis holds NaN or infinite values")
    if n_channels > 1 and not np.all(np.diff(energy) > 0):
        step = np.diff(energy)
        first_bad = int(np.argmax(step <= 0))
        raise CubeReadError(
            f"{where}: energy calibration does not increase with channel "
            f"(channel {first_bad}: {energy[first_bad]:.6g} keV, "
            f"channel {first_bad + 1}: {energy[first_bad + 1]:.6g} keV)"
        )
    return energy


def energy_from_offset_gain(
    offset_keV: float, gain_keV: float, n_channels: int, where: str
) -> np.ndarray:
    """Linear energy axis from a calibration, refusing a gain that is not positive.

    Raises
    ------
    CubeReadError
        If offset or gain are not finite numbers, or gain <= 0.
    """
    try:
        offset, gain = float(offset_keV), float(gain_keV)
    except (TypeError, ValueError):
        raise CubeReadError(
            f"{where}: energy calibration offset/gain are not numbers "
            f"({offset_keV!r}, {gain_keV!r})"
        ) from None
    if not (math.isfinite(offset) and math.isfinite(gain)):
        raise CubeReadError(f"{where}: energy calibration offset/gain are not finite")
    if gain <= 0:
        raise CubeReadError(
            f"{where}: energy calibration does not increase with channel (gain_keV={gain:g})"
        )
    return linear_energy_axis(offset, gain, n_channels)


def energy_from_polynomial(
    coefficients: object, n_channels: int, where: str, scale_to_keV: float = 1.0
) -> np.ndarray:
    """Energy axis from ``[offset, gain]`` or ``[offset, gain, quadratic]``.

    ``scale_to_keV`` converts the coefficients' unit (1e-3 for eV).

    Raises
    ------
    CubeReadError
        For coefficients that are not two or three finite numbers, a gain that is
        not positive, or a quadratic term that makes the axis turn within the
        cube's channels (the message names the channel).
    """
    try:
        values = np.asarray(coefficients, dtype=np.float64).reshape(-1) * scale_to_keV
    except (TypeError, ValueError):
        raise CubeReadError(f"{where}: energy calibration {coefficients!r} is no numbers") from None
    if values.size not in (2, 3) or not np.all(np.isfinite(values)):
        raise CubeReadError(
            f"{where}: energy calibration needs 2 or 3 finite numbers (offset, gain"
            f"[, quadratic]), got {values.tolist()}"
        )
    offset, gain, quadratic = (*values.tolist(), 0.0)[:3]
    if gain <= 0 and quadratic == 0:
        raise CubeReadError(
            f"{where}: energy calibration does not increase with channel (gain_keV={gain:g})"
        )
    energy = polynomial_energy_axis(offset, gain, quadratic, n_channels)
    if n_channels > 1 and not np.all(np.diff(energy) > 0):
        turn = int(np.argmax(np.diff(energy) <= 0))
        raise CubeReadError(
            f"{where}: energy calibration E = {offset:g} + {gain:g} k + {quadratic:g} k^2 "
            f"does not increase with channel k (it turns at channel {turn})"
        )
    return energy


def energy_from_units(values: np.ndarray, units: str | None, where: str) -> np.ndarray:
    """Convert an energy axis in ``units`` ("keV" or "eV") to keV.

    Missing units are guessed from the magnitude (an axis reaching beyond
    200 is taken as eV: no XRF line lies above 200 keV) with a warning.

    Raises
    ------
    CubeReadError
        If ``units`` is neither keV nor eV.
    """
    energy = np.asarray(values, dtype=np.float64)
    unit = (units or "").strip()
    if unit.lower() == "kev":
        return energy
    if unit.lower() == "ev":
        return energy / _EV_PER_KEV
    if not unit:
        guessed_eV = bool(energy.size) and float(np.nanmax(np.abs(energy))) > 200.0
        warnings.warn(
            f"{where}: energy axis has no units; assuming {'eV' if guessed_eV else 'keV'}",
            CalibrationWarning,
            stacklevel=3,
        )
        return energy / _EV_PER_KEV if guessed_eV else energy
    raise CubeReadError(f"{where}: energy axis units {unit!r} are not keV or eV")


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The calibration sidecar of a cube file: ``<name>.calib.json`` beside it."""
    file = Path(path)
    return file.with_name(f"{file.stem}.calib.json")


def sidecar_has_calibration(path: str | os.PathLike[str]) -> bool:
    """Whether the sidecar of ``path`` exists and states an energy calibration (not
    only where the cube is)."""
    side = sidecar_path(path)
    if not side.is_file():
        return False
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return True  # let read_sidecar say what is wrong with it
    return not isinstance(data, dict) or not set(data) <= set(MAPPING_KEYS)


def read_sidecar(path: str | os.PathLike[str], n_channels: int) -> np.ndarray | None:
    """Energy axis from the sidecar of ``path``, or None if there is none.

    The sidecar holds ``offset_keV`` and ``gain_keV`` (and optionally
    ``quadratic_keV``), or an explicit ``energy_keV`` list of channel centres.

    Raises
    ------
    CubeReadError
        If the sidecar exists but is unreadable or describes an impossible
        calibration; the message names the sidecar.
    """
    side = sidecar_path(path)
    if not sidecar_has_calibration(path):
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CubeReadError(f"{side.name}: not a readable calibration file ({exc})") from None
    if not isinstance(data, dict):
        raise CubeReadError(f"{side.name}: expected a JSON object with offset_keV and gain_keV")
    if "energy_keV" in data:
        return check_energy_axis(np.asarray(data["energy_keV"], dtype=np.float64),
                                 n_channels, side.name)
    missing = [key for key in ("offset_keV", "gain_keV") if key not in data]
    if missing:
        raise CubeReadError(f"{side.name}: missing {' and '.join(missing)}")
    coefficients = [data["offset_keV"], data["gain_keV"], data.get("quadratic_keV", 0.0)]
    if any(isinstance(v, (bool, str)) or v is None for v in coefficients):
        raise CubeReadError(f"{side.name}: offset_keV, gain_keV and quadratic_keV must be numbers")
    energy = energy_from_polynomial(coefficients, n_channels, side.name)
    return check_energy_axis(energy, n_channels, side.name)


def write_sidecar_calibration(
    path: str | os.PathLike[str],
    offset_keV: float,
    gain_keV: float,
    quadratic_keV: float = 0.0,
    overwrite: bool = False,
) -> Path:
    """Write ``offset_keV``, ``gain_keV`` and ``quadratic_keV`` to the sidecar of ``path``.

    Keys an existing sidecar holds besides the calibration (where a generic
    HDF5 file keeps its cube, :data:`MAPPING_KEYS`) are kept; an explicit
    ``energy_keV`` list is replaced. Written atomically.

    Parameters
    ----------
    path
        The cube file (the sidecar is :func:`sidecar_path` of it).
    offset_keV, gain_keV, quadratic_keV
        ``E = offset + gain * k + quadratic * k**2`` for channel ``k``.
    overwrite
        Replace a sidecar that already states a calibration.

    Raises
    ------
    FileExistsError
        If the sidecar states a calibration and ``overwrite`` is False.
    CubeReadError
        For a gain that is not positive or a number that is not finite.
    """
    from napari_xrfquant._files import atomic_path

    side = sidecar_path(path)
    values = {"offset_keV": float(offset_keV), "gain_keV": float(gain_keV),
              "quadratic_keV": float(quadratic_keV)}
    if not all(math.isfinite(v) for v in values.values()) or values["gain_keV"] <= 0:
        raise CubeReadError(f"{side.name}: the gain must be positive and every term finite")
    if sidecar_has_calibration(path) and not overwrite:
        raise FileExistsError(f"{side}: states a calibration already; allow replacing it")
    kept: dict[str, object] = {}
    if side.is_file():
        try:
            existing = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            existing = {}
        if isinstance(existing, dict):
            kept = {k: v for k, v in existing.items() if k in MAPPING_KEYS}
    with atomic_path(side, overwrite=True) as tmp:
        tmp.write_text(json.dumps({**kept, **values}, indent=2) + "\n", encoding="utf-8")
    return side


def read_mapping(path: str | os.PathLike[str]) -> dict[str, str]:
    """Where a file keeps its cube, from its sidecar: ``dataset`` (HDF5 path),
    ``energy_axis`` ("first" or "last") and ``calibration_dataset`` (HDF5 path of
    ``[offset, gain(, quadratic)]`` in keV). Empty without a sidecar.

    This is how a vendor's HDF5 layout opens without code::

        {"dataset": "/entry/data/cube", "energy_axis": "first",
         "calibration_dataset": "/entry/data/calibration"}

    Raises
    ------
    CubeReadError
        For a sidecar that is unreadable or holds a mapping key that is no text.
    """
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CubeReadError(f"{side.name}: not a readable calibration file ({exc})") from None
    if not isinstance(data, dict):
        return {}
    mapping = {key: data[key] for key in MAPPING_KEYS if key in data}
    wrong = [key for key, value in mapping.items() if not isinstance(value, str)]
    if wrong:
        raise CubeReadError(f"{side.name}: {wrong[0]} must be text (an HDF5 path or first/last)")
    return mapping


def reference_energy_axis(n_channels: int, where: str) -> np.ndarray:
    """The reference instrument's calibration for ``n_channels`` channels, with a warning."""
    from napari_xrfquant.instrument import reference_instrument

    det = reference_instrument().detector
    note = ""
    if n_channels != det.n_channels:
        note = f"; it has {det.n_channels} channels, this cube {n_channels}"
    warnings.warn(
        f"{where}: no energy calibration in the file or a sidecar "
        f"{sidecar_path(where).name}; using the reference instrument's "
        f"(offset {det.offset_keV:g} keV, gain {det.gain_keV:g} keV/channel{note})",
        CalibrationWarning,
        stacklevel=4,
    )
    return linear_energy_axis(det.offset_keV, det.gain_keV, n_channels)


def resolve_energy_axis(
    path: str | os.PathLike[str],
    n_channels: int,
    from_file: np.ndarray | None,
    stated: Sequence[float] | None = None,
) -> tuple[np.ndarray, str]:
    """Pick the energy axis of a cube: stated, then file, then sidecar, then reference.

    Parameters
    ----------
    path
        The cube file (its sidecar is looked for beside it).
    n_channels
        Number of channels of the cube.
    from_file
        Energy axis found in the file itself (keV), or None.
    stated
        ``(offset, gain[, quadratic])`` keV the caller gives (``read_cube(calibration=)``).

    Returns
    -------
    energy_keV : numpy.ndarray
        ``(n_channels,)`` float64 channel centres, strictly increasing.
    source : str
        ``"argument"``, ``"file"``, ``"sidecar"`` or ``"reference"``.
    """
    name = Path(path).name
    if stated is not None:
        return energy_from_polynomial(stated, n_channels, name), "argument"
    if from_file is not None:
        energy = check_energy_axis(from_file, n_channels, name)
        side = read_sidecar(path, n_channels) if sidecar_has_calibration(path) else None
        if side is not None and np.max(np.abs(side - energy)) > AGREEMENT_KEV:
            worst = int(np.argmax(np.abs(side - energy)))
            warnings.warn(
                f"{name}: the file's energy calibration and {sidecar_path(path).name}'s "
                f"disagree (channel {worst}: {energy[worst]:.4f} against {side[worst]:.4f} "
                "keV); using the file's",
                CalibrationWarning,
                stacklevel=4,
            )
        return energy, "file"
    side = read_sidecar(path, n_channels)
    if side is not None:
        return side, "sidecar"
    return reference_energy_axis(n_channels, name), "reference"


def start_instrument(
    instrument: Instrument, energy_keV: np.ndarray, names: Sequence[str]
) -> Instrument:
    """Where a fit starts: ``instrument`` with the cube's channel count and stated
    calibration (up to its quadratic term), and a nearly flat optic when one is
    to be fitted and the instrument has none; freeing the share of a part the
    set-up lacks is refused (:func:`~napari_xrfquant.instrument_parameters.check_freeable`)."""
    from napari_xrfquant.instrument_parameters import (
        FLAT_OPTIC,
        OPTIC_PARAMETERS,
        check_freeable,
    )

    check_freeable(instrument, names)
    on_axis = on_energy_axis(instrument, energy_keV)
    if instrument.optic is None and any(n in OPTIC_PARAMETERS for n in names):
        return on_axis.replace(optic=dict(FLAT_OPTIC))
    return on_axis
