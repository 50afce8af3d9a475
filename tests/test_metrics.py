"""Per-round rates of metrics.json (MM-Zero's co-evolution quantities, EvoLMM's), hand-computed."""

from __future__ import annotations

import polars as pl
import pytest

from evovlm.methods.evolmm.rewards import EvoLMMRewardConfig, score_evolmm
from evovlm.methods.evolmm.summary import evolmm_rates
from evovlm.methods.mmzero.rewards import MMZeroRewardConfig, score_mmzero
from evovlm.methods.mmzero.summary import mmzero_coevolution_rates, summarize_mmzero


def _round():
    proposals = pl.DataFrame(
        {
            "proposal_id": ["p0"],
            "group_id": ["g0"],
            "parse_ok": [True],
            "content_type": ["data_chart"],
            "caption": ["A bar chart of rainfall in five towns"],
            "easy_question": ["How tall is the first bar?"],
            "easy_answer": ["5"],
            "hard_question": ["What is the mean?"],
            "hard_answer": ["3"],
            "parse_error": [None],
        },
        schema_overrides={"parse_error": pl.String},
    )
    programs = pl.DataFrame(
        {
            "program_id": ["p0-c0", "p0-c1", "p0-c2"],
            "proposal_id": ["p0"] * 3,
            "group_id": ["p0-svg"] * 3,
            "extract_status": ["ok"] * 3,
        }
    )
    renders = pl.DataFrame(
        {"program_id": ["p0-c0", "p0-c1", "p0-c2"], "status": ["ok", "ok", "runtime_error"]}
    )
    rows = []
    for program, kind, values in (
        ("p0-c0", "easy", ["5", "5", "6", None]),  # majority 5 = stated: solvable; c = 2/3
        ("p0-c0", "hard", ["1", "1", "2", "3"]),  # c = 1/2, d = 1/2
        ("p0-c1", "easy", [None, None, "none", None]),  # no valid answer: not solvable
        ("p0-c1", "hard", ["4", "4", "4", "4"]),  # c = 1, d = 0
    ):
        for j, v in enumerate(values):
            rows.append(
                {
                    "answer_id": f"{program}-{kind}-a{j}",
                    "program_id": program,
                    "proposal_id": "p0",
                    "question_kind": kind,
                    "group_id": f"{program}-{kind}",
                    "answer": v,
                    "format_ok": True,
                }
            )
    answers = pl.DataFrame(rows, schema_overrides={"answer": pl.String})
    rewards = score_mmzero(proposals, programs, renders, answers, MMZeroRewardConfig())
    return proposals, programs, renders, answers, rewards


def test_mmzero_coevolution_rates_hand_computed():
    proposals, _programs, renders, answers, rewards = _round()
    rates, counts, _ = mmzero_coevolution_rates(proposals, renders, answers, rewards)
    # three questions with a valid answer: (2/3 + 1/2 + 1) / 3
    assert rates["solver_agreement"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert counts["solver_agreement"] == 3
    assert rates["solvability"] == pytest.approx(0.5) and counts["solvability"] == 2
    assert rates["difficulty"] == pytest.approx(0.25) and counts["difficulty"] == 2


def test_summary_keeps_parse_and_render_rates_beside_the_new_ones():
    proposals, programs, renders, answers, rewards = _round()
    summary = summarize_mmzero(proposals, programs, renders, answers, rewards, {}, {})
    rates = summary["rates"]
    assert rates["parse_rate"] == 1.0 and rates["render_rate"] == pytest.approx(2 / 3)
    assert {"solver_agreement", "solvability", "difficulty"} <= set(rates)
    assert summary["rate_counts"]["render_rate"] == 3


def test_evolmm_rates_hand_computed():
    questions = pl.DataFrame(
        {
            "question_id": ["q0", "q1", "q2"],
            "group_id": ["i0"] * 3,
            "parse_ok": [True, True, False],
            "question": ["What colour?", "How many?", None],
        }
    )
    answers = pl.DataFrame(
        {
            "answer_id": [f"q0-a{j}" for j in range(4)] + [f"q1-a{j}" for j in range(4)],
            "question_id": ["q0"] * 4 + ["q1"] * 4,
            "answer": ["red", "red", "blue", None, "3", "3", "3", "3"],
            "words_before_answer": [0] * 8,
        }
    )
    rewards = score_evolmm(questions, answers, EvoLMMRewardConfig())
    rates, counts, _ = evolmm_rates(questions, rewards)
    assert rates["parse_rate"] == pytest.approx(2 / 3)
    # shares over the valid answers: q0 2/4, 2/4, 1/4; q1 1 x 4
    assert rates["mean_answer_share"] == pytest.approx((0.5 + 0.5 + 0.25 + 4) / 7)
    import math

    h0 = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))  # 0.64: inside [0.55, 1.25]
    assert rates["mean_entropy"] == pytest.approx((h0 + 0.0) / 2)
    assert rates["entropy_band_share"] == pytest.approx(0.5) and counts["mean_entropy"] == 2


def test_standard_errors_of_shares_and_of_means():
    import math

    from evovlm.metrics import standard_errors

    se = standard_errors(
        {"parse_rate": 0.5, "solver_agreement": 0.4, "empty": None},
        {"parse_rate": 100, "solver_agreement": 25, "empty": 0},
        {"solver_agreement": 0.2},
    )
    assert se["parse_rate"] == math.sqrt(0.25 / 100)  # a share: binomial
    assert se["solver_agreement"] == 0.2 / 5  # a mean: s / sqrt(n)
    assert se["empty"] is None
