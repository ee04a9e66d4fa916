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

import itertools
import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from napari_xrfquant._files import atomic_path
from napari_xrfquant._schema import Schema, one_line
from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.instrument_parameters import DEFAULT_FREE, expand_free
from napari_xrfquant.models.description import ModelConfig

#: Default input bins for a 0.035 keV/channel grid: 2 channels (70 eV, under half
#: the detector FWHM) where the Au L / Cu, Ni, Zn K overlaps are, coarser where
#: only smooth continuum or the broad Ag K and scatter peaks are.
DEFAULT_INPUT_SEGMENTS: tuple[tuple[float, float, int], ...] = (
    (1.2, 14.5, 2),
    (14.5, 20.5, 8),
    (20.5, 26.0, 3),
    (26.0, 31.5, 4),
)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class JitterConfig(Schema):
    """Instrument variation drawn per group of simulated spectra (uniform in +-range)."""

    gain_rel: NonNegative = Field(0.002, description="relative gain")
    offset_keV: NonNegative = Field(0.010, description="absolute offset (keV)")
    noise_rel: NonNegative = Field(0.10, description="electronic noise, relative")
    fano_rel: NonNegative = Field(0.05, description="Fano factor, relative")
    continuum_level_log10: NonNegative = Field(
        0.3, description="continuum fraction multiplied by 10**u, u uniform in +-range"
    )
    continuum_power: NonNegative = Field(0.3, description="continuum power, absolute")
    continuum_decay_rel: NonNegative = Field(0.2, description="continuum decay, relative")
    tail_rel: NonNegative = Field(0.3, description="tail and shelf fractions, relative")
    group_size: int = Field(256, ge=1, description="spectra sharing one draw")


class AugmentConfig(Schema):
    """The published augmentations, applied to training spectra only.

    A random smooth polynomial background (a non-negative Bernstein polynomial
    of the given degree) holding up to ``background_max_fraction`` of the counts;
    a random shift by up to +-``shift_channels``; a Gaussian blur with a standard
    deviation uniform in ``[0, blur_max_channels]``.
    """

    background_probability: Probability = 0.5
    background_max_fraction: Probability = 0.1
    background_degree: int = Field(3, ge=0, le=10)
    shift_probability: Probability = 0.5
    shift_channels: NonNegative = 2.0
    blur_probability: Probability = 0.5
    blur_max_channels: NonNegative = 3.0


class InputConfig(Schema):
    """Input transform: energy segments ``[start_keV, stop_keV, channels_per_bin]``, and
    ranges left out (their bins read as 0)."""

    segments: list[tuple[float, float, Annotated[int, Field(ge=1)]]] = Field(
        default_factory=lambda: list(DEFAULT_INPUT_SEGMENTS), min_length=1
    )
    scale: Literal["sqrt", "linear"] = "sqrt"
    exclude_keV: list[tuple[float, float]] = Field(
        default_factory=list,
        description="energy ranges the network does not read (lines of the set-up itself)",
    )


#: Instrument parameters AXS learns by default: the calibration's, but the
#: continuum amount, which AXS profiles per spectrum, and the scatter scale.
AXS_DEFAULT_LEARN = tuple(
    name for name in DEFAULT_FREE if name not in ("continuum_fraction", "scatter_scale"))


class AXSConfig(Schema):
    """Analysis by synthesis: a reconstruction loss on unlabelled measured spectra.

    See :mod:`napari_xrfquant.training.axs`.
    """

    unlabelled: str = Field(
        min_length=1, description="cube of unlabelled measured spectra (relative to the config)"
    )
    beta: NonNegative = Field(1.0, description="weight of the reconstruction loss")
    learn: list[str] = Field(
        default_factory=lambda: list(AXS_DEFAULT_LEARN),
        description="instrument parameters the decoder learns",
    )
    n_spectra: int = Field(20_000, ge=1, description="unlabelled pixels used")
    min_counts: NonNegative = Field(1000.0, description="pixels with fewer counts are skipped")
    batch_size: int = Field(128, ge=1, le=100_000, description="unlabelled spectra per step")
    instrument_lr: float = Field(0.05, gt=0.0, le=10.0, description="Adam step of the instrument")
    exclude_keV: list[tuple[float, float]] = Field(
        default_factory=list, description="energy ranges left out of the reconstruction"
    )
    labels: str | None = Field(
        None, description="label image of the unlabelled cube marking standards (TIFF or .npy)"
    )
    standards: dict[str, str] = Field(
        default_factory=dict,
        description="label -> library standard or composition ('Au=75,Ag=12.5,Cu=12.5')",
    )
    follow: Probability = Field(
        0.5,
        description="share of the simulated training spectra re-simulated each epoch with "
        "the instrument learned so far (validation and test sets: all); 0: off",
    )

    @model_validator(mode="after")
    def _known(self) -> AXSConfig:
        try:
            expand_free(self.learn)
        except XRFQuantError as error:
            raise ValueError(str(error)) from None
        if any(not low < high for low, high in self.exclude_keV):
            raise ValueError("every excluded range needs low < high")
        if self.standards and self.labels is None:
            raise ValueError("standards need the label image that marks them (labels)")
        if any(not key.isdigit() or int(key) < 1 for key in self.standards):
            raise ValueError("standards are keyed by their label, a whole number >= 1")
        return self


class TrainingConfig(Schema):
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
    training_set
        A training-set file (:mod:`napari_xrfquant.io.spectra`, noise-free, e.g.
        from ``xrfquant simulate --noiseless``) to train on instead of simulating;
        its elements and energy axis must match. Relative to the config file.
    init_from
        A model bundle whose network (weights and input transform) starts the
        training instead of random weights: fine-tuning, e.g. on a calibrated
        instrument. Its elements must be ``elements``. Relative to the config file.
    axs
        Analysis-by-synthesis settings (:class:`AXSConfig`): a reconstruction
        loss on unlabelled measured spectra through the simulator, whose
        instrument is learned too; None for supervised training only.
    max_minutes
        Wall-time budget of the whole run, the training set's simulation included
        (:mod:`.budget`: it may take 40 % and is cut short, never below 500
        spectra; an epoch starts only if one more fits); the best model so far
        is kept when it runs out (None: no limit).
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
        Adam optimiser settings; training stops after ``patience`` epochs without
        a better validation MAE.
    steps_per_epoch
        Optimiser steps per epoch; 0 means one pass over the training compositions.
    seed
        Root of every random stream (compositions, splits, noise, weights), which
        are spawned from it (:class:`numpy.random.SeedSequence`).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
    cache
        Training-set file caching the simulated (noise-free) spectra, in the same
        format as ``training_set``; None for no cache.
    simulator
        ``"physics"`` (the fundamental-parameter simulator), ``"generator"`` (the
        spectrum-generator network in ``generator``, trained on the simulator:
        :mod:`~napari_xrfquant.training.generator`; it has no instrument jitter)
        or ``"peaks"`` (Gaussian lines without matrix effects: only for smoke
        tests of the pipeline).
    generator
        With ``simulator = "generator"``: the folder of a saved generator.
    calibration_log10_counts_edges
        Count bins in which the sigma calibration is fitted.
    eval_counts
        Count levels of the test metrics (plus the noise-free case).
    """

    name: str = Field("custom-model", min_length=1)
    elements: list[str] = Field(
        default_factory=lambda: ["Au", "Ag", "Cu", "Ni", "Zn"], min_length=1
    )
    sum_to_100: bool = True
    instrument: str | None = None
    n_spectra: int = Field(50_000, ge=20, description="data set size")
    training_set: str | None = None
    init_from: str | None = None
    max_minutes: float | None = Field(None, gt=0.0)
    axs: AXSConfig | None = None
    refresh_fraction: Probability = 0.0
    counts_min: float = Field(3e2, gt=0.0, allow_inf_nan=False, description="minimum counts")
    counts_max: float = Field(1e6, gt=0.0, allow_inf_nan=False, description="maximum counts")
    noiseless_fraction: Probability = 0.05
    absent_probability: float = Field(0.3, ge=0.0, lt=1.0)
    loss: Literal["mae", "nll", "beta-nll"] = "mae"
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="learning rate")
    weight_decay: NonNegative = 0.0
    batch_size: int = Field(256, ge=1, le=1_000_000, description="batch size")
    epochs: int = Field(100, ge=1, le=100_000)
    patience: int = Field(10, ge=1)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    steps_per_epoch: int = Field(0, ge=0)
    seed: int = Field(0, ge=0)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    cache: str | None = None
    simulator: Literal["physics", "generator", "peaks"] = "physics"
    generator: str | None = None
    calibration_log10_counts_edges: list[float] = Field(
        default_factory=lambda: [2.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 9.0], min_length=2
    )
    eval_counts: list[Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=lambda: [1e3, 1e4, 1e5]
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    jitter: JitterConfig = Field(default_factory=JitterConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    #: Directory the config was read from (resolves relative paths); not saved.
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        if len(set(self.elements)) != len(self.elements):
            raise ValueError("elements must be distinct")
        if self.counts_min > self.counts_max:
            raise ValueError(
                f"counts range {self.counts_min:g}-{self.counts_max:g}: "
                "need counts_min <= counts_max"
            )
        edges = self.calibration_log10_counts_edges
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("calibration_log10_counts_edges must increase")
        if not all(math.isfinite(e) for e in edges):
            raise ValueError("calibration_log10_counts_edges must be finite")
        if self.simulator == "generator" and not self.generator:
            raise ValueError('simulator = "generator" needs the generator folder (generator)')
        return self

    def __eq__(self, other: object) -> bool:
        # the directory a config was read from is where it lives, not what it says
        if not isinstance(other, TrainingConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  # mutable

    @property
    def base_dir(self) -> Path | None:
        """Directory relative paths (instrument, training set, cache) start from."""
        return self._base_dir

    # -- conversions --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (no None values, as TOML has no null)."""
        data = self.model_dump(mode="python", exclude_none=True)
        data["input"]["segments"] = [list(s) for s in data["input"]["segments"]]
        return data

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base_dir: Path | None = None, where: str = ""
    ) -> TrainingConfig:
        """Build a validated config from plain data; problems raise one-line errors.

        Raises
        ------
        XRFQuantError
            Naming ``where`` and the first unknown, missing or out-of-range setting.
        """
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise XRFQuantError(one_line(exc, where)) from None
        config._base_dir = base_dir
        return config

    def replace(self, **changes: Any) -> TrainingConfig:
        """A validated copy with some top-level fields changed (``base_dir=`` too)."""
        base_dir = changes.pop("base_dir", self._base_dir)
        data = {**self.model_dump(mode="python"), **changes}
        for key in ("model", "input", "jitter", "augment", "axs"):
            if isinstance(data.get(key), Schema):
                data[key] = data[key].model_dump(mode="python")
        return TrainingConfig.from_dict(data, base_dir=base_dir)

    def resolve(self, value: str | None) -> Path | None:
        """A path setting resolved against the config's directory."""
        if value is None:
            return None
        path = Path(value)
        if not path.is_absolute() and self._base_dir is not None:
            path = self._base_dir / path
        return path

    def instrument_path(self) -> Path | None:
        """The instrument file, resolved against the config's directory."""
        return self.resolve(self.instrument)

    def load_instrument(self) -> Any:
        """The :class:`~napari_xrfquant.instrument.Instrument` this config trains for."""
        from napari_xrfquant.instrument import load_instrument

        return load_instrument(self.instrument_path())


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
    return TrainingConfig.from_dict(data, base_dir=file.resolve().parent, where=str(file))


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
