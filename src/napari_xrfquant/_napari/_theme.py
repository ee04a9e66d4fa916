"""matplotlib figures in docks that follow napari's theme (shared by the docks' plots)."""

from __future__ import annotations

from typing import Any

#: Fallback colours when the napari theme cannot be read (napari's dark theme).
DARK_THEME_COLOURS = {"background": "#262930", "text": "#f0f1f2"}


def theme_colours(viewer: Any) -> dict[str, str]:
    """Background and text colours of the viewer's current napari theme.

    Parameters
    ----------
    viewer
        The napari viewer, or None for napari's dark theme.

    Returns
    -------
    dict
        ``{"background": hex, "text": hex}``.
    """
    if viewer is None:
        return dict(DARK_THEME_COLOURS)
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return {"background": theme.canvas.as_hex(), "text": theme.text.as_hex()}
    except Exception:  # an unreadable theme falls back to napari's default
        return dict(DARK_THEME_COLOURS)


def is_dark(colour: str) -> bool:
    """Whether ``colour`` is dark (perceived luminance below one half)."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(colour)
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5


def style_axes(ax: Any, colours: dict[str, str]) -> None:
    """Colour an Axes' background, spines, ticks, labels and title for the theme."""
    ax.set_facecolor(colours["background"])
    for spine in ax.spines.values():
        spine.set_color(colours["text"])
    ax.tick_params(colors=colours["text"], labelsize=8)
    ax.xaxis.label.set_color(colours["text"])
    ax.yaxis.label.set_color(colours["text"])
    ax.title.set_color(colours["text"])
