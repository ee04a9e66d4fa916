"""The model bundle: ``model.safetensors`` (weights) + ``model.json`` (everything else).

A bundle is a directory with two files. ``model.json`` holds the elements, the
energy grid, the instrument the model was trained for, the input transform, the
architecture, the uncertainty calibration, the training-set description and the
test metrics; ``model.safetensors`` holds the weights. Loading executes no code
from the files (safetensors + JSON), and every inconsistency between the two
raises :class:`~napari_xrfquant.errors.ModelBundleError` with a one-line message.

Examples
--------
>>> from napari_xrfquant.models import load_model
>>> model = load_model()                 # the bundled default
>>> model.elements
['Au', 'Ag', 'Cu', 'Ni', 'Zn']
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xrfquant._files import atomic_path
from napari_xrfquant.errors import ModelBundleError
from napari_xrfquant.instrument import Instrument
from napari_xrfquant.models.metadata import (
    BUNDLE_FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    UncertaintyCalibration,
    build_metadata,
    energy_dict,
    energy_grid_keV,
    validate_metadata,
)

__all__ = [
    "BUNDLED_DIR",
    "BUNDLE_FORMAT",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "WEIGHTS_FILE",
    "QuantModel",
    "UncertaintyCalibration",
    "build_metadata",
    "copy_bundle",
    "energy_dict",
    "energy_grid_keV",
    "list_bundled_models",
    "load_model",
    "model_from_network",
    "resolve_bundle_path",
    "save_bundle",
    "update_metadata",
    "validate_metadata",
]

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from napari_xrfquant.models.architectures import QuantNet

METADATA_FILE = "model.json"
#: The bundled default model lives directly in this directory.
BUNDLED_DIR = Path(__file__).with_name("bundled")



@dataclass
class QuantModel:
    """A loaded model: the network and what it needs to be applied correctly.

    Attributes
    ----------
    network
        The :class:`~napari_xrfquant.models.architectures.QuantNet`, in eval mode.
    metadata
        The ``model.json`` dictionary.
    path
        Bundle directory, or None for a model that was never saved.
    """

    network: QuantNet
    metadata: dict[str, Any]
    path: Path | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per model and ``key``; later calls return the same object.

        Companions of a model that are costly to make (its physics simulator on a
        device) live as long as the model and are shared by everyone using it.
        """
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @property
    def elements(self) -> list[str]:
        """Element symbols, in output order."""
        return list(self.metadata["elements"])

    @property
    def sum_to_100(self) -> bool:
        """Whether the predictions are closed to 100 wt%."""
        return bool(self.metadata["sum_to_100"])

    @property
    def energy_keV(self) -> np.ndarray:
        """Channel-centre energies of the model's grid (keV), shape ``(C,)``."""
        return energy_grid_keV(self.metadata["energy"])

    @property
    def instrument(self) -> Instrument:
        """The instrument the model was trained for."""
        if "instrument" not in self._cache:
            self._cache["instrument"] = Instrument.from_dict(self.metadata["instrument"])
        return self._cache["instrument"]

    @property
    def calibration(self) -> UncertaintyCalibration:
        """The sigma calibration (per count bin and element)."""
        if "calibration" not in self._cache:
            self._cache["calibration"] = UncertaintyCalibration.from_dict(
                self.metadata["uncertainty"], len(self.elements)
            )
        return self._cache["calibration"]

    @property
    def model_id(self) -> str:
        """Name plus the first 12 hex digits of the weights' SHA-256: names one exact model."""
        digest = str(self.metadata.get("weights", {}).get("sha256", ""))[:12]
        return f"{self.metadata['name']}@{digest}" if digest else str(self.metadata["name"])

    @property
    def input_energy_range_keV(self) -> tuple[float, float]:
        """Lower and upper energy edges (keV) of the channels the network reads."""
        energy = self.metadata["energy"]
        first, stop = self.network.input_spec.channel_range
        gain = float(energy["gain_keV"])
        offset = float(energy["offset_keV"])
        return offset + gain * (first - 0.5), offset + gain * (stop - 0.5)

    def predict_binned(
        self, binned: torch.Tensor, calibrated: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and 1-sigma (wt%) from binned counts ``(N, K)``; no autograd."""
        import torch

        with torch.inference_mode():
            mean, sigma = self.network.forward_binned(binned)
            if calibrated and self.calibration.scale is not None:
                log10_total = torch.log10(binned.sum(dim=1).clamp_min(1.0))
                factors = self.calibration.factors(log10_total.cpu().numpy(), mean.shape[1])
                sigma = sigma * torch.from_numpy(factors).to(sigma.device, sigma.dtype)
        return mean, sigma

    def predict(self, counts: Any, calibrated: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Mean and 1-sigma (wt%) for spectra ``(N, C)`` on the model's grid (numpy in/out).

        For cubes, other energy grids, chunking and fit quality use
        :func:`napari_xrfquant.quantify`.
        """
        import torch

        tensor = torch.as_tensor(np.asarray(counts, dtype=np.float32))
        if tensor.ndim != 2 or tensor.shape[1] != len(self.energy_keV):
            raise ModelBundleError(
                f"spectra of shape {tuple(tensor.shape)} do not fit model {self.model_id} "
                f"({len(self.energy_keV)} channels)"
            )
        device = next(self.network.parameters()).device
        binned = self.network.features.bin_counts(tensor.to(device))
        mean, sigma = self.predict_binned(binned, calibrated=calibrated)
        return mean.cpu().numpy(), sigma.cpu().numpy()


def save_bundle(
    directory: str | os.PathLike[str],
    network: QuantNet,
    metadata: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write ``network`` and ``metadata`` as a bundle directory.

    Both files are written to temporary names and renamed into place, weights
    first, so a reader never sees ``model.json`` pointing at half a weights file.

    Parameters
    ----------
    directory
        Bundle directory (created if needed).
    network
        The trained network (any device; saved as float32 on the CPU).
    metadata
        ``model.json`` content, e.g. from :func:`build_metadata`; the weights
        file name and checksum are filled in here.
    overwrite
        Replace an existing bundle in ``directory``.

    Returns
    -------
    Path
        The bundle directory.

    Raises
    ------
    FileExistsError
        If ``directory`` already holds a bundle and ``overwrite`` is False.
    """
    from safetensors.torch import save_file

    target = Path(directory)
    json_path = target / METADATA_FILE
    weights_path = target / WEIGHTS_FILE
    if not overwrite:
        for path in (json_path, weights_path):
            if path.exists():
                raise FileExistsError(f"{path}: exists; choose another directory or overwrite")
    state = {
        k: v.detach().to("cpu", dtype=v.dtype).contiguous() for k, v in network.state_dict().items()
    }
    meta = json.loads(json.dumps(metadata))  # a deep copy that must be JSON-serialisable
    with atomic_path(weights_path, overwrite=True) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "bundle": BUNDLE_FORMAT})
        digest = _sha256(tmp)
    meta["weights"] = {"file": WEIGHTS_FILE, "sha256": digest}
    meta["input"] = network.input_spec.to_dict()
    meta["architecture"] = network.architecture.to_dict()
    with atomic_path(json_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    _make_readable(weights_path, json_path)
    return target


def _make_readable(*paths: Path) -> None:
    """Give bundle files the usual 0644 mode (temporary files are created 0600)."""
    for path in paths:
        try:
            os.chmod(path, 0o644)
        except OSError:  # pragma: no cover - e.g. a filesystem without modes
            pass


def update_metadata(directory: str | os.PathLike[str], changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into the top level of a bundle's ``model.json`` (atomically).

    Used by evaluation scripts to store test metrics without touching the weights.
    """
    json_path = _bundle_json_path(Path(directory))
    meta = _read_json(json_path)
    meta.update(json.loads(json.dumps(changes)))
    with atomic_path(json_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    _make_readable(json_path)
    return meta


def copy_bundle(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Copy a bundle directory's two files to ``destination`` (atomically per file)."""
    src = _bundle_json_path(Path(source)).parent
    dst = Path(destination)
    for name in (WEIGHTS_FILE, METADATA_FILE):
        with atomic_path(dst / name, overwrite=overwrite) as tmp:
            shutil.copyfile(src / name, tmp)
    return dst


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundle_json_path(path: Path) -> Path:
    if path.is_dir():
        return path / METADATA_FILE
    return path


def _read_json(json_path: Path) -> dict[str, Any]:
    try:
        text = json_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelBundleError(
            f"{json_path}: no model bundle here ({METADATA_FILE} missing)"
        ) from None
    except OSError as exc:
        raise ModelBundleError(f"{json_path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelBundleError(f"{json_path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelBundleError(f"{json_path}: not a model description (expected a JSON object)")
    return data


def resolve_bundle_path(name_or_path: str | os.PathLike[str] | None) -> Path:
    """The ``model.json`` path for a bundle name, directory or file (None: bundled default).

    Raises
    ------
    ModelBundleError
        If nothing matches.
    """
    if name_or_path is None:
        return BUNDLED_DIR / METADATA_FILE
    path = Path(name_or_path)
    if path.exists():
        return _bundle_json_path(path)
    text = str(name_or_path)
    if os.sep not in text and "/" not in text and not text.endswith(".json"):
        candidate = BUNDLED_DIR / text / METADATA_FILE
        if candidate.exists():
            return candidate
        default = BUNDLED_DIR / METADATA_FILE
        if default.exists():
            try:
                if _read_json(default).get("name") == text:
                    return default
            except ModelBundleError:
                pass
        raise ModelBundleError(
            f"{text!r}: no such model (give a bundle directory or model.json; "
            f"bundled: {', '.join(list_bundled_models()) or 'none'})"
        )
    raise ModelBundleError(f"{path}: no model bundle here (path does not exist)")


def list_bundled_models() -> list[str]:
    """Names of the models shipped with the package."""
    names = []
    default = BUNDLED_DIR / METADATA_FILE
    if default.exists():
        try:
            names.append(str(_read_json(default).get("name", "default")))
        except ModelBundleError:
            pass
    if BUNDLED_DIR.is_dir():
        names += sorted(p.parent.name for p in BUNDLED_DIR.glob(f"*/{METADATA_FILE}"))
    return names


def load_model(
    name_or_path: str | os.PathLike[str] | QuantModel | None = None, device: str = "cpu"
) -> QuantModel:
    """Load a model bundle without executing code from it.

    Parameters
    ----------
    name_or_path
        None for the bundled default; a bundle directory; a ``model.json`` path;
        the name of a bundled model; or an already loaded :class:`QuantModel`
        (returned as it is).
    device
        Torch device for the network.

    Returns
    -------
    QuantModel
        With ``.elements``, ``.energy_keV``, ``.instrument``, ``.metadata``,
        ``.network`` (eval mode) and ``.model_id``.

    Raises
    ------
    ModelBundleError
        If the bundle is missing, corrupt, or its two files do not match.
    """
    if isinstance(name_or_path, QuantModel):
        return name_or_path
    json_path = resolve_bundle_path(name_or_path)
    where = str(json_path.parent)
    meta = _read_json(json_path)
    validate_metadata(meta, where)
    weights_name = str(meta["weights"].get("file", WEIGHTS_FILE))
    weights_path = json_path.parent / weights_name
    if not weights_path.is_file():
        raise ModelBundleError(f"{where}: weights file {weights_name} is missing")
    expected = str(meta["weights"].get("sha256", ""))
    if expected and _sha256(weights_path) != expected:
        raise ModelBundleError(
            f"{where}: {weights_name} does not match model.json (checksum differs); "
            "the bundle is corrupt or its files come from different models"
        )
    network = _network_from_files(meta, weights_path, where)
    network.to(device)
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return QuantModel(network=network, metadata=meta, path=json_path.parent)


def _network_from_files(meta: dict[str, Any], weights_path: Path, where: str) -> QuantNet:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from napari_xrfquant.models.architectures import build_network

    _check_against_weights(meta, weights_path, where)
    network = build_network(
        meta["input"], meta["architecture"], len(meta["elements"]), bool(meta["sum_to_100"])
    )
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelBundleError(f"{where}: cannot read {weights_path.name} ({exc})") from None
    network.load_state_dict({k: v.float() for k, v in state.items()})
    return network


def _check_against_weights(meta: dict[str, Any], weights_path: Path, where: str) -> None:
    """Refuse a ``model.json`` whose network does not fit the weights, before allocating it.

    The described network is built on torch's meta device (shapes, no memory)
    and compared with the shapes in the weights file's header (read without
    its tensors): a description of 2e9 neurons is refused in one line instead
    of asking for terabytes.
    """
    import torch
    from safetensors import SafetensorError, safe_open

    from napari_xrfquant.models.architectures import build_network

    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            stored = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelBundleError(f"{where}: cannot read {weights_path.name} ({exc})") from None
    try:
        with torch.device("meta"):
            described = build_network(meta["input"], meta["architecture"],
                                      len(meta["elements"]), bool(meta["sum_to_100"]))
    except (RuntimeError, ValueError, OverflowError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelBundleError(
            f"{where}: model.json describes a network that cannot be built ({reason})") from None
    expected = {key: tuple(value.shape) for key, value in described.state_dict().items()}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelBundleError(
            f"{where}: weights do not fit the architecture in model.json ({detail})")
    for key, shape in expected.items():
        if stored[key] != shape:
            raise ModelBundleError(
                f"{where}: weights do not fit the architecture in model.json ({key} has shape "
                f"{stored[key]}, model.json describes {shape})")


def model_from_network(
    network: QuantNet, metadata: dict[str, Any], path: Path | None = None
) -> QuantModel:
    """Wrap an in-memory network (e.g. straight after training) as a :class:`QuantModel`."""
    network.eval()
    return QuantModel(network=network, metadata=metadata, path=path)
