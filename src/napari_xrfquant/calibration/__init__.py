"""Learn the user's instrument from their own data, then retrain on it (napari-free).

It sits above :mod:`napari_xrfquant.training`: the calibrate-then-retrain workflow.
What it builds on lives lower down: the parameter space of an instrument in
:mod:`napari_xrfquant.instrument_parameters`, the standards in
:mod:`napari_xrfquant.physics.standards`, the fitted channels in
:mod:`napari_xrfquant.inference.fit_quality`.

- :mod:`.groups`: pixels grouped into standards and k-means clusters;
- :mod:`.fit`: :func:`calibrate`, the Poisson maximum-likelihood fit of the
  instrument with 1-sigma from the Fisher information (:mod:`.fisher`);
- :mod:`.result`: what it found, and ``calibration.json``;
- :mod:`.diagnosis`: parameters the data did not measure, and misfit;
- :mod:`.session`, :mod:`.retrain`, :mod:`.report`: the whole calibration as the
  CLI and the dock run it, the retraining and the figure;
- :mod:`.hidden`: a test cube from a non-reference set-up.
"""

from __future__ import annotations
