# The public names of this package, resolved lazily by lazy_loader.attach_stub
# (importing the package imports neither torch nor xraylib); type checkers read this file.
from .api import (
    SUM_TOLERANCE_WT_PERCENT as SUM_TOLERANCE_WT_PERCENT,
)
from .api import (
    simulate as simulate,
)
from .lines import (
    Line as Line,
)
from .lines import (
    element_lines as element_lines,
)
from .lines import (
    lowest_emitting_edge as lowest_emitting_edge,
)
from .lines import (
    parse_elements as parse_elements,
)
from .lines import (
    strongest_line as strongest_line,
)
from .simulator import (
    PARAMETER_NAMES as PARAMETER_NAMES,
)
from .simulator import (
    XRFSimulator as XRFSimulator,
)

__all__ = [
    "PARAMETER_NAMES",
    "SUM_TOLERANCE_WT_PERCENT",
    "Line",
    "XRFSimulator",
    "element_lines",
    "lowest_emitting_edge",
    "parse_elements",
    "simulate",
    "strongest_line",
]
