"""Plot simulated spectra of the gold CRMs: ``docs/images/reference_spectra.png``.

Three stacked panels, ERM-EB506 (rose), EB507 (white) and EB508 (yellow gold),
on the reference instrument: the noise-free expected spectrum scaled to 1e4
counts (line) and one Poisson draw of 1e4 counts (grey steps), log scale. Peaks
are labelled from :func:`napari_xrfquant.physics.element_lines`; Rayleigh and
Compton scatter from the beam energy and the Compton formula at the detector's
scattering angle; Si K escape peaks of the strongest lines at E - E(Si K-alpha).

Usage::

    .venv/bin/python docs/plot_reference_spectra.py [--output PATH] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_xrfquant.instrument import Instrument, reference_instrument

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "images" / "reference_spectra.png"

ELEMENTS = ("Au", "Ag", "Cu", "Ni", "Zn")
#: BAM gold CRMs, certified mass fractions in wt% (Au, Ag, Cu, Ni, Zn).
CRMS: dict[str, tuple[float, ...]] = {
    "ERM-EB506 (rose gold)": (58.56, 3.90, 35.65, 0.0, 1.891),
    "ERM-EB507 (white gold)": (75.10, 3.02, 14.69, 4.99, 2.107),
    "ERM-EB508 (yellow gold)": (75.12, 24.90, 0.0, 0.0, 0.0),
}
TOTAL_COUNTS = 1e4
#: Si K-alpha, the photon that escapes the sensor (keV).
SI_KA_KEV = 1.740
ELECTRON_REST_KEV = 510.999
#: Labels closer than this along the energy axis are pushed apart (keV).
LABEL_SPACING_KEV = 0.36
#: Bottom of the log axes (counts per channel).
Y_FLOOR = 0.05


@dataclass(frozen=True)
class Marker:
    """A labelled position on the energy axis."""

    label: str
    energy_keV: float
    kind: str  # "line", "scatter" or "escape"


def compton_energy_keV(beam_keV: float, scattering_deg: float) -> float:
    """Compton-scattered photon energy off a free electron at rest."""
    cos_theta = math.cos(math.radians(scattering_deg))
    return beam_keV / (1.0 + beam_keV / ELECTRON_REST_KEV * (1.0 - cos_theta))


def markers_for(
    wt_percent: Sequence[float], instrument: Instrument, n_escapes: int = 2
) -> list[Marker]:
    """Lines of the elements present, scatter peaks and the strongest lines' escapes."""
    from napari_xrfquant.physics import element_lines

    present = [e for e, w in zip(ELEMENTS, wt_percent, strict=True) if w > 0]
    lines = element_lines(present, instrument=instrument, min_relative_intensity=0.03)
    out = [Marker(ln.label, ln.energy_keV, "line") for ln in lines]
    beam_keV = max(instrument.beam.energies_keV)
    out.append(Marker("Rayleigh", beam_keV, "scatter"))
    out.append(
        Marker("Compton", compton_energy_keV(beam_keV, instrument.geometry.scattering_deg),
               "scatter")
    )
    # Escapes of the lines strongest in this sample (content x relative intensity),
    # marked only where they do not sit under another line: a spectroscopist
    # looks for them in the gaps (Cu K-alpha -> 6.30 keV, Ag K-alpha -> 20.4 keV).
    weight = dict(zip(ELEMENTS, wt_percent, strict=True))
    strongest = sorted(lines, key=lambda ln: -ln.relative_intensity * weight[ln.element])
    line_keV = np.array([ln.energy_keV for ln in lines])
    escapes = 0
    for ln in strongest:
        escape_keV = ln.energy_keV - SI_KA_KEV
        # softer than the Si K edge (1.84 keV) a photon cannot make an escape
        if ln.energy_keV <= 1.84 or np.min(np.abs(line_keV - escape_keV)) < 0.5:
            continue
        out.append(Marker(f"esc {ln.label}", escape_keV, "escape"))
        escapes += 1
        if escapes == n_escapes:
            break
    return sorted(out, key=lambda m: m.energy_keV)


def spread_labels(energies_keV: Sequence[float], spacing_keV: float) -> np.ndarray:
    """Label x positions near ``energies_keV`` (sorted) at least ``spacing_keV`` apart.

    Pushes right, then centres each crowded cluster on its lines, so a label
    stays as close as it can to its peak.
    """
    x = np.asarray(energies_keV, dtype=np.float64).copy()
    for _ in range(50):
        moved = False
        for i in range(1, len(x)):
            if x[i] - x[i - 1] < spacing_keV - 1e-9:
                # shift the pair apart symmetrically
                gap = spacing_keV - (x[i] - x[i - 1])
                x[i - 1] -= gap / 2
                x[i] += gap / 2
                moved = True
        if not moved:
            break
    return x


def simulate_crms(instrument: Instrument, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy axis, expected counts (3, C) at 1e4 counts and one Poisson draw each."""
    from napari_xrfquant.physics import simulate

    wt = np.array(list(CRMS.values()))
    expected = simulate(wt, ELEMENTS, instrument=instrument) * TOTAL_COUNTS
    noisy = np.random.default_rng(seed).poisson(expected).astype(np.float64)
    d = instrument.detector
    energy_keV = d.offset_keV + d.gain_keV * np.arange(d.n_channels)
    return energy_keV, expected, noisy


def plot(output: Path, seed: int = 1, instrument: Instrument | None = None) -> Path:
    """Draw the three panels and write the PNG atomically (replacing an older plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_xrfquant._files import atomic_path

    inst = instrument if instrument is not None else reference_instrument()
    energy_keV, expected, noisy = simulate_crms(inst, seed)
    colours = {"line": "#1f4e99", "scatter": "#a0522d", "escape": "#6b6b6b"}
    fig, axes = plt.subplots(3, 1, figsize=(11, 11), sharex=True)
    for ax, (name, wt), model, draw in zip(axes, CRMS.items(), expected, noisy, strict=True):
        # empty channels drop to the bottom of the log axis, as on a counting display
        ax.step(energy_keV, np.maximum(draw, Y_FLOOR), where="mid", color="0.6", lw=0.6,
                label=f"Poisson draw, {TOTAL_COUNTS:.0e} counts")
        ax.plot(energy_keV, model, color="black", lw=1.0, label="expected (noise-free)")
        ax.set_yscale("log")
        ax.set_ylim(Y_FLOOR, model.max() * 30)
        ax.set_xlim(1.0, 32.0)
        ax.set_ylabel("counts / 35 eV channel")
        composition = ", ".join(
            f"{e} {w:g}" for e, w in zip(ELEMENTS, wt, strict=True) if w > 0
        )
        ax.set_title(f"{name}: {composition} wt%", loc="left", fontsize=10)
        markers = markers_for(wt, inst)
        xs = spread_labels([m.energy_keV for m in markers], LABEL_SPACING_KEV)
        for marker, x_text in zip(markers, xs, strict=True):
            k = int(np.argmin(np.abs(energy_keV - marker.energy_keV)))
            height = float(model[max(k - 2, 0) : k + 3].max())
            # above every peak the label's leader line crosses
            near = np.abs(energy_keV - 0.5 * (marker.energy_keV + x_text)) < 0.3
            y_text = max(float(model[near].max()), height, 0.3) * 2.2
            colour = colours[marker.kind]
            ax.plot([marker.energy_keV, x_text], [height * 1.15, y_text * 0.95],
                    color=colour, lw=0.5)
            ax.text(x_text, y_text, marker.label, rotation=90, ha="center", va="bottom",
                    fontsize=7, color=colour)
        ax.grid(True, which="major", axis="both", color="0.9", lw=0.5)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    axes[-1].set_xlabel("energy (keV)")
    b = inst.beam
    fig.suptitle(
        f"Simulated CXC spectra of the BAM gold CRMs: {b.energies_keV[0]:g} keV beam, "
        f"{inst.geometry.scattering_deg:g} deg scattering, Si pnCCD", fontsize=11
    )
    fig.tight_layout()
    with atomic_path(output, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(plot(args.output, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
