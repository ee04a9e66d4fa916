"""Small files the napari tests share: a tiny CXC cube in every format, a tiny model.

These are plain helper functions (each test file wraps them in its own
fixtures); they use only the core's public writers, so the napari tests read
what the core really writes. The real sample cube and bundled model are used
where they exist (:func:`sample_path`, :func:`bundled_model_exists`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: The reference instrument's calibration (reference.toml): E = 0.0 + 0.035 keV * k.
REF_GAIN_KEV = 0.035
REF_OFFSET_KEV = 0.0
N_CHANNELS = 1024
ROWS, COLS = 6, 8
REGION_NAMES = ("background", "left alloy", "right alloy")
ELEMENTS = ("Au", "Ag", "Cu", "Ni", "Zn")

REPO = Path(__file__).resolve().parents[1]


def tiny_counts(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts ``(6, 8, 1024)`` uint16, energy axis (keV) and region labels ``(6, 8)``.

    Cu K-alpha (8.05 keV) and Au L-alpha (9.71 keV) Gaussian lines whose
    strengths differ between the left and right halves, on a flat background;
    about 2000 counts per pixel.
    """
    rng = np.random.default_rng(seed)
    energy_keV = REF_OFFSET_KEV + REF_GAIN_KEV * np.arange(N_CHANNELS, dtype=np.float64)
    lines_keV = np.array([8.05, 9.71])
    shapes = np.exp(-0.5 * ((energy_keV[None, :] - lines_keV[:, None]) / 0.07) ** 2)
    regions = np.ones((ROWS, COLS), dtype=np.uint8)
    regions[:, COLS // 2 :] = 2
    amplitude = np.where(regions[..., None] == 1, [[60.0, 20.0]], [[15.0, 70.0]])
    expected = 0.5 + amplitude @ shapes
    return rng.poisson(expected).astype(np.uint16), energy_keV, regions


def write_tiny_cxc(path: Path) -> Path:
    """The tiny cube as a CXC HDF5 file with truth regions."""
    from napari_xrfquant.io import write_cxc_hdf5

    counts, energy_keV, regions = tiny_counts()
    truth = np.zeros((ROWS, COLS, len(ELEMENTS)), dtype=np.float32)
    truth[..., 0] = np.where(regions == 1, 40.0, 80.0)
    truth[..., 2] = 100.0 - truth[..., 0]
    return write_cxc_hdf5(
        path,
        counts,
        energy_keV,
        metadata={"pixel_size_um": 48.0},
        truth_wt_percent=truth,
        truth_elements=list(ELEMENTS),
        regions=regions,
        region_names=list(REGION_NAMES),
    )


def write_tiny_nexus(path: Path) -> Path:
    """The tiny cube as NeXus NXdata: signal ``(C, H, W)`` with an energy axis in eV."""
    import h5py

    counts, energy_keV, _ = tiny_counts()
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "counts"
        data.attrs["axes"] = ["energy", "y", "x"]
        data.create_dataset("counts", data=np.moveaxis(counts, -1, 0))
        energy = data.create_dataset("energy", data=energy_keV * 1000.0)
        energy.attrs["units"] = "eV"
    return path


def write_tiny_generic_h5(path: Path) -> Path:
    """The tiny cube as a bare ``(H, W, C)`` dataset with a sidecar calibration."""
    import h5py

    counts, _, _ = tiny_counts()
    with h5py.File(path, "w") as f:
        f.create_dataset("measurement/cube", data=counts)
    sidecar = path.with_name(path.stem + ".calib.json")
    sidecar.write_text(json.dumps({"offset_keV": REF_OFFSET_KEV, "gain_keV": REF_GAIN_KEV}))
    return path


def write_tiny_tiff(path: Path) -> Path:
    """The tiny cube as a TIFF stack ``(C, H, W)`` (ImageJ order), sidecar calibration."""
    import tifffile

    counts, _, _ = tiny_counts()
    tifffile.imwrite(path, np.moveaxis(counts, -1, 0))
    sidecar = path.with_name(path.stem + ".calib.json")
    sidecar.write_text(json.dumps({"offset_keV": REF_OFFSET_KEV, "gain_keV": REF_GAIN_KEV}))
    return path


def write_tiny_npy(path: Path) -> Path:
    """The tiny cube as ``(H, W, C)`` ``.npy`` with a sidecar calibration."""
    counts, _, _ = tiny_counts()
    np.save(path, counts)
    sidecar = path.with_name(path.stem + ".calib.json")
    sidecar.write_text(json.dumps({"offset_keV": REF_OFFSET_KEV, "gain_keV": REF_GAIN_KEV}))
    return path


def write_tiny_model(directory: Path) -> Path:
    """An untrained (random-weight) model bundle for the reference instrument.

    Its predictions mean nothing, but it has the real bundle format, the five
    elements and a recorded test MAE, so the widgets' plumbing can be tested
    before the trained bundled model exists.
    """
    import torch

    from napari_xrfquant.instrument import load_instrument
    from napari_xrfquant.models.architectures import (
        InputSpec,
        build_network,
        make_bin_edges,
    )
    from napari_xrfquant.models.bundle import build_metadata, save_bundle
    from napari_xrfquant.models.description import ModelConfig

    torch.manual_seed(0)
    instrument = load_instrument()
    energy_keV = REF_OFFSET_KEV + REF_GAIN_KEV * np.arange(N_CHANNELS)
    spec = InputSpec(bin_edges_channel=make_bin_edges(energy_keV, [(1.2, 31.0, 16)]))
    network = build_network(spec, ModelConfig(type="mlp", hidden_layers=1, neurons=8),
                            len(ELEMENTS), True)
    metadata = build_metadata(
        name="tiny-untrained",
        elements=list(ELEMENTS),
        sum_to_100=True,
        instrument=instrument,
        network=network,
        metrics={"test_mae_wt_percent": 12.5},
    )
    return save_bundle(directory, network, metadata)


def bundled_model_exists() -> bool:
    """Whether the trained default model has been shipped in the package."""
    from napari_xrfquant.models.bundle import BUNDLED_DIR

    return (BUNDLED_DIR / "model.json").is_file() or any(BUNDLED_DIR.glob("*/model.json"))


def sample_path() -> Path:
    """The simulated sample cube (made on first use, cached for the test session)."""
    from napari_xrfquant.sample import sample_cube_path

    return sample_cube_path()


def result_layer(viewer, element=None, kind="concentration"):
    """The one result layer of ``kind`` for ``element`` (layer names carry the model)."""
    found = [layer for layer in viewer.layers
             if layer.metadata.get("kind") == kind and not layer.metadata.get("live")
             and (element is None or layer.metadata.get("element") == element)]
    assert len(found) == 1, [layer.name for layer in found]
    return found[0]
