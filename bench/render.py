"""Render throughput: the warm sandbox pool vs one fresh interpreter per program.

    python bench/render.py [--svg 200] [--python 40] [--baseline-python 8] [--workers 1]

Same inputs for both (the baseline renders the first ``--baseline-*`` of them): simple SVG
charts and matplotlib bar charts. The baseline is what a naive renderer does: a new
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

from evovlm.render import RenderConfig, RenderPool

BASELINE_SVG = """
import sys, cairosvg
png = cairosvg.svg2png(bytestring=sys.stdin.buffer.read(), output_width=448)
sys.stdout.buffer.write(png)
"""
BASELINE_PY = """
import io, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
exec(compile(sys.stdin.read(), "<program>", "exec"), {"__name__": "__main__"})
buf = io.BytesIO()
plt.gcf().savefig(buf, format="png", dpi=100)
sys.stdout.buffer.write(buf.getvalue())
"""


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


def run_pool(pool: RenderPool, programs: list[str], language: str) -> float:
    start = time.perf_counter()
    statuses = [pool.render(code, language).status for code in programs]
    seconds = time.perf_counter() - start
    assert statuses.count("ok") == len(programs), statuses
    return len(programs) / seconds


def run_baseline(programs: list[str], script: str) -> float:
    env = dict(os.environ, MPLBACKEND="Agg")
    with tempfile.TemporaryDirectory() as mplconfig:
        env["MPLCONFIGDIR"] = mplconfig  # a persistent one: do not charge the font cache
        subprocess.run(
            [sys.executable, "-c", script],
            input=programs[0].encode(),
            env=env,
            check=True,
            capture_output=True,
        )
        start = time.perf_counter()
        for code in programs:
            out = subprocess.run(
                [sys.executable, "-c", script], input=code.encode(), env=env, capture_output=True
            )
            assert out.returncode == 0 and out.stdout.startswith(b"\x89PNG"), out.stderr[-500:]
        return len(programs) / (time.perf_counter() - start)


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
        pool_svg = run_pool(pool, svgs, "svg")
        pool_py = run_pool(pool, pys, "python")
        info = pool.info
    base_svg = run_baseline(svgs[: args.baseline_svg], BASELINE_SVG)
    base_py = run_baseline(pys[: args.baseline_python], BASELINE_PY)

    print(
        f"machine: {os.cpu_count()} CPUs, pool workers: {args.workers}, pool start {started:.1f} s"
    )
    print(
        f"sandbox: seccomp={info.get('seccomp')} private network namespace={info.get('netns')} "
        f"landlock ABI={info.get('landlock')}"
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
