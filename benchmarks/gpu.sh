#!/usr/bin/env bash
# The GPU path in one run: overhead and reference at float32 / bfloat16 / float16 autocast,
# channels-last and compiled, the out-of-memory back-off under a memory cap, two torchrun
# ranks when there are two GPUs, and float32 rows against the CPU's. One JSON file of results
# (default benchmarks/gpu-results.json). See benchmarks/gpu.py for every step.
#
#   benchmarks/gpu.sh                      # on CUDA
#   benchmarks/gpu.sh --device cpu --quick # the same script end to end on a CPU (smoke run)
#   PYTHON=/path/to/python benchmarks/gpu.sh --out results.json
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" benchmarks/gpu.py "$@"
