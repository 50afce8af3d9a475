"""Evaluation of a Solver policy: the built-in procedural benchmark and local benchmark files.

The built-in benchmark is ``synth`` items drawn from their own seed (never the warm-up's), each
giving an easy and a hard question with exact answers, rendered through the project's SVG
renderer. Local benchmarks are Parquet or JSONL files with a question, an image and an answer
(and optional multiple-choice options), e.g. exports of ChartQA, MathVista or MathVerse. Every
item is asked with the Solver's own prompt, the reply's last ``\\boxed{}`` is the prediction,
and ``grade`` decides; accuracy per benchmark and policy comes with a Wilson 95% interval.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from evovlm import methods, prompts, synth
from evovlm.config import schema_dataclass, section_from_dict
from evovlm.engines import Request
from evovlm.grade import grade
from evovlm.schema import BENCHMARK, EVAL, frame_from_rows
from evovlm.stages import png_to_image, request_seed, sampling_params

BUILTIN = "procedural"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@schema_dataclass("eval", frozen=True)
class EvalConfig:
    """Config section ``eval``. Keys, defaults and help are
    declared once, in the schema's ``eval`` section."""

    @classmethod
    def from_dict(cls, d: dict | None) -> EvalConfig:
        return section_from_dict(cls, d, "eval")


class BenchmarkError(ValueError):
    """A local benchmark file that cannot be used (message names the file and the fix)."""


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def builtin_benchmark(n_items: int, seed: int, render_cfg=None) -> pl.DataFrame:
    """Two rows (easy, hard) per procedural item, with the item's SVG rendered to PNG."""
    from evovlm.render import RenderConfig, render_svg

    render_cfg = render_cfg or RenderConfig()
    rows = []
    for item in synth.generate_items(n_items, seed=seed):
        rendered = render_svg(item.svg, render_cfg)
        if not rendered.ok:  # the generator's own SVG always renders; never score a blank
            raise RuntimeError(f"{item.item_id}: built-in item failed to render: {rendered.error}")
        for level in ("easy", "hard"):
            rows.append(
                {
                    "benchmark": BUILTIN,
                    "item_id": f"{item.item_id}-{level}",
                    "question": getattr(item, f"{level}_question"),
                    "answer": getattr(item, f"{level}_answer"),
                    "choices": None,
                    "image": {"bytes": rendered.png, "path": None},
                    "kind": item.kind,
                    "chance": _item_chance(item, level),
                }
            )
    return with_kind_columns(frame_from_rows(rows, BENCHMARK), rows)


# Each item's kind and chance level ride beside the declared benchmark and eval columns (extra
# columns pass evovlm.schema's checks), so tables written before they existed still read.
KIND_COLUMNS = {"kind": pl.String, "chance": pl.Float64}


def with_kind_columns(frame: pl.DataFrame, rows: list[dict] | None = None) -> pl.DataFrame:
    """``frame`` with the ``kind`` and ``chance`` columns: taken from ``rows`` (one per frame
    row), else kept when present, else null."""
    columns = []
    for name, dtype in KIND_COLUMNS.items():
        if rows is not None:
            columns.append(pl.Series(name, [r.get(name) for r in rows], dtype=dtype))
        elif name not in frame.columns:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.with_columns(columns) if columns else frame


def _item_chance(item, level: str) -> float | None:
    """The guessing accuracy a generator states for an item's question (``easy_chance`` /
    ``hard_chance``, else ``chance``); None for open answers such as the charts' numbers."""
    for name in (f"{level}_chance", "chance"):
        value = getattr(item, name, None)
        if value is not None:
            return float(value)
    return None


def chance_level(chance: Any, choices: list[str] | None, where: str) -> float | None:
    """An item's chance level: its own ``chance`` field, else 1/len(choices), else None."""
    if chance is not None:
        try:
            value = float(chance)
        except (TypeError, ValueError):
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise BenchmarkError(f"{where}: chance {chance!r} is not a number in [0, 1]")
        return value
    return 1.0 / len(choices) if choices else None


def _image_bytes(value: Any, folder: Path, where: str) -> bytes:
    """PNG/JPEG bytes from a HF image struct, raw bytes, or a path relative to the file."""
    if isinstance(value, list):  # an `images` column: the first image (one-image prompt)
        value = value[0] if value else None
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value:
        path = Path(value) if Path(value).is_absolute() else folder / value
        if path.is_file():
            return path.read_bytes()
        raise BenchmarkError(f"{where}: image file {path} does not exist")
    raise BenchmarkError(f"{where}: no image (give an 'image' or 'images' column)")


def load_benchmark(name: str, path: str | Path, max_items: int = 0) -> pl.DataFrame:
    """A local benchmark file as benchmark rows; images are re-encoded as PNG."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"eval.benchmarks.{name}: {path} does not exist")
    if path.suffix == ".parquet":
        raw = pl.read_parquet(path)
    elif path.suffix in (".jsonl", ".json"):
        raw = pl.read_ndjson(path)
    else:
        raise BenchmarkError(f"eval.benchmarks.{name}: {path} is not .parquet or .jsonl")
    missing = [c for c in ("question", "answer") if c not in raw.columns]
    image_col = next((c for c in ("image", "images") if c in raw.columns), None)
    if missing or image_col is None:
        need = missing + ([] if image_col else ["image or images"])
        raise BenchmarkError(f"eval.benchmarks.{name}: {path} lacks column(s) {need}")
    if max_items:
        raw = raw.head(max_items)
    id_col = next((c for c in ("id", "item_id", "pid", "question_id") if c in raw.columns), None)
    rows = []
    for i, row in enumerate(raw.iter_rows(named=True)):
        where = f"{path} row {i}"
        data = _image_bytes(row[image_col], path.parent, where)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception as exc:  # noqa: BLE001 - any undecodable image is the file's fault
            raise BenchmarkError(f"{where}: image does not decode ({exc})") from exc
        choices = row.get("choices")
        if isinstance(choices, str):
            choices = json.loads(choices) if choices.startswith("[") else None
        choices = [str(c) for c in choices] if choices else None
        kind = row.get("kind")
        rows.append(
            {
                "benchmark": name,
                "item_id": f"{name}-{row[id_col] if id_col else i}",
                "question": str(row["question"]),
                "answer": str(row["answer"]),
                "choices": choices,
                "image": {"bytes": _png(image), "path": None},
                "kind": None if kind is None else str(kind),
                "chance": chance_level(row.get("chance"), choices, where),
            }
        )
    return with_kind_columns(frame_from_rows(rows, BENCHMARK), rows)


def build_benchmark(cfg: EvalConfig, render_cfg=None) -> pl.DataFrame:
    """The built-in items, then each local benchmark, in config order."""
    frames = [builtin_benchmark(cfg.builtin_items, cfg.seed, render_cfg)]
    if cfg.see_items:  # opt-in: simple pictures, per kind (synth.see_kind of the item id)
        rows = synth.see_benchmark_rows(cfg.see_items, cfg.seed, render_cfg)
        frames.append(with_kind_columns(frame_from_rows(rows, BENCHMARK), rows))
    frames += [load_benchmark(b["name"], b["path"], cfg.max_items) for b in cfg.benchmarks]
    return pl.concat(frames)


def question_text(question: str, choices: list[str] | None) -> str:
    if not choices:
        return question
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices[: len(LETTERS)]))
    return f"{question}\nChoices:\n{options}\nAnswer with the letter of the correct choice."


def is_correct(prediction: str | None, answer: str, choices: list[str] | None) -> bool:
    """``grade``, plus for multiple choice: a letter whose option grades equal to the answer,
    or the option text of the answer's letter."""
    if prediction is None:
        return False
    if grade(prediction, answer):
        return True
    if not choices:
        return False
    letter = prediction.strip().strip("().").upper()
    if len(letter) == 1 and letter in LETTERS[: len(choices)]:
        option = choices[LETTERS.index(letter)]
        if grade(option, answer):
            return True
    ref = answer.strip().strip("().").upper()
    if len(ref) == 1 and ref in LETTERS[: len(choices)]:
        return grade(prediction, choices[LETTERS.index(ref)])
    return False


def evaluate(
    engine,
    items: pl.DataFrame,
    policy: str,
    cfg: EvalConfig,
    seed: int = 0,
    method: str = "mmzero",
) -> pl.DataFrame:
    """One reply per item from ``engine``, asked with ``method``'s Solver prompt; the prediction
    is extracted the way that method's Solver answers (its :class:`~evovlm.methods.SolverFormat`;
    MM-Zero: the last ``\\boxed{}``; EvoLMM: the ``<answer>`` tag): a policy is evaluated in
    the format it was warmed up and trained to answer in."""
    solver = methods.get(method).solver
    if solver is None:
        raise ValueError(f"method {method!r} has no Solver to evaluate; set eval.enabled: false")
    template, extract = solver.template, solver.extract
    rows_in = with_kind_columns(items).to_dicts()
    sampling = sampling_params({"temperature": cfg.temperature, "max_tokens": cfg.max_tokens}, 1)
    requests = [
        Request(
            messages=prompts.render_messages(
                template, question=question_text(row["question"], row["choices"])
            ),
            images=[png_to_image(row["image"]["bytes"])],
            sampling=sampling,
            seed=request_seed(seed, 0, "eval", row["item_id"]),
        )
        for row in rows_in
    ]
    rows = []
    for row, output in zip(rows_in, engine.generate(requests), strict=True):
        text = output.samples[0].text
        prediction, format_ok = extract(text)
        rows.append(
            {
                "policy": policy,
                "benchmark": row["benchmark"],
                "item_id": row["item_id"],
                "question": row["question"],
                "reference": row["answer"],
                "completion": text,
                "prediction": prediction,
                "format_ok": bool(format_ok),
                "correct": is_correct(prediction, row["answer"], row["choices"]),
                "kind": row["kind"],
                "chance": row["chance"],
            }
        )
    return with_kind_columns(frame_from_rows(rows, EVAL), rows)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """Wilson score interval of a binomial proportion (sound at 0/n and n/n, unlike Wald)."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_table(results: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Accuracy with a 95% Wilson interval per (policy, benchmark); policies in ``order``."""
    rows = []
    for (policy, benchmark), group in results.group_by("policy", "benchmark"):
        k, n = int(group["correct"].sum()), group.height
        low, high = wilson_interval(k, n)
        rows.append(
            {
                "policy": policy,
                "benchmark": benchmark,
                "n": n,
                "correct": k,
                "accuracy": k / n,
                "ci95_low": low,
                "ci95_high": high,
                "boxed_rate": float(group["prediction"].is_not_null().mean()),
            }
        )
    rank = {p: i for i, p in enumerate(order)}
    rows.sort(key=lambda r: (r["benchmark"], rank.get(r["policy"], len(rank))))
    schema = {
        "policy": pl.String,
        "benchmark": pl.String,
        "n": pl.Int64,
        "correct": pl.Int64,
        "accuracy": pl.Float64,
        "ci95_low": pl.Float64,
        "ci95_high": pl.Float64,
        "boxed_rate": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def kind_accuracy_table(results: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Accuracy per (policy, benchmark, item kind) beside the kind's chance level.

    ``chance`` is the mean of the items' chance levels when every item of the kind has one
    (multiple choice, or a generator that states it), else null: an open numeric answer has no
    guessing rate worth a number. ``p_above_chance`` is the one-sided exact binomial test of
    the accuracy against that level (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    results = with_kind_columns(results)
    rows = []
    for (policy, benchmark, kind), group in results.group_by(
        "policy", "benchmark", "kind", maintain_order=True
    ):
        k, n = int(group["correct"].sum()), group.height
        low, high = wilson_interval(k, n)
        chances = group["chance"]
        chance = float(chances.mean()) if chances.null_count() == 0 else None
        above = None
        if chance is not None and 0.0 < chance < 1.0:
            above = float(binomtest(k, n, chance, alternative="greater").pvalue)
        rows.append(
            {
                "policy": policy,
                "benchmark": benchmark,
                "kind": kind,
                "n": n,
                "correct": k,
                "accuracy": k / n,
                "ci95_low": low,
                "ci95_high": high,
                "chance": chance,
                "p_above_chance": above,
            }
        )
    rank = {p: i for i, p in enumerate(order)}
    rows.sort(key=lambda r: (r["benchmark"], r["kind"] or "", rank.get(r["policy"], len(rank))))
    schema = {
        "policy": pl.String,
        "benchmark": pl.String,
        "kind": pl.String,
        "n": pl.Int64,
        "correct": pl.Int64,
        "accuracy": pl.Float64,
        "ci95_low": pl.Float64,
        "ci95_high": pl.Float64,
        "chance": pl.Float64,
        "p_above_chance": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: b items only the first policy
    got right, c only the second. Under no difference each discordant item is a fair coin, so
    the test is the exact binomial test of b out of b + c at 1/2 (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0  # no discordant item: no evidence either way
    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


PAIRED_SCHEMA = {
    "benchmark": pl.String,
    "policy": pl.String,  # e.g. round_5
    "against": pl.String,  # e.g. base, or <control run>:round_5
    "n": pl.Int64,  # items both answered (paired on item_id)
    "policy_correct": pl.Int64,
    "against_correct": pl.Int64,
    "only_policy": pl.Int64,  # b: right by policy, wrong by against
    "only_against": pl.Int64,  # c
    "difference": pl.Float64,  # accuracy of policy minus against, on the paired items
    "p": pl.Float64,  # exact two-sided McNemar
}


def paired_test(
    first: pl.DataFrame, second: pl.DataFrame, policy: str, against: str
) -> list[dict[str, Any]]:
    """One exact McNemar row per benchmark the two result tables share, items paired on
    (benchmark, item_id): the same questions, asked of two policies."""
    joined = first.select("benchmark", "item_id", "correct").join(
        second.select("benchmark", "item_id", pl.col("correct").alias("other")),
        on=["benchmark", "item_id"],
    )
    rows = []
    for (benchmark,), group in joined.group_by(["benchmark"], maintain_order=True):
        a, o = group["correct"], group["other"]
        b = int((a & ~o).sum())
        c = int((~a & o).sum())
        rows.append(
            {
                "benchmark": benchmark,
                "policy": policy,
                "against": against,
                "n": group.height,
                "policy_correct": int(a.sum()),
                "against_correct": int(o.sum()),
                "only_policy": b,
                "only_against": c,
                "difference": (b - c) / group.height,
                "p": mcnemar_exact(b, c),
            }
        )
    return rows


def paired_table(results: pl.DataFrame, order: list[str], against: str = "base") -> pl.DataFrame:
    """Each policy of ``order`` (but ``against``) paired with ``against`` on the same items."""
    rows = []
    if against in order:
        base = results.filter(pl.col("policy") == against)
        for policy in order:
            if policy != against:
                own = results.filter(pl.col("policy") == policy)
                rows += paired_test(own, base, policy, against)
    return pl.DataFrame(rows, schema=PAIRED_SCHEMA)
