#!/usr/bin/env bash
# The prepared GPU check (at most ~10 minutes on one H100): vLLM tests, a Qwen2.5-VL-3B round of
# generation with random weights (vLLM load_format "dummy"), and the GRPO training memory of the
# 3B model with LoRA and full fine-tuning (torch.cuda.max_memory_allocated, two steps each); one
# table at the end, and the JSON/logs under --out.
#
#   scripts/gpu-check.sh [--out DIR]      # on a GPU machine (envs/gpu.txt installed, or wheels)
#   scripts/gpu-check.sh --cpu-dry-run    # here: the same steps and code paths, tiny sizes, CPU
#   scripts/gpu-check.sh --fetch-wheels   # here, with PyPI: the Python 3.12 wheels a bare GPU
#                                         # image lacks, into .whl/a and .whl/b (see below)
#   scripts/gpu-check.sh --install-only   # install carried .whl/*/ wheels and stop
#
# Every step runs in its own process (bench/gpu.py starts one per row; its parent never imports
# torch, so each vLLM row finds the GPU free) under its own timeout; a failed step is a FAILED
# row, and the others still run. Exit status: 0 when no step failed (skips are not failures).
#
# A machine with no internet (a lent GPU): the packages evovlm needs beyond a stock CUDA PyTorch
# image travel as wheels. They are ~68 MB (polars' runtime alone is 54 MB); a carry limit of
# 64 MiB needs two calls on one warm machine: first carry .whl/a with --install-only, then .whl/b
# with the check (installed into /tmp/evovlm-site, which stays while the machine does). vLLM
# 0.33 cannot travel that way (a 336 MB wheel that needs torch 2.14): without vLLM installed the
# vLLM steps are reported as skipped, and only a machine with envs/gpu.txt shows them.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-gpu-check-out}
MODE=gpu
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) MODE=cpu ;;
    --fetch-wheels) MODE=fetch ;;
    --install-only) MODE=install ;;
    --out=*) OUT=${arg#--out=} ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-$(command -v python3 || command -v python)}
SITE=/tmp/evovlm-site

if [ "$MODE" = fetch ]; then
  # The packages (evovlm's pins) that a CUDA PyTorch image with transformers < 5.20 lacks.
  exclude="$(git rev-parse --git-common-dir)/info/exclude"
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
  get() {
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$@"
  }
  pin() { grep -E "^$1==" envs/cpu.txt | head -1; }
  get .whl/a polars-runtime-32=="$(pin polars | cut -d= -f3)" || exit 1
  get .whl/b "$(pin transformers)" "$(pin trl)" "$(pin peft)" "$(pin datasets)" "$(pin polars)" \
    dill==0.4.1 multiprocess==0.70.19 || exit 1
  du -sh .whl/a .whl/b
  exit 0
fi

# Carried wheels (either call), installed beside the image's packages, never over them.
if compgen -G ".whl/*/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*/*.whl || exit 1
fi
[ "$MODE" = install ] && { echo "gpu-check: wheels installed in $SITE"; exit 0; }
[ -d "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# torch.cuda.is_available() by NVML, not cuInit: a process vLLM forks can then still use CUDA.
export VLLM_LOGGING_STREAM=ext://sys.stderr PYTORCH_NVML_BASED_CUDA_CHECK=1
mkdir -p "$OUT"
STEPS="$OUT/steps.tsv"
: >"$STEPS"

# step NAME TIMEOUT_S COMMAND...: runs it, logs to $OUT/NAME.log, records status and seconds.
step() {
  local name=$1 limit=$2; shift 2
  local start=$SECONDS rc
  echo "== $name (limit ${limit}s): $*" >&2
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local status=ok
  [ $rc -eq 124 ] && status="FAILED (timed out after ${limit}s)"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && status="FAILED (exit $rc; see $OUT/$name.log)"
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" >>"$STEPS"
  tail -3 "$OUT/$name.log" >&2
  return 0
}

# 1. What this machine is: GPUs, driver, torch's CUDA, vLLM, and evovlm's own GPU check.
step environment 120 "$PY" - <<'PY'
import importlib.metadata as md
import importlib.util

from evovlm import gpus

print("gpus:", gpus.gpu_names() or "none", "| driver:", gpus.driver_version())
cuda = gpus.torch_cuda_version()
print("torch:", md.version("torch"), "cuda", cuda)
for name in ("vllm", "transformers", "trl", "peft", "polars"):
    print(name, md.version(name) if importlib.util.find_spec(name) else "not installed")
driver = gpus.driver_version()
problem = driver and cuda and gpus.driver_problem(driver, cuda)
if problem:
    raise SystemExit(f"gpu-check: {problem}")
PY

# 2. The vLLM tests (engine contract on vLLM; they skip where vLLM or a GPU is missing).
step pytest_vllm 150 "$PY" -m pytest -m vllm -q -p no:cacheprovider tests/test_engine_contract.py

# 3-4. bench/gpu.py: one process per row. vLLM first on the config-only 3B folder (dummy
# weights), then training, which writes random weights once into the same work folder.
WORK="$OUT/work"
if [ "$MODE" = cpu ]; then
  models=tiny,mini
  gen=(--requests 2 --n 2 --max-tokens 8 --timeout 200)
  train=(--train-steps 1 --train-groups 2 --train-tokens 8 --timeout 200)
  engines=hf
else
  models=tiny,3b
  gen=(--requests 32 --n 4 --max-tokens 128 --timeout 150)
  train=(--train-steps 2 --train-groups 4 --train-tokens 64 --timeout 150)
  engines=vllm
fi
has_vllm=no
"$PY" -c "import vllm" >/dev/null 2>&1 && has_vllm=yes
[ "$has_vllm" = yes ] && [ "$MODE" = cpu ] && engines=hf,vllm
if [ "$MODE" = gpu ] && [ "$has_vllm" = no ]; then
  printf 'generate\tskipped: vLLM not installed\t0\n' >>"$STEPS"
else
  step generate 210 "$PY" bench/gpu.py --models "$models" --engines "$engines" --train "" \
    "${gen[@]}" --work "$WORK" --json "$OUT/generate.json"
fi
step train 240 "$PY" bench/gpu.py --models "${models#tiny,}" --engines "" --train full,lora \
  "${train[@]}" --work "$WORK" --json "$OUT/train.json"

# One table: every step, then every bench row.
"$PY" - "$OUT" <<'PY'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
rows = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]
bench = []
for name in ("generate", "train"):
    path = out / f"{name}.json"
    if path.exists():
        data = json.loads(path.read_text())
        bench += [(data["device"], r) for r in data["rows"]]
log = (out / "pytest_vllm.log").read_text().strip().splitlines() if (out / "pytest_vllm.log").exists() else []
print(f"\n{'step / row':34s} {'status':34s} {'wall_s':>7s} {'tok/s':>7s} {'step_s':>7s} {'peak_gb':>8s}")
for name, status, seconds in rows:
    note = f" [{log[-1]}]" if name == "pytest_vllm" and log else ""
    print(f"{name:34s} {(status + note)[:34]:34s} {seconds:>7s}")
for device, r in bench:
    status = "FAILED: " + r["error"][:26] if "error" in r else "ok"
    def f(key, digits):
        v = r.get(key)
        return "-" if v is None else f"{v:.{digits}f}"
    print(
        f"  {r['model'] + ' ' + r['stage']:32s} {status:34s} {f('wall_s', 1):>7s} "
        f"{f('tok_per_s', 0):>7s} {f('step_s', 2):>7s} {f('peak_gb', 1):>8s}"
    )
print(f"device: {bench[0][0] if bench else '?'}; logs and JSON in {out}")
if any(s.startswith("FAILED") for _, s, _ in rows) or any("error" in r for _, r in bench):
    sys.exit(1)
PY
