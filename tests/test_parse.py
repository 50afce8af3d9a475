"""Parsers for every role: proposal tags, code fences, boxed answers, EvoLMM tags."""

from __future__ import annotations

import time

import pytest

from evovlm.parse import (
    extract_code,
    find_tag,
    parse_answer_tag,
    parse_proposal,
    parse_question,
    parse_solver,
    words_before_answer,
)

FULL = """<content_type>data_chart</content_type>
<caption>A bar chart with bars where x < 3 and y > 2 / 4.</caption>
<easy_question>What is the height of bar A?</easy_question>
<easy_answer>5</easy_answer>
<hard_question>What is the sum of A and B?</hard_question>
<hard_answer>12</hard_answer>"""


# find_tag / parse_proposal -------------------------------------------------------------------


def test_full_proposal():
    p = parse_proposal(FULL)
    assert p.ok and p.error is None
    assert p.content_type == "data_chart"
    assert p.caption == "A bar chart with bars where x < 3 and y > 2 / 4."  # never rewritten
    assert (p.easy_question, p.easy_answer) == ("What is the height of bar A?", "5")
    assert (p.hard_question, p.hard_answer) == ("What is the sum of A and B?", "12")


def test_missing_tags_named_in_order():
    p = parse_proposal("<caption>c</caption><easy_question>q</easy_question>")
    assert not p.ok
    assert p.error == "missing tags: easy_answer, hard_question, hard_answer"
    assert p.caption == "c" and p.hard_answer is None


def test_empty_tag_is_invalid():
    p = parse_proposal(
        FULL.replace("<easy_answer>5</easy_answer>", "<easy_answer>  </easy_answer>")
    )
    assert not p.ok
    assert p.error == "empty tags: easy_answer"
    assert p.easy_answer is None


def test_unclosed_tag_is_missing():
    p = parse_proposal(FULL.replace("</hard_answer>", ""))
    assert not p.ok and p.error == "missing tags: hard_answer"


def test_tags_in_other_case_and_spacing():
    text = FULL.replace("<caption>", "<CAPTION>").replace("</caption>", "</ Caption >")
    assert parse_proposal(text).caption.startswith("A bar chart")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("data_chart", "data_chart"),
        (" Data Chart ", "data_chart"),
        ("GEOMETRY", "geometry"),
        ("bar_chart", "other"),
        ("", "other"),
    ],
)
def test_content_type(raw, expected):
    text = FULL.replace("data_chart", raw)
    assert parse_proposal(text).content_type == expected


def test_missing_content_type_is_other_and_still_valid():
    text = FULL.replace("<content_type>data_chart</content_type>", "")
    p = parse_proposal(text)
    assert p.ok and p.content_type == "other"


def test_first_closed_occurrence():
    text = "<caption>first</caption> <caption>second</caption>"
    assert find_tag(text, "caption") == "first"


def test_stray_opening_tag_before_the_real_one():
    text = "I will now write the <caption> tag. <caption>real</caption>"
    assert find_tag(text, "caption") == "real"


def test_nested_same_tag():
    assert find_tag("<caption>a <caption>b</caption> c</caption>", "caption") == "b"


def test_closing_before_opening():
    assert find_tag("</caption> x <caption>y</caption>", "caption") == "y"
    assert find_tag("</caption> x <caption>y", "caption") is None


def test_inner_text_kept_verbatim():
    assert find_tag(
        "<easy_answer>  x<3, <b>bold</b> &amp; \\frac{1}{2}\n</easy_answer>", "easy_answer"
    ) == ("x<3, <b>bold</b> &amp; \\frac{1}{2}")


def test_parse_proposal_non_string_and_hostile():
    assert not parse_proposal(None).ok
    assert not parse_proposal("").ok
    start = time.perf_counter()
    assert not parse_proposal("<caption>" * 50_000).ok
    assert not parse_proposal("</caption>" * 50_000).ok
    assert time.perf_counter() - start < 2.0


# extract_code --------------------------------------------------------------------------------

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10"><rect/></svg>'


@pytest.mark.parametrize(
    ("text", "language", "code", "status"),
    [
        (f"```svg\n{SVG}\n```", "svg", SVG, "ok"),
        (f"```xml\n{SVG}\n```", "svg", SVG, "ok"),
        (f"```SVG\n{SVG}\n```", "svg", SVG, "ok"),
        (f"Here:\n```svg\n{SVG}\n```\nDone.", "svg", SVG, "ok"),
        (f"Sure! {SVG} Hope it helps.", "svg", SVG, "ok"),  # no fence: the element
        (f"```html\n<html>{SVG}</html>\n```", "svg", SVG, "ok"),  # wrong fence: the element
        (f"```\n{SVG}\n```", "svg", SVG, "ok"),
        ("```svg\n```", "svg", None, "empty"),
        ("```svg\n\n   \n```", "svg", None, "empty"),
        ("", "svg", None, "empty"),
        ("   \n ", "python", None, "empty"),
        (None, "svg", None, "empty"),
        ("I cannot draw that.", "svg", None, "not_code"),
        ("```python\nprint(1)\n```", "svg", None, "not_code"),
        ("```python\nimport matplotlib\n```", "python", "import matplotlib", "ok"),
        ("```py\nx = 1\n```", "python", "x = 1", "ok"),
        ("```Python3\nx = 1\n```", "py", "x = 1", "ok"),
        ("```\nx = 1\n```", "python", "x = 1", "ok"),  # untagged fence
        ("```svg\n<svg/>\n```", "python", None, "not_code"),
        ("x = 1", "python", None, "not_code"),
        ("```python\nx = 1", "python", "x = 1", "ok"),  # cut off at the token limit
        ("```svg\n<svg><rect/></svg>```", "svg", "<svg><rect/></svg>", "ok"),  # inline close
        ("<svg width='1'><rect/>", "svg", None, "not_code"),  # never closed, no fence
    ],
)
def test_extract_code(text, language, code, status):
    assert extract_code(text, language) == (code, status)


def test_extract_code_first_matching_fence_wins():
    text = "```python\nbad\n```\n```svg\n<svg>1</svg>\n```\n```svg\n<svg>2</svg>\n```"
    assert extract_code(text, "svg") == ("<svg>1</svg>", "ok")


def test_extract_code_skips_empty_fence_for_later_one():
    text = "```svg\n```\n```svg\n<svg>2</svg>\n```"
    assert extract_code(text, "svg") == ("<svg>2</svg>", "ok")


def test_extract_code_nested_svg_element():
    inner = "<svg><svg><rect/></svg><circle/></svg>"
    assert extract_code(f"text {inner} tail </svg>", "svg") == (inner, "ok")


def test_extract_code_unknown_language():
    with pytest.raises(ValueError, match="unknown code language"):
        extract_code("x", "rust")


def test_extract_code_hostile_is_fast():
    start = time.perf_counter()
    extract_code("```svg\n" * 20_000, "svg")
    extract_code("<svg " * 20_000, "svg")
    extract_code("`" * 100_000, "python")
    assert time.perf_counter() - start < 2.0


# parse_solver --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "format_ok"),
    [
        ("<think>bars</think>\\boxed{5}", "5", True),
        ("  <think>\nA is 5.\n</think>\n\n\\boxed{5}\n", "5", True),
        ("<think>x</think> $\\boxed{5}$.", "5", True),
        ("<think>x</think> \\[\\boxed{\\frac{1}{2}}\\]", "\\frac{1}{2}", True),
        ("<THINK>x</Think>\\boxed{5}", "5", True),
        ("<think>x</think> The answer is \\boxed{5}.", "5", False),
        ("<think>x</think>\\boxed{5} because A.", "5", False),
        ("<think>x</think>\\boxed{4} \\boxed{5}", "5", False),  # two boxes: last counts
        ("\\boxed{5}", "5", False),  # no think block
        ("Let me see <think>x</think>\\boxed{5}", "5", False),
        ("<think>x</think><think>y</think>\\boxed{5}", "5", False),
        ("<think>x \\boxed{5}", "5", False),  # unclosed think
        ("<think>x</think>", None, False),
        ("<think>x</think>\\boxed{}", None, False),
        ("<think>x</think>\\boxed{5", None, False),  # unbalanced braces
        ("<think>x</think>\\boxed{5}}", "5", False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_parse_solver(text, answer, format_ok):
    assert parse_solver(text) == (answer, format_ok)


# EvoLMM --------------------------------------------------------------------------------------


def test_parse_question():
    q = parse_question(
        "<question>What is on the sign?</question><rationale>It is legible.</rationale>"
    )
    assert q.ok and q.error is None
    assert q.question == "What is on the sign?"
    assert q.rationale == "It is legible."


def test_parse_question_missing_and_empty():
    assert parse_question("What is this?").error == "missing tags: question"
    assert parse_question("<question> </question>").error == "empty tags: question"
    assert not parse_question(None).ok
    q = parse_question("<Question>Is x < 3?</QUESTION>")
    assert q.ok and q.question == "Is x < 3?" and q.rationale is None


@pytest.mark.parametrize(
    ("text", "answer", "words"),
    [
        ("<answer>blue</answer>", "blue", 0),
        ("It is clearly blue. <answer> blue </answer>", "blue", 4),
        ("<think>one two three</think><answer>5</answer>", "5", 3),
        ("<answer></answer> then <answer>7</answer>", "7", 1),
        ("Reasoning here\n<answer>7", "7", 2),  # unclosed: the text after it
        ("step one\nstep two\n\n42\n\n", "42", 4),  # no tag: last non-empty line
        ("<ANSWER>x</Answer>", "x", 0),
        ("   \n  \n", None, 0),
        ("", None, 0),
    ],
)
def test_answer_tag_and_words(text, answer, words):
    assert parse_answer_tag(text) == answer
    assert words_before_answer(text) == words


# Every form of the tag the tiny and real models write: the answer is "4" in each.
@pytest.mark.parametrize(
    "text",
    [
        "<answer>4</answer>",
        "<answer>4</answer",  # the closing tag cut short of its ">" (issue 29: "4</answer")
        "<answer>4</ans",  # cut at the token limit inside the closing tag
        "<answer>4<",
        "<answer>4",  # cut at the token limit before any closing tag
        "<answer> 4 ",
        "<Answer>4</Answer>",
        "< answer >4</ answer >",
        "<answer>\\boxed{4}</answer>",
        "<answer>The answer is $\\boxed{4}$.</answer>",
        "There are four bars, so the count is 4.\n<answer>4</answer>",
        "<think>2 + 2</think>\n<answer>4</answer>",
        "<answer>3</answer> wait, one more bar. <answer>4</answer>",  # the last one is final
        "<answer>4</answer> and then <answer>7",  # a closed answer beats a later cut one
        "<answer>4answer>",  # a closing tag missing its "</"
        "<answer>4.</answer>",
        "<answer>4!</answer>\n",
        "<answer>4?</answer>",
        "<answer>4</answer>.",
        "<answer>\n4\n</answer>",
        "<answer></answer>\n<answer>4</answer>",
        "4</answer>",  # no opening tag: the last line, tags removed
        "4</answer",
        "The count is \\boxed{4}",  # no tag: the last \boxed{}
    ],
)
def test_answer_tag_forms(text):
    assert parse_answer_tag(text) == "4"


# Replies of the tiny model's EvoLMM Solver (.test/config_evolmm.yaml, rounds 1-2, 2026-12-05),
# with the answer the Solver meant.
@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("<answer>46</answer> se</answer>", "46"),
        ("<answer>39.<answer>", "39"),
        ("<answer> 136?</answer>", "136"),
        ("<answer>52?</answer>20</answer>", "52"),
        ("<answer>201</answer>33</answer>", "201"),
        ("<answer>\n<answer>52</answer>", "52"),
        ("<answer>2011</answer>\n<answer>", "2011"),
        (
            "<answer>97</answer>2016</answer>What is answered is the picture, there in Banana,\n"
            " decimal to18</answer>\n<answerrationale>\n<answer>\n<answer>",
            "97",
        ),
        ("<answer>\n<answer>14</.</rationale>", "14"),
        ("<answer>147?</question>", "147"),
        ("<answer>i to</</answer>In\n<answer>", "i to"),
        (
            "<answer>2</answer>12 labelled leg of the picture is the picture, the of\n<answer>\n"
            "<answer>\n<answered is the of answered is the decimal how? placequestion>How many)"
            "question>What is the of shapes. Hawks?</question>\n<>\n<",
            "2",
        ),
        # tags given but empty: no answer (not the chatter after them)
        ("<answer>.</answer>", None),
        ("<answer", None),
        ("<answer></answer> labelled 179question>>", None),
        ("<answer></answer>>.86</answer>86</answer>", None),
        ("<answer>", None),
    ],
)
def test_answer_tag_recorded_replies(text, answer):
    assert parse_answer_tag(text) == answer


def test_answer_tag_non_string():
    assert parse_answer_tag(None) is None
    assert words_before_answer(None) == 0
