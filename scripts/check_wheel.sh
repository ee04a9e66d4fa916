#!/usr/bin/env bash
# The wheel tells the truth: build it with `pip wheel`, install it into a fresh
# virtual environment outside the repository (pinned CPU torch first, as the
# Makefile does), then run `xrfquant quantify` on the sample cube and open the
# napari sample contribution. Nothing of the checkout is on the path there.
#   bash scripts/check_wheel.sh        (about 5 minutes; `make wheel-check`)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
work=$(mktemp -d /tmp/xrfquant-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

"$python" -m venv "$work/build"
"$work/build/bin/pip" install -q --upgrade pip
"$work/build/bin/pip" wheel -q --no-deps -w "$work/dist" "$repo"
wheel=$(ls "$work"/dist/napari_xrfquant-*.whl)
echo "check_wheel: built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
unzip -l "$wheel" | grep -E "reference.toml|napari.yaml|model.safetensors|__init__.pyi|atomic_corrections" \
  | awk '{print "check_wheel:   has " $4}'

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
"$work/venv/bin/pip" install -q torch==2.13.0
"$work/venv/bin/pip" install -q "$wheel[all]"
echo "check_wheel: installed into a fresh venv ($(( $(date +%s) - start )) s so far)"

cd "$work"  # away from the checkout: only the installed package can be imported
export XRFQUANT_CACHE_DIR="$work/cache"
sample=$("$work/venv/bin/xrfquant" sample)
"$work/venv/bin/xrfquant" quantify "$sample" -o "$work/out" --quiet
ls "$work/out"
test -s "$work/out/$(basename "${sample%.h5}")_wt_percent.tif"
echo "check_wheel: xrfquant quantify on the sample wrote $(ls "$work/out" | wc -l) files"

run_gui=(env)
[ -n "${DISPLAY:-}" ] || run_gui=(xvfb-run -a)
"${run_gui[@]}" "$work/venv/bin/python" - <<'PY'
import napari

import napari_xrfquant

viewer = napari.Viewer(show=False)
viewer.open_sample("napari-xrfquant", "cxc_gold_sample")
names = [layer.name for layer in viewer.layers]
assert "cxc_gold_sample" in names, names
print("check_wheel: napari sample contribution opened", names, "from", napari_xrfquant.__file__)
viewer.close()
PY
echo "check_wheel: OK in $(( $(date +%s) - start )) s"
