#!/usr/bin/env bash
# `make run`: napari with the sample cube and the plugin's widgets when there is
# a display; without one, the headless CLI on the sample cube.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
XRFQUANT=.venv/bin/xrfquant
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$PY" -m napari_xrfquant._napari.launch "$@"
fi
# the sample cube is simulated on first use (about 10 s) and cached
SAMPLE=$("$XRFQUANT" sample)
echo "make run: no display (DISPLAY is unset), so no napari window; running the headless CLI on the sample cube instead (for the GUI: 'xvfb-run -a make run' or a desktop session)."
if "$XRFQUANT" quantify --help >/dev/null 2>&1; then
  exec "$XRFQUANT" quantify "$SAMPLE" -o out/sample --preview --overwrite
fi
exec "$XRFQUANT" info "$SAMPLE"
