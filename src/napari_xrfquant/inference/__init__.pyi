# The public names of this package, resolved lazily by lazy_loader.attach_stub
# (importing the package imports neither torch nor xraylib); type checkers read this file.
from .devices import (
    resolve_device as resolve_device,
)
from .engine import (
    iter_quantify as iter_quantify,
)
from .engine import (
    quantify as quantify,
)
from .fit_quality import (
    poisson_fit_quality as poisson_fit_quality,
)
from .forward import (
    forward_model as forward_model,
)
from .forward import (
    simulator_forward_model as simulator_forward_model,
)
from .resample import (
    Resampler as Resampler,
)
from .resample import (
    channel_edges_keV as channel_edges_keV,
)
from .resample import (
    resample_counts as resample_counts,
)

__all__ = [
    "Resampler",
    "channel_edges_keV",
    "forward_model",
    "iter_quantify",
    "poisson_fit_quality",
    "quantify",
    "resample_counts",
    "resolve_device",
    "simulator_forward_model",
]
