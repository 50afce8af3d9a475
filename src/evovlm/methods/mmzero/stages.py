"""MM-Zero generation stages: propose concepts, write code, sample answers.

Each stage turns a frame (or nothing) into requests, generates with the engine and returns a
frame with one row per completion: stable ids, group ids, the prompt, the completion with its
token ids and sampling log-probs, and the parsed fields. Output that does not parse is a row
with its reason, never an exception. A stage with nothing to do returns an empty frame.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from evovlm import parse, prompts
from evovlm.engines import Request
from evovlm.schema import ANSWERS, PROGRAMS, PROPOSALS, frame_from_rows
from evovlm.stages import Shard, completion_columns, image_request, request_seed, sampling_params

PROPOSAL_FIELDS = parse.PROPOSAL_TAGS  # the proposal's columns: its six tags (evovlm.parse)


def seed_topics(configured: list[str] | None) -> list[str]:
    return list(configured) if configured else list(prompts.DEFAULT_SEED_TOPICS)


def _frame(rows: list[dict[str, Any]], spec) -> pl.DataFrame:
    return frame_from_rows(rows, spec).sort(spec.names[1])


def propose(
    engine,
    *,
    round_: int,
    topics: list[str],
    prompts_per_topic: int,
    sampling: dict[str, Any],
    seed: int,
    shard: Shard = Shard(),
) -> pl.DataFrame:
    """n proposals per (topic, prompt index); the n samples of one prompt form a group."""
    groups = [
        (f"r{round_}-prop-t{t:02d}p{p:02d}", topic)
        for t, topic in enumerate(topics)
        for p in range(prompts_per_topic)
    ]
    groups = shard.take(groups)
    params = sampling_params(sampling, int(sampling["n"]))
    requests = [
        Request(
            messages=prompts.render_messages("proposer", topic=topic),
            sampling=params,
            seed=request_seed(seed, round_, "propose", gid),
        )
        for gid, topic in groups
    ]
    rows = []
    for (gid, topic), request, output in zip(
        groups, requests, engine.generate(requests), strict=True
    ):
        for j, sample in enumerate(output.samples):
            fields = parse.parse_proposal(sample.text)
            rows.append(
                {
                    "round": round_,
                    "proposal_id": f"{gid}-s{j}",
                    "group_id": gid,
                    "topic": topic,
                    "sample_index": j,
                    "seed": request.seed,
                    **completion_columns(request, output, j),
                    "parse_ok": bool(fields.ok),
                    "parse_error": fields.error,
                    **{f: getattr(fields, f) for f in PROPOSAL_FIELDS},
                }
            )
    return _frame(rows, PROPOSALS)


def write_code(
    engine,
    proposals: pl.DataFrame,
    *,
    round_: int,
    k: int,
    languages: list[str],
    sampling: dict[str, Any],
    seed: int,
    shard: Shard = Shard(),
) -> pl.DataFrame:
    """k programs per valid proposal and language; one GRPO group per (proposal, language).

    A group must be one prompt: the Coder's prompt differs per language, so programs of two
    languages never share a group (their completions could not be replayed under one prompt).
    Program ids number a proposal's programs across languages: language i holds c{i*k}..
    """
    valid = proposals.filter(pl.col("parse_ok")).sort("proposal_id").to_dicts()
    valid = shard.take(valid)
    jobs = [  # (proposal, language, [program indices])
        (prop, language, list(range(li * k, (li + 1) * k)))
        for prop in valid
        for li, language in enumerate(languages)
    ]
    requests = [
        Request(
            messages=prompts.render_messages(
                f"coder_{language}", **{f: prop[f] or "" for f in PROPOSAL_FIELDS}
            ),
            sampling=sampling_params(sampling, len(indices)),
            seed=request_seed(seed, round_, "code", f"{prop['proposal_id']}-{language}"),
        )
        for prop, language, indices in jobs
    ]
    rows = []
    for (prop, language, indices), request, output in zip(
        jobs, requests, engine.generate(requests), strict=True
    ):
        for s, j in enumerate(indices):
            code, status = parse.extract_code(output.samples[s].text, language)
            rows.append(
                {
                    "round": round_,
                    "program_id": f"{prop['proposal_id']}-c{j}",
                    "proposal_id": prop["proposal_id"],
                    "group_id": f"{prop['proposal_id']}-{language}",
                    "language": language,
                    "sample_index": j,
                    "seed": request.seed,
                    **completion_columns(request, output, s),
                    "code": code,
                    "extract_status": status,
                }
            )
    return _frame(rows, PROGRAMS)


def sample_answers(
    engine,
    proposals: pl.DataFrame,
    programs: pl.DataFrame,
    renders: pl.DataFrame,
    *,
    round_: int,
    m: int,
    sampling: dict[str, Any],
    seed: int,
    shard: Shard = Shard(),
) -> pl.DataFrame:
    """m answers per (rendered image, question kind); each (image, question) is a group."""
    ok = (
        renders.filter(pl.col("status") == "ok")
        .select("program_id", "image")
        .join(programs.select("program_id", "proposal_id"), on="program_id")
        .join(proposals.select("proposal_id", "easy_question", "hard_question"), on="proposal_id")
        .sort("program_id")
        .to_dicts()
    )
    jobs = shard.take([(row, kind) for row in ok for kind in ("easy", "hard")])
    requests = [
        image_request(
            "solver",
            row["image"]["bytes"],
            sampling,
            m,
            (seed, round_, "answer", f"{row['program_id']}-{kind}"),
            question=row[f"{kind}_question"],
        )
        for row, kind in jobs
    ]
    rows = []
    for (row, kind), request, output in zip(jobs, requests, engine.generate(requests), strict=True):
        for j, sample in enumerate(output.samples):
            answer, format_ok = parse.parse_solver(sample.text)
            rows.append(
                {
                    "round": round_,
                    "answer_id": f"{row['program_id']}-{kind}-a{j}",
                    "program_id": row["program_id"],
                    "proposal_id": row["proposal_id"],
                    "question_kind": kind,
                    "group_id": f"{row['program_id']}-{kind}",
                    "question": row[f"{kind}_question"],
                    "sample_index": j,
                    "seed": request.seed,
                    **completion_columns(request, output, j),
                    "answer": answer,
                    "format_ok": bool(format_ok),
                }
            )
    return _frame(rows, ANSWERS)
