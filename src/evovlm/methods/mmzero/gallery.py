"""MM-Zero's round gallery: an HTML page of sampled rendered images with their text and rewards."""

from __future__ import annotations

import polars as pl

from evovlm.report import gallery_page, html_value, img_tag, pick


def mmzero_gallery(
    round_: int,
    proposals: pl.DataFrame,
    programs: pl.DataFrame,
    renders: pl.DataFrame,
    answers: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
    k: int = 12,
    seed: int = 0,
) -> str:
    """HTML: sampled rendered images beside caption, questions, Proposer and Solver answers,
    the majority (pseudo-label) and each role's reward."""
    ok = renders.filter(pl.col("status") == "ok").sort("program_id")
    picked = pick(ok["program_id"].to_list(), k, seed)
    props = {r["proposal_id"]: r for r in proposals.to_dicts()}
    progs = {r["program_id"]: r for r in programs.to_dicts()}
    images = {r["program_id"]: r["image"] for r in ok.select("program_id", "image").to_dicts()}
    reward_of = {
        role: {r["sample_id"]: r for r in frame.to_dicts()} for role, frame in rewards.items()
    }
    cards = []
    for pid in picked:
        prog = progs.get(pid, {})
        prop = props.get(prog.get("proposal_id"), {})
        coder = reward_of.get("coder", {}).get(pid, {})
        proposer = reward_of.get("proposer", {}).get(prog.get("proposal_id"), {})
        image = images.get(pid) or {}
        qrows = []
        for kind in ("easy", "hard"):
            group = answers.filter(
                (pl.col("program_id") == pid) & (pl.col("question_kind") == kind)
            )
            sample_rows = group.sort("sample_index").to_dicts()
            solver = [reward_of.get("solver", {}).get(a["answer_id"], {}) for a in sample_rows]
            label = next((s.get("label") for s in solver if s), None)
            agree = next((s.get(f"{kind}_agreement") for s in solver if s), None)
            in_band = next((s.get("in_band") for s in solver if s), None)
            cells = " ".join(
                f"<span class='{'ok' if s.get('correct') else 'bad'}'>{html_value(a['answer'])}</span>"
                f"<span class='reward'> ({html_value(s.get('reward'))})</span>"
                for a, s in zip(sample_rows, solver, strict=True)
            )
            qrows.append(
                f"<tr><th>{kind}</th><td>{html_value(prop.get(f'{kind}_question'))}</td>"
                f"<td>{html_value(prop.get(f'{kind}_answer'))}</td><td>{cells or html_value(None)}</td>"
                f"<td>{html_value(label)} (agreement {html_value(agree)})</td></tr>"
            )
        cards.append(
            f"<div class='card'>{img_tag(image.get('bytes'))}<div class='body'>"
            f"<div class='caption'>{html_value(prop.get('caption'))}</div>"
            f"<div>program <code>{html_value(pid)}</code> ({html_value(prog.get('language'))}), "
            f"topic: {html_value(prop.get('topic'))}, content type: {html_value(prop.get('content_type'))}</div>"
            "<table><tr><th></th><th>question</th><th>Proposer's answer</th>"
            "<th>Solver's answers (reward)</th><th>majority</th></tr>" + "".join(qrows) + "</table>"
            f"<div>rewards: Proposer <span class='reward'>{html_value(proposer.get('reward'))}</span>, "
            f"Coder <span class='reward'>{html_value(coder.get('reward'))}</span>; mid-band filter: "
            f"{html_value(in_band)}</div></div></div>"
        )
    note = (
        f"{len(picked)} of {ok.height} rendered images, drawn at random (seed {seed}). Solver "
        "answers in green match the majority label; the number after each is its reward."
    )
    return gallery_page(f"Round {round_}: gallery", note, cards)
