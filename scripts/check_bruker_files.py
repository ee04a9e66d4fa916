"""Open real Bruker ``.bcf``/``.spx`` files with ``read_cube`` and check them against rosettasciio.

No writer of ``.bcf`` exists in the libraries we use, so the test suite cannot
make one; this script checks the reader on files you have (for example those of
rosettasciio's test data, ``rsciio/tests/data/bruker``). For each file it prints
the shape, the energy axis and whether the cube (read lazily) holds exactly the
spectrum image rosettasciio returns.

Usage: ``python scripts/check_bruker_files.py FILE_OR_DIR ...``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from napari_xrfquant.errors import CubeReadError
from napari_xrfquant.io import read_cube


def _reference(path: Path) -> tuple[np.ndarray, float, float]:
    """The spectrum image, offset and gain (keV) as rosettasciio reads them."""
    from rsciio.bruker import file_reader

    kwargs = {"select_type": "spectrum_image"} if path.suffix.lower() == ".bcf" else {}
    signal = file_reader(str(path), **kwargs)[0]
    axis = signal["axes"][-1]
    return np.asarray(signal["data"]), float(axis["offset"]), float(axis["scale"])


def check(path: Path) -> bool:
    """Print one line for ``path``; True when it matches rosettasciio's reading."""
    try:
        cube = read_cube(path, lazy=True)
    except CubeReadError as exc:
        print(f"{path.name}: refused: {exc}")
        return False
    with cube:
        data, offset, gain = _reference(path)
        data = data.reshape(cube.shape)
        same = bool(np.array_equal(np.asarray(cube.data), data))
        k = np.arange(cube.shape[-1])
        energy_error_eV = 1000 * float(np.max(np.abs(cube.energy_keV - (offset + gain * k))))
        print(f"{path.name}: {cube.format}, {cube.shape}, {'lazy' if cube.lazy else 'in memory'}, "
              f"{cube.energy_keV[0]:.4f}-{cube.energy_keV[-1]:.4f} keV, "
              f"axis error {energy_error_eV:.2g} eV, data {'identical' if same else 'DIFFERENT'}")
    return same and energy_error_eV < 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    files = [f for p in args.paths for f in (sorted(p.iterdir()) if p.is_dir() else [p])
             if f.suffix.lower() in (".bcf", ".spx")]
    results = [check(f) for f in files]
    print(f"{sum(results)} of {len(results)} files match rosettasciio")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
