"""EvoLMM's round gallery: an HTML page of sampled images with their questions and rewards."""

from __future__ import annotations

import polars as pl

from evovlm.report import gallery_page, html_value, img_tag, pick


def evolmm_gallery(
    round_: int,
    images: pl.DataFrame,
    questions: pl.DataFrame,
    answers: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
    k: int = 8,
    seed: int = 0,
) -> str:
    """HTML for EvoLMM: the image, its questions, the Solver's answers and the rewards."""
    picked = pick(images.sort("image_id")["image_id"].to_list(), k, seed)
    pics = {r["image_id"]: r for r in images.to_dicts()}
    reward_of = {
        role: {r["sample_id"]: r for r in frame.to_dicts()} for role, frame in rewards.items()
    }
    cards = []
    for image_id in picked:
        qrows = []
        for q in questions.filter(pl.col("image_id") == image_id).sort("sample_index").to_dicts():
            proposer = reward_of.get("proposer", {}).get(q["question_id"], {})
            group = answers.filter(pl.col("question_id") == q["question_id"]).sort("sample_index")
            cells = " ".join(
                f"<span class='{'ok' if s.get('majority') else 'bad'}'>{html_value(a['answer'])}</span>"
                f"<span class='reward'> ({html_value(s.get('reward'))})</span>"
                for a in group.to_dicts()
                for s in [reward_of.get("solver", {}).get(a["answer_id"], {})]
            )
            qrows.append(
                f"<tr><td>{html_value(q['question'] if q['parse_ok'] else None)}</td>"
                f"<td class='reward'>{html_value(proposer.get('reward'))}</td>"
                f"<td>{cells or html_value(None)}</td><td>{html_value(proposer.get('label'))}</td></tr>"
            )
        pic = pics[image_id]
        cards.append(
            f"<div class='card'>{img_tag((pic.get('image') or {}).get('bytes'))}<div class='body'>"
            f"<div class='caption'>{html_value(pic.get('source'))}</div>"
            "<table><tr><th>question</th><th>Proposer reward</th>"
            "<th>Solver's answers (reward)</th><th>majority</th></tr>"
            + "".join(qrows)
            + "</table></div></div>"
        )
    note = (
        f"{len(picked)} of {images.height} images, drawn at random (seed {seed}). Answers in green "
        "are in the majority cluster; the number after each is its reward."
    )
    return gallery_page(f"Round {round_}: gallery", note, cards)
