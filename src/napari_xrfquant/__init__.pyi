# The public names of this package, resolved lazily by lazy_loader.attach_stub
# (importing the package imports neither torch nor xraylib); type checkers read this file.
from .errors import (
    XRFQuantError as XRFQuantError,
)
from .inference import (
    quantify as quantify,
)
from .instrument import (
    Instrument as Instrument,
)
from .instrument import (
    load_instrument as load_instrument,
)
from .io import (
    read_cube as read_cube,
)
from .models import (
    load_model as load_model,
)
from .physics import (
    simulate as simulate,
)

__version__: str

__all__ = [
    "Instrument",
    "XRFQuantError",
    "__version__",
    "load_instrument",
    "load_model",
    "quantify",
    "read_cube",
    "simulate",
]
