"""Render throughput: the warm sandbox pool vs one fresh interpreter per program.

    python bench/render.py [--svg 200] [--python 40] [--baseline-python 8] [--workers 1]

Same inputs for both (the baseline renders ``--baseline-*`` of them, spread over the run and
interleaved with the warm renders, so both see the same machine load): simple SVG charts and
matplotlib bar charts. The baseline is what a naive renderer does: a new
``python -c`` per program that imports cairosvg or matplotlib, renders and writes a PNG, with no
sandbox at all. Prints programs per second and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from workload import FRESH_PYTHON

from evovlm.render import RenderConfig, RenderPool

BASELINE_SVG = """
import sys, cairosvg
png = cairosvg.svg2png(bytestring=sys.stdin.buffer.read(), output_width=448)
sys.stdout.buffer.write(png)
"""
BASELINE_PY = FRESH_PYTHON


def svg_program(i: int) -> str:
    bars = "".join(
        f'<rect x="{20 + 60 * k}" y="{200 - (i * 7 + k * 13) % 150}" width="40" '
        f'height="{(i * 7 + k * 13) % 150}" fill="#{(i * 40 + k * 70) % 0xFFFFFF:06x}"/>'
        for k in range(5)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
        f'<rect width="320" height="240" fill="white"/>{bars}'
        f'<text x="20" y="225" font-size="14">Chart {i}</text></svg>'
    )


def python_program(i: int) -> str:
    values = [(i * 7 + k * 13) % 20 + 1 for k in range(5)]
    return (
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(4, 3))\n"
        f"ax.bar(['a', 'b', 'c', 'd', 'e'], {values}, color='steelblue')\n"
        f"ax.set_title('Chart {i}')\n"
        "ax.set_ylabel('value')\n"
    )


def _fresh(script: str, code: str, env: dict) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script], input=code.encode(), env=env, capture_output=True
    )
    assert out.returncode == 0 and out.stdout.startswith(b"\x89PNG"), out.stderr[-500:]
    return time.perf_counter() - start


def _warm(pool: RenderPool, code: str, language: str) -> float:
    start = time.perf_counter()
    result = pool.render(code, language)
    assert result.status == "ok", result
    return time.perf_counter() - start


def compare(
    pool: RenderPool, programs: list[str], language: str, script: str, n_fresh: int
) -> tuple[float, float]:
    """(warm renders/s, fresh renders/s), measured interleaved: the fresh interpreters are
    spread over the warm renders, so a change in the machine's load hits both alike."""
    env = dict(os.environ, MPLBACKEND="Agg")
    with tempfile.TemporaryDirectory() as mplconfig:
        env["MPLCONFIGDIR"] = mplconfig  # a persistent one: do not charge the font cache
        _fresh(script, programs[0], env)
        _warm(pool, programs[0], language)
        every = max(1, len(programs) // max(1, n_fresh))
        warm = fresh = 0.0
        n_done = 0
        for i, code in enumerate(programs):
            warm += _warm(pool, code, language)
            if i % every == 0 and n_done < n_fresh:
                fresh += _fresh(script, code, env)
                n_done += 1
    return len(programs) / warm, n_done / fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--svg", type=int, default=200)
    parser.add_argument("--python", type=int, default=40)
    parser.add_argument("--baseline-svg", type=int, default=20)
    parser.add_argument("--baseline-python", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    svgs = [svg_program(i) for i in range(args.svg)]
    pys = [python_program(i) for i in range(args.python)]

    start = time.perf_counter()
    with RenderPool(RenderConfig(), workers=args.workers) as pool:
        started = time.perf_counter() - start
        pool_svg, base_svg = compare(pool, svgs, "svg", BASELINE_SVG, args.baseline_svg)
        pool_py, base_py = compare(pool, pys, "python", BASELINE_PY, args.baseline_python)
        info = pool.info

    print(
        f"machine: {os.cpu_count()} CPUs, pool workers: {args.workers}, pool start {started:.1f} s"
    )
    print(
        f"sandbox: seccomp={info.get('seccomp')} private network namespace={info.get('netns')} "
        f"landlock ABI={info.get('landlock')} landlock reads={info.get('landlock_reads')} "
        f"pages copied ahead={info.get('prefault_pages')}"
    )
    print(f"{'':24s}{'warm pool':>12s}{'fresh python':>14s}{'speed-up':>10s}")
    for name, pool_rate, base_rate in (
        ("svg", pool_svg, base_svg),
        ("matplotlib", pool_py, base_py),
    ):
        print(
            f"{name + ' renders/s':24s}{pool_rate:12.1f}{base_rate:14.2f}{pool_rate / base_rate:9.1f}x"
        )


if __name__ == "__main__":
    main()
