# The public names of this package, resolved lazily by lazy_loader.attach_stub
# (importing the package imports neither torch nor xraylib); type checkers read this file.
from .architectures import (
    InputSpec as InputSpec,
)
from .architectures import (
    QuantNet as QuantNet,
)
from .architectures import (
    build_network as build_network,
)
from .architectures import (
    make_bin_edges as make_bin_edges,
)
from .bundle import (
    BUNDLED_DIR as BUNDLED_DIR,
)
from .bundle import (
    QuantModel as QuantModel,
)
from .bundle import (
    UncertaintyCalibration as UncertaintyCalibration,
)
from .bundle import (
    build_metadata as build_metadata,
)
from .bundle import (
    list_bundled_models as list_bundled_models,
)
from .bundle import (
    load_model as load_model,
)
from .bundle import (
    save_bundle as save_bundle,
)
from .description import (
    ModelConfig as ModelConfig,
)
from .description import (
    architectures as architectures,
)
from .description import (
    register_architecture as register_architecture,
)

__all__ = [
    "BUNDLED_DIR",
    "InputSpec",
    "ModelConfig",
    "QuantModel",
    "QuantNet",
    "UncertaintyCalibration",
    "architectures",
    "build_metadata",
    "build_network",
    "list_bundled_models",
    "load_model",
    "make_bin_edges",
    "register_architecture",
    "save_bundle",
]
