#!/usr/bin/env bash
# Check that the GPU environment (envs/gpu.txt) and the package (pyproject.toml) resolve together,
# without installing or downloading any wheel: pip's resolver reads only the metadata files PyPI
# serves next to the wheels (PEP 658), so the CUDA torch and vLLM wheels are never fetched.
# Needs PyPI. Usage: scripts/check_gpu_env.sh [python]   (default .venv/bin/python; Python 3.11
# is what envs/evovlm-gpu.yaml installs). Prints what would be installed; exits 1 on a conflict.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
if ! "$PY" -m pip install --dry-run --ignore-installed --quiet --report "$report" \
    -r envs/gpu.txt -e . 2> >(grep -v "Location 'file:" >&2); then
  echo "check_gpu_env: envs/gpu.txt and pyproject.toml do NOT resolve together (pip's message above)" >&2
  exit 1
fi
"$PY" - "$report" <<'PY'
import json, sys
items = {p["metadata"]["name"].lower(): p["metadata"]["version"] for p in json.load(open(sys.argv[1]))["install"]}
key = ["vllm", "torch", "torchvision", "transformers", "trl", "peft", "numpy", "evovlm"]
print("check_gpu_env: envs/gpu.txt + pyproject.toml resolve:", ", ".join(f"{k} {items[k]}" for k in key if k in items), f"({len(items)} packages)")
PY
