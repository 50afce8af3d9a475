"""bench/gpu.py on the CPU: the parent process never imports torch (so on a GPU it holds no CUDA
context and no memory, and every vLLM row finds the GPU free), every row runs in a process of its
own, and the random-weight 3B build has the published architecture."""

import importlib.util
import json
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

BENCH = REPO / "bench" / "gpu.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_3b_build_has_the_published_qwen25_vl_3b_size(tmp_path, tiny_model_dir):
    # Config only (vLLM's load_format="dummy" path), instantiated on the meta device: no memory.
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    bench = load_bench()
    folder = bench.make_real_size(tiny_model_dir, "3b", tmp_path / "3b", weights=False)
    assert not list(folder.glob("*.safetensors"))
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    assert 3.70e9 < params < 3.80e9, params  # Qwen2.5-VL-3B-Instruct: 3.75B parameters
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.intermediate_size) == (2048, 36, 11008)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (16, 2, 151936)
    assert (vision.depth, vision.hidden_size, vision.out_hidden_size) == (32, 1280, 2048)


WRAPPER = textwrap.dedent(
    """
    import runpy, sys
    bench = sys.argv[1]
    sys.argv = [bench, *sys.argv[2:]]
    try:
        runpy.run_path(bench, run_name="__main__")
    finally:
        print("parent imported torch:", "torch" in sys.modules)
    """
)


@pytest.mark.slow
def test_bench_parent_holds_no_torch_and_each_row_is_its_own_process(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--models", "tiny", "--engines", "hf", "--train", "lora", "--requests", "2"]
    args += ["--n", "2", "--max-tokens", "8", "--train-steps", "1", "--train-groups", "2"]
    args += ["--train-tokens", "8", "--work", str(tmp_path / "work"), "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "parent imported torch: False" in proc.stdout
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["stage"] for r in rows] == ["generate/hf", "grpo/lora"]
    assert all("error" not in r for r in rows), rows
    pids = [r["pid"] for r in rows]
    assert result["pid"] not in pids and len(set(pids)) == len(pids)
    assert rows[0]["tokens"] > 0 and rows[1]["steps"] == 1


@pytest.mark.slow
def test_gpu_check_cpu_dry_run_runs_every_step_and_prints_one_table(tmp_path):
    # scripts/gpu-check.sh's own steps and bench rows with the tiny and mini models on the CPU:
    # what the GPU run executes, short of the sizes and the device (the vLLM tests skip here).
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check.sh"), "--cpu-dry-run", f"--out={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("step / row") :]
    for name in ("environment", "pytest_vllm", "generate", "train"):
        assert re.search(rf"^{name}\s+ok", table, re.M), table
    for row in ("tiny generate/hf", "mini generate/hf", "mini grpo/full", "mini grpo/lora"):
        assert re.search(rf"^  {row}\s+ok", table, re.M), table
    assert "device: CPU (no GPU)" in table
