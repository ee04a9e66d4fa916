"""``model.json``: the typed description of a model bundle (pydantic), and its parts.

:class:`ModelMetadata` declares every key of ``model.json`` once: what is
required, its type and range, and how the parts fit together (the energy grid
against the input bins, the sigma table against the elements, the instrument
against :class:`~napari_xrfquant.instrument.Instrument`). Loading a bundle
validates its ``model.json`` here, so a wrong bundle fails with one line naming
the bundle and the key, before any weights are read.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from napari_xrfquant._schema import one_line
from napari_xrfquant.errors import ModelBundleError
from napari_xrfquant.instrument import Instrument

if TYPE_CHECKING:  # pragma: no cover
    from napari_xrfquant.models.architectures import QuantNet

#: Identifies the file layout; bump :data:`FORMAT_VERSION` on incompatible changes.
BUNDLE_FORMAT = "napari-xrfquant-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"


@dataclass
class UncertaintyCalibration:
    """Per-count-bin, per-element factors that turn the head's sigma into a calibrated one.

    Fitted on the validation set so that about 68 % of errors fall within
    1 sigma in every bin of ``log10`` total counts.

    Attributes
    ----------
    log10_counts_edges
        ``B + 1`` increasing bin edges of ``log10`` total counts; spectra outside
        the edges use the first or last bin.
    scale
        ``(B, E)`` factors applied to the network's sigma.
    """

    log10_counts_edges: list[float] = field(default_factory=lambda: [0.0, 9.0])
    scale: list[list[float]] | None = None

    def factors(self, log10_total: np.ndarray, n_elements: int) -> np.ndarray:
        """Scale factors ``(N, E)`` for spectra with these ``log10`` total counts."""
        if self.scale is None:
            return np.ones((len(log10_total), n_elements), dtype=np.float32)
        table = np.asarray(self.scale, dtype=np.float32)
        inner = np.asarray(self.log10_counts_edges[1:-1], dtype=np.float64)
        index = np.searchsorted(inner, np.asarray(log10_total, dtype=np.float64), side="right")
        return table[index]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for ``model.json``."""
        return {
            "method": "heteroscedastic Gaussian head; sigma scaled per log10-counts bin and "
            "element so that 68.3 % of validation errors fall within 1 sigma",
            "log10_counts_edges": [float(e) for e in self.log10_counts_edges],
            "scale": None if self.scale is None else [[float(v) for v in r] for r in self.scale],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], n_elements: int) -> UncertaintyCalibration:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on inconsistent data."""
        edges = [float(e) for e in data.get("log10_counts_edges", [0.0, 9.0])]
        if len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("uncertainty log10_counts_edges must increase")
        scale = data.get("scale")
        if scale is not None:
            table = np.asarray(scale, dtype=np.float64)
            if table.shape != (len(edges) - 1, n_elements):
                raise ValueError(
                    f"uncertainty scale has shape {table.shape}, "
                    f"expected {(len(edges) - 1, n_elements)}"
                )
            if not np.all(np.isfinite(table)) or np.any(table <= 0):
                raise ValueError("uncertainty scale factors must be positive numbers")
            scale = table.tolist()
        return cls(log10_counts_edges=edges, scale=scale)


def energy_grid_keV(energy: dict[str, Any]) -> np.ndarray:
    """Channel-centre energies from ``model.json["energy"]`` (quadratic term optional)."""
    k = np.arange(int(energy["n_channels"]), dtype=np.float64)
    quadratic = float(energy.get("quadratic_keV", 0.0))
    return float(energy["offset_keV"]) + float(energy["gain_keV"]) * k + quadratic * k**2


def energy_dict(instrument: Instrument) -> dict[str, Any]:
    """``model.json["energy"]`` for the detector calibration of ``instrument``."""
    det = instrument.detector
    return {
        "n_channels": int(det.n_channels),
        "offset_keV": float(det.offset_keV),
        "gain_keV": float(det.gain_keV),
        "quadratic_keV": float(det.quadratic_keV),
        "formula": "E_keV(k) = offset_keV + gain_keV * k + quadratic_keV * k^2, channel centres",
    }


def build_metadata(
    *,
    name: str,
    elements: Sequence[str],
    sum_to_100: bool,
    instrument: Instrument,
    network: QuantNet,
    calibration: UncertaintyCalibration | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Assemble a ``model.json`` dictionary (without the weights checksum)."""
    if len(elements) != network.n_elements:
        raise ValueError(f"{len(elements)} elements for a network with {network.n_elements}")
    return {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "elements": list(elements),
        "sum_to_100": bool(sum_to_100),
        "unit": "wt%",
        "energy": energy_dict(instrument),
        "instrument": instrument.to_dict(),
        "input": network.input_spec.to_dict(),
        "architecture": network.architecture.to_dict(),
        "uncertainty": (calibration or UncertaintyCalibration()).to_dict(),
        "training": training or {},
        "metrics": metrics or {},
        "weights": {"file": WEIGHTS_FILE, "sha256": ""},
    }


class EnergyGrid(BaseModel):
    """``model.json["energy"]``: the channel grid the model reads."""

    model_config = ConfigDict(extra="allow")

    n_channels: int = Field(ge=2)
    offset_keV: float = Field(allow_inf_nan=False)
    gain_keV: float = Field(gt=0.0, allow_inf_nan=False)


class WeightsRecord(BaseModel):
    """``model.json["weights"]``: the weights file and its SHA-256."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(WEIGHTS_FILE, min_length=1)
    sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"weights file name {value!r} is not a plain name")
        return value


class ModelMetadata(BaseModel):
    """Everything in ``model.json``; extra keys are kept (written by newer tools)."""

    model_config = ConfigDict(extra="allow")

    format: Literal["napari-xrfquant-model"]
    format_version: int
    name: str = Field(min_length=1)
    elements: list[str] = Field(min_length=1)
    sum_to_100: bool
    energy: EnergyGrid
    instrument: dict[str, Any]
    input: dict[str, Any]
    architecture: dict[str, Any]
    uncertainty: dict[str, Any]
    weights: WeightsRecord
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("format_version")
    @classmethod
    def _readable_version(cls, value: int) -> int:
        if not 1 <= value <= FORMAT_VERSION:
            raise ValueError(
                f"bundle format version {value} is not supported (this napari-xrfquant reads "
                f"up to {FORMAT_VERSION}); update napari-xrfquant"
            )
        return value

    @field_validator("elements")
    @classmethod
    def _element_symbols(cls, value: list[str]) -> list[str]:
        from napari_xrfquant.physics.lines import parse_elements

        symbols = parse_elements(value)  # raises for unknown symbols and duplicates
        if symbols != value:
            raise ValueError(f"elements must be written as symbols, e.g. {symbols}")
        return value

    @model_validator(mode="after")
    def _parts_fit(self) -> ModelMetadata:
        from napari_xrfquant.models.architectures import InputSpec
        from napari_xrfquant.models.description import ModelConfig

        InputSpec.from_dict(self.input).validate(self.energy.n_channels)
        ModelConfig.from_bundle(self.architecture)
        UncertaintyCalibration.from_dict(self.uncertainty, len(self.elements))
        Instrument.from_dict(self.instrument, where="instrument")
        return self


def validate_metadata(meta: dict[str, Any], where: str) -> ModelMetadata:
    """The validated ``model.json``; one-line :class:`ModelBundleError` otherwise.

    Raises
    ------
    ModelBundleError
        ``"<bundle>: <key>: <problem>"`` for a file that is not a model, an
        unsupported version, a missing or out-of-range key, element names that
        are not element symbols, or parts that do not fit together.
    """
    if meta.get("format") != BUNDLE_FORMAT:
        raise ModelBundleError(
            f"{where}: not a napari-xrfquant model (format {meta.get('format')!r})"
        )
    try:
        return ModelMetadata.model_validate(meta)
    except ValidationError as exc:
        raise ModelBundleError(one_line(exc, where)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelBundleError(f"{where}: inconsistent model.json ({exc})") from None
