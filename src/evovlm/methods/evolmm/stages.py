"""EvoLMM stages: draw images from a folder, ask questions, answer them several times.

The Proposer asks ``n`` questions per image (a GRPO group per image; the reference uses a
moving-average baseline, here the group mean replaces it); the Solver answers each valid
question ``N`` times (a group per question). Rewards are continuous functions of the Solver's
self-consistency (``evovlm.methods.evolmm.rewards.score_evolmm``).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import polars as pl

from evovlm import parse
from evovlm.schema import EVOLMM_ANSWERS, IMAGES, QUESTIONS, frame_from_rows
from evovlm.stages import Shard, completion_columns, image_request

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _frame(rows: list[dict[str, Any]], spec) -> pl.DataFrame:
    return frame_from_rows(rows, spec).sort(spec.names[1])


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"evolmm.image_dir {str(folder)!r} is not a folder; point it at a folder of images"
        )
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def first_readable_image(folder: str | Path) -> tuple[Path | None, int]:
    """(the first image file under ``folder`` that PIL decodes, image files tried): stops at the
    first one that decodes, so checking a large folder costs one decode."""
    from PIL import Image

    tried = 0
    for path in Path(folder).rglob("*"):
        if not (path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()):
            continue
        tried += 1
        try:
            with Image.open(path) as img:
                img.load()
            return path, tried
        except Exception:  # noqa: BLE001, S112 - any failure to decode means "not readable"
            continue
    return None, tried


def sample_images(
    folder: str | Path, *, round_: int, count: int, seed: int, max_side: int = 1024
) -> tuple[pl.DataFrame, dict[str, int]]:
    """A deterministic draw of ``count`` decodable images (PNG, composited on white).

    The draw orders files by a hash of (seed, round, relative path), so it is stable across
    machines and file-system orders; corrupt files are skipped and counted.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = list_images(folder)

    def key(p: Path) -> str:
        return hashlib.blake2b(f"{seed}:{round_}:{p.relative_to(folder)}".encode()).hexdigest()

    rows, skipped = [], 0
    for path in sorted(files, key=key):
        if len(rows) >= count:
            break
        try:
            with Image.open(path) as img:
                img.load()
                rgba = img.convert("RGBA")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            skipped += 1
            continue
        rgba.thumbnail((max_side, max_side))
        canvas = Image.new("RGBA", rgba.size, "white")
        canvas.alpha_composite(rgba)
        buf = io.BytesIO()
        canvas.convert("RGB").save(buf, format="PNG")
        rel = str(path.relative_to(folder))
        rows.append(
            {
                "round": round_,
                "image_id": f"r{round_}-img-{len(rows):04d}",
                "source": rel,
                "image": {"bytes": buf.getvalue(), "path": rel},
                "width": canvas.width,
                "height": canvas.height,
            }
        )
    if not rows:
        raise ValueError(
            f"evolmm.image_dir {str(folder)!r}: no readable image among {len(files)} image "
            "file(s); point it at a folder of images"
        )
    stats = {"files": len(files), "drawn": len(rows), "skipped_corrupt": skipped}
    return _frame(rows, IMAGES), stats


def ask_questions(
    engine,
    images: pl.DataFrame,
    *,
    round_: int,
    sampling: dict[str, Any],
    seed: int,
    shard: Shard = Shard(),
) -> pl.DataFrame:
    todo = shard.take(images.sort("image_id").to_dicts())
    n = int(sampling["n"])
    requests = [
        image_request(
            "evolmm_proposer",
            row["image"]["bytes"],
            sampling,
            n,
            (seed, round_, "ask", row["image_id"]),
        )
        for row in todo
    ]
    rows = []
    for row, request, output in zip(todo, requests, engine.generate(requests), strict=True):
        for j, sample in enumerate(output.samples):
            q = parse.parse_question(sample.text)
            rows.append(
                {
                    "round": round_,
                    "question_id": f"{row['image_id']}-q{j}",
                    "image_id": row["image_id"],
                    "group_id": row["image_id"],
                    "sample_index": j,
                    "seed": request.seed,
                    **completion_columns(request, output, j),
                    "parse_ok": q.ok,
                    "parse_error": q.error,
                    "question": q.question,
                    "rationale": q.rationale,
                }
            )
    return _frame(rows, QUESTIONS)


def answer_questions(
    engine,
    images: pl.DataFrame,
    questions: pl.DataFrame,
    *,
    round_: int,
    sampling: dict[str, Any],
    seed: int,
    shard: Shard = Shard(),
) -> pl.DataFrame:
    todo = (
        questions.filter(pl.col("parse_ok"))
        .select("question_id", "image_id", "question")
        .join(images.select("image_id", "image"), on="image_id")
        .sort("question_id")
        .to_dicts()
    )
    todo = shard.take(todo)
    n = int(sampling["n"])
    requests = [
        image_request(
            "evolmm_solver",
            row["image"]["bytes"],
            sampling,
            n,
            (seed, round_, "solve", row["question_id"]),
            question=row["question"],
        )
        for row in todo
    ]
    rows = []
    for row, request, output in zip(todo, requests, engine.generate(requests), strict=True):
        for j, sample in enumerate(output.samples):
            rows.append(
                {
                    "round": round_,
                    "answer_id": f"{row['question_id']}-a{j}",
                    "question_id": row["question_id"],
                    "image_id": row["image_id"],
                    "group_id": row["question_id"],
                    "sample_index": j,
                    "seed": request.seed,
                    **completion_columns(request, output, j),
                    "answer": parse.parse_answer_tag(sample.text),
                    "words_before_answer": parse.words_before_answer(sample.text),
                }
            )
    return _frame(rows, EVOLMM_ANSWERS)
