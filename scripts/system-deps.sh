#!/usr/bin/env bash
# Debian libraries that Qt, OpenGL and Xvfb need for napari. Installed with apt
# when running as root; otherwise the missing ones are listed and we stop.
set -euo pipefail
packages=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libdbus-1-3 libfontconfig1
  libglib2.0-0 libxkbcommon0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-render-util0 libxcb-render0 libxcb-shape0
  libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0)
command -v dpkg-query >/dev/null 2>&1 || { echo "system-deps: not a Debian system; make sure Qt6/OpenGL/Xvfb libraries are present" >&2; exit 0; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
