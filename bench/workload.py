"""The made-up work the benchmarks share: requests about bar pictures, and Solver-like groups
of real samples for the GRPO replay. Imports are lazy, so a benchmark's parent process that
imports this module holds no torch."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

# A matplotlib program (stdin) run in a fresh interpreter, its figure as PNG on stdout: the
# renderer's baseline without a warm pool or a sandbox.
FRESH_PYTHON = """
import io, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
exec(compile(sys.stdin.read(), "<program>", "exec"), {"__name__": "__main__"})
buf = io.BytesIO()
plt.gcf().savefig(buf, format="png", dpi=100)
sys.stdout.buffer.write(buf.getvalue())
"""


def bar_requests(count: int, params, side: tuple[int, int], bar: Callable[[int], list[int]]):
    """``count`` requests with ``params`` (``SamplingParams``), odd ones with a ``side`` picture
    of one bar (``bar(i)``: its rectangle), even ones text only."""
    from PIL import Image, ImageDraw

    from evovlm.engines import Request

    out = []
    for i in range(count):
        if i % 2:
            img = Image.new("RGB", side, "white")
            ImageDraw.Draw(img).rectangle(bar(i), fill="navy")
            content = [{"type": "image"}, {"type": "text", "text": f"How tall is bar {i}?"}]
            out.append(Request([{"role": "user", "content": content}], [img], params, seed=i))
        else:
            content = [{"type": "text", "text": f"Propose a chart about topic {i}."}]
            out.append(Request([{"role": "user", "content": content}], [], params, seed=i))
    return out


def bar_samples(
    model: str,
    out: Path,
    groups: int,
    size: int,
    tokens: int,
    picture: tuple[int, int, str],
    reward: Callable[[int], float],
) -> None:
    """``groups`` groups of ``size`` completions sampled by ``model`` (HF engine) for a square
    picture of one bar, written to ``out`` as the trainer reads them. ``picture``: (side, the
    bar's bottom edge, the question, where ``{g}`` is the group); ``reward(j)``: completion j's reward."""
    import polars as pl
    from PIL import Image, ImageDraw

    from evovlm.engines import Request, SamplingParams, make_engine
    from evovlm.stages import png_to_image

    side, bottom, question = picture
    engine = make_engine(model, "hf")
    jobs = []
    for g in range(groups):
        image = Image.new("RGB", (side, side), "white")
        ImageDraw.Draw(image).rectangle([8 + 8 * g, 10, 40 + 8 * g, bottom], fill=(30, 90, 200))
        buf = io.BytesIO()
        image.save(buf, "PNG")
        text = question.format(g=g)
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        params = SamplingParams(n=size, max_tokens=tokens)
        jobs.append(
            (g, msgs, buf.getvalue(), Request(msgs, [png_to_image(buf.getvalue())], params, seed=g))
        )
    rows = []
    for (g, msgs, png, _), res in zip(jobs, engine.generate([j[3] for j in jobs]), strict=True):
        for j, s in enumerate(res.samples):
            rows.append(
                dict(
                    sample_id=f"g{g}-{j}",
                    group_id=f"g{g}",
                    prompt=json.dumps(msgs),
                    prompt_ids=res.prompt_ids,
                    completion_ids=s.token_ids,
                    logprobs=s.logprobs,
                    reward=reward(j),
                    image=png,
                )
            )
    pl.DataFrame(rows).write_parquet(out)


def int_options(parser, **defaults: int) -> None:
    """``--name`` options of type int, one per keyword (``max_tokens``: ``--max-tokens``)."""
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
