"""Gradients of the simulator: torch.autograd.gradcheck in float64."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from napari_xrfquant.physics import XRFSimulator  # noqa: E402

ELEMENTS = ["Au", "Ag", "Cu", "Zn"]


@pytest.fixture(scope="module")
def sim():
    return XRFSimulator(ELEMENTS, dtype=torch.float64)


@pytest.fixture(scope="module")
def projection():
    # a few random projections of the 1024 channels keep gradcheck cheap
    # (one backward pass per output) while every channel still contributes
    generator = torch.Generator().manual_seed(0)
    return torch.randn(1024, 4, dtype=torch.float64, generator=generator)


@pytest.mark.slow
def test_gradcheck_compositions(sim, projection):
    w = torch.tensor(
        [[0.58, 0.04, 0.36, 0.02], [0.75, 0.25, 0.0, 0.0]], dtype=torch.float64, requires_grad=True
    )

    def f(fractions):
        return sim(fractions) @ projection

    assert torch.autograd.gradcheck(f, (w,), eps=1e-7, atol=1e-7, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "names",
    [
        ("gain_keV", "offset_keV"),
        ("noise_keV", "fano"),
        ("tail_fraction", "tail_slope_keV", "shelf_fraction"),
        ("continuum_fraction", "continuum_power", "continuum_decay_keV"),
    ],
)
def test_gradcheck_instrument_parameters(sim, projection, names):
    w = torch.tensor([[0.58, 0.04, 0.36, 0.02]], dtype=torch.float64)
    start = [getattr(sim, n).detach().clone().requires_grad_(True) for n in names]

    def f(*values):
        overrides = dict(zip(names, values, strict=True))
        return sim(w, instrument_overrides=overrides) @ projection

    assert torch.autograd.gradcheck(f, tuple(start), eps=1e-8, atol=1e-7, rtol=1e-4)


def test_parameters_reached_by_autograd():
    """The module's own parameters (not only overrides) take part in autograd."""
    sim = XRFSimulator(["Au", "Cu"], dtype=torch.float64)
    for name in ("gain_keV", "offset_keV", "noise_keV", "fano", "continuum_fraction"):
        getattr(sim, name).requires_grad_(True)
    spectrum = sim(torch.tensor([[0.6, 0.4]], dtype=torch.float64))
    # a spectrum summing to 1 has zero gradient of its sum; use one channel
    spectrum[0, 230].backward()
    for name in ("gain_keV", "offset_keV", "noise_keV", "fano", "continuum_fraction"):
        grad = getattr(sim, name).grad
        assert grad is not None and torch.isfinite(grad) and grad != 0, name


def test_response_cache_tracks_parameter_values():
    sim = XRFSimulator(["Cu"], dtype=torch.float64)
    first = sim.response_matrix()
    assert sim.response_matrix() is first  # cached
    with torch.no_grad():
        sim.noise_keV.fill_(0.15)
    wider = sim.response_matrix()
    assert wider is not first and not torch.allclose(wider, first)


@pytest.mark.slow
def test_gradcheck_layer_compositions(projection):
    """The finite-layer secondary formula (exp * E1 series) is differentiable too."""
    sim = XRFSimulator(
        ["Au", "Cu"], dtype=torch.float64, layer_thickness_cm=3e-4, layer_density_g_cm3=15.0
    )
    w = torch.tensor([[0.6, 0.4]], dtype=torch.float64, requires_grad=True)

    def f(fractions):
        return sim(fractions) @ projection

    assert torch.autograd.gradcheck(f, (w,), eps=1e-7, atol=1e-7, rtol=1e-4)
