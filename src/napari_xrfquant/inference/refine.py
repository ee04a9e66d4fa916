"""Physics refinement at quantify time: the network's answer as the start of a fit.

Each spectrum ``x`` is fitted by Poisson maximum likelihood with the simulator
of a (calibrated) instrument: expected counts ``a_p p(w) + a_c c`` with the
composition ``w = softmax(z)`` on the simplex, the peak spectrum ``p`` and the
continuum ``c`` (each summing to 1), and their amounts ``a_p, a_c`` profiled
out in closed form (:func:`profile_amounts`). Steps are batched Fisher scoring
(Gauss-Newton for Poisson counts): the Jacobian of ``p`` in ``z`` by forward
differences (one simulation per element for the whole batch), the Fisher
information ``J^T diag(1/lambda) J`` as the Hessian, a step halved for the
spectra whose deviance it does not lower. The 1-sigma of the wt% comes from the
inverse Fisher information at the end, the fit quality from the deviance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_xrfquant.errors import XRFQuantError
from napari_xrfquant.inference.fit_quality import poisson_deviance

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from napari_xrfquant.instrument import Instrument
    from napari_xrfquant.models.bundle import QuantModel

#: EM iterations that profile the peak and continuum amounts of each spectrum.
AMOUNT_STEPS = 12
#: Step in the composition logits of the forward-difference Jacobian.
JACOBIAN_STEP = 3e-3
#: Spectra refined at once (the Jacobian holds spectra x channels x (elements + 2)).
REFINE_BATCH = 2048
#: Halvings tried for a step that raises a spectrum's deviance.
HALVINGS = 4
#: Floor of a start fraction taken from the network (log of 0 is no start).
MIN_START_FRACTION = 1e-4


def profile_amounts(
    observed: torch.Tensor, peaks: torch.Tensor, continuum: torch.Tensor, steps: int = AMOUNT_STEPS
) -> torch.Tensor:
    """Poisson ML amounts ``(N, 2)`` of ``peaks`` ``(N, K)`` and ``continuum`` ``(K,)``.

    EM for a mixture of fixed shapes (the multiplicative update of non-negative
    Poisson regression): amounts stay non-negative and the fitted total equals
    the observed total after every step.
    """
    import torch

    with torch.no_grad():
        peak_norm = peaks.sum(dim=1).clamp_min(1e-30)
        continuum_norm = continuum.sum().clamp_min(1e-30)
        total = observed.sum(dim=1)
        a_peaks, a_continuum = 0.9 * total / peak_norm, 0.1 * total / continuum_norm
        for _ in range(steps):
            ratio = observed / (
                a_peaks[:, None] * peaks + a_continuum[:, None] * continuum
            ).clamp_min(1e-30)
            a_peaks = a_peaks * (ratio * peaks).sum(dim=1) / peak_norm
            a_continuum = a_continuum * (ratio @ continuum) / continuum_norm
        amounts = torch.stack([a_peaks, a_continuum], dim=1)
    return amounts


class Refiner:
    """Batched Poisson refinement of compositions with one instrument's simulator.

    Parameters
    ----------
    model
        The model whose elements are fitted (its instrument unless ``instrument``).
    energy_keV
        The data's stated channel energies (None: the model's grid).
    n_channels
        Channels of the data.
    device
        Torch device.
    instrument
        A calibrated instrument to fit with instead of the model's. Its channels
        are the data's channels (channel k is channel k: the instrument holds the
        true calibration of the axis the file states), so their counts must match.

    Raises
    ------
    XRFQuantError
        For a model whose elements need not make up the sample, or an
        instrument with another channel count than the data.
    """

    def __init__(
        self,
        model: QuantModel,
        energy_keV: np.ndarray | None,
        n_channels: int,
        device: str,
        instrument: Instrument | None = None,
    ) -> None:
        import torch

        from napari_xrfquant.inference.fit_quality import fit_channels
        from napari_xrfquant.inference.resample import Resampler, same_grid
        from napari_xrfquant.physics import XRFSimulator

        if not model.sum_to_100:
            raise XRFQuantError(
                "refinement fits the whole sample: it needs a model whose elements sum to 100 wt%"
            )
        self.resampler: Resampler | None = None
        if instrument is None:
            instrument = model.instrument
            grid = model.energy_keV
            if energy_keV is not None and not same_grid(np.asarray(energy_keV), grid):
                from napari_xrfquant.inference.resample import channel_edges_keV

                self.resampler = Resampler(np.asarray(energy_keV), channel_edges_keV(grid))
                n_channels = grid.size
        if instrument.detector.n_channels != n_channels:
            raise XRFQuantError(
                f"the refinement instrument has {instrument.detector.n_channels} channels, "
                f"the data {n_channels}"
            )
        self.simulator = XRFSimulator(
            list(model.elements), instrument=instrument, device=device, dtype=torch.float32
        )
        self.simulator.eval()
        fit = fit_channels(instrument.energy_axis_keV(), instrument.max_beam_energy_keV)
        spec = model.network.input_spec
        for b in spec.excluded_bins:  # what the network does not read, the fit does not either
            fit[spec.bin_edges_channel[b] : spec.bin_edges_channel[b + 1]] = False
        self.fit = torch.as_tensor(fit, device=device)
        with torch.no_grad():
            self.continuum = self.simulator.continuum()[self.fit]
        self.n_elements = len(model.elements)
        self.device = device

    # -- one batch --------------------------------------------------------------
    def _peaks(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        return self.simulator(torch.softmax(logits, dim=1), {"continuum_fraction": 0.0})[
            :, self.fit
        ]

    def _expected(
        self, observed: torch.Tensor, peaks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        amounts = profile_amounts(observed, peaks, self.continuum)
        return amounts, amounts[:, :1] * peaks + amounts[:, 1:] * self.continuum

    def _fisher(
        self, observed: torch.Tensor, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fisher information ``(N, E+1, E+1)``, score ``(N, E+1)`` and deviance ``(N,)``.

        The parameters are the first ``E - 1`` logits (the last stays 0, so the
        composition has its ``E - 1`` degrees of freedom) and the two amounts.
        """
        import torch

        peaks = self._peaks(logits)
        amounts, expected = self._expected(observed, peaks)
        columns = []
        for e in range(self.n_elements - 1):  # the last logit stays 0 (E - 1 free)
            shifted = logits.clone()
            shifted[:, e] += JACOBIAN_STEP
            columns.append(amounts[:, :1] * (self._peaks(shifted) - peaks) / JACOBIAN_STEP)
        columns += [peaks, self.continuum.expand_as(peaks)]
        # float64: the information of a well-measured composition is a sum of a
        # few hundred terms whose float32 rounding visibly shrinks its sigma
        jac = torch.stack(columns, dim=2).double()  # (N, K, E+1)
        lam = expected.double().clamp_min(1e-12)
        fisher = jac.transpose(1, 2) @ (jac / lam[:, :, None])
        score = (jac.transpose(1, 2) @ (observed.double() / lam - 1.0)[:, :, None])[:, :, 0]
        return fisher, score, poisson_deviance(observed, expected)

    def _deviance_at(self, observed: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return poisson_deviance(observed, self._expected(observed, self._peaks(logits))[1])

    def refine_batch(
        self, counts: torch.Tensor, start_wt_percent: torch.Tensor, steps: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Refined wt%, 1-sigma wt% and fit quality of ``counts`` ``(N, C)`` (float32)."""
        import torch

        from napari_xrfquant.inference.fit_quality import poisson_fit_quality

        observed = counts[:, self.fit]
        fractions = (start_wt_percent / 100.0).clamp(MIN_START_FRACTION, 1.0)
        logits = torch.log(fractions / fractions[:, -1:])  # the last logit is 0
        for _ in range(steps):
            fisher, score, current = self._fisher(observed, logits)
            free = (torch.linalg.pinv(fisher, hermitian=True) @ score[:, :, None])[:, :, 0]
            step = torch.zeros_like(logits)
            step[:, :-1] = free[:, : self.n_elements - 1].float()
            accepted = torch.zeros_like(current, dtype=torch.bool)
            moved = logits
            for _halving in range(HALVINGS):
                candidate = logits + step
                # a spectrum keeps the first (largest) step that lowers its deviance
                better = (self._deviance_at(observed, candidate) <= current) & ~accepted
                moved = torch.where(better[:, None], candidate, moved)
                accepted |= better
                if bool(accepted.all()):
                    break
                step = step / 2
            logits = moved
        fisher, _score, _current = self._fisher(observed, logits)
        n = self.n_elements - 1
        covariance = torch.linalg.pinv(fisher, hermitian=True)[:, :n, :n]
        w = torch.softmax(logits.double(), dim=1)
        # d w / d z = diag(w) - w w^T (its columns of the free logits) carries the
        # logits' covariance to the fractions
        dw = (torch.diag_embed(w) - w[:, :, None] * w[:, None, :])[:, :, :n]
        cov_w = dw @ covariance @ dw.transpose(1, 2)
        sigma = 100.0 * torch.sqrt(torch.diagonal(cov_w, dim1=1, dim2=2).clamp_min(0.0))
        _amounts, expected = self._expected(observed, self._peaks(logits))
        quality = poisson_fit_quality(observed, expected, self.n_elements + 1)
        return (100.0 * w).float(), sigma.float(), quality.float()

    def refine(
        self, counts: np.ndarray, start_wt_percent: np.ndarray, steps: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`refine_batch` over ``(N, C)`` raw counts in blocks of REFINE_BATCH."""
        import torch

        outputs: list[list[np.ndarray]] = [[], [], []]
        with torch.no_grad():
            for start in range(0, counts.shape[0], REFINE_BATCH):
                block = np.asarray(counts[start : start + REFINE_BATCH], dtype=np.float64)
                if self.resampler is not None:
                    block = self.resampler.numpy(block)
                tensor = torch.as_tensor(block, dtype=torch.float32, device=self.device)
                wt = torch.as_tensor(
                    start_wt_percent[start : start + REFINE_BATCH], device=self.device
                ).float()
                for out, value in zip(outputs, self.refine_batch(tensor, wt, steps), strict=True):
                    out.append(value.cpu().numpy())
        return tuple(np.concatenate(out) for out in outputs)  # type: ignore[return-value]
