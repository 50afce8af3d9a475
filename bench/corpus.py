"""A realistic corpus (generated at run time, nothing committed): the sandbox against plain
cairosvg and against a fresh interpreter per matplotlib program.

    python bench/corpus.py [--svg 400] [--python 40] [--workers 2] [--out DIR]

SVG documents are written the way people and models write them: XML declarations and DOCTYPE
headers, hyperlinks, RDF metadata, editor namespaces, title/desc, CSS classes and
``@namespace``, font families and weights, linear and radial gradients (with local
templates), markers, patterns, clip paths, filters, symbols, embedded ``data:`` PNGs, and a few
references to outside images (every 50th document, 2 %), which plain cairosvg silently drops
and the sandbox refuses. Matplotlib programs are gallery-style scripts (legends, markers, fonts, mathtext,
colour bars, dates, polar, subplots, annotations), one of which makes a network call.

Prints the ok count and wall time of: the sandbox pool (``--workers`` warm workers), plain
``cairosvg.svg2png`` in ``--plain-processes`` processes (default: as many; safe URL fetcher, no
limits), and a fresh
``python`` per matplotlib program (no sandbox). ``--out`` also writes the corpus there.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from workload import FRESH_PYTHON

from evovlm.render import RenderConfig, RenderPool

FONTS = (
    "serif",
    "sans-serif",
    "monospace",
    "Arial",
    "Helvetica, Arial, sans-serif",
    "'Times New Roman', Times, serif",
    "DejaVu Sans",
    "Courier New",
    "Verdana",
)
DOCTYPES = (
    "",
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">',
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 20010904//EN" "http://www.w3.org/TR/2001/REC-SVG-20010904/DTD/svg10.dtd">',
    "<!DOCTYPE svg>",
)
XML_DECLS = ("", '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" standalone="no"?>')
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "navy", "teal")


# <defs> entries a document may hold, with their odds, in the order it draws them.
OPTIONAL_DEFS = (
    (
        0.3,
        '<radialGradient id="r1" cx="50%" cy="50%" r="50%">'
        '<stop offset="0%" stop-color="yellow"/><stop offset="100%" stop-color="orange"/>'
        "</radialGradient>",
    ),
    (
        0.4,
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>',
    ),
    (
        0.2,
        '<pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse">'
        '<path d="M0,8 L8,0" stroke="gray"/></pattern>',
    ),
    (
        0.2,
        '<filter id="blur"><feGaussianBlur stdDeviation="2"/></filter>'
        '<clipPath id="clip"><rect width="50%" height="100%"/></clipPath>',
    ),
    (0.2, '<symbol id="dot" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4"/></symbol>'),
)


def _png_data_url(rng: random.Random) -> str:
    from PIL import Image

    img = Image.new("RGB", (8, 8), rng.choice(PALETTE))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def svg_document(i: int, rng: random.Random) -> str:
    w, h = rng.choice(((400, 300), (640, 480), (300, 300), (800, 400)))
    head = rng.choice(XML_DECLS)
    doctype = rng.choice(DOCTYPES)
    sized = rng.random() < 0.8
    attrs = f'width="{w}" height="{h}" ' if sized else ""
    ns = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
    extra_ns = ""
    parts: list[str] = []
    if rng.random() < 0.5:
        parts.append(f"<title>Figure {i}</title>")
    if rng.random() < 0.3:
        parts.append(
            f'<desc>Made for the report; see <a xlink:href="https://example.org/r/{i}">the source</a>.</desc>'
        )
    if rng.random() < 0.3:
        extra_ns += (
            ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            ' xmlns:cc="http://creativecommons.org/ns#" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        )
        parts.append(
            '<metadata><rdf:RDF><cc:Work rdf:about=""><dc:format>image/svg+xml</dc:format>'
            '<dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/>'
            '<cc:license rdf:resource="http://creativecommons.org/licenses/by/4.0/"/>'
            "</cc:Work></rdf:RDF></metadata>"
        )
    if rng.random() < 0.2:
        extra_ns += (
            ' xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"'
            ' xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"'
        )
        attrs += f'sodipodi:docname="drawing{i}.svg" inkscape:version="1.3" '
        parts.append('<sodipodi:namedview id="base" pagecolor="#ffffff" inkscape:zoom="1"/>')
    font = rng.choice(FONTS)
    defs = []
    if rng.random() < 0.4:
        defs.append(
            '<linearGradient id="g1" x1="0" y1="0" x2="0" y2="1">'
            f'<stop offset="0" stop-color="{rng.choice(PALETTE)}"/><stop offset="1" stop-color="white"/>'
            "</linearGradient>"
            '<linearGradient id="g2" xlink:href="#g1" gradientTransform="rotate(45)"/>'
        )
    for odds, entry in OPTIONAL_DEFS:
        if rng.random() < odds:
            defs.append(entry)
    if defs:
        parts.append("<defs>" + "".join(defs) + "</defs>")
    if rng.random() < 0.4:
        ns_rule = "@namespace url(http://www.w3.org/2000/svg); " if rng.random() < 0.3 else ""
        parts.append(
            f"<style>{ns_rule}.label {{ font-family: {font}; font-size: 14px; fill: #333 }}"
            " .bar { stroke: black; stroke-width: 1 } .title { font-weight: bold }</style>"
        )
    parts.append(f'<rect width="{w}" height="{h}" fill="{rng.choice(("white", "#f8f8f8"))}"/>')
    kind = rng.choice(("bars", "line", "pie", "diagram"))
    n = rng.randint(3, 8)
    values = [rng.randint(5, h - 80) for _ in range(n)]
    fill = "url(#g1)" if "g1" in "".join(defs) and rng.random() < 0.5 else rng.choice(PALETTE)
    if kind == "bars":
        step = (w - 80) // n
        for k, v in enumerate(values):
            parts.append(
                f'<rect class="bar" x="{50 + k * step}" y="{h - 40 - v}" width="{step - 10}" '
                f'height="{v}" fill="{fill if k % 2 else rng.choice(PALETTE)}"/>'
            )
            parts.append(
                f'<text class="label" x="{50 + k * step + step // 2 - 5}" y="{h - 22}" '
                f'text-anchor="middle" font-family="{font}">{chr(65 + k)}</text>'
            )
    elif kind == "line":
        step = (w - 80) // (n - 1)
        points = " ".join(f"{50 + k * step},{h - 40 - v}" for k, v in enumerate(values))
        marker = ' marker-end="url(#arrow)"' if "arrow" in "".join(defs) else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{rng.choice(PALETTE)}" stroke-width="3"{marker}/>'
        )
        for k, v in enumerate(values):
            parts.append(f'<circle cx="{50 + k * step}" cy="{h - 40 - v}" r="4" fill="black"/>')
        parts.append(f'<line x1="40" y1="{h - 40}" x2="{w - 20}" y2="{h - 40}" stroke="black"/>')
    elif kind == "pie":
        import math

        total, angle = sum(values), 0.0
        cx, cy, r = w / 2, h / 2, min(w, h) / 3
        for k, v in enumerate(values):
            a2 = angle + 2 * math.pi * v / total
            large = 1 if a2 - angle > math.pi else 0
            x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
            x2, y2 = cx + r * math.cos(a2), cy + r * math.sin(a2)
            parts.append(
                f'<path d="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} A{r:.1f},{r:.1f} 0 {large} 1 '
                f'{x2:.1f},{y2:.1f} z" fill="{PALETTE[k % len(PALETTE)]}" stroke="white"/>'
            )
            angle = a2
    else:
        for k in range(n):
            x, y = 40 + (k % 4) * (w - 80) // 4, 60 + (k // 4) * 120
            style = ' fill="url(#r1)"' if "r1" in "".join(defs) else ' fill="#def"'
            parts.append(
                f'<rect x="{x}" y="{y}" width="{(w - 80) // 5}" height="50" rx="8"{style} stroke="#369"/>'
            )
            parts.append(
                f'<text x="{x + 10}" y="{y + 30}" font-family="{font}" '
                f'font-weight="{rng.choice(("normal", "bold"))}" font-size="13">Step {k + 1}</text>'
            )
        if "arrow" in "".join(defs):
            parts.append(
                f'<path d="M60,{h - 30} C{w / 3},{h - 90} {w / 2},{h - 10} {w - 60},{h - 50}" '
                'stroke="black" fill="none" marker-end="url(#arrow)"/>'
            )
    if "hatch" in "".join(defs):
        parts.append('<rect x="10" y="10" width="60" height="30" fill="url(#hatch)"/>')
    if "blur" in "".join(defs):
        parts.append(
            '<circle cx="40" cy="40" r="20" fill="orange" filter="url(#blur)" clip-path="url(#clip)"/>'
        )
    if "dot" in "".join(defs):
        parts.append('<use xlink:href="#dot" x="10" y="10" width="20" height="20"/>')
    if rng.random() < 0.1:
        parts.append(
            f'<image x="5" y="5" width="24" height="24" xlink:href="{_png_data_url(rng)}"/>'
        )
    if i % 50 == 49:  # 2 %: the outside picture a model copies from the web
        parts.append(
            '<image x="0" y="0" width="40" height="40" href="https://example.com/logo.png"/>'
        )
    title = (
        f'<text class="title" x="{w / 2}" y="24" text-anchor="middle" font-family="{font}" '
        f'font-size="18">Chart {i} &amp; notes &#8212; 2024</text>'
    )
    if rng.random() < 0.35:
        title = f'<a xlink:href="https://example.org/chart/{i}" target="_blank">{title}</a>'
    parts.append(title)
    view = f'viewBox="0 0 {w} {h}"'
    body = f"<svg {ns}{extra_ns} {attrs}{view}>" + "".join(parts) + "</svg>"
    return "\n".join(p for p in (head, doctype, body) if p)


PY_PROGRAMS = [
    # (name, code)
    (
        "line-markers-legend",
        "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.linspace(0, 10, 50)\n"
        "fig, ax = plt.subplots(figsize=(6, 4))\nax.plot(x, np.sin(x), 'o-', label='sin')\n"
        "ax.plot(x, np.cos(x), 's--', markersize=4, label='cos')\nax.set_xlabel('t (s)')\n"
        "ax.set_ylabel('amplitude')\nax.set_title('Waves', fontweight='bold')\nax.legend(loc='upper right')\n"
        "ax.grid(alpha=0.3)\nplt.tight_layout()\nplt.show()\n",
    ),
    (
        "grouped-bars",
        "import numpy as np\nimport matplotlib.pyplot as plt\nlabels = ['G1', 'G2', 'G3', 'G4']\n"
        "men = [20, 34, 30, 35]\nwomen = [25, 32, 34, 20]\nx = np.arange(len(labels))\nwidth = 0.35\n"
        "fig, ax = plt.subplots()\nr1 = ax.bar(x - width/2, men, width, label='Men')\n"
        "r2 = ax.bar(x + width/2, women, width, label='Women')\nax.set_xticks(x, labels)\n"
        "ax.bar_label(r1, padding=3)\nax.bar_label(r2, padding=3)\nax.legend()\nplt.savefig('bars.png')\n",
    ),
    (
        "scatter-colorbar",
        "import numpy as np\nimport matplotlib.pyplot as plt\nrng = np.random.default_rng(1)\n"
        "x, y, c = rng.random((3, 100))\nfig, ax = plt.subplots()\nsc = ax.scatter(x, y, c=c, s=80*c, cmap='viridis', alpha=0.7)\n"
        "fig.colorbar(sc, ax=ax, label='value')\nax.set_title('Scatter')\n",
    ),
    (
        "histogram",
        "import numpy as np\nimport matplotlib.pyplot as plt\nrng = np.random.default_rng(0)\n"
        "data = rng.normal(170, 10, 500)\nplt.hist(data, bins=30, color='skyblue', edgecolor='black')\n"
        "plt.axvline(data.mean(), color='red', linestyle='--', label=f'mean {data.mean():.1f}')\n"
        "plt.legend()\nplt.xlabel('height (cm)')\nplt.ylabel('count')\n",
    ),
    (
        "pie-explode",
        "import matplotlib.pyplot as plt\nsizes = [15, 30, 45, 10]\nlabels = ['Frogs', 'Hogs', 'Dogs', 'Logs']\n"
        "fig, ax = plt.subplots()\nax.pie(sizes, explode=(0, 0.1, 0, 0), labels=labels, autopct='%1.1f%%', shadow=True, startangle=90)\n"
        "ax.axis('equal')\n",
    ),
    (
        "subplots-grid",
        "import numpy as np\nimport matplotlib.pyplot as plt\nfig, axs = plt.subplots(2, 2, figsize=(8, 6))\n"
        "x = np.linspace(0, 2 * np.pi, 100)\nfor i, ax in enumerate(axs.flat):\n"
        "    ax.plot(x, np.sin((i + 1) * x), color=f'C{i}')\n    ax.set_title(f'n = {i + 1}')\n"
        "fig.suptitle('Harmonics')\nfig.tight_layout()\n",
    ),
    (
        "errorbar",
        "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.arange(1, 8)\ny = x ** 1.5\n"
        "plt.errorbar(x, y, yerr=0.2 * y, fmt='o', capsize=4, ecolor='gray')\nplt.title('Measurements')\n",
    ),
    (
        "fill-between",
        "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.linspace(0, 5, 100)\ny = np.exp(-x)\n"
        "plt.plot(x, y, 'k')\nplt.fill_between(x, y - 0.1, y + 0.1, alpha=0.3, color='orange')\n",
    ),
    (
        "annotate-arrows",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3, 4], [1, 4, 2, 3])\n"
        "ax.annotate('peak', xy=(2, 4), xytext=(3, 3.8), arrowprops=dict(facecolor='black', shrink=0.05))\n"
        "ax.set_ylim(0, 5)\n",
    ),
    (
        "fonts-mathtext",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
        "ax.text(0.1, 0.8, 'Serif title', family='serif', fontsize=16)\n"
        "ax.text(0.1, 0.6, 'monospace code()', family='monospace')\n"
        "ax.text(0.1, 0.4, r'$E = mc^2$, $\\alpha_i^2 + \\sqrt{\\beta}$', fontsize=14)\n"
        "ax.text(0.1, 0.2, 'Bold italic', fontweight='bold', fontstyle='italic')\nax.set_axis_off()\n",
    ),
    (
        "log-scale",
        "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.logspace(0, 4, 30)\n"
        "plt.loglog(x, x ** 2, 'r^-', label='$x^2$')\nplt.loglog(x, x ** 1.5, 'bv-', label='$x^{1.5}$')\n"
        "plt.legend()\nplt.grid(True, which='both', ls=':')\n",
    ),
    (
        "dates",
        "import datetime\nimport matplotlib.pyplot as plt\nimport matplotlib.dates as mdates\n"
        "days = [datetime.date(2024, 1, 1) + datetime.timedelta(days=7 * k) for k in range(20)]\n"
        "vals = [k % 7 + k / 3 for k in range(20)]\nfig, ax = plt.subplots()\nax.plot(days, vals, marker='o')\n"
        "ax.xaxis.set_major_formatter(mdates.DateFormatter('%b %d'))\nfig.autofmt_xdate()\n",
    ),
    (
        "heatmap-annotated",
        "import numpy as np\nimport matplotlib.pyplot as plt\nrng = np.random.default_rng(2)\n"
        "data = rng.integers(0, 10, (5, 6))\nfig, ax = plt.subplots()\nim = ax.imshow(data, cmap='YlGn')\n"
        "for i in range(5):\n    for j in range(6):\n        ax.text(j, i, data[i, j], ha='center', va='center')\n"
        "fig.colorbar(im)\nax.set_xticks(range(6), [f'c{j}' for j in range(6)])\n",
    ),
    (
        "polar",
        "import numpy as np\nimport matplotlib.pyplot as plt\nr = np.arange(0, 2, 0.01)\ntheta = 2 * np.pi * r\n"
        "ax = plt.subplot(projection='polar')\nax.plot(theta, r)\nax.set_rmax(2)\nax.set_title('Polar')\n",
    ),
    (
        "stackplot",
        "import matplotlib.pyplot as plt\nyears = [2018, 2019, 2020, 2021, 2022]\n"
        "a = [1, 2, 3, 4, 5]\nb = [2, 2, 3, 3, 4]\nc = [1, 3, 2, 4, 3]\n"
        "plt.stackplot(years, a, b, c, labels=['A', 'B', 'C'])\nplt.legend(loc='upper left')\n",
    ),
    (
        "box-violin",
        "import numpy as np\nimport matplotlib.pyplot as plt\nrng = np.random.default_rng(3)\n"
        "data = [rng.normal(0, s, 100) for s in (1, 2, 3)]\nfig, (a, b) = plt.subplots(1, 2, figsize=(8, 4))\n"
        "a.boxplot(data)\nb.violinplot(data, showmeans=True)\n",
    ),
    (
        "twin-axes",
        "import numpy as np\nimport matplotlib.pyplot as plt\nt = np.arange(0.01, 10, 0.1)\n"
        "fig, ax1 = plt.subplots()\nax1.plot(t, np.exp(t / 3), 'b-')\nax1.set_ylabel('exp', color='b')\n"
        "ax2 = ax1.twinx()\nax2.plot(t, np.sin(t), 'r.')\nax2.set_ylabel('sin', color='r')\n",
    ),
    (
        "step-hatch",
        "import matplotlib.pyplot as plt\nplt.step([1, 2, 3, 4], [1, 3, 2, 4], where='mid')\n"
        "plt.bar([1, 2, 3], [1, 2, 1], hatch='//', fill=False)\n",
    ),
    (
        "horizontal-bars",
        "import matplotlib.pyplot as plt\npeople = ('Tom', 'Dick', 'Harry', 'Slim', 'Jim')\n"
        "perf = [3, 8, 5, 9, 4]\nfig, ax = plt.subplots()\nax.barh(people, perf, xerr=[0.5] * 5, align='center')\n"
        "ax.invert_yaxis()\nax.set_xlabel('Performance')\n",
    ),
    (
        "contour",
        "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.linspace(-3, 3, 80)\n"
        "X, Y = np.meshgrid(x, x)\nZ = np.exp(-X**2 - Y**2)\ncs = plt.contourf(X, Y, Z, levels=10, cmap='coolwarm')\n"
        "plt.contour(X, Y, Z, colors='k', linewidths=0.5)\nplt.colorbar(cs)\n",
    ),
    (
        "table-chart",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.axis('off')\n"
        "ax.table(cellText=[['1', '2'], ['3', '4']], colLabels=['A', 'B'], loc='center')\n"
        "ax.set_title('Table')\n",
    ),
    (
        "3d-surface",
        "import numpy as np\nimport matplotlib.pyplot as plt\nfig = plt.figure()\n"
        "ax = fig.add_subplot(projection='3d')\nX, Y = np.meshgrid(np.linspace(-2, 2, 30), np.linspace(-2, 2, 30))\n"
        "ax.plot_surface(X, Y, np.sin(X * Y), cmap='viridis')\n",
    ),
    (
        "network-call",
        "import urllib.request\nimport matplotlib.pyplot as plt\n"
        "data = urllib.request.urlopen('https://example.com/data.csv').read()\nplt.plot([1, 2])\n",
    ),
]


def python_programs(n: int) -> list[tuple[str, str]]:
    """``n`` programs: the gallery list, then variants of it with other colours and sizes."""
    out = []
    for i in range(n):
        name, code = PY_PROGRAMS[i % len(PY_PROGRAMS)]
        if i >= len(PY_PROGRAMS):
            code = (
                f"import matplotlib\nmatplotlib.rcParams['lines.linewidth'] = {1 + i % 3}\n" + code
            )
        out.append((f"{name}-{i}", code))
    return out


def _plain_cairosvg(svg: str) -> bool:
    import cairosvg

    try:
        png = cairosvg.svg2png(bytestring=svg.encode(), output_width=448)
    except Exception:  # noqa: BLE001 - counted as not ok
        return False
    return bool(png) and png.startswith(b"\x89PNG")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--svg", type=int, default=400)
    parser.add_argument("--python", type=int, default=len(PY_PROGRAMS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--plain-processes", type=int, default=0, help="for plain cairosvg (0: as --workers)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the corpus to this folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    svgs = [svg_document(i, rng) for i in range(args.svg)]
    pys = python_programs(args.python)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for i, svg in enumerate(svgs):
            with open(os.path.join(args.out, f"doc{i:04d}.svg"), "w") as fh:
                fh.write(svg)
        for name, code in pys:
            with open(os.path.join(args.out, f"{name}.py"), "w") as fh:
                fh.write(code)

    with RenderPool(RenderConfig(), workers=args.workers) as pool:
        pool.render(svgs[0], "svg")  # warm
        start = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as ex:
            svg_results = list(ex.map(lambda s: pool.render(s, "svg"), svgs))
        svg_pool_s = time.perf_counter() - start
        start = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as ex:
            py_results = list(ex.map(lambda p: pool.render(p[1], "python"), pys))
        py_pool_s = time.perf_counter() - start

    start = time.perf_counter()
    with ProcessPoolExecutor(args.plain_processes or args.workers) as ex:
        plain = list(ex.map(_plain_cairosvg, svgs, chunksize=8))
    plain_s = time.perf_counter() - start

    env = dict(os.environ, MPLBACKEND="Agg")
    with tempfile.TemporaryDirectory() as mplconfig:
        env["MPLCONFIGDIR"] = mplconfig

        def fresh(code: str) -> bool:
            out = subprocess.run(
                [sys.executable, "-c", FRESH_PYTHON],
                input=code.encode(),
                env=env,
                capture_output=True,
                cwd=mplconfig,  # files the programs save stay out of the checkout
            )
            return out.returncode == 0 and out.stdout.startswith(b"\x89PNG")

        if pys:
            fresh(pys[0][1])  # font cache
        start = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as ex:
            fresh_ok = list(ex.map(lambda p: fresh(p[1]), pys))
        fresh_s = time.perf_counter() - start

    svg_status = Counter(r.status for r in svg_results)
    py_status = Counter(r.status for r in py_results)
    print(
        f"corpus: {len(svgs)} SVG documents, {len(pys)} matplotlib programs; "
        f"{args.workers} sandbox workers"
    )
    print(f"{'':34s}{'ok':>7s}{'wall s':>9s}")
    print(f"{'SVG, sandbox pool':34s}{svg_status['ok']:7d}{svg_pool_s:9.1f}")
    plain_name = f"SVG, plain cairosvg ({args.plain_processes or args.workers} proc.)"
    print(f"{plain_name:34s}{sum(plain):7d}{plain_s:9.1f}")
    print(f"{'matplotlib, sandbox pool':34s}{py_status['ok']:7d}{py_pool_s:9.1f}")
    print(f"{'matplotlib, fresh python each':34s}{sum(fresh_ok):7d}{fresh_s:9.1f}")
    print("SVG statuses: " + ", ".join(f"{s}={n}" for s, n in svg_status.most_common()))
    print("matplotlib statuses: " + ", ".join(f"{s}={n}" for s, n in py_status.most_common()))
    for (name, _), r, ok in zip(pys, py_results, fresh_ok, strict=True):
        if r.status != "ok" or not ok:
            print(f"  {name}: sandbox {r.status} ({r.error}), fresh python ok={ok}")
    for r, ok in zip(svg_results, plain, strict=True):
        if r.status != "ok" and ok:
            print(f"  svg refused, plain ok: {r.status}: {r.error}")


if __name__ == "__main__":
    main()
