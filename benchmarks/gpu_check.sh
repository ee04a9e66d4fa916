#!/usr/bin/env bash
# The GPU checks, in well under 5 minutes on a machine with an NVIDIA GPU:
# the CUDA tests (tests/test_cuda.py: quantify, physics quantification, simulator and
# refinement on CUDA against the CPU), then the full-frame benchmark on CUDA (time per frame
# including the host-to-device copy), with a network and without one (--physics).
#
# Usage: benchmarks/gpu_check.sh   (uses .venv/bin/python when there is one)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
"$PY" - <<'PYEOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: torch sees no CUDA device (torch " + torch.__version__ + ")")
print("gpu_check: " + torch.cuda.get_device_name(0) + ", torch " + torch.__version__)
PYEOF
timeout 240 "$PY" -m pytest -q -p no:xvfb tests/test_cuda.py
timeout 120 "$PY" benchmarks/bench_quantify.py --device cuda --repeats 10 --no-pymca
timeout 120 "$PY" benchmarks/bench_quantify.py --device cuda --repeats 3 --no-pymca --physics
