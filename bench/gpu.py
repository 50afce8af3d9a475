"""GPU numbers for a lent GPU: generation throughput, GRPO step time, peak memory, cold start.

    python bench/gpu.py                                   # tiny + 3B + 7B, HF + vLLM, full + LoRA
    python bench/gpu.py --models tiny,3b --engines vllm   # a subset
    python bench/gpu.py --models tiny,mini --engines hf --train full,lora --requests 4 --n 2 \\
        --max-tokens 16 --train-steps 2                   # a CPU smoke run of the same code paths

Models: the embedded tiny model, and random-weight Qwen2.5-VL models with the 3B and 7B
architectures (sizes from the released configs, written below; the tiny model's tokenizer and
processor, so image inputs and prompt ids are the real code path); ``mini`` is the same build at
toy sizes, so the 3B/7B code path runs on a CPU (scripts/gpu-check.sh --cpu-dry-run). Nothing is downloaded. When an
HF engine or training is asked for, random bf16 weights are written once into --work (3B ~7.5 GB,
7B ~16.6 GB; not timed); a vLLM-only run uses ``load_format="dummy"`` and writes no weights.

Every measurement runs in a fresh Python process, as a Snakemake job does, and so does the
preparation (model folders, training samples): this process never imports torch, so it holds no
GPU memory and no CUDA context, and each vLLM row finds the whole GPU free (vLLM refuses to start
when less than --gpu-memory-utilization of it is free). Each row reports:
  import_s   python + torch/transformers/vLLM imports
  load_s     engine (or trainer model) construction: the cold start each job pays
  gen_s      generation of --requests requests x --n samples x up to --max-tokens (half with an
             image); tok/s = sampled tokens / gen_s
  step_s     GRPO seconds per optimiser step (mean after the first), full and LoRA
  peak_gb    peak GPU memory (HF/training: torch's max allocated; vLLM: device memory in use,
             which includes the KV cache vLLM reserves, --gpu-memory-utilization)
A job that fails (e.g. out of memory) is reported with its error line; the others still run.
Results are printed as a table and written as JSON (--json). CI never runs this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _text(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, **rest) -> dict:
    """A language model's sizes, as Qwen2.5-VL's ``text_config`` names them."""
    return dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        **rest,
    )


# Architectures of the released Qwen2.5-VL-3B/7B-Instruct configs (text and vision tower).
ARCHS = {
    "3b": {
        "text": _text(2048, 11008, 36, 16, 2, vocab_size=151936, tie_word_embeddings=True),
        "vision_out": 2048,
    },
    "7b": {
        "text": _text(3584, 18944, 28, 28, 4, vocab_size=152064, tie_word_embeddings=False),
        "vision_out": 3584,
    },
}
# Toy sizes of the same build, for CPU runs of the 3B/7B code path (head_dim 64: mrope 8+12+12).
ARCHS["mini"] = {
    # the tiny model's vocabulary (its tokenizer's), not 151,936 rows of embeddings
    "text": _text(256, 512, 2, 4, 2, tie_word_embeddings=True),
    "vision_out": 256,
    "vision": dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=2),
    "mrope_section": [8, 12, 12],
}
VISION = dict(
    depth=32,
    hidden_size=1280,
    intermediate_size=3420,
    num_heads=16,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
    window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31],
)


def make_real_size(tiny_dir: Path, size: str, out: Path, weights: bool) -> Path:
    """A Qwen2.5-VL folder with the ``size`` architecture, the tiny model's tokenizer and
    processor, and (``weights``) random bf16 weights; otherwise config only (vLLM dummy load)."""
    import torch
    from transformers import AutoConfig

    from evovlm.modeling import load_processor

    if (out / "config.json").exists() and (not weights or any(out.glob("*.safetensors"))):
        return out
    out.mkdir(parents=True, exist_ok=True)
    tiny = AutoConfig.from_pretrained(tiny_dir).to_dict()
    arch = ARCHS[size]
    layers = arch["text"]["num_hidden_layers"]
    text = {k: v for k, v in tiny["text_config"].items() if k != "layer_types"}
    text.update(arch["text"], max_window_layers=layers, max_position_embeddings=32768)
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": arch.get("mrope_section", [16, 24, 24]),  # sums to head_dim / 2 (64)
    }
    vision = {**tiny["vision_config"], **VISION, **arch.get("vision", {})}
    vision["out_hidden_size"] = arch["vision_out"]
    if "vision" in arch:  # fewer blocks: full attention in the last one
        vision["fullatt_block_indexes"] = [arch["vision"]["depth"] - 1]
    top = {k: v for k, v in tiny.items() if k not in ("text_config", "vision_config")}
    top.update(tie_word_embeddings=arch["text"]["tie_word_embeddings"], dtype="bfloat16")
    config = type(AutoConfig.from_pretrained(tiny_dir))(
        text_config=text, vision_config=vision, **top
    )
    if weights:
        from transformers import AutoModelForImageTextToText

        device = "cuda" if torch.cuda.is_available() else "cpu"
        with torch.device(device):
            model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
        model.generation_config.eos_token_id = config.text_config.eos_token_id
        model.save_pretrained(out)
        del model
    else:
        config.save_pretrained(out)
    load_processor(tiny_dir).save_pretrained(out)
    for name in ("generation_config.json",):
        if (tiny_dir / name).exists() and not (out / name).exists():
            shutil.copy(tiny_dir / name, out / name)
    return out


def make_requests(count: int, n: int, max_tokens: int):
    from workload import bar_requests

    from evovlm.engines import SamplingParams

    sp = SamplingParams(n=n, temperature=1.0, top_p=1.0, top_k=0, max_tokens=max_tokens)
    return bar_requests(count, sp, (224, 224), lambda i: [10, 10, 20 + 8 * (i % 20), 200])


def child_generate(args) -> dict:
    t0 = time.perf_counter()
    import torch

    from evovlm.engines import make_engine

    if args.engine == "vllm":
        import vllm  # noqa: F401  (import cost belongs to the cold start)
    import_s = time.perf_counter() - t0
    options = {
        "hf": {"batch_size": args.batch_size, "dtype": "auto"},
        "vllm": {
            "dtype": "auto",
            "gpu_memory_utilization": args.gpu_memory_utilization,
            "max_model_len": 4096,
        },
    }
    if args.dummy:
        options["vllm"]["load_format"] = "dummy"
    t1 = time.perf_counter()
    engine = make_engine(args.model, args.engine, **options)
    load_s = time.perf_counter() - t1
    requests = make_requests(args.requests, args.n, args.max_tokens)
    t2 = time.perf_counter()
    outputs = engine.generate(requests)
    gen_s = time.perf_counter() - t2
    tokens = sum(len(s.token_ids) for o in outputs for s in o.samples)
    peak = None
    if torch.cuda.is_available():
        if args.engine == "hf":
            peak = torch.cuda.max_memory_allocated() / 2**30
        else:
            free, total = torch.cuda.mem_get_info()
            peak = (total - free) / 2**30
    return {
        "pid": os.getpid(),
        "import_s": import_s,
        "load_s": load_s,
        "gen_s": gen_s,
        "tokens": tokens,
        "tok_per_s": tokens / gen_s if gen_s else None,
        "peak_gb": peak,
    }


def make_samples(model: str, out: Path, groups: int, size: int, tokens: int) -> None:
    """Solver-like image groups sampled by ``model`` (HF engine), for the GRPO replay."""
    from workload import bar_samples

    # every group has reward variance
    bar_samples(model, out, groups, size, tokens, (224, 200, "Q?"), lambda j: float(j % 2 == 0))


def child_train(args) -> dict:
    t0 = time.perf_counter()
    import logging

    import polars as pl
    import torch

    from evovlm import train

    import_s = time.perf_counter() - t0
    logging.disable(logging.INFO)
    cfg = train.TrainConfig.from_dict(
        {
            "method": args.method,
            "learning_rate": 1e-6,
            "max_steps": args.train_steps,
            "per_device_train_batch_size": 8,
            "save_steps": 0,
        }
    )
    work = Path(tempfile.mkdtemp(dir=args.work))
    try:
        s = train.train_policy(
            args.model, {"solver": pl.read_parquet(args.samples)}, cfg, work / "ckpt", work / "trl"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps = s["seconds_per_step"]
    later = steps[1:] or steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {
        "pid": os.getpid(),
        "import_s": import_s,
        "steps": s["steps"],
        "first_step_s": steps[0] if steps else None,
        "step_s": sum(later) / len(later) if later else None,
        "train_total_s": s["seconds_total"],
        "peak_gb": peak,
    }


def child_prepare(args) -> dict:
    """The model folders and the GRPO samples, in a child process: building random weights and
    sampling the training groups use the GPU, and the memory must go with the process."""
    from evovlm.tiny import build_tiny_model

    work = Path(args.work)
    tiny = build_tiny_model(work / "tiny")
    folders = {"tiny": str(tiny)}
    for size in (m for m in args.models.split(",") if m and m != "tiny"):
        start = time.perf_counter()
        folders[size] = str(make_real_size(tiny, size, work / size, weights=args.weights))
        print(f"{size}: model folder ready in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.samples:
        make_samples(str(tiny), Path(args.samples), args.train_groups, 4, args.train_tokens)
    return {"pid": os.getpid(), "folders": folders}


def run_child(kind: str, extra: list[str], timeout: int) -> dict:
    cmd = [sys.executable, str(HERE), "--child", kind, *extra]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    wall = time.perf_counter() - start
    if proc.returncode:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        error = next((ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else "")
        return {"error": error[-300:], "wall_s": wall}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall  # process start to exit: what a Snakemake job of this stage costs
    return result


def fmt(value, digits=2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,3b,7b")
    parser.add_argument("--engines", default="hf,vllm")
    parser.add_argument("--train", default="full,lora", help="GRPO methods ('' = none)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32, help="HF engine rows per batch")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--train-groups", type=int, default=8)
    parser.add_argument("--train-tokens", type=int, default=128)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    parser.add_argument("--work", default=None, help="folder for models (default: a temp dir)")
    parser.add_argument("--json", default="bench-gpu.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--samples", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dummy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        fn = {"generate": child_generate, "train": child_train, "prepare": child_prepare}
        print(json.dumps(fn[args.child](args)))
        return

    # No torch in this process (see the module docstring): the device comes from nvidia-smi.
    from evovlm.gpus import gpu_names

    models = [m for m in args.models.split(",") if m]
    engines = [e for e in args.engines.split(",") if e]
    methods = [m for m in args.train.split(",") if m]
    if "vllm" in engines and importlib.util.find_spec("vllm") is None:
        print("vLLM is not installed: skipping the vllm engine (envs/gpu.txt)", file=sys.stderr)
        engines.remove("vllm")
    names = gpu_names()
    device = f"{names[0]} (x{len(names)})" if names else "CPU (no GPU)"
    work = Path(args.work or tempfile.mkdtemp(prefix="evovlm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"device: {device}; work folder: {work}", file=sys.stderr)
    need_weights = "hf" in engines or bool(methods)
    samples = work / "samples.parquet"
    prep = ["--work", str(work), "--models", ",".join(models)]
    prep += ["--train-groups", str(args.train_groups), "--train-tokens", str(args.train_tokens)]
    prep += ["--weights"] if need_weights else []
    prep += ["--samples", str(samples)] if methods else []
    prepared = run_child("prepare", prep, args.timeout)
    if "error" in prepared:
        sys.exit(f"bench/gpu.py: preparing the models failed: {prepared['error']}")
    folders = prepared["folders"]

    rows = []

    def save() -> None:  # after every row: a run stopped by a time limit keeps what it measured
        result = {"device": device, "pid": os.getpid(), "args": vars(args), "rows": rows}
        Path(args.json).write_text(json.dumps(result))

    common = [
        "--requests", str(args.requests), "--n", str(args.n),
        "--max-tokens", str(args.max_tokens), "--batch-size", str(args.batch_size),
        "--gpu-memory-utilization", str(args.gpu_memory_utilization),
        "--train-steps", str(args.train_steps), "--work", str(work),
    ]  # fmt: skip
    for model in models:
        path = str(folders[model])
        for engine in engines:
            extra = [*common, "--model", path, "--engine", engine]
            if engine == "vllm" and model != "tiny" and not need_weights:
                extra.append("--dummy")
            result = run_child("generate", extra, args.timeout)
            rows.append({"model": model, "stage": f"generate/{engine}", **result})
            print(json.dumps(rows[-1]), file=sys.stderr)
            save()
        for method in methods:
            extra = [*common, "--model", path, "--method", method, "--samples", str(samples)]
            result = run_child("train", extra, args.timeout)
            rows.append({"model": model, "stage": f"grpo/{method}", **result})
            print(json.dumps(rows[-1]), file=sys.stderr)
            save()

    print(f"\n{device}; {args.requests} requests x {args.n} samples x <= {args.max_tokens} tokens")
    header = "model  stage            wall_s  import_s  load_s  gen_s  tok/s    step_s  peak_gb"
    print(header)
    for r in rows:
        if "error" in r:
            print(f"{r['model']:6s} {r['stage']:16s} FAILED: {r['error']}")
            continue
        print(
            f"{r['model']:6s} {r['stage']:16s} {fmt(r.get('wall_s'), 1):>6s}  "
            f"{fmt(r.get('import_s'), 1):>8s}  {fmt(r.get('load_s'), 1):>6s}  "
            f"{fmt(r.get('gen_s'), 1):>5s}  {fmt(r.get('tok_per_s'), 0):>6s}  "
            f"{fmt(r.get('step_s'), 2):>6s}  {fmt(r.get('peak_gb'), 1):>7s}"
        )
    # Cold start per round: every GPU job is a fresh process that loads the model again.
    for model in models:
        gen = [r for r in rows if r["model"] == model and r["stage"].startswith("generate")]
        for r in gen:
            if "error" not in r:
                cold = r["wall_s"] - r["gen_s"]
                print(
                    f"{model} {r['stage']}: cold start {cold:.1f} s per job "
                    f"({100 * cold / r['wall_s']:.0f}% of this job); an MM-Zero round has 3 "
                    f"generation jobs per shard, 3 training jobs and 1 evaluation job: "
                    f">= {7 * cold:.0f} s of cold starts per round on one GPU"
                )
    save()
    print(f"\nwritten: {args.json}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
