"""The sample cube: a simulated CXC frame of a gold object, made on first use.

A full CXC frame (264 x 264 pixels of 48 um, 1024 channels, the reference
instrument) of a gold plate seen in air. Regions (label: name):

0. ``background``: air beside the plate, a weak scatter spectrum of a few tens
   of counts per pixel; its truth is 0 wt% of every element.
1. ``body (14k yellow gold)``: the plate itself, Au 58.5 / Ag 20.5 / Cu 21.
2. ``ERM-EB506 (rose gold)``, 3. ``ERM-EB507 (white gold)``, 4. ``ERM-EB508
   (yellow gold)``: 56 x 56 pixel coupons with the certified compositions of the
   BAM gold reference materials.
5. ``gradient (yellow to rose gold)``: a 48 x 216 pixel bar whose composition
   moves linearly, column by column, from 18k yellow gold (Au 75 / Ag 15 /
   Cu 10) to 18k rose gold (Au 75 / Ag 3 / Cu 22).
6. ``white-gold inlay``: a disc of nickel white gold (Au 75 / Ni 12 / Cu 9 / Zn 4).

Counts: each pixel on the plate holds about 2000 to 5000 counts (an illumination
profile that falls smoothly from the beam centre to the corners, with a small
tilt), air pixels 1 % of that. Every distinct composition is simulated once with
:func:`napari_xrfquant.physics.simulate` (noise-free); pixels draw Poisson counts
from their composition's expected spectrum times their illumination. The seed
fixes every draw, so the file is reproducible bit for bit for a given simulator.

:func:`sample_cube_path` makes the file the first time it is asked for (about
10 s) and keeps it in the user cache folder (``platformdirs``;
``$XRFQUANT_CACHE_DIR`` overrides it), under a name that hashes the seed, the
package version and the simulator's sources and data (``sample-<hash>/``): a new
simulator makes a new sample, never a stale one. ``$XRFQUANT_SAMPLE_DATA`` names an existing copy
instead. ``python -m napari_xrfquant.sample --output PATH`` writes one anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_xrfquant.instrument import Instrument, reference_instrument

DEFAULT_SEED = 2024
SAMPLE_FILE_STEM = "cxc_gold_sample"
#: Environment variables: an existing sample file; the cache folder.
SAMPLE_ENV = "XRFQUANT_SAMPLE_DATA"
CACHE_ENV = "XRFQUANT_CACHE_DIR"

ELEMENTS = ("Au", "Ag", "Cu", "Ni", "Zn")

#: BAM gold CRMs, certified mass fractions in wt% (Au, Ag, Cu, Ni, Zn).
CRM_WT_PERCENT: dict[str, tuple[float, ...]] = {
    "ERM-EB506 (rose gold)": (58.56, 3.90, 35.65, 0.0, 1.891),
    "ERM-EB507 (white gold)": (75.10, 3.02, 14.69, 4.99, 2.107),
    "ERM-EB508 (yellow gold)": (75.12, 24.90, 0.0, 0.0, 0.0),
}
BODY_NAME = "body (14k yellow gold)"
BODY_WT_PERCENT = (58.5, 20.5, 21.0, 0.0, 0.0)
GRADIENT_NAME = "gradient (yellow to rose gold)"
GRADIENT_START_WT_PERCENT = (75.0, 15.0, 10.0, 0.0, 0.0)  # 18k yellow
GRADIENT_END_WT_PERCENT = (75.0, 3.0, 22.0, 0.0, 0.0)  # 18k rose
INLAY_NAME = "white-gold inlay"
INLAY_WT_PERCENT = (75.0, 0.0, 9.0, 12.0, 4.0)

REGION_NAMES = (
    "background",
    BODY_NAME,
    *CRM_WT_PERCENT,
    GRADIENT_NAME,
    INLAY_NAME,
)

#: Counts per plate pixel at the beam centre and in the far corners (expected values).
PEAK_COUNTS = 5000.0
EDGE_COUNTS = 2000.0
#: Air pixels scatter about this fraction of what the plate returns.
AIR_FRACTION = 0.01

#: Air's N and O K lines (0.39, 0.52 keV) never pass the Be window; Na (Z/A =
#: 0.478, air 0.499) stands in as the low-Z Compton scatterer, Ar at its 1.29 wt%
#: of air. (The sample was made so when the simulator stopped at Z = 11; it now
#: takes H-F, but the stand-in is kept: every figure measured on the sample and
#: its cache fingerprint would change with it.)
AIR_ELEMENTS = ("Na", "Ar")
AIR_WT_PERCENT = (98.71, 1.29)


@dataclass(frozen=True)
class Layout:
    """Label image and per-pixel composition index of the sample."""

    regions: np.ndarray  # (H, W) uint8 label
    composition_index: np.ndarray  # (H, W) int index into compositions
    compositions: np.ndarray  # (K, 5) wt%; row 0 is air (all zero)


def layout(shape: tuple[int, int] = (264, 264)) -> Layout:
    """Place the plate, coupons, gradient bar and inlay on a ``shape`` frame.

    The geometry is drawn for 264 x 264 and scaled to other shapes (tests use
    small frames); coupons stay at least 40 x 40 pixels only at full size.
    """
    rows, cols = shape
    r = np.arange(rows)[:, None] * (264.0 / rows)
    c = np.arange(cols)[None, :] * (264.0 / cols)
    label = {name: i for i, name in enumerate(REGION_NAMES)}
    regions = np.zeros(shape, dtype=np.uint8)
    # plate: a rounded rectangle 12 pixels inside the frame, corner radius 24
    inner_r = np.clip(r, 36, 228)
    inner_c = np.clip(c, 36, 228)
    plate = (r - inner_r) ** 2 + (c - inner_c) ** 2 <= 24.0**2
    regions[plate] = label[BODY_NAME]
    for i, name in enumerate(CRM_WT_PERCENT):
        c0 = 24 + 80 * i
        regions[(r >= 24) & (r < 80) & (c >= c0) & (c < c0 + 56)] = label[name]
    bar = (r >= 104) & (r < 152) & (c >= 24) & (c < 240)
    regions[bar] = label[GRADIENT_NAME]
    inlay = (r - 204.0) ** 2 + (c - 132.0) ** 2 <= 36.0**2
    regions[inlay] = label[INLAY_NAME]

    fixed = [np.zeros(len(ELEMENTS)), np.asarray(BODY_WT_PERCENT)]
    fixed += [np.asarray(v) for v in CRM_WT_PERCENT.values()]
    fixed += [np.asarray(INLAY_WT_PERCENT)]
    fixed_labels = [0, label[BODY_NAME], *(label[n] for n in CRM_WT_PERCENT), label[INLAY_NAME]]
    index = np.zeros(shape, dtype=np.int64)
    for k, lab in enumerate(fixed_labels):
        index[regions == lab] = k
    # gradient: one composition per column of the bar, linear in wt%
    bar_cols = np.nonzero(np.any(regions == label[GRADIENT_NAME], axis=0))[0]
    span = max(len(bar_cols) - 1, 1)
    t = (np.arange(len(bar_cols)) / span)[:, None]
    start = np.asarray(GRADIENT_START_WT_PERCENT)
    end = np.asarray(GRADIENT_END_WT_PERCENT)
    gradient = start + t * (end - start)
    in_bar = regions == label[GRADIENT_NAME]
    column_rank = np.full(cols, -1)
    column_rank[bar_cols] = np.arange(len(bar_cols))
    index[in_bar] = len(fixed) + np.broadcast_to(column_rank[None, :], shape)[in_bar]
    compositions = np.vstack([np.vstack(fixed), gradient])
    return Layout(regions, index, compositions)


def illumination(shape: tuple[int, int]) -> np.ndarray:
    """Expected counts per plate pixel: a broad beam profile, EDGE..PEAK counts.

    A Gaussian of the distance from a slightly off-centre beam axis, plus a 5 %
    tilt across the frame (the beam meets the sample at 45 deg), scaled so the
    centre gets :data:`PEAK_COUNTS` and the farthest corner :data:`EDGE_COUNTS`.
    """
    rows, cols = shape
    y = (np.arange(rows)[:, None] + 0.5) / rows - 0.46
    x = (np.arange(cols)[None, :] + 0.5) / cols - 0.53
    profile = np.exp(-(x**2 + y**2) / (2 * 0.42**2)) * (1.0 + 0.05 * x)
    low, high = profile.min(), profile.max()
    return EDGE_COUNTS + (PEAK_COUNTS - EDGE_COUNTS) * (profile - low) / (high - low)


def expected_spectra(
    compositions: np.ndarray, instrument: Instrument
) -> np.ndarray:
    """Noise-free spectra (sum 1) of every composition; row 0 (all zero) is air."""
    from napari_xrfquant.physics import simulate

    air = simulate(np.asarray([AIR_WT_PERCENT]), AIR_ELEMENTS, instrument=instrument)
    alloys = simulate(compositions[1:], ELEMENTS, instrument=instrument)
    return np.vstack([air, alloys])


def draw_counts(
    spectra: np.ndarray,
    index: np.ndarray,
    totals: np.ndarray,
    rng: np.random.Generator,
    rows_per_block: int = 16,
) -> np.ndarray:
    """Poisson counts ``(H, W, C)`` uint16: pixel (i, j) ~ Poisson(totals * spectra[index]).

    Drawn a block of rows at a time so the float64 rates never fill memory.
    """
    rows, cols = index.shape
    out = np.empty((rows, cols, spectra.shape[1]), dtype=np.uint16)
    for r0 in range(0, rows, rows_per_block):
        r1 = min(r0 + rows_per_block, rows)
        rates = spectra[index[r0:r1]] * totals[r0:r1, :, None]
        counts = rng.poisson(rates)
        # 65535 is far above any channel here; the clip only guards the cast
        out[r0:r1] = np.minimum(counts, np.iinfo(np.uint16).max)
    return out


def build_sample(
    shape: tuple[int, int] = (264, 264),
    seed: int = DEFAULT_SEED,
    instrument: Instrument | None = None,
) -> dict[str, object]:
    """Everything the sample file holds, as arrays (see the module docstring).

    Returns
    -------
    dict
        ``counts`` (H, W, C) uint16, ``energy_keV`` (C,), ``wt_percent``
        (H, W, 5) float32, ``regions`` (H, W) uint8, ``expected_totals`` (H, W),
        ``instrument``.
    """
    inst = instrument if instrument is not None else reference_instrument()
    lay = layout(shape)
    spectra = expected_spectra(lay.compositions, inst)
    light = illumination(shape)
    totals = np.where(lay.regions == 0, AIR_FRACTION * light, light)
    rng = np.random.default_rng(seed)
    counts = draw_counts(spectra, lay.composition_index, totals, rng)
    d = inst.detector
    energy_keV = d.offset_keV + d.gain_keV * np.arange(d.n_channels)
    return {
        "counts": counts,
        "energy_keV": energy_keV,
        "wt_percent": lay.compositions[lay.composition_index].astype(np.float32),
        "regions": lay.regions,
        "expected_totals": totals,
        "instrument": inst,
    }


def write_sample(path: Path, seed: int = DEFAULT_SEED, overwrite: bool = False) -> Path:
    """Simulate the full-frame sample and write it in the CXC HDF5 layout."""
    from napari_xrfquant.io import write_cxc_hdf5

    sample = build_sample(seed=seed)
    inst = reference_instrument()
    return write_cxc_hdf5(
        path,
        sample["counts"],
        sample["energy_keV"],
        metadata={
            "pixel_size_um": inst.detector.pixel_size_um,
            "instrument": inst,
            "description": "simulated gold plate with ERM-EB506/507/508 coupons, "
            "a yellow-to-rose gradient and a white-gold inlay",
            "generator": "napari_xrfquant.sample",
            "seed": int(seed),
        },
        truth_wt_percent=sample["wt_percent"],
        truth_elements=list(ELEMENTS),
        regions=sample["regions"],
        region_names=list(REGION_NAMES),
        overwrite=overwrite,
    )


def check(path: Path) -> str:
    """Read the file back; return a one-line summary (raises if it does not fit)."""
    from napari_xrfquant.io import read_cube, read_truth

    cube = read_cube(path, lazy=False)
    totals = np.asarray(cube.total_counts())
    truth = read_truth(path)
    if cube.data.shape != (264, 264, 1024) or cube.calibration_source != "file":
        raise RuntimeError(f"{path}: unexpected shape {cube.data.shape} or calibration")
    if truth is None or truth.regions is None or len(truth.region_names) != len(REGION_NAMES):
        raise RuntimeError(f"{path}: truth maps missing")
    plate = truth.regions > 0
    return (
        f"{path.name}: {cube.data.shape}, E = {cube.energy_keV[0]:.3f} + "
        f"{cube.energy_keV[1] - cube.energy_keV[0]:.4f} k keV, counts/pixel plate "
        f"{totals[plate].min():.0f}-{totals[plate].max():.0f} (median "
        f"{np.median(totals[plate]):.0f}), air {np.median(totals[~plate]):.0f}, "
        f"{path.stat().st_size / 1e6:.1f} MB"
    )


def cache_dir() -> Path:
    """Where made files are kept: ``$XRFQUANT_CACHE_DIR`` or the user cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-xrfquant", appauthor=False))


def simulator_fingerprint() -> str:
    """A hash of everything the sample's numbers depend on: sources, data, version, seed.

    The physics package's sources and data files, the reference instrument and
    this module; any change to them gives another sample file name.
    """
    from napari_xrfquant import __version__

    package = Path(__file__).resolve().parent
    physics = package / "physics"
    files = sorted(physics.glob("*.py")) + sorted(physics.glob("*.json"))
    files += [package / "reference.toml", Path(__file__).resolve()]
    digest = hashlib.sha256(f"{__version__}:{DEFAULT_SEED}".encode())
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def sample_cube_path(make: bool = True) -> Path:
    """The sample cube file, made (once, about 10 s) if it does not exist yet.

    Parameters
    ----------
    make
        Simulate and write the file when it is missing; False only returns where
        it would be.

    Returns
    -------
    Path
        ``$XRFQUANT_SAMPLE_DATA`` when set, else
        ``<cache>/sample-<fingerprint>/cxc_gold_sample.h5``.
    """
    override = os.environ.get(SAMPLE_ENV)
    if override:
        return Path(override)
    # the fingerprint names the folder, so the file (and what is made from it) keeps its name
    path = cache_dir() / f"sample-{simulator_fingerprint()}" / f"{SAMPLE_FILE_STEM}.h5"
    if make and not path.is_file():
        try:
            write_sample(path)
        except FileExistsError:  # another process made it meanwhile
            pass
    return path


#: Where the real samples are: ``$XRFQUANT_REAL_SAMPLES``, else the source tree's
#: ``sample_data/`` (an installed wheel carries no copy).
REAL_SAMPLES_ENV = "XRFQUANT_REAL_SAMPLES"


def real_sample_path(relative: str) -> Path:
    """A real measurement of ``sample_data/`` (e.g. ``"aps_2ide/axo_std.mda"``).

    Raises
    ------
    CubeReadError
        When it is not there, naming where it was looked for.
    """
    from napari_xrfquant.errors import CubeReadError

    override = os.environ.get(REAL_SAMPLES_ENV)
    folder = Path(override) if override else Path(__file__).resolve().parents[2] / "sample_data"
    path = folder / relative
    if not path.is_file():
        raise CubeReadError(
            f"{Path(relative).name}: the real samples are not at {folder} (they come with the "
            f"source tree's sample_data/; set ${REAL_SAMPLES_ENV} to another copy)")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m napari_xrfquant.sample``: write the sample cube (default: into the cache)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="default: the cache")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    output = args.output or sample_cube_path(make=False)
    if args.output is None and output.is_file() and not args.overwrite:
        print(check(output), "(cached)")
        return 0
    write_sample(output, seed=args.seed, overwrite=args.overwrite)
    print(check(output), f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
