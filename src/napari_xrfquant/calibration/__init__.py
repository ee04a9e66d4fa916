"""Learn the user's instrument from their own data (napari-free).

- :mod:`.standards`: certified and user-typed standards;
- :mod:`.groups`: pixels grouped into standards and k-means clusters;
- :mod:`.fit`: :func:`calibrate`, the Poisson maximum-likelihood fit of the
  instrument with 1-sigma from the Fisher information;
- :mod:`.hidden`: a test cube from a non-reference set-up.
"""

from __future__ import annotations
