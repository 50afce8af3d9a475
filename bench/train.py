"""Seconds per GRPO step and peak memory of the training stage on the tiny model (CPU).

    .venv/bin/python bench/train.py [--steps 6] [--groups 8] [--size 4] [--tokens 32]

Each method runs in its own subprocess so peak RSS (ru_maxrss) is per method. Completions are
produced once by the HF engine and replayed (image groups, solver-like).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def make_samples(model_dir: str, groups: int, size: int, tokens: int, out: Path) -> None:
    import polars as pl
    from PIL import Image, ImageDraw

    from evovlm.engines import Request, SamplingParams, make_engine
    from evovlm.stages import png_to_image

    engine = make_engine(model_dir, "hf")
    jobs = []
    for g in range(groups):
        image = Image.new("RGB", (128, 128), "white")
        ImageDraw.Draw(image).rectangle([8 + 8 * g, 10, 40 + 8 * g, 100], fill=(30, 90, 200))
        buf = io.BytesIO()
        image.save(buf, "PNG")
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"Q{g}?"}]}
        ]
        params = SamplingParams(n=size, max_tokens=tokens)
        jobs.append(
            (
                g,
                messages,
                buf.getvalue(),
                Request(messages, [png_to_image(buf.getvalue())], params, seed=g),
            )
        )
    rows = []
    for (g, messages, png, _), res in zip(jobs, engine.generate([j[3] for j in jobs]), strict=True):
        for j, s in enumerate(res.samples):
            rows.append(
                dict(
                    sample_id=f"g{g}-{j}",
                    group_id=f"g{g}",
                    prompt=json.dumps(messages),
                    prompt_ids=res.prompt_ids,
                    completion_ids=s.token_ids,
                    logprobs=s.logprobs,
                    reward=float(j == 0),
                    image=png,
                )
            )
    pl.DataFrame(rows).write_parquet(out)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)  # model samples method work
    args = parser.parse_args()
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
