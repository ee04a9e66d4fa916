"""Exceptions for input a user can fix; their message is shown as it is."""

from __future__ import annotations


class XRFQuantError(ValueError):
    """Base class for errors that carry a one-line message meant for the user.

    The CLI prints the message and exits non-zero; the napari layer shows it as
    a notification. The message should name the file or value and the problem.
    """


class InstrumentError(XRFQuantError):
    """An instrument description that cannot describe a real measurement."""


class CubeReadError(XRFQuantError):
    """A file that does not hold a usable spectral cube."""


class SimulationError(XRFQuantError):
    """Compositions or elements the simulator cannot work with."""


class ModelBundleError(XRFQuantError):
    """A model bundle that is missing, corrupt, or does not fit the data."""
