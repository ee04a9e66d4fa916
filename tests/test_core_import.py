"""The core works from a script: importing it must not pull in napari or Qt."""

import subprocess
import sys

CORE_MODULES = [
    "napari_xrfquant",
    "napari_xrfquant.instrument",
    "napari_xrfquant.io",
    "napari_xrfquant.physics",
    "napari_xrfquant.models",
    "napari_xrfquant.training",
    "napari_xrfquant.inference",
    "napari_xrfquant.results",
    "napari_xrfquant.sample",
    "napari_xrfquant.cli",
]


def test_core_imports_without_napari_or_qt():
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name != name: raise\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'superqt'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported GUI modules: {out.stdout}"
