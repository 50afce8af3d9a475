"""Engine throughput on the embedded tiny model: batched vs one request at a time.

    python bench/engine.py [--requests 16] [--n 4] [--max-tokens 64] [--batch-size 16]

Prints sampled tokens per second and requests per second for both modes on the same
requests (same seeds, so both produce the same tokens).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from workload import bar_requests, int_options

from evovlm.engines import Request, SamplingParams
from evovlm.engines.hf import HFEngine
from evovlm.tiny import build_tiny_model


def make_requests(count: int, n: int, max_tokens: int) -> list[Request]:
    sp = SamplingParams(n=n, temperature=1.0, top_p=0.95, top_k=40, max_tokens=max_tokens)
    return bar_requests(count, sp, (128, 96), lambda i: [10, 10, 10 + 8 * (i % 10), 80])


def run(engine: HFEngine, requests: list[Request], one_at_a_time: bool) -> tuple[float, int]:
    start = time.perf_counter()
    if one_at_a_time:
        outputs = [o for r in requests for o in engine.generate([r])]
    else:
        outputs = engine.generate(requests)
    seconds = time.perf_counter() - start
    return seconds, sum(len(s.token_ids) for o in outputs for s in o.samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    int_options(parser, requests=16, n=4, max_tokens=64, batch_size=16)
    parser.add_argument("--model", default=None, help="model folder (default: build the tiny one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny"))
        requests = make_requests(args.requests, args.n, args.max_tokens)
        batched_engine = HFEngine(model, batch_size=args.batch_size)
        run(batched_engine, requests[:2], one_at_a_time=False)  # warm-up
        single_engine = HFEngine(model, batch_size=1)
        for name, engine, one in (
            ("batched", batched_engine, False),
            ("one request at a time", single_engine, True),
        ):
            seconds, tokens = run(engine, requests, one)
            print(
                f"{name:24s} {len(requests)} requests x n={args.n}: {seconds:6.2f} s, "
                f"{tokens / seconds:8.1f} tokens/s, {len(requests) / seconds:6.2f} requests/s"
            )


if __name__ == "__main__":
    main()
