"""Regenerate ``atomic_corrections.json`` from the source files of xraylib.

Not imported by the package: run it by hand when the table needs rebuilding::

    python -m napari_xrfquant.physics._generate_atomic_corrections XRAYLIB_SOURCE_DIR

``XRAYLIB_SOURCE_DIR`` is a checkout of https://github.com/tschoonj/xraylib; the
script reads three files that xraylib ships but does not expose through its API:

- ``data/auger_probabilities/EADL97_{L,M}ShellNonradiativeRates.dat``: EADL97
  non-radiative transition probabilities (Perkins, Cullen et al. 1991), from
  which xraylib builds ``AugerRate`` but drops the Coster-Kronig channels. We keep
  only where the second ("spectator") vacancy of each Coster-Kronig transition
  lands, as a distribution over the emitting shells per Coster-Kronig group.
- ``data/coskron/MShellConstants.dat``: Chen, Crasemann and Mark (1980, 1983),
  the source of xraylib's M-shell ``CosKronTransProb``; its M2 fluorescence yield
  replaces xraylib's ``FluorYield`` where that is too high (see
  :data:`M2_SPIKE_FACTOR`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from napari_xrfquant._files import atomic_path

#: xraylib's M2 yield counts as defective where it exceeds Chen et al.'s by more
#: than this factor: Z = 77-92, a spike at 77-82 (12x at Au) that runs into a
#: plateau 1.4-1.9x high up to U. Below Ir the two agree within 15 %, and a
#: smaller factor would put a seam into the corrected yields.
M2_SPIKE_FACTOR = 1.3

#: Shells whose vacancies the simulator follows.
EMITTING = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")

#: Spectator fractions below this are dropped (they change no line by > 1e-4).
MIN_FRACTION = 1e-4


def _read_spec(path: Path) -> dict[str, dict[int, dict[str, float]]]:
    """Sections of a specfile-format table: {section: {Z: {column: value}}}."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    section, columns = "", []
    for line in path.read_text().splitlines():
        if line.startswith("#S"):
            section = line.split()[2].split("-")[0]
            out[section] = {}
        elif line.startswith("#L"):
            columns = line.split()[1:]
        elif line.strip() and not line.startswith("#"):
            values = line.split()
            out[section][int(values[0])] = dict(zip(columns, map(float, values), strict=False))
    return out


def spectator_fractions(rates: dict[str, float], origin: str) -> dict[str, dict[str, float]]:
    """Spectator distribution of each Coster-Kronig group of one shell.

    ``rates`` maps EADL labels such as ``"L1-L3M5"`` (vacancy L1 filled from L3,
    electron ejected from M5) to probabilities. A Coster-Kronig group
    ``origin -> destination`` holds every label whose first final vacancy is a
    deeper subshell of the same shell; the second final vacancy is the spectator.
    """
    groups: dict[str, dict[str, float]] = {}
    for label, rate in rates.items():
        if "-" not in label or rate <= 0:
            continue
        finals = label.split("-", 1)[1]
        first, second = finals[:2], finals[2:]
        if first[0] != origin[0] or first <= origin:
            continue
        groups.setdefault(first, {})
        groups[first][second] = groups[first].get(second, 0.0) + rate
    out: dict[str, dict[str, float]] = {}
    for destination, by_spectator in groups.items():
        total = sum(by_spectator.values())
        kept = {
            shell: round(rate / total, 5)
            for shell, rate in by_spectator.items()
            if shell in EMITTING and rate / total >= MIN_FRACTION
        }
        if kept:
            out[f"{origin}-{destination}"] = kept
    return out


def build(source: Path) -> dict:
    """The content of ``atomic_corrections.json``."""
    import xraylib

    nonradiative = {}
    for family in ("L", "M"):
        name = f"EADL97_{family}ShellNonradiativeRates.dat"
        path = source / "data" / "auger_probabilities" / name
        nonradiative.update(_read_spec(path))
    spectators: dict[str, dict[str, dict[str, float]]] = {}
    for z in range(11, 93):
        per_z: dict[str, dict[str, float]] = {}
        for origin in ("L1", "L2", "L3", "M1", "M2", "M3", "M4"):
            per_z.update(spectator_fractions(nonradiative[origin].get(z, {}), origin))
        if per_z:
            spectators[str(z)] = per_z

    chen = _read_spec(source / "data" / "coskron" / "MShellConstants.dat")
    m2_yield: dict[str, float] = {}
    for z, row in sorted(chen["M2"].items()):
        literature = row.get("omegaM2", 0.0)
        if literature <= 0 or not 11 <= z <= 92:
            continue
        try:
            current = xraylib.FluorYield(z, xraylib.M2_SHELL)
        except ValueError:
            continue
        if current > M2_SPIKE_FACTOR * literature:
            m2_yield[str(z)] = literature

    return {
        "description": (
            "Corrections to xraylib atomic data used by napari_xrfquant.physics._cascade. "
            "Generated by napari_xrfquant/physics/_generate_atomic_corrections.py from "
            "files in the xraylib source tree; see that module."
        ),
        "fluorescence_yield": {
            "M2": m2_yield,
            "_reference": (
                "M.H. Chen, B. Crasemann, H. Mark, Phys. Rev. A 21 (1980) 449 and "
                "Phys. Rev. A 27 (1983) 2989 (xraylib data/coskron/MShellConstants.dat); "
                f"used where xraylib FluorYield(Z, M2) > {M2_SPIKE_FACTOR:g} x this value"
            ),
        },
        "coster_kronig_spectators": {
            "_reference": (
                "S.T. Perkins, D.E. Cullen et al., EADL, UCRL-50400 Vol. 30 (1991), "
                "EADL97 non-radiative rates (xraylib data/auger_probabilities); fraction "
                "of each Coster-Kronig group 'origin-destination' whose second vacancy "
                "is in the given shell"
            ),
            **spectators,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Write the table next to this module."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__)
        return 2
    table = build(Path(args[0]))
    target = Path(__file__).with_name("atomic_corrections.json")
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
