"""EvoLMM: the Solver's answers through the real stage and scoring, from recorded replies.

Issue 29: answers kept a broken closing tag ("4</answer"), so "4" and "4</answer" were different
answers and the self-consistency share, the entropy and the Proposer's reward were skewed.
"""

import io

import polars as pl
import pytest
from PIL import Image

from evovlm.engines import RequestOutput, Sample
from evovlm.methods.evolmm.rewards import EvoLMMRewardConfig, score_evolmm
from evovlm.methods.evolmm.stages import answer_questions, sample_images


class RecordedEngine:
    """Returns the same recorded replies (one per sample) for every request."""

    def __init__(self, replies: list[str]):
        self.replies = replies

    def generate(self, requests, progress=False):
        return [
            RequestOutput(
                prompt_ids=[1],
                samples=[Sample(text, [2], [-0.1], "stop") for text in self.replies],
            )
            for _ in requests
        ]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_one_answer_in_every_tag_form_is_one_cluster():
    replies = [
        "<answer>4</answer>",
        "<answer>4</answer",  # what the tiny model wrote for 46-48% of its answers
        "<answer> 4 ",
        "Four bars.\n<Answer>4.</Answer>",
        "<answer>\\boxed{4}</answer>",
    ]
    images = pl.DataFrame(
        {"image_id": ["r1-img-0000"], "image": [{"bytes": _png(), "path": "a.png"}]}
    )
    questions = pl.DataFrame(
        {
            "question_id": ["r1-img-0000-q0"],
            "image_id": ["r1-img-0000"],
            "group_id": ["r1-img-0000"],
            "parse_ok": [True],
            "question": ["How many bars?"],
        }
    )
    sampling = {"n": len(replies), "temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_tokens": 8}
    answers = answer_questions(
        RecordedEngine(replies), images, questions, round_=1, sampling=sampling, seed=0
    )
    assert answers["answer"].to_list() == ["4"] * len(replies)
    scored = score_evolmm(questions, answers, EvoLMMRewardConfig())
    solver, proposer = scored["solver"], scored["proposer"]
    assert solver["share"].to_list() == [1.0] * len(replies)  # full agreement
    assert solver["answer_valid"].all()
    assert proposer["n_clusters"].to_list() == [1]
    assert proposer["entropy"].to_list() == [pytest.approx(0.0)]


def test_sample_images_refuses_a_folder_with_no_readable_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="evolmm.image_dir"):
        sample_images(tmp_path, round_=1, count=4, seed=0)
