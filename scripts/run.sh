#!/usr/bin/env bash
# `make run`: napari with the sample cube and the plugin's widgets when there is
# a display; without one, the headless CLI on the sample cube.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$PY" -m napari_xrfquant._napari.launch "$@"
fi
echo "make run: no display (DISPLAY is unset), so napari cannot open a window."
echo "make run: running the headless CLI on the sample cube instead; for the GUI use a desktop session or 'xvfb-run -a make run'."
exec "$PY" -m napari_xrfquant._napari_free_demo
