"""Opening HDF5 cubes without napari's "Choose reader" dialog.

napari picks a reader by file-name pattern alone: when several plugins claim a
pattern and the user has set no preference (``settings.plugins.extension2reader``),
File > Open and drag-and-drop show a dialog. napari's own reader claims
``*.h5``, ``*.hdf5`` and ``*.hdf`` but cannot read HDF5 ("cannot find loader for
this HDF5 file"), so for those patterns this plugin records itself as the
preferred reader -- only where the user has no preference and no third plugin
claims them -- and says so once. ``*.npy`` and ``*.tif`` stay with the dialog:
napari reads plain images of those kinds, and the dialog's "Remember my choice"
(or File > Preferences > Plugins) decides.
"""

from __future__ import annotations

PLUGIN = "napari-xrfquant"
#: Patterns this plugin reads and napari's built-in reader claims but cannot read.
HDF5_PATTERNS = ("*.h5", "*.hdf5", "*.hdf")
_told = False


def claim_hdf5_reader() -> list[str]:
    """Make this plugin napari's reader for HDF5 patterns nobody else has; return those set."""
    global _told
    from napari.plugins import _npe2
    from napari.settings import get_settings
    from napari.utils.notifications import show_info

    settings = get_settings().plugins
    preferences = dict(settings.extension2reader)
    claimed = []
    for pattern in HDF5_PATTERNS:
        readers = set(_npe2.get_readers(f"cube{pattern[1:]}"))
        if pattern in preferences or PLUGIN not in readers or readers - {PLUGIN, "napari"}:
            continue
        preferences[pattern] = PLUGIN
        claimed.append(pattern)
    if claimed:
        settings.extension2reader = preferences
        if not _told:
            _told = True
            show_info(f"napari-xrfquant now opens {', '.join(claimed)} files without asking "
                      "(File > Preferences > Plugins changes it)")
    return claimed
