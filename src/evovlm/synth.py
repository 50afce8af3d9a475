"""Procedural visual-reasoning items with exact answers.

Every item is drawn from a small JSON-serialisable ``data`` dict (labels, values, coordinates, and the
two question specs); the answers, the caption, a standalone SVG and an equivalent matplotlib program are
all computed from that same dict. One item depends only on ``(seed, index, kind)`` through its own
``random.Random``, so items are byte-identical across runs and independent of ``n``.

Items serve as the built-in evaluation benchmark and, through :func:`item_to_proposal_fields`, as
warm-up examples for every MM-Zero role.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

KINDS: tuple[str, ...] = (
    "bar_chart",
    "line_chart",
    "pie_chart",
    "shape_count",
    "right_triangle",
    "rectangle",
    "table",
)

# each item kind's content type (one of evovlm.parse.CONTENT_TYPES)
KIND_CONTENT_TYPE: dict[str, str] = {
    "bar_chart": "data_chart",
    "line_chart": "data_chart",
    "pie_chart": "data_chart",
    "shape_count": "other",
    "right_triangle": "geometry",
    "rectangle": "geometry",
    "table": "table",
}

WIDTH, HEIGHT = 320, 240
PALETTE = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
)
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"


@dataclass(frozen=True)
class SynthItem:
    """One picture with an easy and a hard question and their exact answers."""

    item_id: str
    kind: str
    content_type: str
    caption: str
    easy_question: str
    easy_answer: str
    hard_question: str
    hard_answer: str
    data: dict[str, Any] = field(repr=False)
    svg: str = field(repr=False)
    python: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _fmt(x: float) -> str:
    """A coordinate: whole pixels (short programs are what a small Coder can learn to write)."""
    return str(round(x))


def _round1(x: float) -> str:
    return f"{x:.1f}"


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 11,
    anchor: str = "middle",
    weight: str = "normal",
    fill: str = "#000000",
) -> str:
    # font-family and text-anchor="middle" are inherited from the <svg> element; only what
    # differs from those defaults (and from black, normal weight) is written.
    bold = ' font-weight="bold"' if weight == "bold" else ""
    anchor_attr = "" if anchor == "middle" else f' text-anchor="{anchor}"'
    fill_attr = "" if fill == "#000000" else f' fill="{fill}"'
    return (
        f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-size="{size}"{bold}{anchor_attr}{fill_attr}>'
        f"{escape(str(text))}</text>"
    )


def _svg(body: list[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    """An SVG document of ``width`` x ``height`` on white around ``body``."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family={quoteattr(FONT)} text-anchor="middle">'
    )
    background = f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
    return "\n".join([head, background, *body, "</svg>"]) + "\n"


def _program(lines: list[str]) -> str:
    """A matplotlib program: the pyplot import, a blank line, then ``lines``."""
    return "\n".join(["import matplotlib.pyplot as plt", "", *lines]) + "\n"


def _assign(**values: Any) -> list[str]:
    """Program lines that bind each name to its value's ``repr``."""
    return [f"{name} = {value!r}" for name, value in values.items()]


_FIGURE = f"fig, ax = plt.subplots(figsize=({WIDTH / 100}, {HEIGHT / 100}), dpi=100)"
# A figure of the picture's size whose axes the program places itself.
_CANVAS = f"fig = plt.figure(figsize=({WIDTH / 100}, {HEIGHT / 100}), dpi=100)"


# ---------------------------------------------------------------------------------------------
# Bar chart

_BAR_THEMES = (
    ("Books sold per store", ("North", "South", "East", "West", "Central", "Harbor")),
    ("Cups of coffee sold per day", ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat")),
    ("Students per club", ("Chess", "Drama", "Music", "Coding", "Art", "Chorus")),
    ("Trees planted per village", ("Ashby", "Birch", "Cedar", "Dale", "Elmton", "Fernly")),
    ("Fruit harvested (kg)", ("Apples", "Pears", "Plums", "Kiwis", "Figs", "Grapes")),
)


def _bar_sample(rng: random.Random) -> dict[str, Any]:
    title, pool = rng.choice(_BAR_THEMES)
    k = rng.randint(4, 6)
    labels = [pool[i] for i in sorted(rng.sample(range(len(pool)), k))]
    values = rng.sample(range(5, 100), k)  # distinct: tallest and shortest are unique
    easy = {"type": "value", "label": rng.choice(labels)}
    hard_type = rng.choice(("range", "sum", "difference"))
    if hard_type == "range":
        hard: dict[str, Any] = {"type": "range"}
    else:
        a, b = rng.sample(labels, 2)
        if hard_type == "difference" and values[labels.index(a)] < values[labels.index(b)]:
            a, b = b, a
        hard = {"type": hard_type, "labels": [a, b]}
    return {"title": title, "labels": labels, "values": values, "easy": easy, "hard": hard}


def _bar_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    value = dict(zip(data["labels"], data["values"], strict=True))
    if q["type"] == "value":
        return f"What is the value of the bar labelled {q['label']}?", str(value[q["label"]])
    if q["type"] == "range":
        spread = max(data["values"]) - min(data["values"])
        return "How much larger is the tallest bar than the shortest bar?", str(spread)
    a, b = q["labels"]
    if q["type"] == "sum":
        return f"What is the sum of the values of {a} and {b}?", str(value[a] + value[b])
    if q["type"] == "difference":
        return f"How much larger is the value of {a} than the value of {b}?", str(
            value[a] - value[b]
        )
    raise ValueError(f"unknown bar question {q['type']!r}")


def _bar_caption(data: dict[str, Any]) -> str:
    pairs = ", ".join(f"{lab} = {v}" for lab, v in zip(data["labels"], data["values"], strict=True))
    return (
        f"A vertical bar chart titled '{data['title']}' with {len(data['labels'])} bars, left to "
        f"right: {pairs}. Each bar has a different colour, its value printed just above it and its "
        "category name below it; the y axis runs from 0 to 100."
    )


def _bar_svg(data: dict[str, Any]) -> str:
    labels, values = data["labels"], data["values"]
    x0, x1, base, scale = 40.0, 310.0, 205.0, 1.55
    slot = (x1 - x0) / len(labels)
    body = [
        _text(WIDTH / 2, 20, data["title"], size=13, weight="bold"),
        f'<line x1="{_fmt(x0)}" y1="{_fmt(base)}" x2="{_fmt(x1)}" y2="{_fmt(base)}" '
        'stroke="#000000"/>',
        f'<line x1="{_fmt(x0)}" y1="{_fmt(base)}" x2="{_fmt(x0)}" y2="{_fmt(base - 100 * scale)}" '
        'stroke="#000000"/>',
    ]
    for tick in (0, 50, 100):
        y = base - tick * scale
        body.append(
            f'<line x1="{_fmt(x0 - 4)}" y1="{_fmt(y)}" x2="{_fmt(x0)}" y2="{_fmt(y)}" '
            'stroke="#000000"/>'
        )
        body.append(_text(x0 - 6, y + 3, str(tick), size=8, anchor="end", fill="#444444"))
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        width = slot * 0.6
        x = x0 + i * slot + (slot - width) / 2
        h = value * scale
        body.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(base - h)}" width="{_fmt(width)}" height="{_fmt(h)}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        body.append(_text(x + width / 2, base - h - 4, str(value), size=11, weight="bold"))
        body.append(_text(x + width / 2, base + 15, label, size=10))
    return _svg(body)


def _bar_python(data: dict[str, Any]) -> str:
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(data["labels"]))]
    return _program(
        [
            *_assign(labels=data["labels"], values=data["values"], colors=colors),
            _FIGURE,
            "bars = ax.bar(labels, values, color=colors, width=0.6)",
            "for bar, value in zip(bars, values):",
            "    ax.text(bar.get_x() + bar.get_width() / 2, value + 2, str(value),",
            '            ha="center", va="bottom", fontsize=8, fontweight="bold")',
            "ax.set_ylim(0, 115)",
            "ax.set_yticks([0, 50, 100])",
            "ax.tick_params(labelsize=7)",
            f"ax.set_title({data['title']!r}, fontsize=9)",
            'ax.spines[["top", "right"]].set_visible(False)',
            "fig.tight_layout()",
        ]
    )


# ---------------------------------------------------------------------------------------------
# Line chart

_LINE_THEMES = (
    "Visitors per year (thousands)",
    "Average rainfall (mm)",
    "Members of the chess club",
    "Bicycles sold per year",
    "Price index",
)


def _line_sample(rng: random.Random) -> dict[str, Any]:
    title = rng.choice(_LINE_THEMES)
    k = rng.randint(5, 8)
    start = rng.randint(2000, 2016)
    years = list(range(start, start + k))
    while True:
        v = rng.randint(20, 80)
        values = []
        for _ in range(k):
            values.append(v)
            v = min(95, max(5, v + rng.randint(-15, 15)))
        if values.count(max(values)) == 1 and values.count(min(values)) == 1:
            break
    easy = {"type": rng.choice(("argmax", "argmin"))}
    if rng.random() < 0.5:
        hard: dict[str, Any] = {"type": "range"}
    else:
        y1, y2 = sorted(rng.sample(years, 2))
        hard = {"type": "change", "years": [y1, y2]}
    return {"title": title, "years": years, "values": values, "easy": easy, "hard": hard}


def _line_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    years, values = data["years"], data["values"]
    if q["type"] == "argmax":
        return "In which year is the value highest?", str(years[values.index(max(values))])
    if q["type"] == "argmin":
        return "In which year is the value lowest?", str(years[values.index(min(values))])
    if q["type"] == "range":
        return (
            "What is the difference between the highest and the lowest value?",
            str(max(values) - min(values)),
        )
    if q["type"] == "change":
        y1, y2 = q["years"]
        change = values[years.index(y2)] - values[years.index(y1)]
        return (
            f"By how much did the value change from {y1} to {y2}? "
            "Give a negative number for a decrease.",
            str(change),
        )
    raise ValueError(f"unknown line question {q['type']!r}")


def _line_caption(data: dict[str, Any]) -> str:
    pairs = ", ".join(f"{y}: {v}" for y, v in zip(data["years"], data["values"], strict=True))
    return (
        f"A line chart titled '{data['title']}' with one point per year from {data['years'][0]} "
        f"to {data['years'][-1]}, joined by a line: {pairs}. Each point is a dot with its value "
        "printed above it; the years are written along the x axis."
    )


def _line_points(data: dict[str, Any]) -> list[tuple[float, float]]:
    k = len(data["years"])
    x0, x1, base, scale = 35.0, 290.0, 205.0, 1.55
    step = (x1 - x0) / (k - 1)
    return [(x0 + i * step, base - v * scale) for i, v in enumerate(data["values"])]


def _line_svg(data: dict[str, Any]) -> str:
    points = _line_points(data)
    base = 205.0
    body = [
        _text(WIDTH / 2, 20, data["title"], size=13, weight="bold"),
        f'<line x1="25" y1="{_fmt(base)}" x2="310" y2="{_fmt(base)}" stroke="#000000"/>',
        '<polyline fill="none" stroke="#4C72B0" stroke-width="2" points="'
        + " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)
        + '"/>',
    ]
    for (x, y), year, value in zip(points, data["years"], data["values"], strict=True):
        body.append(f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="3.5" fill="#C44E52"/>')
        body.append(_text(x, y - 8, str(value), size=10, weight="bold"))
        body.append(_text(x, base + 15, str(year), size=9))
    return _svg(body)


def _line_python(data: dict[str, Any]) -> str:
    return _program(
        [
            *_assign(years=data["years"], values=data["values"]),
            _FIGURE,
            'ax.plot(years, values, color="#4C72B0", linewidth=2, marker="o",',
            '        markerfacecolor="#C44E52", markeredgecolor="#C44E52")',
            "for year, value in zip(years, values):",
            "    ax.text(year, value + 4, str(value), ha='center', va='bottom', fontsize=7,",
            "            fontweight='bold')",
            "ax.set_xticks(years)",
            "ax.set_ylim(0, 115)",
            "ax.tick_params(labelsize=6)",
            f"ax.set_title({data['title']!r}, fontsize=9)",
            'ax.spines[["top", "right"]].set_visible(False)',
            "fig.tight_layout()",
        ]
    )


# ---------------------------------------------------------------------------------------------
# Pie chart

_PIE_THEMES = (
    ("Favourite fruit of students", ("Apple", "Banana", "Cherry", "Grape", "Mango")),
    ("Household budget", ("Rent", "Food", "Travel", "Savings", "Other")),
    ("Electricity sources", ("Solar", "Wind", "Hydro", "Gas", "Coal")),
    ("How students get to school", ("Walk", "Bus", "Bike", "Car", "Train")),
)


def _pie_sample(rng: random.Random) -> dict[str, Any]:
    title, pool = rng.choice(_PIE_THEMES)
    k = rng.randint(3, 5)
    labels = list(rng.sample(pool, k))
    while True:
        cuts = sorted(rng.sample(range(1, 100), k - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        if min(shares) >= 6:
            break
    easy = {"type": "share", "label": rng.choice(labels)}
    a, b = rng.sample(labels, 2)
    share = dict(zip(labels, shares, strict=True))
    if rng.random() < 0.5 or share[a] == share[b]:
        hard: dict[str, Any] = {"type": "combined", "labels": [a, b]}
    else:
        if share[a] < share[b]:
            a, b = b, a
        hard = {"type": "difference", "labels": [a, b]}
    return {"title": title, "labels": labels, "shares": shares, "easy": easy, "hard": hard}


def _pie_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    share = dict(zip(data["labels"], data["shares"], strict=True))
    if q["type"] == "share":
        return f"What percentage of the total is {q['label']}?", str(share[q["label"]])
    a, b = q["labels"]
    if q["type"] == "combined":
        return f"What is the combined share of {a} and {b}, in percent?", str(share[a] + share[b])
    if q["type"] == "difference":
        return (
            f"How many percentage points larger is the share of {a} than the share of {b}?",
            str(share[a] - share[b]),
        )
    raise ValueError(f"unknown pie question {q['type']!r}")


def _pie_caption(data: dict[str, Any]) -> str:
    pairs = ", ".join(f"{lab} {s}%" for lab, s in zip(data["labels"], data["shares"], strict=True))
    return (
        f"A pie chart titled '{data['title']}' with {len(data['labels'])} slices, clockwise from "
        f"the top: {pairs}. Each slice has its own colour, and a legend to the right of the pie "
        "lists every slice's colour, name and percentage."
    )


def _pie_svg(data: dict[str, Any]) -> str:
    cx, cy, r = 105.0, 135.0, 85.0
    body = [_text(WIDTH / 2, 20, data["title"], size=13, weight="bold")]
    start = 0
    for i, (label, share) in enumerate(zip(data["labels"], data["shares"], strict=True)):
        a0 = 2 * math.pi * start / 100 - math.pi / 2
        a1 = 2 * math.pi * (start + share) / 100 - math.pi / 2
        large = 1 if share > 50 else 0
        color = PALETTE[i % len(PALETTE)]
        body.append(
            f'<path d="M {_fmt(cx)} {_fmt(cy)} L {_fmt(cx + r * math.cos(a0))} '
            f"{_fmt(cy + r * math.sin(a0))} A {_fmt(r)} {_fmt(r)} 0 {large} 1 "
            f'{_fmt(cx + r * math.cos(a1))} {_fmt(cy + r * math.sin(a1))} Z" fill="{color}" '
            'stroke="#ffffff" stroke-width="1.5"/>'
        )
        y = 75 + i * 26
        body.append(f'<rect x="205" y="{y - 11}" width="13" height="13" fill="{color}"/>')
        body.append(_text(224, y, f"{label}: {share}%", size=12, anchor="start"))
        start += share
    return _svg(body)


def _pie_python(data: dict[str, Any]) -> str:
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(data["labels"]))]
    return _program(
        [
            *_assign(labels=data["labels"], shares=data["shares"], colors=colors),
            _CANVAS,
            "ax = fig.add_axes([0.02, 0.02, 0.58, 0.82])",
            "wedges, _ = ax.pie(shares, colors=colors, startangle=90, counterclock=False,",
            '                   wedgeprops={"edgecolor": "white"})',
            'ax.set_aspect("equal")',
            'fig.legend(wedges, [f"{label}: {share}%" for label, share in zip(labels, shares)],',
            '           loc="center left", bbox_to_anchor=(0.6, 0.45), fontsize=8, frameon=False)',
            f"fig.suptitle({data['title']!r}, fontsize=9)",
        ]
    )


# ---------------------------------------------------------------------------------------------
# Counting shapes

_GRID_COLS, _GRID_ROWS, _CELL = 8, 6, 40


def _count_sample(rng: random.Random) -> dict[str, Any]:
    n_circles = rng.randint(2, 9)
    n_squares = rng.randint(1, 8)
    cells = rng.sample(range(_GRID_COLS * _GRID_ROWS), n_circles + n_squares)
    kinds = ["circle"] * n_circles + ["square"] * n_squares
    rng.shuffle(kinds)
    shapes = []
    for cell, kind in zip(cells, kinds, strict=True):
        col, row = cell % _GRID_COLS, cell // _GRID_COLS
        # Each shape stays inside its own 40 px cell (extent <= 13 + 5 < 20), so none overlap.
        shapes.append(
            {
                "shape": kind,
                "x": col * _CELL + _CELL // 2 + rng.randint(-5, 5),
                "y": row * _CELL + _CELL // 2 + rng.randint(-5, 5),
                "size": rng.randint(9, 13),  # radius, or half the side of a square
                "color": rng.choice(PALETTE),
            }
        )
    easy = {"type": "count", "shape": rng.choice(("circle", "square"))}
    if n_circles != n_squares and rng.random() < 0.5:
        hard: dict[str, Any] = {"type": "more"}
    else:
        hard = {"type": "total"}
    return {"shapes": shapes, "easy": easy, "hard": hard}


def _count_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    circles = sum(1 for s in data["shapes"] if s["shape"] == "circle")
    squares = sum(1 for s in data["shapes"] if s["shape"] == "square")
    if q["type"] == "count":
        count = circles if q["shape"] == "circle" else squares
        return f"How many {q['shape']}s are there in the picture?", str(count)
    if q["type"] == "total":
        return "How many shapes (circles and squares) are there in total?", str(circles + squares)
    if q["type"] == "more":
        more, fewer = ("circles", "squares") if circles > squares else ("squares", "circles")
        return f"How many more {more} than {fewer} are there?", str(abs(circles - squares))
    raise ValueError(f"unknown counting question {q['type']!r}")


def _count_caption(data: dict[str, Any]) -> str:
    circles = sum(1 for s in data["shapes"] if s["shape"] == "circle")
    squares = len(data["shapes"]) - circles
    return (
        f"{circles} filled circles and {squares} filled squares of assorted colours scattered "
        f"over a white {WIDTH}x{HEIGHT} canvas, none overlapping, with no text."
    )


def _count_svg(data: dict[str, Any]) -> str:
    body = []
    for s in data["shapes"]:
        if s["shape"] == "circle":
            body.append(
                f'<circle cx="{s["x"]}" cy="{s["y"]}" r="{s["size"]}" fill="{s["color"]}"/>'
            )
        else:
            body.append(
                f'<rect x="{s["x"] - s["size"]}" y="{s["y"] - s["size"]}" width="{2 * s["size"]}" '
                f'height="{2 * s["size"]}" fill="{s["color"]}"/>'
            )
    return _svg(body)


def _count_python(data: dict[str, Any]) -> str:
    shapes = [(s["shape"], s["x"], s["y"], s["size"], s["color"]) for s in data["shapes"]]
    return _program(
        [
            "# (shape, x, y, size, colour) in pixels, y pointing down",
            f"shapes = {shapes!r}",
            _CANVAS,
            "ax = fig.add_axes([0, 0, 1, 1])",
            "for shape, x, y, size, color in shapes:",
            '    if shape == "circle":',
            "        ax.add_patch(plt.Circle((x, y), size, color=color))",
            "    else:",
            "        ax.add_patch(plt.Rectangle((x - size, y - size), 2 * size, 2 * size, color=color))",
            f"ax.set_xlim(0, {WIDTH})",
            f"ax.set_ylim({HEIGHT}, 0)",
            'ax.set_aspect("equal")',
            'ax.axis("off")',
        ]
    )


# ---------------------------------------------------------------------------------------------
# Right triangle


def _triangle_sample(rng: random.Random) -> dict[str, Any]:
    base, height = rng.randint(3, 12), rng.randint(3, 12)
    easy = {"type": "leg", "which": rng.choice(("horizontal", "vertical"))}
    hard = {"type": rng.choice(("hypotenuse", "area", "perimeter"))}
    return {"base": base, "height": height, "unit": "cm", "easy": easy, "hard": hard}


def _triangle_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    a, b, unit = data["base"], data["height"], data["unit"]
    hyp = math.hypot(a, b)
    if q["type"] == "leg":
        length = a if q["which"] == "horizontal" else b
        return f"What is the length of the {q['which']} leg of the triangle, in {unit}?", str(
            length
        )
    if q["type"] == "hypotenuse":
        return (
            f"What is the length of the hypotenuse, in {unit}? Round to one decimal place.",
            _round1(hyp),
        )
    if q["type"] == "area":
        return (
            f"What is the area of the triangle, in square {unit}? Round to one decimal place.",
            _round1(a * b / 2),
        )
    if q["type"] == "perimeter":
        return (
            f"What is the perimeter of the triangle, in {unit}? Round to one decimal place.",
            _round1(a + b + hyp),
        )
    raise ValueError(f"unknown triangle question {q['type']!r}")


def _triangle_caption(data: dict[str, Any]) -> str:
    a, b, unit = data["base"], data["height"], data["unit"]
    return (
        f"A right triangle drawn to scale with the right angle at the bottom left, marked by a "
        f"small square. The horizontal leg is labelled '{a} {unit}', the vertical leg is labelled "
        f"'{b} {unit}', and the hypotenuse is labelled '?'."
    )


def _triangle_corners(data: dict[str, Any]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): right angle at (x0, y0), horizontal leg to x1, vertical leg up to y1."""
    s = min(200 / data["base"], 150 / data["height"])
    x0, y0 = 70.0, 200.0
    return x0, y0, x0 + data["base"] * s, y0 - data["height"] * s


def _triangle_svg(data: dict[str, Any]) -> str:
    x0, y0, x1, y1 = _triangle_corners(data)
    unit = data["unit"]
    m = 12.0
    body = [
        f'<polygon points="{_fmt(x0)},{_fmt(y0)} {_fmt(x1)},{_fmt(y0)} {_fmt(x0)},{_fmt(y1)}" '
        'fill="#dce9f5" stroke="#1f3b5a" stroke-width="2"/>',
        f'<polyline points="{_fmt(x0)},{_fmt(y0 - m)} {_fmt(x0 + m)},{_fmt(y0 - m)} '
        f'{_fmt(x0 + m)},{_fmt(y0)}" fill="none" stroke="#1f3b5a" stroke-width="1.5"/>',
        _text((x0 + x1) / 2, y0 + 20, f"{data['base']} {unit}", size=13, weight="bold"),
        _text(
            x0 - 8,
            (y0 + y1) / 2 + 4,
            f"{data['height']} {unit}",
            size=13,
            anchor="end",
            weight="bold",
        ),
        _text((x0 + x1) / 2 + 12, (y0 + y1) / 2 - 6, "?", size=14, anchor="start", weight="bold"),
    ]
    return _svg(body)


def _triangle_python(data: dict[str, Any]) -> str:
    x0, y0, x1, y1 = _triangle_corners(data)
    unit = data["unit"]
    return _program(
        [
            f"base, height = {data['base']}, {data['height']}",
            f"unit = {unit!r}",
            _CANVAS,
            "ax = fig.add_axes([0, 0, 1, 1])",
            "# pixel coordinates, y pointing down; right angle at (x0, y0)",
            f"x0, y0, x1, y1 = {_fmt(x0)}, {_fmt(y0)}, {_fmt(x1)}, {_fmt(y1)}",
            "ax.add_patch(plt.Polygon([(x0, y0), (x1, y0), (x0, y1)], facecolor='#dce9f5',",
            "                         edgecolor='#1f3b5a', linewidth=2))",
            "m = 12",
            "ax.plot([x0, x0 + m, x0 + m], [y0 - m, y0 - m, y0], color='#1f3b5a', linewidth=1.5)",
            "ax.text((x0 + x1) / 2, y0 + 8, f'{base} {unit}', ha='center', va='top',",
            "        fontsize=11, fontweight='bold')",
            "ax.text(x0 - 8, (y0 + y1) / 2, f'{height} {unit}', ha='right', va='center',",
            "        fontsize=11, fontweight='bold')",
            "ax.text((x0 + x1) / 2 + 12, (y0 + y1) / 2 - 6, '?', ha='left', va='bottom',",
            "        fontsize=12, fontweight='bold')",
            f"ax.set_xlim(0, {WIDTH})",
            f"ax.set_ylim({HEIGHT}, 0)",
            'ax.set_aspect("equal")',
            'ax.axis("off")',
        ]
    )


# ---------------------------------------------------------------------------------------------
# Rectangle


def _rect_sample(rng: random.Random) -> dict[str, Any]:
    width = rng.randint(3, 15)
    height = rng.choice([h for h in range(2, 11) if h != width])
    easy = {"type": "side", "which": rng.choice(("width", "height"))}
    hard = {"type": rng.choice(("area", "perimeter"))}
    return {"width": width, "height": height, "unit": "cm", "easy": easy, "hard": hard}


def _rect_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    w, h, unit = data["width"], data["height"], data["unit"]
    if q["type"] == "side":
        length = w if q["which"] == "width" else h
        return f"What is the {q['which']} of the rectangle, in {unit}?", str(length)
    if q["type"] == "area":
        return f"What is the area of the rectangle, in square {unit}?", str(w * h)
    if q["type"] == "perimeter":
        return f"What is the perimeter of the rectangle, in {unit}?", str(2 * (w + h))
    raise ValueError(f"unknown rectangle question {q['type']!r}")


def _rect_caption(data: dict[str, Any]) -> str:
    w, h, unit = data["width"], data["height"], data["unit"]
    return (
        f"A rectangle drawn to scale, {w} {unit} wide and {h} {unit} tall. The bottom side is "
        f"labelled '{w} {unit}' below it and the right side is labelled '{h} {unit}' beside it."
    )


def _rect_box(data: dict[str, Any]) -> tuple[float, float, float, float]:
    """(x, y, width, height) in pixels."""
    s = min(200 / data["width"], 150 / data["height"])
    pw, ph = data["width"] * s, data["height"] * s
    return (WIDTH - 60 - pw) / 2, (HEIGHT - ph) / 2 - 5, pw, ph


def _rect_svg(data: dict[str, Any]) -> str:
    x, y, pw, ph = _rect_box(data)
    unit = data["unit"]
    body = [
        f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(pw)}" height="{_fmt(ph)}" '
        'fill="#fbe3c8" stroke="#7a4a12" stroke-width="2"/>',
        _text(x + pw / 2, y + ph + 20, f"{data['width']} {unit}", size=13, weight="bold"),
        _text(
            x + pw + 8,
            y + ph / 2 + 4,
            f"{data['height']} {unit}",
            size=13,
            anchor="start",
            weight="bold",
        ),
    ]
    return _svg(body)


def _rect_python(data: dict[str, Any]) -> str:
    x, y, pw, ph = _rect_box(data)
    return _program(
        [
            f"width, height = {data['width']}, {data['height']}",
            f"unit = {data['unit']!r}",
            _CANVAS,
            "ax = fig.add_axes([0, 0, 1, 1])",
            "# pixel coordinates of the drawn rectangle, y pointing down",
            f"x, y, pw, ph = {_fmt(x)}, {_fmt(y)}, {_fmt(pw)}, {_fmt(ph)}",
            "ax.add_patch(plt.Rectangle((x, y), pw, ph, facecolor='#fbe3c8', edgecolor='#7a4a12',",
            "                           linewidth=2))",
            "ax.text(x + pw / 2, y + ph + 8, f'{width} {unit}', ha='center', va='top',",
            "        fontsize=11, fontweight='bold')",
            "ax.text(x + pw + 8, y + ph / 2, f'{height} {unit}', ha='left', va='center',",
            "        fontsize=11, fontweight='bold')",
            f"ax.set_xlim(0, {WIDTH})",
            f"ax.set_ylim({HEIGHT}, 0)",
            'ax.set_aspect("equal")',
            'ax.axis("off")',
        ]
    )


# ---------------------------------------------------------------------------------------------
# Table

_TABLE_THEMES = (
    ("Sales by quarter", ("North", "South", "East", "West"), ("Q1", "Q2", "Q3", "Q4")),
    ("Test scores", ("Ann", "Ben", "Cara", "Dev"), ("Math", "Art", "Music", "Sport")),
    ("Rainfall (mm)", ("Oslo", "Rome", "Lima", "Pune"), ("Jan", "Feb", "Mar", "Apr")),
    ("Goals per season", ("Lions", "Hawks", "Bears", "Wolves"), ("2021", "2022", "2023", "2024")),
)


def _table_sample(rng: random.Random) -> dict[str, Any]:
    title, row_pool, col_pool = rng.choice(_TABLE_THEMES)
    n_rows, n_cols = rng.randint(3, 4), rng.randint(3, 4)
    rows = [row_pool[i] for i in sorted(rng.sample(range(len(row_pool)), n_rows))]
    cols = [col_pool[i] for i in sorted(rng.sample(range(len(col_pool)), n_cols))]
    cells = [[rng.randint(1, 99) for _ in cols] for _ in rows]
    easy = {"type": "cell", "row": rng.choice(rows), "col": rng.choice(cols)}
    if rng.random() < 0.5:
        hard: dict[str, Any] = {"type": "row_sum", "row": rng.choice(rows)}
    else:
        hard = {"type": "col_max", "col": rng.choice(cols)}
    return {"title": title, "rows": rows, "cols": cols, "cells": cells, "easy": easy, "hard": hard}


def _table_question(data: dict[str, Any], q: dict[str, Any]) -> tuple[str, str]:
    rows, cols, cells = data["rows"], data["cols"], data["cells"]
    if q["type"] == "cell":
        value = cells[rows.index(q["row"])][cols.index(q["col"])]
        return f"In the table, what is the value in row {q['row']}, column {q['col']}?", str(value)
    if q["type"] == "row_sum":
        return (
            f"In the table, what is the sum of all values in row {q['row']}?",
            str(sum(cells[rows.index(q["row"])])),
        )
    if q["type"] == "col_max":
        j = cols.index(q["col"])
        return (
            f"In the table, what is the largest value in column {q['col']}?",
            str(max(row[j] for row in cells)),
        )
    raise ValueError(f"unknown table question {q['type']!r}")


def _table_caption(data: dict[str, Any]) -> str:
    row_text = "; ".join(
        f"{r}: " + ", ".join(f"{c} {v}" for c, v in zip(data["cols"], vals, strict=True))
        for r, vals in zip(data["rows"], data["cells"], strict=True)
    )
    return (
        f"A table titled '{data['title']}' with {len(data['rows'])} rows "
        f"({', '.join(data['rows'])}) and {len(data['cols'])} columns "
        f"({', '.join(data['cols'])}), headers in bold on a grey background. Values: {row_text}."
    )


def _table_svg(data: dict[str, Any]) -> str:
    rows, cols, cells = data["rows"], data["cols"], data["cells"]
    x0, y0, head_w, row_h = 20.0, 40.0, 80.0, 30.0
    col_w = (WIDTH - 2 * x0 - head_w) / len(cols)
    total_w = head_w + col_w * len(cols)
    total_h = row_h * (len(rows) + 1)
    body = [
        _text(WIDTH / 2, 22, data["title"], size=13, weight="bold"),
        f'<rect x="{_fmt(x0)}" y="{_fmt(y0)}" width="{_fmt(total_w)}" height="{_fmt(row_h)}" '
        'fill="#e6e6e6"/>',
        f'<rect x="{_fmt(x0)}" y="{_fmt(y0)}" width="{_fmt(head_w)}" height="{_fmt(total_h)}" '
        'fill="#e6e6e6"/>',
    ]
    for i in range(len(rows) + 2):
        y = y0 + i * row_h
        body.append(
            f'<line x1="{_fmt(x0)}" y1="{_fmt(y)}" x2="{_fmt(x0 + total_w)}" y2="{_fmt(y)}" '
            'stroke="#000000"/>'
        )
    for j in range(len(cols) + 2):
        x = x0 if j == 0 else x0 + head_w + (j - 1) * col_w
        body.append(
            f'<line x1="{_fmt(x)}" y1="{_fmt(y0)}" x2="{_fmt(x)}" y2="{_fmt(y0 + total_h)}" '
            'stroke="#000000"/>'
        )
    for j, col in enumerate(cols):
        body.append(_text(x0 + head_w + (j + 0.5) * col_w, y0 + 20, col, size=12, weight="bold"))
    for i, (row, vals) in enumerate(zip(rows, cells, strict=True)):
        y = y0 + (i + 1) * row_h + 20
        body.append(_text(x0 + head_w / 2, y, row, size=12, weight="bold"))
        for j, v in enumerate(vals):
            body.append(_text(x0 + head_w + (j + 0.5) * col_w, y, str(v), size=12))
    return _svg(body)


def _table_python(data: dict[str, Any]) -> str:
    return _program(
        [
            *_assign(rows=data["rows"], cols=data["cols"], cells=data["cells"]),
            _FIGURE,
            'ax.axis("off")',
            "text = [[row] + [str(v) for v in values] for row, values in zip(rows, cells)]",
            'table = ax.table(cellText=text, colLabels=[""] + cols, cellLoc="center",',
            "                 bbox=[0.03, 0.03, 0.94, 0.82])",
            "table.auto_set_font_size(False)",
            "table.set_fontsize(10)",
            "for (i, j), cell in table.get_celld().items():",
            "    if i == 0 or j == 0:",
            '        cell.set_facecolor("#e6e6e6")',
            '        cell.set_text_props(fontweight="bold")',
            f"ax.set_title({data['title']!r}, fontsize=10)",
        ]
    )


# ---------------------------------------------------------------------------------------------
# Registry and public API


@dataclass(frozen=True)
class _Kind:
    sample: Callable[[random.Random], dict[str, Any]]
    question: Callable[[dict[str, Any], dict[str, Any]], tuple[str, str]]
    caption: Callable[[dict[str, Any]], str]
    svg: Callable[[dict[str, Any]], str]
    python: Callable[[dict[str, Any]], str]


_REGISTRY: dict[str, _Kind] = {
    "bar_chart": _Kind(_bar_sample, _bar_question, _bar_caption, _bar_svg, _bar_python),
    "line_chart": _Kind(_line_sample, _line_question, _line_caption, _line_svg, _line_python),
    "pie_chart": _Kind(_pie_sample, _pie_question, _pie_caption, _pie_svg, _pie_python),
    "shape_count": _Kind(_count_sample, _count_question, _count_caption, _count_svg, _count_python),
    "right_triangle": _Kind(
        _triangle_sample, _triangle_question, _triangle_caption, _triangle_svg, _triangle_python
    ),
    "rectangle": _Kind(_rect_sample, _rect_question, _rect_caption, _rect_svg, _rect_python),
    "table": _Kind(_table_sample, _table_question, _table_caption, _table_svg, _table_python),
}


def make_item(seed: int, index: int, kind: str) -> SynthItem:
    """The item of ``kind`` at ``index`` for ``seed``; depends on nothing else."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown synth kind {kind!r}; known kinds: {', '.join(KINDS)}")
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and platforms.
    rng = random.Random(f"evovlm.synth:{seed}:{index}:{kind}")
    spec = _REGISTRY[kind]
    data = spec.sample(rng)
    easy_question, easy_answer = spec.question(data, data["easy"])
    hard_question, hard_answer = spec.question(data, data["hard"])
    return SynthItem(
        item_id=f"synth-{seed}-{index:05d}-{kind}",
        kind=kind,
        content_type=KIND_CONTENT_TYPE[kind],
        caption=spec.caption(data),
        easy_question=easy_question,
        easy_answer=easy_answer,
        hard_question=hard_question,
        hard_answer=hard_answer,
        data=data,
        svg=spec.svg(data),
        python=spec.python(data),
    )


def generate_items(n: int, seed: int, kinds: Sequence[str] | None = None) -> list[SynthItem]:
    """``n`` items; item ``i`` has kind ``kinds[i % len(kinds)]`` (all kinds by default)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    chosen = list(KINDS) if kinds is None else list(kinds)
    if not chosen:
        raise ValueError("kinds must name at least one kind")
    unknown = [k for k in chosen if k not in _REGISTRY]
    if unknown:
        raise ValueError(f"unknown synth kinds {unknown}; known kinds: {', '.join(KINDS)}")
    return [make_item(seed, i, chosen[i % len(chosen)]) for i in range(n)]


def item_to_proposal_fields(item: SynthItem) -> dict[str, str]:
    """The six MM-Zero Proposer fields of ``item``."""
    return {
        "content_type": item.content_type,
        "caption": item.caption,
        "easy_question": item.easy_question,
        "easy_answer": item.easy_answer,
        "hard_question": item.hard_question,
        "hard_answer": item.hard_answer,
    }


__all__ = [
    "KIND_CONTENT_TYPE",
    "KINDS",
    "SEE_CHANCE",
    "SEE_KINDS",
    "SEE_TOPICS",
    "SeeItem",
    "see_proposal_fields",
    "see_topic",
    "SynthItem",
    "generate_items",
    "generate_see_items",
    "item_to_proposal_fields",
    "make_item",
    "make_see_item",
    "see_benchmark_rows",
    "see_kind",
]


def write_demo_images(folder: str | Path, count: int, seed: int) -> int:
    """Render ``count`` items' SVGs (through the sandbox) as PNG files into ``folder``.

    A stand-in for a folder of raw images (EvoLMM's input) when none is configured. The
    folder is written to a temporary name and renamed, so it is never half-built.
    """
    import shutil

    from evovlm.render import RenderConfig, render_svg

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = RenderConfig(width=320, height=240)
    written = 0
    for item in generate_items(count, seed=seed):
        result = render_svg(item.svg, cfg)
        if result.ok:
            (tmp / f"{item.item_id}.png").write_bytes(result.png)
            written += 1
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return written


# ---------------------------------------------------------------------------------------------
# Simple pictures: what a base model must see before self-play can sharpen it
#
# One short question per picture with a one-word or one-number answer, asked in several
# phrasings (a model taught one template per kind keys on the template, not the picture). Each
# item carries its kind and the kind's chance level (1 / the number of possible answers), so an
# evaluation can say how far above guessing a policy reads each kind.

SEE_KINDS: tuple[str, ...] = ("shape", "colour", "count", "compare", "bar_value")
# the benchmark name of the simple-picture items (``eval.see_items``)
SEE_BENCHMARK = "see"
SEE_SIZE = 224  # square canvas: the warm-up's and the evaluation's renders keep its aspect
SEE_COLOURS: dict[str, str] = {
    "red": "#d62728",
    "orange": "#ff7f0e",
    "yellow": "#e8c800",
    "green": "#2ca02c",
    "blue": "#1f5fd0",
    "purple": "#8e44ad",
    "pink": "#f06eb4",
    "black": "#111111",
}
SEE_SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SEE_MAX_COUNT = 5
SEE_MAX_BAR = 5
SEE_CHANCE: dict[str, float] = {
    "shape": 1 / len(SEE_SHAPES),
    "colour": 1 / len(SEE_COLOURS),
    "count": 1 / SEE_MAX_COUNT,
    "compare": 1 / 2,
    "bar_value": 1 / SEE_MAX_BAR,
}
# Proposer seed topics (``mmzero.seed_topics``) that ask for these kinds: eight, as MM-Zero's
# default list has, so a round proposes as many pictures (config/see.yaml lists them).
SEE_TOPICS: tuple[str, ...] = (
    "the shape of one object: a circle, a square or a triangle",
    "the colour of one filled shape",
    "counting up to five shapes",
    "which of two shapes is bigger",
    "which of two bars is higher",
    "reading one bar's value on an axis labelled 0 to 5",
    "basic shape and object perception",
    "chart and graph understanding",
)

_SEE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "shape": (
        "What shape is shown in the picture?",
        "Which shape is this: circle, square or triangle?",
        "Name the shape in the image.",
        "What kind of shape do you see?",
        "Is the shape a circle, a square or a triangle?",
    ),
    "colour": (
        "What colour is the shape?",
        "Which colour does the {shape} have?",
        "Name the colour of the {shape} in the picture.",
        "What is the colour of the object shown?",
        "The {shape} is filled with which colour?",
    ),
    "count": (
        "How many shapes are there in the picture?",
        "Count the shapes. How many are there?",
        "How many objects can you see?",
        "What is the number of shapes in the image?",
        "How many {shape}s are in the picture?",
    ),
    "compare_size": (
        "Which shape is bigger, the left one or the right one?",
        "Is the left or the right shape larger?",
        "Which is bigger: the {a} {shape} or the {b} {shape}?",
        "Which {shape} is larger, the {a} one or the {b} one?",
    ),
    "compare_height": (
        "Which bar is higher, the left one or the right one?",
        "Is the left or the right bar taller?",
        "Which bar is taller: the {a} bar or the {b} bar?",
        "Which is higher, the {a} bar or the {b} bar?",
    ),
    "bar_value": (
        "What is the value of bar {label}?",
        "How high is bar {label} on the axis?",
        "Read the value of bar {label} from the chart.",
        "What number does bar {label} reach?",
        "Bar {label} goes up to which value?",
    ),
}


@dataclass(frozen=True)
class SeeItem:
    """One simple picture with one question, its exact one-word answer, its kind and chance."""

    item_id: str
    kind: str
    chance: float
    question: str
    answer: str
    caption: str
    data: dict[str, Any] = field(repr=False)
    svg: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _see_shape_svg(shape: str, cx: float, cy: float, r: float, fill: str) -> str:
    """A filled circle, square or upward triangle centred at (cx, cy), ``r`` its half-extent."""
    if shape == "circle":
        return f'<circle cx="{_fmt(cx)}" cy="{_fmt(cy)}" r="{_fmt(r)}" fill="{fill}"/>'
    if shape == "square":
        return (
            f'<rect x="{_fmt(cx - r)}" y="{_fmt(cy - r)}" width="{_fmt(2 * r)}" '
            f'height="{_fmt(2 * r)}" fill="{fill}"/>'
        )
    if shape == "triangle":
        pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
        return (
            '<polygon points="'
            + " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in pts)
            + f'" fill="{fill}"/>'
        )
    raise ValueError(f"unknown shape {shape!r}")


def _see_canvas(body: list[str]) -> str:
    return _svg(body, SEE_SIZE, SEE_SIZE)


def _see_shapes_svg(data: dict[str, Any]) -> str:
    return _see_canvas(
        [
            _see_shape_svg(s["shape"], s["x"], s["y"], s["r"], SEE_COLOURS[s["colour"]])
            for s in data["shapes"]
        ]
    )


def _see_bars_svg(data: dict[str, Any]) -> str:
    """Bars on a y axis labelled 0..SEE_MAX_BAR (one tick per unit), a letter under each bar."""
    x0, base, top = 40.0, 190.0, 30.0
    unit = (base - top) / SEE_MAX_BAR
    slot = (SEE_SIZE - 15 - x0) / len(data["bars"])
    body = [
        f'<line x1="{_fmt(x0)}" y1="{_fmt(base)}" x2="{SEE_SIZE - 10}" y2="{_fmt(base)}" '
        'stroke="#000000" stroke-width="2"/>',
        f'<line x1="{_fmt(x0)}" y1="{_fmt(base)}" x2="{_fmt(x0)}" y2="{_fmt(top - 8)}" '
        'stroke="#000000" stroke-width="2"/>',
    ]
    for tick in range(SEE_MAX_BAR + 1):
        y = base - tick * unit
        body.append(
            f'<line x1="{_fmt(x0 - 5)}" y1="{_fmt(y)}" x2="{SEE_SIZE - 10}" y2="{_fmt(y)}" '
            f'stroke="{"#000000" if tick == 0 else "#cccccc"}"/>'
        )
        body.append(_text(x0 - 9, y + 6, str(tick), size=16, anchor="end", weight="bold"))
    for i, bar in enumerate(data["bars"]):
        width = slot * 0.55
        x = x0 + i * slot + (slot - width) / 2
        h = bar["value"] * unit
        body.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(base - h)}" width="{_fmt(width)}" height="{_fmt(h)}" '
            f'fill="{SEE_COLOURS[bar["colour"]]}"/>'
        )
        body.append(_text(x + width / 2, base + 22, bar["label"], size=18, weight="bold"))
    return _see_canvas(body)


def _see_sample(rng: random.Random, kind: str) -> dict[str, Any]:
    """The drawing's data and the question's spec for ``kind``."""
    colours = list(SEE_COLOURS)
    if kind in ("shape", "colour"):
        r = rng.randint(28, 60)
        shape = {
            "shape": rng.choice(SEE_SHAPES),
            "colour": rng.choice(colours),
            "r": r,
            "x": rng.randint(r + 8, SEE_SIZE - r - 8),
            "y": rng.randint(r + 8, SEE_SIZE - r - 8),
        }
        return {"picture": "shapes", "shapes": [shape]}
    if kind == "count":
        n = rng.randint(1, SEE_MAX_COUNT)
        # A 3x3 grid of 74 px cells, one shape per cell at most: none overlap, all inside.
        cells = rng.sample(range(9), n)
        same_shape = rng.random() < 0.5
        first = rng.choice(SEE_SHAPES)
        shapes = []
        for cell in cells:
            r = rng.randint(14, 24)
            shapes.append(
                {
                    "shape": first if same_shape else rng.choice(SEE_SHAPES),
                    "colour": rng.choice(colours),
                    "r": r,
                    "x": (cell % 3) * 74 + 37 + rng.randint(-8, 8),
                    "y": (cell // 3) * 74 + 37 + rng.randint(-8, 8),
                }
            )
        return {"picture": "shapes", "shapes": shapes, "same_shape": same_shape}
    if kind == "compare":
        a, b = rng.sample(colours, 2)
        if rng.random() < 0.5:
            shape = rng.choice(SEE_SHAPES)
            small = rng.randint(16, 28)
            big = rng.randint(max(small + 14, round(small * 1.5)), 50)
            sizes = [small, big] if rng.random() < 0.5 else [big, small]
            shapes = [
                {"shape": shape, "colour": c, "r": r, "x": x, "y": rng.randint(60, 164)}
                for c, r, x in zip((a, b), sizes, (56, 168), strict=True)
            ]
            return {"picture": "shapes", "shapes": shapes, "compare": "size"}
        low = rng.randint(1, SEE_MAX_BAR - 1)
        high = rng.randint(low + 1, SEE_MAX_BAR)
        values = [low, high] if rng.random() < 0.5 else [high, low]
        bars = [
            {"label": lab, "value": v, "colour": c}
            for lab, v, c in zip("AB", values, (a, b), strict=True)
        ]
        return {"picture": "bars", "bars": bars, "compare": "height"}
    if kind == "bar_value":
        n = rng.randint(1, 3)
        bars = [
            {"label": "ABC"[i], "value": rng.randint(1, SEE_MAX_BAR), "colour": c}
            for i, c in enumerate(rng.sample(colours, n))
        ]
        return {"picture": "bars", "bars": bars, "asked": rng.randrange(n)}
    raise ValueError(f"unknown see kind {kind!r}; known kinds: {', '.join(SEE_KINDS)}")


def _see_question(rng: random.Random, kind: str, data: dict[str, Any]) -> tuple[str, str]:
    if kind == "shape":
        return rng.choice(_SEE_TEMPLATES["shape"]), data["shapes"][0]["shape"]
    if kind == "colour":
        s = data["shapes"][0]
        return rng.choice(_SEE_TEMPLATES["colour"]).format(shape=s["shape"]), s["colour"]
    if kind == "count":
        shapes = data["shapes"]
        templates = _SEE_TEMPLATES["count"]
        if not data["same_shape"]:  # "how many circles" only where every shape is one
            templates = templates[:-1]
        template = rng.choice(templates)
        return template.format(shape=shapes[0]["shape"]), str(len(shapes))
    if kind == "compare":
        if data["compare"] == "size":
            things, measure = data["shapes"], "r"
            templates = _SEE_TEMPLATES["compare_size"]
        else:
            things, measure = data["bars"], "value"
            templates = _SEE_TEMPLATES["compare_height"]
        left, right = things
        template = rng.choice(templates)
        winner = 0 if left[measure] > right[measure] else 1
        if "{a}" in template:
            # The colours in either order, so the first-named one is not always the answer.
            a, b = rng.sample([left["colour"], right["colour"]], 2)
            shape = things[0].get("shape", "")
            return template.format(a=a, b=b, shape=shape), things[winner]["colour"]
        return template, ("left", "right")[winner]
    if kind == "bar_value":
        bar = data["bars"][data["asked"]]
        template = rng.choice(_SEE_TEMPLATES["bar_value"])
        if len(data["bars"]) == 1 and rng.random() < 0.5:
            template = rng.choice(("What is the value of the bar?", "How high is the bar?"))
        return template.format(label=bar["label"]), str(bar["value"])
    raise ValueError(f"unknown see kind {kind!r}")


def _see_caption(data: dict[str, Any]) -> str:
    if data["picture"] == "shapes":
        parts = [f"a {s['colour']} {s['shape']}" for s in data["shapes"]]
        return f"{len(parts)} filled shape(s) on a white square canvas: {', '.join(parts)}."
    bars = ", ".join(f"bar {b['label']} ({b['colour']}) = {b['value']}" for b in data["bars"])
    return f"A bar chart on a y axis labelled 0 to {SEE_MAX_BAR}, bars left to right: {bars}."


def see_topic(item: SeeItem) -> str:
    """The seed topic (:data:`SEE_TOPICS`) that asks for ``item``'s kind of picture."""
    if item.kind == "compare":
        return SEE_TOPICS[3] if item.data["picture"] == "shapes" else SEE_TOPICS[4]
    return SEE_TOPICS[{"shape": 0, "colour": 1, "count": 2, "bar_value": 5}[item.kind]]


def see_proposal_fields(item: SeeItem) -> dict[str, str]:
    """The six MM-Zero Proposer fields of a simple picture: its own question as the easy one, a
    second question on the same picture as the hard one (a one-shape picture's colour for its
    shape and the other way round; another bar of a chart; else another wording of its kind)."""
    rng = random.Random(f"evovlm.see-proposal:{item.item_id}")
    data = dict(item.data)
    kind = {"shape": "colour", "colour": "shape"}.get(item.kind, item.kind)
    if item.kind == "bar_value" and len(data["bars"]) > 1:
        data["asked"] = rng.choice([i for i in range(len(data["bars"])) if i != data["asked"]])
    hard_question, hard_answer = _see_question(rng, kind, data)
    return {
        "content_type": "other",
        "caption": item.caption,
        "easy_question": item.question,
        "easy_answer": item.answer,
        "hard_question": hard_question,
        "hard_answer": hard_answer,
    }


def make_see_item(seed: int, index: int, kind: str) -> SeeItem:
    """The simple-picture item of ``kind`` at ``index`` for ``seed``; depends on nothing else."""
    if kind not in SEE_KINDS:
        raise ValueError(f"unknown see kind {kind!r}; known kinds: {', '.join(SEE_KINDS)}")
    rng = random.Random(f"evovlm.see:{seed}:{index}:{kind}")
    data = _see_sample(rng, kind)
    question, answer = _see_question(rng, kind, data)
    svg = _see_shapes_svg(data) if data["picture"] == "shapes" else _see_bars_svg(data)
    return SeeItem(
        item_id=f"see-{seed}-{index:05d}-{kind}",
        kind=kind,
        chance=SEE_CHANCE[kind],
        question=question,
        answer=answer,
        caption=_see_caption(data),
        data=data,
        svg=svg,
    )


def generate_see_items(n: int, seed: int, kinds: Sequence[str] | None = None) -> list[SeeItem]:
    """``n`` simple-picture items; item ``i`` has kind ``kinds[i % len(kinds)]`` (all by default)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    chosen = list(SEE_KINDS) if not kinds else list(kinds)
    unknown = [k for k in chosen if k not in SEE_KINDS]
    if unknown:
        raise ValueError(f"unknown see kinds {unknown}; known kinds: {', '.join(SEE_KINDS)}")
    return [make_see_item(seed, i, chosen[i % len(chosen)]) for i in range(n)]


def see_kind(item_id: str) -> str | None:
    """The simple-picture kind named in a benchmark ``item_id`` (``see-<seed>-<index>-<kind>``),
    or None for any other item; its chance level is ``SEE_CHANCE[kind]``."""
    parts = item_id.split("-")
    if len(parts) == 4 and parts[0] == "see" and parts[3] in SEE_KINDS:
        return parts[3]
    return None


def see_benchmark_rows(n_per_kind: int, seed: int, render_cfg=None) -> list[dict[str, Any]]:
    """Benchmark rows (evovlm.schema.BENCHMARK's columns) of ``n_per_kind`` simple-picture items
    of every kind, rendered through the project's renderer; the benchmark is named ``see``; each row carries its ``kind`` and ``chance``."""
    from evovlm.render import RenderConfig, render_svg

    render_cfg = render_cfg or RenderConfig()
    rows = []
    for item in generate_see_items(n_per_kind * len(SEE_KINDS), seed=seed):
        rendered = render_svg(item.svg, render_cfg)
        if not rendered.ok:  # the generator's own SVG always renders; never score a blank
            raise RuntimeError(f"{item.item_id}: simple picture failed to render: {rendered.error}")
        rows.append(
            {
                "benchmark": SEE_BENCHMARK,
                "item_id": item.item_id,
                "question": item.question,
                "answer": item.answer,
                "choices": None,
                "image": {"bytes": rendered.png, "path": None},
                "kind": item.kind,
                "chance": item.chance,
            }
        )
    return rows
