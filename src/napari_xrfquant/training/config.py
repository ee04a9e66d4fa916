"""``TrainingConfig``: everything a training run needs, readable from and writable to TOML.

The retraining widget and ``xrfquant train CONFIG.toml`` both build one of these.
A minimal file only names what differs from the defaults::

    elements = ["Au", "Ag", "Cu"]
    n_spectra = 20000
    epochs = 30

    [model]
    type = "mlp"
    hidden_layers = 2
    neurons = 343
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import XRFQuantError

#: Default input bins for a 0.035 keV/channel grid: 2 channels (70 eV, under half
#: the detector FWHM) where the Au L / Cu, Ni, Zn K overlaps are, coarser where
#: only smooth continuum or the broad Ag K and scatter peaks are.
DEFAULT_INPUT_SEGMENTS: tuple[tuple[float, float, int], ...] = (
    (1.2, 14.5, 2),
    (14.5, 20.5, 8),
    (20.5, 26.0, 3),
    (26.0, 31.5, 4),
)


@dataclass
class JitterConfig:
    """Instrument variation drawn per group of simulated spectra (uniform in +-range).

    Attributes
    ----------
    gain_rel, offset_keV
        Energy calibration: relative gain and absolute offset.
    noise_rel, fano_rel
        Resolution: electronic noise and Fano factor, relative.
    continuum_level_log10
        Continuum fraction multiplied by ``10**u``, ``u`` uniform in +-range.
    continuum_power, continuum_decay_rel
        Continuum shape: absolute change of the power, relative change of the decay.
    tail_rel
        Incomplete-charge tail and shelf fractions, relative.
    group_size
        Spectra that share one draw (the simulator runs once per group).
    """

    gain_rel: float = 0.002
    offset_keV: float = 0.010
    noise_rel: float = 0.10
    fano_rel: float = 0.05
    continuum_level_log10: float = 0.3
    continuum_power: float = 0.3
    continuum_decay_rel: float = 0.2
    tail_rel: float = 0.3
    group_size: int = 256


@dataclass
class AugmentConfig:
    """The published augmentations, applied to training spectra only.

    Attributes
    ----------
    background_probability, background_max_fraction, background_degree
        Random smooth polynomial background (a non-negative Bernstein polynomial
        of the given degree) holding up to ``background_max_fraction`` of the counts.
    shift_probability, shift_channels
        Random shift of the spectrum by up to +-``shift_channels`` channels.
    blur_probability, blur_max_channels
        Gaussian blur with a standard deviation uniform in ``[0, blur_max_channels]``.
    """

    background_probability: float = 0.5
    background_max_fraction: float = 0.1
    background_degree: int = 3
    shift_probability: float = 0.5
    shift_channels: float = 2.0
    blur_probability: float = 0.5
    blur_max_channels: float = 3.0


@dataclass
class ModelConfig:
    """Network layout (see :mod:`napari_xrfquant.models.architectures`).

    ``decoder_layers``/``decoder_neurons`` size the small composition -> spectrum
    emulator trained alongside, which makes fit quality cheap (0 neurons: none;
    fit quality then runs the physics simulator).
    """

    type: str = "mlp"
    hidden_layers: int = 3
    neurons: int = 50
    conv_channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    kernel_size: int = 7
    decoder_layers: int = 2
    decoder_neurons: int = 128


@dataclass
class InputConfig:
    """Input transform: energy segments ``[start_keV, stop_keV, channels_per_bin]``."""

    segments: list[list[float]] = field(
        default_factory=lambda: [list(s) for s in DEFAULT_INPUT_SEGMENTS]
    )
    scale: str = "sqrt"


@dataclass
class TrainingConfig:
    """A complete, reproducible description of one training run.

    Attributes
    ----------
    name
        Model name written to ``model.json``.
    elements
        Element symbols the model quantifies.
    sum_to_100
        Whether the elements make up the whole sample (outputs closed to 100 wt%).
    instrument
        Instrument file (TOML/JSON); None for the reference instrument. A relative
        path is relative to the config file it was read from.
    n_spectra
        Compositions simulated; split 80/10/10 into train/validation/test.
    refresh_fraction
        Fraction of the training compositions replaced by fresh simulations each
        epoch (0: a fixed set; noise and augmentations are fresh every epoch anyway).
    counts_min, counts_max
        Total counts per spectrum, drawn log-uniformly.
    noiseless_fraction
        Fraction of training spectra without Poisson noise (scaled to ``counts_max``).
    absent_probability
        Probability that an element is absent from a composition.
    loss
        ``"mae"`` (published; the sigma head learns from a Gaussian NLL on the
        detached mean), ``"nll"`` (Gaussian NLL for both) or ``"beta-nll"``.
    lr, weight_decay, batch_size, epochs, patience, schedule
        Adam optimiser settings; ``schedule`` is ``"cosine"``, ``"onecycle"`` or
        ``"constant"``; training stops after ``patience`` epochs without a better
        validation MAE.
    steps_per_epoch
        Optimiser steps per epoch; 0 means one pass over the training compositions.
    seed
        Seeds compositions, splits, noise and initial weights.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    cache
        HDF5 file caching the simulated (noise-free) spectra; None for no cache.
    simulator
        ``"physics"`` (the fundamental-parameter simulator) or ``"peaks"`` (Gaussian
        lines without matrix effects: only for smoke tests of the pipeline).
    calibration_log10_counts_edges
        Count bins in which the sigma calibration is fitted.
    eval_counts
        Count levels of the test metrics (plus the noise-free case).
    """

    name: str = "custom-model"
    elements: list[str] = field(default_factory=lambda: ["Au", "Ag", "Cu", "Ni", "Zn"])
    sum_to_100: bool = True
    instrument: str | None = None
    n_spectra: int = 50_000
    refresh_fraction: float = 0.0
    counts_min: float = 3e2
    counts_max: float = 1e6
    noiseless_fraction: float = 0.05
    absent_probability: float = 0.3
    loss: str = "mae"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 100
    patience: int = 10
    schedule: str = "cosine"
    steps_per_epoch: int = 0
    seed: int = 0
    device: str = "auto"
    cache: str | None = None
    simulator: str = "physics"
    calibration_log10_counts_edges: list[float] = field(
        default_factory=lambda: [2.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 9.0]
    )
    eval_counts: list[float] = field(default_factory=lambda: [1e3, 1e4, 1e5])
    model: ModelConfig = field(default_factory=ModelConfig)
    input: InputConfig = field(default_factory=InputConfig)
    jitter: JitterConfig = field(default_factory=JitterConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: Directory the config was read from (resolves relative paths); not saved.
    base_dir: Path | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_config(self)

    # -- conversions --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (no None values, as TOML has no null)."""
        data = dataclasses.asdict(self)
        data.pop("base_dir", None)
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> TrainingConfig:
        """Build a config from plain data; unknown keys raise :class:`XRFQuantError`."""
        data = dict(data)
        nested = {
            "model": ModelConfig,
            "input": InputConfig,
            "jitter": JitterConfig,
            "augment": AugmentConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, kind in nested.items():
            if key in data:
                kwargs[key] = _build(kind, data.pop(key), key)
        known = {f.name for f in dataclasses.fields(cls)} - set(nested) - {"base_dir"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise XRFQuantError(f"unknown training setting(s): {', '.join(unknown)}")
        try:
            return cls(**data, **kwargs, base_dir=base_dir)
        except TypeError as exc:
            raise XRFQuantError(f"bad training setting: {exc}") from None

    def replace(self, **changes: Any) -> TrainingConfig:
        """A validated copy with some top-level fields changed."""
        return dataclasses.replace(self, **changes)

    def instrument_path(self) -> Path | None:
        """The instrument file, resolved against the config's directory."""
        if self.instrument is None:
            return None
        path = Path(self.instrument)
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def load_instrument(self) -> Any:
        """The :class:`~napari_xrfquant.instrument.Instrument` this config trains for."""
        from napari_xrfquant.instrument import load_instrument

        return load_instrument(self.instrument_path())


def _build(kind: type, values: Any, key: str) -> Any:
    if not isinstance(values, dict):
        raise XRFQuantError(f"training setting [{key}] must be a table")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise XRFQuantError(f"unknown training setting(s) in [{key}]: {', '.join(unknown)}")
    try:
        return kind(**values)
    except TypeError as exc:
        raise XRFQuantError(f"bad training setting in [{key}]: {exc}") from None


def validate_config(config: TrainingConfig) -> None:
    """Raise :class:`XRFQuantError` naming the first setting that cannot work."""
    if not config.elements or len(set(config.elements)) != len(config.elements):
        raise XRFQuantError("training needs a list of distinct elements")
    if config.n_spectra < 20:
        raise XRFQuantError(f"n_spectra={config.n_spectra}: need at least 20 compositions")
    if not 0 < config.counts_min <= config.counts_max:
        raise XRFQuantError(
            f"counts range {config.counts_min}-{config.counts_max}: "
            "need 0 < counts_min <= counts_max"
        )
    checks = {
        "refresh_fraction": 0 <= config.refresh_fraction <= 1,
        "noiseless_fraction": 0 <= config.noiseless_fraction <= 1,
        "absent_probability": 0 <= config.absent_probability < 1,
        "lr": config.lr > 0,
        "weight_decay": config.weight_decay >= 0,
        "batch_size": config.batch_size >= 1,
        "epochs": config.epochs >= 1,
        "patience": config.patience >= 1,
        "steps_per_epoch": config.steps_per_epoch >= 0,
        "model.hidden_layers": config.model.hidden_layers >= 1,
        "model.neurons": config.model.neurons >= 1,
        "jitter.group_size": config.jitter.group_size >= 1,
    }
    for name, ok in checks.items():
        if not ok:
            raise XRFQuantError(f"training setting {name} is out of range")
    if config.loss not in ("mae", "nll", "beta-nll"):
        raise XRFQuantError(f"loss {config.loss!r}: use 'mae', 'nll' or 'beta-nll'")
    if config.schedule not in ("cosine", "onecycle", "constant"):
        raise XRFQuantError(f"schedule {config.schedule!r}: use 'cosine', 'onecycle' or 'constant'")
    if config.simulator not in ("physics", "peaks"):
        raise XRFQuantError(f"simulator {config.simulator!r}: use 'physics' or 'peaks'")
    if config.model.type not in ("mlp", "cnn"):
        raise XRFQuantError(f"model type {config.model.type!r}: use 'mlp' or 'cnn'")
    if config.input.scale not in ("sqrt", "linear"):
        raise XRFQuantError(f"input scale {config.input.scale!r}: use 'sqrt' or 'linear'")
    if not config.input.segments or any(len(s) != 3 for s in config.input.segments):
        raise XRFQuantError("input segments must be [start_keV, stop_keV, channels_per_bin]")
    edges = config.calibration_log10_counts_edges
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise XRFQuantError("calibration_log10_counts_edges must increase")
    if config.device not in ("auto", "cpu") and not config.device.startswith("cuda"):
        raise XRFQuantError(f"device {config.device!r}: use 'auto', 'cpu' or 'cuda'")


def load_config(path: str | os.PathLike[str]) -> TrainingConfig:
    """Read a :class:`TrainingConfig` from a TOML file.

    Raises
    ------
    XRFQuantError
        If the file is unreadable, not TOML, or holds unknown or impossible settings.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise XRFQuantError(f"{file}: cannot read training config ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise XRFQuantError(f"{file}: not a valid TOML file ({exc})") from None
    try:
        return TrainingConfig.from_dict(data, base_dir=file.resolve().parent)
    except XRFQuantError as exc:
        raise XRFQuantError(f"{file}: {exc}") from None


def config_to_toml(config: TrainingConfig) -> str:
    """TOML text that :func:`load_config` reads back to an equal config."""
    import tomli_w

    return tomli_w.dumps(config.to_dict())


def save_config(
    config: TrainingConfig, path: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Write ``config`` as TOML atomically.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_text(config_to_toml(config), encoding="utf-8")
    return target
