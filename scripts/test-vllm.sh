#!/usr/bin/env bash
# The vLLM tier (CI runs it after scripts/test.sh): set up .venv-vllm if needed (vLLM on CPU,
# scripts/bootstrap.sh --vllm), then the tests marked `vllm` in it: the engine contract on vLLM,
# adapters served as LoRARequest, the vLLM job logs and two-round runs of the workflow on
# engine.backend vllm (MM-Zero and EvoLMM), checked against the hf engine's funnel.
# Prints how long the install and the tests took. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/bootstrap.sh --vllm
installed=$SECONDS
export PATH="$PWD/.venv-vllm/bin:$PATH"
# This checkout's package first (a shared .venv-vllm may hold another checkout's editable install).
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# vLLM on CPU: KV cache in GiB (gpu_memory_utilization means nothing there) and a kept compile
# cache (the first log-prob request builds a helper with gcc, ~40 s once).
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/evovlm/torchinductor}
set +e
python -m pytest -m vllm --durations=0 "$@"
rc=$?
set -e
echo "test-vllm.sh: install $((installed - start)) s, tests $((SECONDS - installed)) s" >&2
if [ "$rc" = 5 ]; then
  echo "test-vllm.sh: pytest collected no vllm tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
