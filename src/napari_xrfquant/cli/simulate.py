"""``xrfquant simulate``: a simulated training or test set of spectra, written to HDF5.

Compositions are drawn over the whole simplex with elements often absent (the
training sampler, :func:`napari_xrfquant.training.data.sample_compositions`),
total counts log-uniform between ``--counts-min`` and ``--counts-max``, and
optionally a random instrument variation per group of spectra (``--jitter``,
the training's :class:`~napari_xrfquant.training.config.JitterConfig`).

The file is the project's one training-set format (:mod:`napari_xrfquant.io.spectra`),
which ``xrfquant train`` reads through its ``training_set`` setting.

Everything happens in a temporary file that is renamed onto ``-o`` at the end,
so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from napari_xrfquant.errors import XRFQuantError

#: Probability that an element is absent from a composition (the training default).
DEFAULT_ABSENT_PROBABILITY = 0.3
#: Compositions simulated (and written) per block: bounds the memory to ~C x 4096 doubles.
BLOCK_SPECTRA = 4096


@dataclass(frozen=True)
class SimulateRequest:
    """A validated ``xrfquant simulate`` run.

    Attributes
    ----------
    output
        Destination HDF5 file.
    elements
        Canonical element symbols.
    n_spectra
        Number of spectra (> 0).
    counts_min, counts_max
        Range of the log-uniform total counts (0 < min <= max).
    noiseless
        Store expected counts (float32) rather than Poisson draws.
    jitter
        Vary the instrument per group of spectra.
    instrument_path
        Instrument TOML/JSON, or None for the reference instrument.
    seed
        Seed of every random draw (compositions, counts, jitter, noise).
    absent_probability
        Probability that an element is absent from a composition.
    overwrite
        Replace an existing output file.
    threads
        torch CPU threads for the run (None: leave torch's setting).
    """

    output: Path
    elements: tuple[str, ...]
    n_spectra: int
    counts_min: float
    counts_max: float
    noiseless: bool = False
    jitter: bool = False
    instrument_path: Path | None = None
    seed: int = 0
    absent_probability: float = DEFAULT_ABSENT_PROBABILITY
    overwrite: bool = False
    threads: int | None = None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``simulate`` on the ``xrfquant`` subcommand parser."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate spectra of random compositions into an HDF5 file",
        description=(
            "Simulate N spectra of compositions spread over the whole simplex (elements "
            "often absent), with log-uniform total counts, and write spectra, wt%, "
            "counts and the energy axis to an HDF5 file."
        ),
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.h5")
    parser.add_argument(
        "--elements",
        default="Au,Ag,Cu,Ni,Zn",
        metavar="LIST",
        help="comma-separated element symbols (default: %(default)s)",
    )
    parser.add_argument(
        "-n",
        "--n-spectra",
        type=int,
        default=100_000,
        metavar="N",
        help="number of spectra (default: %(default)s)",
    )
    parser.add_argument(
        "--counts-min",
        type=float,
        default=3e2,
        metavar="C",
        help="smallest total counts per spectrum (default: %(default)g)",
    )
    parser.add_argument(
        "--counts-max",
        type=float,
        default=1e6,
        metavar="C",
        help="largest total counts per spectrum (default: %(default)g)",
    )
    parser.add_argument(
        "--noiseless",
        action="store_true",
        help="store expected counts (float32) instead of Poisson draws",
    )
    parser.add_argument(
        "--jitter",
        action="store_true",
        help="vary calibration, resolution, tails and continuum per group "
        "of spectra, as in training",
    )
    parser.add_argument(
        "--instrument",
        type=Path,
        metavar="FILE",
        help="instrument TOML/JSON (default: the reference instrument)",
    )
    parser.add_argument(
        "--absent-probability",
        type=float,
        default=DEFAULT_ABSENT_PROBABILITY,
        metavar="P",
        help="probability that an element is absent (default: %(default)g)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="T",
        help="CPU threads for torch (default: torch's choice, one per core); 1 is often "
        "fastest on a machine busy with other work",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT.h5")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    return parser


def request_from_args(args: argparse.Namespace) -> SimulateRequest:
    """Check the arguments and turn them into a :class:`SimulateRequest`.

    Raises
    ------
    XRFQuantError
        For n <= 0, a bad counts range or absent probability, or unknown elements
        (:class:`~napari_xrfquant.errors.SimulationError`).
    FileNotFoundError
        If ``--instrument`` names no file.
    """
    from napari_xrfquant.physics._xraydata import parse_elements

    if args.n_spectra <= 0:
        raise XRFQuantError(f"-n {args.n_spectra}: the number of spectra must be positive")
    lo, hi = float(args.counts_min), float(args.counts_max)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo > 0):
        raise XRFQuantError(f"--counts-min {lo:g}: counts must be positive and finite")
    if lo > hi:
        raise XRFQuantError(f"--counts-min {lo:g} is larger than --counts-max {hi:g}")
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise XRFQuantError(f"--threads {threads}: must be at least 1")
    if not 0.0 <= args.absent_probability < 1.0:
        raise XRFQuantError(f"--absent-probability {args.absent_probability:g}: must be in [0, 1)")
    symbols, _ = parse_elements(args.elements)
    if args.instrument is not None and not Path(args.instrument).is_file():
        raise FileNotFoundError(f"{args.instrument}: instrument file not found")
    return SimulateRequest(
        output=Path(args.output),
        elements=tuple(symbols),
        n_spectra=int(args.n_spectra),
        counts_min=lo,
        counts_max=hi,
        noiseless=bool(args.noiseless),
        jitter=bool(args.jitter),
        instrument_path=Path(args.instrument) if args.instrument is not None else None,
        seed=int(args.seed),
        absent_probability=float(args.absent_probability),
        overwrite=bool(args.overwrite),
        threads=threads,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``xrfquant simulate``; return the exit status (0)."""
    request = request_from_args(args)
    stream = None if getattr(args, "quiet", False) else sys.stderr
    simulate_to_hdf5(request, progress_stream=stream)
    return 0


def _spectra_dtype(request: SimulateRequest) -> np.dtype:
    if request.noiseless:
        return np.dtype(np.float32)
    # a channel never holds more than the spectrum's total (plus Poisson excess)
    bound = request.counts_max + 10.0 * math.sqrt(request.counts_max) + 10.0
    return np.dtype(np.uint16 if bound < np.iinfo(np.uint16).max else np.uint32)


def simulate_to_hdf5(request: SimulateRequest, progress_stream: TextIO | None = None) -> Path:
    """Simulate ``request.n_spectra`` spectra and write them atomically to ``request.output``.

    Parameters
    ----------
    request
        A validated request (see :func:`request_from_args`).
    progress_stream
        Where the progress line goes (None: silent).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileExistsError
        If the output exists and ``request.overwrite`` is False (checked before
        anything is simulated).
    """
    import torch

    from napari_xrfquant.instrument import load_instrument

    instrument = load_instrument(request.instrument_path)
    previous_threads = torch.get_num_threads()
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    try:
        return _simulate_and_write(request, instrument, progress_stream)
    finally:
        torch.set_num_threads(previous_threads)


def _simulate_and_write(
    request: SimulateRequest, instrument: Any, progress_stream: TextIO | None
) -> Path:
    import torch
    from tqdm import tqdm

    from napari_xrfquant import __version__
    from napari_xrfquant.instrument import instrument_to_toml
    from napari_xrfquant.io.spectra import create_spectra_file
    from napari_xrfquant.training.config import JitterConfig
    from napari_xrfquant.training.datasets import (
        SimulatorSpectra,
        log_uniform_counts,
        sample_compositions,
        sample_jitter,
    )

    n, n_el = request.n_spectra, len(request.elements)
    rng = np.random.default_rng(request.seed)
    # compositions and totals first, so they do not depend on the block size
    wt_percent = sample_compositions(n, n_el, request.absent_probability, rng)
    totals = log_uniform_counts(n, request.counts_min, request.counts_max, rng)
    jitter = JitterConfig() if request.jitter else None
    dtype = _spectra_dtype(request)
    generator = SimulatorSpectra(list(request.elements), instrument=instrument)
    names = (
        list(generator.overrides(sample_jitter(jitter, np.random.default_rng(0))))
        if jitter is not None
        else []
    )
    attrs = {
        "seed": request.seed,
        "jitter": request.jitter,
        "counts_min": request.counts_min,
        "counts_max": request.counts_max,
        "absent_probability": request.absent_probability,
        "generator": f"xrfquant simulate {__version__}",
    }
    bar = tqdm(
        total=n,
        desc="xrfquant simulate",
        unit=" spectra",
        disable=progress_stream is None,
        file=progress_stream,
    )
    with (
        bar,
        create_spectra_file(
            request.output,
            wt_percent=wt_percent,
            elements=request.elements,
            energy_keV=np.asarray(generator.energy_keV, dtype=np.float64),
            counts=totals,
            noiseless=request.noiseless,
            dtype=dtype,
            instrument=instrument_to_toml(instrument),
            override_names=names,
            attrs=attrs,
            overwrite=request.overwrite,
        ) as writer,
    ):
        group = jitter.group_size if jitter is not None else BLOCK_SPECTRA
        for start in range(0, n, group):
            stop = min(start + group, n)
            draw = sample_jitter(jitter, rng) if jitter is not None else None
            block = torch.as_tensor(wt_percent[start:stop], dtype=torch.float32)
            expected = generator.expected(block, draw).double().numpy()
            expected *= totals[start:stop, None]
            spectra = (
                expected.astype(np.float32)
                if request.noiseless
                else rng.poisson(expected).astype(dtype)
            )
            overrides = None
            if draw is not None:
                values = np.asarray(list(generator.overrides(draw).values()), dtype=np.float32)
                overrides = np.broadcast_to(values, (stop - start, values.size))
            writer.write(start, spectra, overrides)
            bar.update(stop - start)
    return request.output
