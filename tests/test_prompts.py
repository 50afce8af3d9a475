"""Prompt templates per role and the reference-output formatters."""

from __future__ import annotations

import re

import pytest

from evovlm import prompts

PROPOSAL = {
    "content_type": "data_chart",
    "caption": "A bar chart of apples (12) and pears (7); note x < 3 & y > 2.",
    "easy_question": "How many apples?",
    "easy_answer": "12",
    "hard_question": "How many more apples than pears?",
    "hard_answer": "5",
}

FIELDS = {
    "proposer": {"topic": "chart and graph understanding"},
    "coder_svg": PROPOSAL,
    "coder_python": PROPOSAL,
    "solver": {"question": "What is the value of B?"},
    "evolmm_proposer": {},
    "evolmm_solver": {"question": "What colour is the car?"},
}


def _text(messages: list[dict]) -> str:
    (text_item,) = [c for c in messages[0]["content"] if c["type"] == "text"]
    return text_item["text"]


def test_every_role_has_fields_here():
    assert set(FIELDS) == set(prompts.ROLES)


@pytest.mark.parametrize("role", sorted(prompts.ROLES))
def test_message_shape_and_image_entry(role):
    messages = prompts.render_messages(role, **FIELDS[role])
    assert len(messages) == 1 and messages[0]["role"] == "user"
    content = messages[0]["content"]
    assert isinstance(content, list) and content[-1]["type"] == "text"
    images = [c for c in content if c["type"] == "image"]
    if role in ("solver", "evolmm_proposer", "evolmm_solver"):
        assert content[0] == {"type": "image"} and len(content) == 2
    else:
        assert images == [] and len(content) == 1
    assert content[-1]["text"] == content[-1]["text"].strip() and content[-1]["text"]


def test_proposer_prompt():
    text = _text(prompts.render_messages("proposer", topic="spatial and geometric reasoning"))
    assert "spatial and geometric reasoning" in text
    for tag in prompts.PROPOSAL_TAGS:
        assert f"<{tag}>" in text and f"</{tag}>" in text
    for content_type in prompts.CONTENT_TYPES:
        assert content_type in text
    assert "single number, word or very short phrase" in text
    assert "easy" in text and "hard" in text


@pytest.mark.parametrize("language", ["svg", "python"])
def test_coder_prompts(language):
    text = _text(prompts.render_messages(f"coder_{language}", **PROPOSAL))
    for value in PROPOSAL.values():
        assert value in text  # no HTML escaping: "x < 3 & y > 2" survives
    assert f"```{language}" in text
    assert "easy answer must be visibly readable" in text
    if language == "python":
        assert "matplotlib" in text and "savefig" in text and "show" in text
    else:
        assert "<svg>" in text


def test_solver_prompt():
    text = _text(prompts.render_messages("solver", question="What is 2 + 2?"))
    assert text.startswith("What is 2 + 2?")
    assert "<think> </think>" in text and "\\boxed{}" in text
    assert "single number, word or short phrase" in text
    assert "step by step" in text


def test_evolmm_prompts():
    text = _text(prompts.render_messages("evolmm_proposer"))
    assert "<question>" in text and "<rationale>" in text
    assert "image alone" in text and "trivia" in text and "counting" in text
    assert "Do not give the answer" in text
    text = _text(prompts.render_messages("evolmm_solver", question="Which is larger?"))
    assert text.startswith("Which is larger?")
    assert "<answer></answer>" in text and "briefly" in text


def test_unknown_role_and_missing_variable():
    with pytest.raises(prompts.PromptError, match="unknown prompt role"):
        prompts.render_messages("critic")
    with pytest.raises(prompts.PromptError, match="topic"):
        prompts.render_messages("proposer")
    partial = dict(PROPOSAL)
    del partial["hard_answer"]
    with pytest.raises(prompts.PromptError, match="hard_answer"):
        prompts.render_messages("coder_svg", **partial)
    with pytest.raises(ValueError):  # PromptError is a ValueError
        prompts.render_messages("solver")


def test_templates_load_as_package_resources():
    from importlib.resources import files

    for template, _ in prompts.ROLES.values():
        assert files("evovlm").joinpath(*template.split("/")).is_file()


def test_default_seed_topics():
    assert len(prompts.DEFAULT_SEED_TOPICS) == 8
    assert len(set(prompts.DEFAULT_SEED_TOPICS)) == 8
    assert "visual text recognition and OCR" in prompts.DEFAULT_SEED_TOPICS


# ---------------------------------------------------------------------------------------------
# Reference outputs round-trip through simple tag regexes


def _tag(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL | re.IGNORECASE)
    return m.group(1).strip() if m else None


def test_format_proposal_round_trip():
    text = prompts.format_proposal(PROPOSAL)
    assert len(text.splitlines()) == 6
    assert {tag: _tag(text, tag) for tag in prompts.PROPOSAL_TAGS} == PROPOSAL
    with pytest.raises(prompts.PromptError, match="caption"):
        prompts.format_proposal({k: v for k, v in PROPOSAL.items() if k != "caption"})


@pytest.mark.parametrize("language", ["svg", "python"])
def test_format_code_round_trip(language):
    code = '<svg width="10" height="10"></svg>' if language == "svg" else "import math\nx = 1"
    text = prompts.format_code(code + "\n", language)
    m = re.search(rf"```{language}\n(.*?)\n```", text, re.DOTALL)
    assert m and m.group(1) == code


def test_format_solver_round_trip():
    text = prompts.format_solver("Bar B reaches 42.", "42")
    assert text == "<think>Bar B reaches 42.</think>\n\\boxed{42}"
    assert re.fullmatch(r"<think>.*?</think>\s*\\boxed\{[^{}]*\}", text, re.DOTALL)
    assert re.search(r"\\boxed\{(.*)\}", text).group(1) == "42"


def test_format_evolmm_round_trip():
    text = prompts.format_evolmm_question("What colour is the car?", "The car is in the centre.")
    assert _tag(text, "question") == "What colour is the car?"
    assert _tag(text, "rationale") == "The car is in the centre."
    answer = prompts.format_evolmm_answer("The car is red.", "red")
    assert _tag(answer, "answer") == "red" and answer.startswith("The car is red.")
    assert prompts.format_evolmm_answer("", "red") == "<answer>red</answer>"
