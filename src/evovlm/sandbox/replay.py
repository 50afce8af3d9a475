"""Replay of a pathological round: what a broken model emits, through the parsers and the
render stage.

:func:`broken_completions` makes Coder/Proposer/Solver-style completions of every failure kind
seen from broken models (megabyte replies, unclosed tags and fences, nested ``\\boxed{}``,
binary junk and invalid UTF-8, pictures of one pixel or 20,000 pixels, endless loops, memory
hogs, plain prose). :func:`replay` runs them the way a round does: each role's parser
(:mod:`evovlm.parse`), code extraction, then :func:`evovlm.render.render_programs` on every
extracted program, and returns one row per completion with every status. Used by
``tests/test_replay.py`` (a few hundred) and ``bench/pathological.py`` (10,000, peak memory).
"""

from __future__ import annotations

import random

import polars as pl

from evovlm import parse
from evovlm.grade import boxed

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'

# (kind, language, completion builder(rng) -> str)
_PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\n"


def _megabyte(rng: random.Random) -> str:
    words = ["the", "chart", "shows", "<svg", "```", "\\boxed{", "}", "<caption>", "\n"]
    chunk = " ".join(rng.choice(words) for _ in range(2000)) + " "
    return (chunk * (1 + (1 << 20) // len(chunk)))[: 1 << 20]


def _megabyte_code(rng: random.Random) -> str:
    body = "".join(f"x{i} = {i}\n" for i in range(90_000))
    return f"```python\n{body}{_PLOT}```"


def _unclosed(rng: random.Random) -> str:
    return (
        "<caption>A bar chart of <easy_question>What is <hard_answer>5"
        "\n```python\nimport matplotlib.pyplot as plt\nplt.bar(['a'], [1])\n"  # fence not closed
    )


def _unclosed_svg(rng: random.Random) -> str:
    return f'Here you go:\n<svg {SVG_NS} width="100" height="100"><g><rect width="10"'


def _nested_boxed(rng: random.Random) -> str:
    depth = rng.choice((10, 1000, 20_000))
    return "<think>hm</think>" + "\\boxed{" * depth + "42" + "}" * (depth - rng.randint(0, 2))


def _binary(rng: random.Random) -> str:
    return rng.randbytes(rng.choice((64, 4096, 65536))).decode("utf-8", errors="replace")


def _invalid_utf8_code(rng: random.Random) -> str:
    junk = rng.randbytes(200).decode("latin-1")
    return f"```python\n{_PLOT}# {junk}\ns = '\\xff\\xfe'\n```"


def _nul_svg(rng: random.Random) -> str:
    return (
        f'```svg\n<svg {SVG_NS} width="50" height="50">\x00<rect width="9" height="9"/></svg>\n```'
    )


def _one_pixel_py(rng: random.Random) -> str:
    return "```python\nimport matplotlib.pyplot as plt\nfig = plt.figure(figsize=(0.01, 0.01))\nplt.plot([0, 1])\n```"


def _one_pixel_svg(rng: random.Random) -> str:
    return f'```svg\n<svg {SVG_NS} width="1" height="1"><rect width="1" height="1" fill="red"/></svg>\n```'


def _huge_py(rng: random.Random) -> str:
    return (
        "```python\nimport matplotlib.pyplot as plt\n"
        "fig = plt.figure(figsize=(200, 200), dpi=100)\nplt.plot([0, 1])\n```"
    )


def _huge_array_py(rng: random.Random) -> str:
    return "```python\nimport numpy as np, matplotlib.pyplot as plt\nplt.imshow(np.ones((20000, 20000)))\n```"


def _huge_svg(rng: random.Random) -> str:
    side = rng.choice((20_000, 200_000))
    return f'```svg\n<svg {SVG_NS} width="{side}" height="{side}"><circle cx="50" cy="50" r="40"/></svg>\n```'


def _endless(rng: random.Random) -> str:
    return "```python\nwhile True:\n    pass\n```"


def _memory_hog(rng: random.Random) -> str:
    return "```python\nx = [bytearray(1 << 20) for _ in range(100000)]\n```"


def _prose(rng: random.Random) -> str:
    return "I'm sorry, I cannot draw that. " * rng.randint(1, 50)


def _good_py(rng: random.Random) -> str:
    values = [rng.randint(1, 9) for _ in range(4)]
    return (
        f"```python\nimport matplotlib.pyplot as plt\nplt.bar(['a', 'b', 'c', 'd'], {values})\n```"
    )


def _good_svg(rng: random.Random) -> str:
    w = rng.randint(10, 90)
    return f'```svg\n<svg {SVG_NS} width="100" height="100"><rect width="{w}" height="50" fill="navy"/></svg>\n```'


KINDS: tuple[tuple[str, str, object], ...] = (
    ("megabyte-prose", "svg", _megabyte),
    ("megabyte-code", "python", _megabyte_code),
    ("unclosed-tags", "python", _unclosed),
    ("unclosed-svg", "svg", _unclosed_svg),
    ("nested-boxed", "python", _nested_boxed),
    ("binary-junk", "svg", _binary),
    ("invalid-utf8", "python", _invalid_utf8_code),
    ("nul-in-svg", "svg", _nul_svg),
    ("one-pixel-py", "python", _one_pixel_py),
    ("one-pixel-svg", "svg", _one_pixel_svg),
    ("huge-figure", "python", _huge_py),
    ("huge-array", "python", _huge_array_py),
    ("huge-svg", "svg", _huge_svg),
    ("endless-loop", "python", _endless),
    ("memory-hog", "python", _memory_hog),
    ("prose", "python", _prose),
    ("good-python", "python", _good_py),
    ("good-svg", "svg", _good_svg),
)
# Slow kinds (they run into a limit) and megabyte replies are rarer, as from a real broken
# model; every kind still comes up dozens of times in 10,000.
_WEIGHTS = {
    "endless-loop": 0.1,
    "memory-hog": 0.1,
    "huge-array": 0.2,
    "megabyte-code": 0.1,
    "megabyte-prose": 0.1,
}


def broken_completions(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` completions (``program_id``, ``kind``, ``language``, ``text``), every kind at least
    once when ``n`` allows, deterministic for a seed."""
    rng = random.Random(seed)
    weights = [_WEIGHTS.get(kind, 1.0) for kind, _, _ in KINDS]
    chosen = list(range(len(KINDS)))[:n]
    chosen += rng.choices(range(len(KINDS)), weights=weights, k=max(0, n - len(chosen)))
    rows = []
    for i, k in enumerate(chosen):
        kind, language, build = KINDS[k]
        rows.append(
            {"program_id": f"r{i:06d}", "kind": kind, "language": language, "text": build(rng)}
        )
    return pl.DataFrame(
        rows,
        schema={
            "program_id": pl.String,
            "kind": pl.String,
            "language": pl.String,
            "text": pl.String,
        },
    )


def replay(completions: pl.DataFrame, cfg=None, threads: int = 1) -> pl.DataFrame:
    """Every parser on every completion, then the render stage on the extracted programs.

    One row per completion, same order: ``program_id``, ``kind``, ``proposal_ok``,
    ``question_ok``, ``solver_answer_chars``, ``extract_status``, ``status`` (the render status;
    the extraction status when nothing was extracted), ``error``, ``has_image``."""
    from evovlm.render import render_programs

    parsed = []
    for text in completions["text"].to_list():
        proposal = parse.parse_proposal(text)
        question = parse.parse_question(text)
        answer, _ = parse.parse_solver(text)
        boxed(text)
        parse.parse_answer_tag(text)
        parse.words_before_answer(text)
        parsed.append((proposal.ok, question.ok, len(answer or "")))
    extracted = [
        parse.extract_code(text, language)
        for text, language in zip(
            completions["text"].to_list(), completions["language"].to_list(), strict=True
        )
    ]
    programs = pl.DataFrame(
        {
            "program_id": completions["program_id"],
            "language": completions["language"],
            "code": [code for code, _ in extracted],
        },
        schema={"program_id": pl.String, "language": pl.String, "code": pl.String},
    )
    renders = render_programs(programs, cfg, threads=threads, progress=False)
    extract_status = [status for _, status in extracted]
    statuses = [
        render if extract == "ok" else extract
        for render, extract in zip(renders["status"].to_list(), extract_status, strict=True)
    ]
    return pl.DataFrame(
        {
            "program_id": renders["program_id"],
            "kind": completions["kind"],
            "proposal_ok": [p[0] for p in parsed],
            "question_ok": [p[1] for p in parsed],
            "solver_answer_chars": [p[2] for p in parsed],
            "extract_status": extract_status,
            "status": statuses,
            "error": renders["error"],
            "has_image": renders["image"].is_not_null(),
        }
    )
