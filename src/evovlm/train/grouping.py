"""A round's scored samples as GRPO groups (pure functions: no TRL, no model)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import polars as pl

log = logging.getLogger("evovlm.train")

# ---------------------------------------------------------------------------------------------
# Samples -> groups


@dataclass
class Group:
    """One GRPO group: one prompt (and its images), several scored completions."""

    role: str
    group_id: str
    messages: list[dict[str, Any]]
    images: list[Any]  # PIL images in message order (empty for text-only roles)
    prompt_ids: list[int]
    sample_ids: list[str]
    completion_ids: list[list[int]]
    logprobs: list[list[float]]
    rewards: list[float]

    @property
    def size(self) -> int:
        return len(self.rewards)

    @property
    def uid(self) -> str:
        return f"{self.role}/{self.group_id}"


@dataclass
class GroupStats:
    role: str
    samples: int = 0
    groups_total: int = 0
    dropped_zero_variance: int = 0
    dropped_size_mismatch: int = 0
    dropped_bad_samples: int = 0  # samples (not groups): bad log-probs or vision placeholder tokens
    # groups whose rows were sampled from different prompts (a GRPO group is one prompt: a
    # completion replayed under another prompt trains the wrong conditional)
    dropped_mixed_prompts: int = 0
    prompt_ids_mismatch: int = 0
    trainable_groups: int = 0
    group_size: int = 0


def _image_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("bytes")
    return value


SAMPLE_COLUMNS = [
    "sample_id",
    "group_id",
    "prompt",
    "prompt_ids",
    "completion_ids",
    "logprobs",
    "reward",
    "image",
]


def sample_rows(table: pl.DataFrame, id_col: str, scored: pl.DataFrame) -> pl.DataFrame:
    """Training rows of a text-only role: ``table``'s samples (id column ``id_col``) with the
    reward and group of ``scored`` (a method plug-in's role_samples can return these as is)."""
    frame = join_samples(table, id_col, scored)
    return frame.with_columns(pl.lit(None, dtype=pl.Binary).alias("image")).select(SAMPLE_COLUMNS)


def join_samples(table: pl.DataFrame, id_col: str, scored: pl.DataFrame) -> pl.DataFrame:
    keep = [c for c in table.columns if c not in ("group_id", "reward")]
    # The rewards table's group_id is authoritative (it defines what was scored together).
    return (
        table.select(keep)
        .join(
            scored.select("sample_id", "group_id", "reward"),
            left_on=id_col,
            right_on="sample_id",
            how="inner",
        )
        .with_columns(pl.col(id_col).alias("sample_id"))
    )


def build_groups(
    role: str, samples: pl.DataFrame, processor=None, seed: int = 0
) -> tuple[list[Group], GroupStats]:
    """Group ``samples`` (see :func:`mmzero_role_samples`) into trainable GRPO groups.

    Refuses (and counts) a group whose rows differ in prompt, prompt ids or image: every
    completion is replayed under the group's one prompt, so all must have been sampled from it.
    Drops (and counts) groups whose rewards are all equal, samples whose cached log-probs do not
    line up with their tokens or whose completion holds an image placeholder token, and groups of a size other than the role's most common one (larger
    groups are subsampled to it, deterministically). With ``processor``, each prompt is tokenised
    the way the trainer will and compared with the cached ``prompt_ids``; on a mismatch the
    processor's ids are used (counted in ``prompt_ids_mismatch``).
    """
    stats = GroupStats(role=role, samples=samples.height)
    # A completion holding an image/video placeholder token would be fed to the vision tower
    # without pixels; such samples cannot be replayed. The HF engine never samples them; samples
    # from elsewhere (another engine, an old table) are checked here.
    placeholders = set()
    if processor is not None:
        from evovlm.modeling import vision_placeholder_ids

        placeholders = set(vision_placeholder_ids(processor.tokenizer))
    candidates: list[Group] = []
    for (group_id,), rows in samples.sort("sample_id").group_by(["group_id"], maintain_order=True):
        stats.groups_total += 1
        group = _candidate_group(role, str(group_id), rows, placeholders, stats)
        if group is not None:
            candidates.append(group)
    if not candidates:
        return [], stats
    groups = _trainable_groups(role, candidates, processor, seed, stats)
    stats.trainable_groups = len(groups)
    return groups, stats


def _replayable(r: dict, placeholders: set[int]) -> bool:
    """A sample the trainer can replay: a reward, a non-empty completion, one finite cached
    log-prob per token, and no image placeholder token in the completion."""
    ids, lps = r["completion_ids"], r["logprobs"]
    return (
        r["reward"] is not None
        and ids is not None
        and len(ids) > 0
        and lps is not None
        and len(lps) == len(ids)
        and all(lp == lp and abs(lp) != float("inf") for lp in lps)
        and not placeholders.intersection(ids)
    )


def _candidate_group(
    role: str, group_id: str, rows: pl.DataFrame, placeholders: set[int], stats: GroupStats
) -> Group | None:
    """One group's replayable rows as a :class:`Group`, or None (counted in ``stats``) when
    fewer than two are left or the rows mix prompts."""
    good = []
    for r in rows.iter_rows(named=True):
        if _replayable(r, placeholders):
            good.append(r)
        else:
            stats.dropped_bad_samples += 1
    if len(good) < 2:
        stats.dropped_size_mismatch += 1
        return None
    first = good[0]
    if any(
        r["prompt"] != first["prompt"]
        or list(r["prompt_ids"]) != list(first["prompt_ids"])
        or _image_bytes(r["image"]) != _image_bytes(first["image"])
        for r in good[1:]
    ):
        log.error(
            "%s group %s mixes prompts: refused (its completions were not all sampled from "
            "one prompt)",
            role,
            group_id,
        )
        stats.dropped_mixed_prompts += 1
        return None
    return Group(
        role=role,
        group_id=group_id,
        messages=json.loads(first["prompt"]),
        images=[_decode_image(first["image"])] if first["image"] is not None else [],
        prompt_ids=list(first["prompt_ids"]),
        sample_ids=[r["sample_id"] for r in good],
        completion_ids=[list(r["completion_ids"]) for r in good],
        logprobs=[[float(x) for x in r["logprobs"]] for r in good],
        rewards=[float(r["reward"]) for r in good],
    )


def _trainable_groups(
    role: str, candidates: list[Group], processor, seed: int, stats: GroupStats
) -> list[Group]:
    """The candidates of the role's most common size (larger ones subsampled to it,
    deterministically) whose rewards differ, with the processor's prompt ids."""
    import random

    sizes = Counter(g.size for g in candidates)
    size = max(sizes, key=lambda s: (sizes[s], s))  # the most common size, ties to the larger
    stats.group_size = size
    rng = random.Random(f"{seed}:{role}")
    groups = []
    for g in candidates:
        if g.size < size:
            stats.dropped_size_mismatch += 1
            continue
        if g.size > size:
            keep = sorted(rng.sample(range(g.size), size))
            g = _subset(g, keep)
        if max(g.rewards) - min(g.rewards) <= 1e-12:
            stats.dropped_zero_variance += 1
            continue
        if processor is not None:
            ids = prompt_token_ids(processor, g.messages, g.images)
            if ids != g.prompt_ids:
                stats.prompt_ids_mismatch += 1
                g.prompt_ids = ids
        groups.append(g)
    return groups


def _subset(g: Group, keep: list[int]) -> Group:
    def pick(xs):
        return [xs[i] for i in keep]

    return Group(
        role=g.role,
        group_id=g.group_id,
        messages=g.messages,
        images=g.images,
        prompt_ids=g.prompt_ids,
        sample_ids=pick(g.sample_ids),
        completion_ids=pick(g.completion_ids),
        logprobs=pick(g.logprobs),
        rewards=pick(g.rewards),
    )


def _decode_image(data: Any):
    from evovlm.stages import png_to_image

    return png_to_image(_image_bytes(data))


def prompt_token_ids(processor, messages: list[dict], images: list[Any]) -> list[int]:
    """The prompt ids the engines and the trainer produce: chat template, then the processor."""
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    out = processor(text=[text], images=images or None, return_tensors="pt")
    return out["input_ids"][0].tolist()
