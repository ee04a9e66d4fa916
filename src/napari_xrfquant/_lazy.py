"""Lazy package exports: heavy modules (torch, xraylib) load on first attribute use.

napari imports the package when it scans plugins; importing torch there would
add seconds to every napari start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str], extra: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for a package's lazy public names.

    Parameters
    ----------
    package
        The package's ``__name__`` (for the error message).
    table
        Public name -> module that defines it.
    extra
        Names defined in the package itself, listed by ``__dir__`` too.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` to assign in the package's ``__init__``.
    """
    names = [*sorted(table), *extra]

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__
