"""The one description of a network's layout, and the table of architectures.

:class:`ModelConfig` is what a training configuration's ``[model]`` table holds,
what ``model.json["architecture"]`` stores and what
:class:`~napari_xrfquant.models.architectures.QuantNet` is built from. Its
``type`` names an entry of the architecture table: each architecture registers
its trunk there with :func:`register_architecture`, in its module of
:mod:`.trunks`; the configuration's check, the Train dock's list and the loader all read the
table (:func:`architectures`). An architecture's own settings, beyond the
shared ``hidden_layers``/``neurons``/``conv_channels``/``kernel_size``, go into
``options``.

This module imports no torch: the trunks (one module each in :mod:`.trunks`)
are imported, and so registered, the first time the table is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator

from napari_xrfquant._schema import Schema, one_line

#: Builds a trunk: ``build(n_features, config)`` -> a torch module whose
#: ``forward(features (N, K), counts_input (N, 1))`` gives ``(N, out_features)``
#: and which has an ``out_features`` attribute.
TrunkBuilder = Callable[[int, "ModelConfig"], Any]


@dataclass(frozen=True)
class Architecture:
    """One entry of the architecture table: its name, its trunk and one line about it."""

    name: str
    build: TrunkBuilder
    summary: str


_TABLE: dict[str, Architecture] = {}


def register_architecture(name: str, summary: str) -> Callable[[TrunkBuilder], TrunkBuilder]:
    """Decorator: list a trunk builder under ``name`` (a lower-case word).

    Examples
    --------
    >>> @register_architecture("wide", "one hidden layer of 4x the neurons")  # doctest: +SKIP
    ... def wide(n_features, config):
    ...     return MLPTrunk(n_features, 1, 4 * config.neurons)
    """
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"architecture name {name!r}: use a lower-case word")

    def register(build: TrunkBuilder) -> TrunkBuilder:
        _TABLE[name] = Architecture(name, build, summary)
        return build

    return register


def unregister_architecture(name: str) -> None:
    """Remove ``name`` from the table (tests register and remove their own)."""
    _TABLE.pop(name, None)


def architectures() -> dict[str, Architecture]:
    """The architecture table, by name: the published MLP first, then the others."""
    import importlib
    import pkgutil

    from napari_xrfquant.models import trunks

    # each module of the package registers its own trunk on import (by name: the
    # modules import this one, not the other way round)
    names = sorted(m.name for m in pkgutil.iter_modules(trunks.__path__))
    for name in sorted(names, key=lambda n: n != "mlp"):
        importlib.import_module(f"{trunks.__name__}.{name}")
    return dict(sorted(_TABLE.items(), key=lambda item: item[0] != "mlp"))


class ModelConfig(Schema):
    """A network's layout (see :mod:`napari_xrfquant.models.architectures`).

    ``decoder_layers``/``decoder_neurons`` size the small composition -> spectrum
    emulator trained alongside, which makes fit quality cheap (0 neurons: none;
    fit quality then runs the physics simulator).
    """

    type: str = Field("mlp", description="an architecture of the table (mlp, cnn, ...)")
    hidden_layers: int = Field(3, ge=1, le=20, description="hidden layers")
    neurons: int = Field(50, ge=1, le=10_000, description="neurons per layer")
    conv_channels: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [16, 32, 32], max_length=16)
    kernel_size: int = Field(7, ge=1, le=1025)
    decoder_layers: int = Field(2, ge=0, le=20)
    decoder_neurons: int = Field(128, ge=0, le=10_000)
    options: dict[str, Any] = Field(
        default_factory=dict, description="an architecture's own settings")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = architectures()
        if value not in known:
            raise ValueError(f"unknown architecture {value!r} (known: {', '.join(known)})")
        return value

    @classmethod
    def from_bundle(cls, data: dict[str, Any]) -> ModelConfig:
        """``model.json["architecture"]``: bundles written before the spectrum
        emulator existed have none (no ``decoder_*`` entries: 0).

        Raises
        ------
        ValueError
            In one line, naming the setting (e.g. ``neurons: must be at most 10000``).
        """
        try:
            return cls.model_validate({"decoder_layers": 0, "decoder_neurons": 0, **data})
        except ValidationError as exc:
            raise ValueError(one_line(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """The plain-data form ``model.json`` stores."""
        return self.model_dump(mode="json")
