"""The GPU paths equal the CPU ones (skipped where torch sees no CUDA device).

CI has no GPU; ``benchmarks/gpu_check.sh`` runs these on a machine that has one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_xrfquant as xq

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

ELEMENTS = ["Au", "Ag", "Cu", "Ni", "Zn"]


@pytest.fixture(scope="module")
def cube():
    wt = np.array([[58.56, 3.90, 35.65, 0.0, 1.891], [75.12, 24.90, 0.0, 0.0, 0.0]] * 50)
    return xq.simulate(wt, ELEMENTS, counts=2e4, seed=1).reshape(10, 10, -1).astype(np.uint16)


def test_quantify_on_cuda_equals_cpu(cube):
    cpu = xq.quantify(cube, device="cpu")
    gpu = xq.quantify(cube, device="cuda")
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.concentrations, cpu.concentrations, atol=2e-3)
    np.testing.assert_allclose(gpu.uncertainty, cpu.uncertainty, rtol=1e-3)
    np.testing.assert_allclose(gpu.fit_quality, cpu.fit_quality, rtol=1e-3)


def test_simulator_on_cuda_equals_cpu():
    from napari_xrfquant.physics import XRFSimulator

    fractions = torch.tensor([[0.5856, 0.039, 0.3565, 0.0, 0.01891]])
    cpu = XRFSimulator(ELEMENTS, device="cpu")(fractions)
    gpu = XRFSimulator(ELEMENTS, device="cuda")(fractions.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-9)


def test_refine_on_cuda_equals_cpu(cube):
    cpu = xq.quantify(cube[:2, :2], device="cpu", refine=3)
    gpu = xq.quantify(cube[:2, :2], device="cuda", refine=3)
    np.testing.assert_allclose(gpu.concentrations, cpu.concentrations, atol=0.05)


def test_the_physics_quantification_on_cuda_equals_cpu(cube):
    """Quantify without a network (the amounts' fits on the GPU, the tables on the CPU)."""
    from napari_xrfquant.inference.physics_quantify import quantify_physics
    from napari_xrfquant.instrument import reference_instrument

    setup = reference_instrument()
    energy = setup.energy_axis_keV()
    cpu, _ = quantify_physics(cube, energy, ELEMENTS, setup, device="cpu")
    gpu, _ = quantify_physics(cube, energy, ELEMENTS, setup, device="cuda")
    assert gpu.device.startswith("cuda") and cpu.device == "cpu"
    np.testing.assert_allclose(gpu.concentrations, cpu.concentrations, atol=0.02)
    np.testing.assert_allclose(gpu.fit_quality, cpu.fit_quality, rtol=1e-3)
