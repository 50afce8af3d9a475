"""Seconds per GRPO step and peak memory of the training stage on the tiny model (CPU).

    .venv/bin/python bench/train.py [--steps 6] [--groups 8] [--size 4] [--tokens 32]
    .venv/bin/python bench/train.py --memory
    .venv/bin/python bench/train.py --bf16-check [--steps 20]

Each method runs in its own subprocess so peak RSS (ru_maxrss) is per method. Completions are
produced once by the HF engine and replayed (image groups, solver-like).

``--memory``: the memory a full fine-tune of Qwen2.5-VL 3B and 7B needs before activations
(parameters, gradients, AdamW states, the KL reference), computed from the models' parameter
counts (built on the meta device from their published configs, no download).

``--bf16-check``: a bf16 copy of the tiny model trained ``--steps`` steps at lr 1e-6, saved with
``train.save_dtype`` float32 and base: the share of the language model's projection weights whose
saved value changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def make_samples(model_dir: str, groups: int, size: int, tokens: int, out: Path) -> None:
    from workload import bar_samples

    bar_samples(model_dir, out, groups, size, tokens, (128, 100, "Q{g}?"), lambda j: float(j == 0))


def run_one(model_dir: str, samples: str, method: str, steps: int, work: str) -> None:
    import logging

    import polars as pl

    from evovlm import train

    logging.disable(logging.INFO)
    cfg = train.TrainConfig.from_dict(
        {
            "method": method,
            "learning_rate": 1e-4,
            "max_steps": steps,
            "per_device_train_batch_size": 8,
            "gradient_checkpointing": False,
            "save_steps": 0,
        }
    )
    s = train.train_policy(
        model_dir, {"solver": pl.read_parquet(samples)}, cfg, f"{work}/ckpt", f"{work}/trl"
    )
    later = s["seconds_per_step"][1:] or s["seconds_per_step"]  # the first step includes warm-up
    print(
        json.dumps(
            {
                "method": method,
                "steps": s["steps"],
                "first_step_s": round(s["seconds_per_step"][0], 3),
                "seconds_per_step": round(sum(later) / len(later), 3),
                "peak_rss_mb": round(s["peak_rss_mb"], 1),
                "total_s": round(s["seconds_total"], 1),
            }
        )
    )


# Qwen2.5-VL-3B/7B-Instruct's config.json values that decide the parameter count.
QWEN25_VL = {
    "3B": dict(hidden=2048, layers=36, inter=11008, heads=16, kv=2, vocab=151936, tie=True),
    "7B": dict(hidden=3584, layers=28, inter=18944, heads=28, kv=4, vocab=152064, tie=False),
}


def parameter_counts(size: str) -> tuple[int, int]:
    """(all parameters, vision tower + merger) of Qwen2.5-VL ``size``, on the meta device."""
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig

    d = QWEN25_VL[size]
    text = dict(
        hidden_size=d["hidden"],
        num_hidden_layers=d["layers"],
        intermediate_size=d["inter"],
        num_attention_heads=d["heads"],
        num_key_value_heads=d["kv"],
        vocab_size=d["vocab"],
        tie_word_embeddings=d["tie"],
        rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
    )
    vision = dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=d["hidden"],
        fullatt_block_indexes=[7, 15, 23, 31],
    )
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=d["tie"])
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for n, p in model.named_parameters() if "visual" in n)


def memory_table() -> None:
    """GiB per device of a full fine-tune, before activations: fp32 weights (4 bytes a
    parameter), fp32 gradients (4) and AdamW's two fp32 moments (8) for trainable parameters,
    and TRL's KL reference (beta > 0): fp32 (4) before issue 28, the compute dtype bf16 (2)
    after. FSDP divides all of it by the number of processes."""
    gib = 2**30
    print("size params vision | before | after | after, text-only role | after, FSDP 2/4/8")
    for size in QWEN25_VL:
        total, vision = parameter_counts(size)
        before = total * (4 + 4 + 8 + 4) / gib
        after = total * (4 + 4 + 8 + 2) / gib
        text_only = after - vision * (4 + 8) / gib  # vision frozen: no gradient, no AdamW state
        sharded = "/".join(f"{after / n:.1f}" for n in (2, 4, 8))
        print(
            f"{size} {total / 1e9:.3f}B {vision / 1e9:.3f}B | {before:.1f} | {after:.1f} | "
            f"{text_only:.1f} | {sharded}"
        )


def bf16_check(steps: int, groups: int, size: int, tokens: int) -> None:
    import logging

    import polars as pl
    from safetensors.torch import load_file

    from evovlm import train
    from evovlm.modeling import load_model, load_processor
    from evovlm.tiny import build_tiny_model

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_model(Path(tmp) / "tiny")
        bf16 = Path(tmp) / "tiny-bf16"
        load_model(tiny, dtype="bfloat16", device="cpu").save_pretrained(bf16)
        load_processor(tiny).save_pretrained(bf16)
        samples = Path(tmp) / "samples.parquet"
        make_samples(str(bf16), groups, size, tokens, samples)
        start = load_file(bf16 / "model.safetensors")
        keys = [k for k in start if "visual" not in k and k.endswith("proj.weight")]
        total = sum(start[k].numel() for k in keys)
        for save_dtype in ("base", "float32"):
            cfg = train.TrainConfig.from_dict(
                {
                    "learning_rate": 1e-6,
                    "max_steps": steps,
                    "per_device_train_batch_size": 8,
                    "save_steps": 0,
                    "save_dtype": save_dtype,
                }
            )
            out = Path(tmp) / save_dtype
            frames = {"solver": pl.read_parquet(samples)}
            train.train_policy(str(bf16), frames, cfg, out / "ckpt", out / "trl")
            saved = load_file(out / "ckpt" / "model.safetensors")
            changed = sum(int((saved[k].float() != start[k].float()).sum()) for k in keys)
            print(
                f"save_dtype {save_dtype}: saved as {saved[keys[0]].dtype}, {steps} steps at lr "
                f"1e-6: {changed / total:.1%} of {total} projection weights changed"
            )


def main() -> None:
    from workload import int_options

    parser = argparse.ArgumentParser()
    int_options(parser, steps=6, groups=8, size=4, tokens=32)
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)  # model samples method work
    parser.add_argument("--memory", action="store_true", help="full fine-tune memory, 3B and 7B")
    parser.add_argument("--bf16-check", action="store_true", help="bf16 update check")
    args = parser.parse_args()
    if args.memory:
        memory_table()
        return
    if args.bf16_check:
        bf16_check(args.steps, args.groups, args.size, args.tokens)
        return
    if args.run:
        model_dir, samples, method, work = args.run
        run_one(model_dir, samples, method, args.steps, work)
        return
    from evovlm.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_model(Path(tmp) / "tiny"))
        samples = Path(tmp) / "samples.parquet"
        make_samples(model_dir, args.groups, args.size, args.tokens, samples)
        print(
            f"tiny model, {args.groups} image groups x {args.size}, {args.tokens} tokens, 8 completions/step"
        )
        for method in ("full", "lora"):
            cmd = [
                sys.executable,
                __file__,
                "--steps",
                str(args.steps),
                "--run",
                model_dir,
                str(samples),
                method,
                f"{tmp}/{method}",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            out = proc.stdout
            print(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
