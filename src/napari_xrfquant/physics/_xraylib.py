"""The bottom of the physics package: xraylib itself, and the lookups everything shares.

:mod:`._cascade` and :mod:`._xraydata` both build on these few functions; keeping
them here (importing nothing of the package) means neither of the two imports
the other back.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SHELL_INDEX = {
    name: i
    for i, name in enumerate(
        "K L1 L2 L3 M1 M2 M3 M4 M5 N1 N2 N3 N4 N5 N6 N7 O1 O2 O3 O4 O5 O6 O7 "
        "P1 P2 P3 P4 P5 Q1 Q2 Q3".split()
    )
}


def xrl() -> Any:
    """The xraylib module, imported on first use (it is slow to load)."""
    import xraylib

    return xraylib


@dataclass(frozen=True)
class TransitionMacro:
    """One radiative transition known to xraylib."""

    iupac: str  #: e.g. "L3M5"
    macro: int  #: xraylib line macro (negative integer)
    initial_shell: str  #: vacancy shell, e.g. "L3"
    parts: tuple[str, ...] = ()  #: for combined macros ("L3O45"): the single lines


@functools.lru_cache(maxsize=1)
def transition_macros() -> tuple[TransitionMacro, ...]:
    """Every K, L1-L3 and M1-M5 radiative transition macro of xraylib.

    Combined macros such as ``L3O45`` are listed with their parts; callers use a
    combined macro only for elements where none of its parts is tabulated, so no
    intensity is counted twice.
    """
    lib = xrl()
    pattern = re.compile(r"(K|L[123]|M[1-5])([KLMNOPQ])(\d+)_LINE")
    found = []
    for name in dir(lib):
        match = pattern.fullmatch(name)
        if match is None:
            continue
        initial, outer, digits = match.groups()
        parts: tuple[str, ...] = ()
        if len(digits) > 1:
            parts = tuple(f"{initial}{outer}{d}" for d in digits)
        found.append(
            TransitionMacro(
                iupac=f"{initial}{outer}{digits}",
                macro=int(getattr(lib, name)),
                initial_shell=initial,
                parts=parts,
            )
        )
    return tuple(sorted(found, key=lambda t: -t.macro))


def safe(func: Callable[..., Any], *args: Any) -> float:
    """``func(*args)`` as a float, or 0 where xraylib has no value (it raises ValueError)."""
    try:
        return float(func(*args))
    except ValueError:
        return 0.0


@functools.lru_cache(maxsize=200_000)
def line_energy_keV(z: int, macro: int) -> float:
    """``LineEnergy`` or 0 where xraylib has no such line."""
    return safe(xrl().LineEnergy, z, macro)


@functools.lru_cache(maxsize=1)
def macro_shells() -> dict[int, str]:
    """xraylib line macro -> initial vacancy shell."""
    return {t.macro: t.initial_shell for t in transition_macros()}


def edge_energy_keV(z: int, shell: str) -> float:
    """Absorption edge (binding) energy of ``shell`` ("K", "L3", ...) in keV."""
    return safe(xrl().EdgeEnergy, z, SHELL_INDEX[shell])


def fluor_yield(z: int, shell: str) -> float:
    """Fluorescence yield of ``shell``."""
    return safe(xrl().FluorYield, z, SHELL_INDEX[shell])
