"""A probe, not the pipeline: can the tiny model learn the simple pictures in a plain PyTorch loop?

Loss on the answer's tokens only (the Solver prompt and the reply's fixed text up to
``\\boxed{`` are the prompt), batch 16, AdamW lr 1e-3 with cosine decay, pictures rendered at
112 px, ``evovlm.synth``'s simple-picture items (train seed 0, test seed 1000, 60 per kind),
greedy with the reply's prefix given. It starts from a fresh embedded base, or with ``--from``
from a model folder (the warm-up's format phase, bench/see.py's ``step_0``), so the two starts
compare on one loop. bench/see.py measures the pipeline's own warm-up (TRL SFT) instead.

    python bench/see_probe.py --steps 600 --kinds colour,shape,count
    python bench/see_probe.py --steps 600 --kinds colour,shape,count --from DIR
"""

from __future__ import annotations

import argparse
import io
import json
import math
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from evovlm import methods, prompts, synth, tiny
    from evovlm.modeling import load_processor
    from evovlm.render import RenderConfig, render_svg
    from evovlm.warmup import REASONING

    # the Solver's reply up to its answer, as the warm-up's pictures put it in the prompt
    reply = methods.get("mmzero").solver.write(REASONING["easy"], "ANSWER")
    prefix = reply[: reply.rindex("ANSWER")]

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--kinds", default="colour,shape,count")
    p.add_argument("--from", dest="start", default="", help="a model folder (default: a new base)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    kinds = args.kinds.split(",")
    spec = tiny.TinySpec.from_dict({"max_pixels": 12544})
    start = args.start or tiny.build_tiny_model(Path(tempfile.mkdtemp()) / "base", spec)
    proc = load_processor(start)
    tok = proc.tokenizer
    model = AutoModelForImageTextToText.from_pretrained(start)
    model.train()
    render = RenderConfig(width=112, height=112)

    def batch(items, answers: bool):
        msgs = [prompts.render_messages("solver", question=it.question) for it in items]
        texts = [
            proc.apply_chat_template(m, tokenize=False, add_generation_prompt=True) + prefix
            for m in msgs
        ]
        images = [
            Image.open(io.BytesIO(render_svg(it.svg, render).png)).convert("RGB") for it in items
        ]
        enc = proc(
            text=texts, images=images, return_tensors="pt", padding=True, padding_side="left"
        )
        if not answers:
            return enc
        ans = tok(
            [it.answer + "}<|im_end|>" for it in items],
            add_special_tokens=False,
            return_tensors="pt",
            padding=True,
            padding_side="right",
        )
        ids = torch.cat([enc["input_ids"], ans["input_ids"]], 1)
        mask = torch.cat([enc["attention_mask"], ans["attention_mask"]], 1)
        labels = ids.clone()
        labels[:, : enc["input_ids"].shape[1]] = -100
        labels[mask == 0] = -100
        images = {k: enc[k] for k in ("pixel_values", "image_grid_thw")}
        return {**images, "input_ids": ids, "attention_mask": mask, "labels": labels}

    train = synth.generate_see_items(args.steps * 16, seed=0, kinds=kinds)
    test = synth.generate_see_items(60 * len(kinds), seed=1000, kinds=kinds)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    cosine = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / args.steps))
    )
    t0 = time.perf_counter()
    for s in range(args.steps):
        model(**batch(train[s * 16 : (s + 1) * 16], True)).loss.backward()
        opt.step()
        cosine.step()
        opt.zero_grad()
    seconds = time.perf_counter() - t0
    model.eval()
    right = dict.fromkeys(kinds, 0)
    with torch.no_grad():
        for i in range(0, len(test), 20):
            items = test[i : i + 20]
            enc = batch(items, False)
            out = model.generate(**enc, max_new_tokens=8, do_sample=False)
            for it, ids in zip(items, out[:, enc["input_ids"].shape[1] :], strict=True):
                text = tok.decode(ids, skip_special_tokens=True)
                right[it.kind] += text.split("}")[0].strip() == it.answer
    accuracy = {k: round(v / 60, 2) for k, v in right.items()}
    print(
        json.dumps(
            {
                "from": str(args.start or "base"),
                "steps": args.steps,
                "train_s": round(seconds),
                **accuracy,
            }
        )
    )


if __name__ == "__main__":
    main()
