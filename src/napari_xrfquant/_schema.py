"""The base of every typed configuration (instrument, training, model.json), pydantic v2.

Fields, ranges, choices and defaults are declared once, on the models; unknown
keys are refused; a validation failure becomes one line that names the file (or
whatever the caller says it validated) and the field: ``inst.toml: detector.gain_keV:
Input should be greater than 0 (got -0.01)``. The GUI forms read ranges and
defaults from the same models (:func:`field_bounds`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Schema(BaseModel):
    """Mutable configuration record: unknown keys refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FrozenSchema(BaseModel):
    """Immutable, hashable configuration record (an instrument can key a cache)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


#: pydantic's wording -> ours (the message names the field already).
_PLAIN_WORDS = (
    ("Value error, ", ""),
    ("Input should be greater than or equal to", "must be at least"),
    ("Input should be less than or equal to", "must be at most"),
    ("Input should be greater than", "must be greater than"),
    ("Input should be less than", "must be less than"),
    ("Input should be", "must be"),
    ("Field required", "missing"),
)


def one_line(exc: ValidationError, where: str = "") -> str:
    """The first problem of a pydantic error as one line naming ``where`` and the field."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = _location(tuple(first.get("loc", ())))
    kind = str(first.get("type", ""))
    message = str(first.get("msg", "invalid value"))
    for old, new in _PLAIN_WORDS:
        message = message.replace(old, new)
    if kind == "extra_forbidden":
        message = "unknown setting"
    value = first.get("input")
    quiet = kind in ("extra_forbidden", "missing", "value_error") or isinstance(value, (dict, list))
    shown = "" if quiet else f" (got {value!r})"
    prefix = f"{where}: " if where else ""
    return f"{prefix}{field + ': ' if field else ''}{message}{shown}"


def field_bounds(model: type[BaseModel], name: str) -> dict[str, Any]:
    """``ge``/``gt``/``le``/``lt`` bounds and the description of a field, for forms."""
    info = model.model_fields[name]
    bounds: dict[str, Any] = {"description": info.description or ""}
    for constraint in info.metadata:
        for key in ("ge", "gt", "le", "lt"):
            value = getattr(constraint, key, None)
            if value is not None:
                bounds[key] = value
    return bounds
