"""Re-parse a run's EvoLMM Solver replies: how many extracted answers are malformed.

    python bench/evolmm_answers.py RESULTS_DIR [--before GIT_REV]

Reads every ``round_*/answers.parquet`` under RESULTS_DIR, extracts each reply's answer
(``completion`` column) with this checkout's ``evovlm.parse.parse_answer_tag`` and, with
``--before``, with the ``parse.py`` of that git revision, and prints per parser: answers, missing
answers, malformed answers (a tag left in, ``<`` or ``>``, a ``\\boxed``, trailing punctuation or
surrounding whitespace), and the mean number of answer clusters per question (fewer = the same
answer is no longer split by its form).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

from evovlm import parse
from evovlm.grade import cluster_answers

MALFORMED = re.compile(r"[<>]|\\boxed|[.,;:!?]$|^\s|\s$")


def parser_at(rev: str):
    """``parse_answer_tag`` of ``src/evovlm/parse.py`` at git revision ``rev``."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{rev}:src/evovlm/parse.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "parse_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("parse_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["parse_before"] = module
    spec.loader.exec_module(module)
    return module.parse_answer_tag


def measure(replies: pl.DataFrame, extract) -> dict[str, float]:
    answers = [extract(text) for text in replies["completion"]]
    given = [a for a in answers if a is not None]
    bad = sum(1 for a in given if MALFORMED.search(a))
    frame = replies.select("question_id").with_columns(pl.Series("answer", answers))
    clusters = [
        len({c for c in cluster_answers(group["answer"].to_list()) if c is not None})
        for _key, group in frame.group_by("question_id", maintain_order=True)
    ]
    return {
        "replies": len(answers),
        "missing": len(answers) - len(given),
        "malformed": bad,
        "malformed_share": bad / max(len(given), 1),
        "clusters_per_question": sum(clusters) / max(len(clusters), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--before", help="git revision whose parse.py is the 'before' parser")
    args = ap.parse_args(argv)
    files = sorted(args.results.glob("round_*/answers.parquet"))
    if not files:
        ap.error(f"no round_*/answers.parquet under {args.results}")
    replies = pl.concat([pl.read_parquet(f, columns=["question_id", "completion"]) for f in files])
    parsers = {"after": parse.parse_answer_tag}
    if args.before:
        parsers = {f"before ({args.before})": parser_at(args.before), **parsers}
    for name, extract in parsers.items():
        m = measure(replies, extract)
        print(
            f"{name}: {m['replies']} replies from {len(files)} round(s), "
            f"{m['missing']} without an answer, {m['malformed']} malformed "
            f"({m['malformed_share']:.1%} of answers), "
            f"{m['clusters_per_question']:.2f} answer clusters per question"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
