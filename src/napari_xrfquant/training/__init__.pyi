# The public names of this package, resolved lazily by lazy_loader.attach_stub
# (importing the package imports neither torch nor xraylib); type checkers read this file.
from .checks import (
    check_settings as check_settings,
)
from .checks import (
    settings_problems as settings_problems,
)
from .config import (
    TrainingConfig as TrainingConfig,
)
from .config import (
    config_to_toml as config_to_toml,
)
from .config import (
    load_config as load_config,
)
from .config import (
    save_config as save_config,
)
from .datasets import (
    REFERENCE_PEAKS as REFERENCE_PEAKS,
)
from .datasets import (
    PeakSpectra as PeakSpectra,
)
from .datasets import (
    SimulatorSpectra as SimulatorSpectra,
)
from .evaluation import (
    evaluate_model as evaluate_model,
)
from .events import (
    EpochEnd as EpochEnd,
)
from .events import (
    TrainingFinished as TrainingFinished,
)
from .events import (
    TrainResult as TrainResult,
)
from .loop import (
    Trainer as Trainer,
)
from .loop import (
    iter_train as iter_train,
)
from .loop import (
    train as train,
)
from .sigma import (
    fit_sigma_calibration as fit_sigma_calibration,
)

__all__ = [
    "REFERENCE_PEAKS",
    "EpochEnd",
    "PeakSpectra",
    "SimulatorSpectra",
    "TrainResult",
    "Trainer",
    "TrainingConfig",
    "TrainingFinished",
    "check_settings",
    "config_to_toml",
    "evaluate_model",
    "fit_sigma_calibration",
    "iter_train",
    "load_config",
    "save_config",
    "settings_problems",
    "train",
]
