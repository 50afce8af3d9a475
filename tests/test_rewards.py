"""Reward functions (hand-computed values), BLEU diversity against the straightforward oracle,
config dataclasses, and frame-level scoring."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import polars as pl
import pytest

from evovlm.methods.evolmm.rewards import (
    EVOLMM_SOLVER_REWARDS,
    EvoLMMRewardConfig,
    answer_entropy,
    evolmm_proposer_rewards,
    evolmm_solver_rewards,
    majority_solver_rewards,
    score_evolmm,
)
from evovlm.methods.mmzero import bleu as B
from evovlm.methods.mmzero.bleu import (
    bleu_clusters,
    bleu_clusters_reference,
    bleu_tokens,
    pairwise_bleu,
    sentence_bleu,
)
from evovlm.methods.mmzero.rewards import (
    COMPONENTS,
    MMZeroRewardConfig,
    content_type_penalties,
    difficulty,
    mid_band,
    mmzero_coder_rewards,
    mmzero_proposer_rewards,
    mmzero_solver_rewards,
    score_mmzero,
    text_diversity_penalties,
    visual_verification,
)

approx = pytest.approx


# config ----------------------------------------------------------------------------------------


def test_mmzero_defaults_are_spec():
    c = MMZeroRewardConfig()
    assert c.visual_verification_cap == 0.5
    assert (c.easy_threshold, c.easy_penalty) == (0.15, 0.3)
    assert c.diversity_threshold == 0.25
    assert (c.diversity_caption_weight, c.diversity_easy_question_weight) == (0.45, 0.20)
    assert c.diversity_hard_question_weight == 0.35
    assert (c.diversity_scale, c.diversity_max) == (0.5, 0.5)
    assert (c.content_type_share, c.content_type_penalty) == (0.5, 0.15)
    assert (c.render_failed_reward, c.not_code_reward) == (-0.1, -0.5)
    assert (c.solver_correct_weight, c.solver_format_weight) == (0.9, 0.1)
    assert (c.easy_agreement_min, c.hard_agreement_min, c.hard_agreement_max) == (0.5, 0.25, 0.75)


def test_evolmm_defaults_are_spec():
    c = EvoLMMRewardConfig()
    assert (c.consistency_exponent, c.length_penalty) == (0.7, 0.1)
    assert (c.length_free_words, c.length_scale_words) == (6, 6)
    assert (c.entropy_target, c.entropy_sigma) == (0.90, 0.35)
    assert c.solver_reward == "continuous"


def test_from_dict():
    assert MMZeroRewardConfig.from_dict(None) == MMZeroRewardConfig()
    c = MMZeroRewardConfig.from_dict({"easy_penalty": 1, "diversity_threshold": 0.3})
    assert c.easy_penalty == 1.0 and isinstance(c.easy_penalty, float)
    assert EvoLMMRewardConfig.from_dict({"solver_reward": "majority"}).solver_reward == "majority"


@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [
        (MMZeroRewardConfig, {"easy_penalti": 0.3}, "unknown MMZeroRewardConfig key"),
        (MMZeroRewardConfig, {"easy_penalty": "high"}, "must be a number"),
        (MMZeroRewardConfig, {"easy_penalty": True}, "must be a number"),
        (MMZeroRewardConfig, {"hard_agreement_min": 0.9}, "must not exceed"),
        (EvoLMMRewardConfig, {"entropy_target": 1, "bogus": 2}, "bogus"),
        (EvoLMMRewardConfig, {"solver_reward": "median"}, "solver_reward must be one of"),
        (EvoLMMRewardConfig, {"entropy_sigma": 0}, "entropy_sigma"),
    ],
)
def test_from_dict_errors(cls, data, match):
    with pytest.raises(ValueError, match=match):
        cls.from_dict(data)


def test_the_schema_names_exactly_the_evolmm_solver_rewards():
    """EvoLMMRewardConfig checks solver_reward against the schema's enum (the config leaf), so
    the enum and the functions by name must agree."""
    from evovlm.config import section_schema

    enum = section_schema("rewards.evolmm")["properties"]["solver_reward"]["enum"]
    assert sorted(enum) == sorted(EVOLMM_SOLVER_REWARDS)
    message = "must be one of ['continuous', 'majority'], got 'median'"
    with pytest.raises(ValueError, match=re.escape(message)):
        EvoLMMRewardConfig.from_dict({"solver_reward": "median"})


def test_registry():
    """Every MM-Zero role's reward is its components, each weighted by a config field; EvoLMM's
    Solver reward is chosen by name."""
    assert set(COMPONENTS) == {"proposer", "coder", "solver"}
    cfg = MMZeroRewardConfig()
    for components in COMPONENTS.values():
        assert all(callable(c.compute) for c in components)
        assert all(isinstance(getattr(cfg, c.weight), float) for c in components)
    assert [c.name for c in COMPONENTS["solver"]] == ["correct", "format_ok"]
    assert set(EVOLMM_SOLVER_REWARDS) == {"continuous", "majority"}


# MM-Zero ---------------------------------------------------------------------------------------


def test_difficulty():
    assert [difficulty(c) for c in (0.0, 0.2, 0.5, 0.8, 1.0)] == approx([0, 0.2, 0.5, 0.2, 0])


def test_visual_verification():
    assert visual_verification(["5", "5.0", "6", "7"], "5") == 0.5
    # the denominator is m: a missing or placeholder answer is a disagreement (SPEC, MM-Zero)
    assert visual_verification(["5", None, "none", "6"], "5") == 0.25
    assert visual_verification([None, "unknown"], "5") == 0.0
    assert visual_verification([], "5") is None
    assert visual_verification(["unknown", "5"], "unknown") == 0.0  # a placeholder verifies nothing


def test_proposer_rewards_hand_computed():
    got = mmzero_proposer_rewards(
        parse_ok=[False, True, True, True, True, True, True],
        n_programs=[4, 4, 2, 4, 4, 1, 0],
        s=[[], [1.0, 0.4], [1.0, 1.0], [], [], [None], []],
        d=[[], [0.4, 0.2], [0.0, 0.2], [], [], [None], []],
        diversity_penalty=[0.0, 0.1, 0.0, 0.0, 0.2, 0.0, 0.0],
        content_type_penalty=[0.0, 0.05, 0.0, 0.0, 0.0, 0.0, 0.15],
    )
    assert got == approx(
        [
            -1.0,  # unparseable
            (0.5 + 0.4 + 0.4 + 0.2) / 4 - 0.1 - 0.05,  # s capped at 0.5; mean d 0.3: no penalty
            (0.5 + 0.0 + 0.5 + 0.2) / 2 - 0.3,  # mean d 0.1 < 0.15: too easy
            0.0,  # no renders (or every render failed): 0, and no easy penalty
            -0.2,  # no renders, diversity penalty only
            0.0,  # the Solver failed on its only image: masked, no easy penalty
            -0.15,  # no programs at all
        ]
    )


def test_coder_rewards_hand_computed():
    got = mmzero_coder_rewards(
        rendered=[True, True, False, False, False],
        extract_status=["ok", "ok", "ok", "empty", "not_code"],
        s=[1.0, None, None, None, None],
        d=[0.5, None, None, None, None],
    )
    assert got == approx([2.5, 1.0, -0.1, -0.5, -0.5])


def test_solver_rewards_hand_computed():
    got = mmzero_solver_rewards(
        answers=["5", "5.0", "6", None, "none", "5"],
        labels=["5", "5", "5", "5", "5", None],
        format_ok=[True, False, True, False, True, True],
    )
    assert got == approx([1.0, 0.9, 0.1, 0.0, 0.1, 0.1])


def test_mid_band():
    assert mid_band([0.5, 0.4, 1.0, 0.6, 1.0], [0.25, 0.5, 0.8, 0.75, 0.0]) == [
        True,
        False,
        False,
        True,
        False,
    ]


def test_content_type_penalties():
    assert content_type_penalties(["a", "a", "a", "b"]) == approx([0.075, 0.075, 0.075, 0.0])
    assert content_type_penalties(["a", "a", "b", "b"]) == [0.0] * 4  # exactly half: none
    assert content_type_penalties(["a"]) == approx([0.15])
    assert content_type_penalties([None, "other", "x"]) == approx([0.05, 0.05, 0.0])
    assert content_type_penalties([]) == []


# BLEU and diversity ----------------------------------------------------------------------------


def test_sentence_bleu_hand_computed():
    """NLTK's sentence_bleu, uniform weights, smoothing method1 (epsilon 0.1 for an order with
    no match)."""
    assert sentence_bleu(list("abcd"), list("abcd")) == approx(1.0)
    # one token: orders 2-4 have no n-gram: (0 + 0.1) / 1 each
    assert sentence_bleu(["x"], ["x"]) == approx((1 * 0.1 * 0.1 * 0.1) ** 0.25)
    # p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0 -> 0.1 / 1, equal lengths
    assert sentence_bleu(list("abcd"), list("abce")) == approx((0.75 * (2 / 3) * 0.5 * 0.1) ** 0.25)
    # brevity: hypothesis "a b" against "a b c d": p1 = 1, p2 = 1, p3 = 0.1/1, p4 = 0.1/1
    assert sentence_bleu(list("ab"), list("abcd")) == approx(
        math.exp(1 - 4 / 2) * (0.1 * 0.1) ** 0.25
    )
    # the other direction: p1 = 2/4, p2 = 1/3, p3 = 0.1/2, p4 = 0.1/1
    assert sentence_bleu(list("abcd"), list("ab")) == approx((0.5 * (1 / 3) * 0.05 * 0.1) ** 0.25)
    assert sentence_bleu(list("ab"), list("cd")) == 0.0
    assert sentence_bleu([], []) == 0.0 and sentence_bleu([], ["a"]) == 0.0


def test_bleu_tokens_are_whitespace_tokens():
    assert bleu_tokens("A red bar, 5%!") == ["A", "red", "bar,", "5%!"]
    assert bleu_tokens(None) == []


def _near_duplicates(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "the a bar chart line of in shows sales 2020 2021 red blue , . ? value total".split()
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 25))) for _ in range(n // 4)]
    texts = []
    for _ in range(n):
        t = rng.choice(base).split()
        for _ in range(rng.randint(0, 2)):
            if t:
                t[rng.randrange(len(t))] = rng.choice(words)
        texts.append(" ".join(t))
    return texts + ["", "", "x", "X", "?"]


@pytest.mark.parametrize(
    ("dense_df", "chunk"),
    [(1, 4_000_000), (10_000, 7), (8, 50)],  # all dense; all posting pairs, tiny chunks; mixed
)
def test_pairwise_bleu_equals_straightforward(monkeypatch, dense_df, chunk):
    monkeypatch.setattr(B, "_DENSE_DF", dense_df)
    monkeypatch.setattr(B, "_PAIR_CHUNK", chunk)
    texts = _near_duplicates(64, seed=dense_df + chunk)
    tokens = [bleu_tokens(t) for t in texts]
    fast = pairwise_bleu(tokens)
    slow = np.array([[sentence_bleu(a, b) for b in tokens] for a in tokens])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    assert bleu_clusters(texts) == bleu_clusters_reference(texts)
    assert max(bleu_clusters(texts)) > 1  # the data does exercise links


def test_bleu_clusters_edge_cases():
    assert bleu_clusters([]) == []
    assert bleu_clusters(["only one"]) == [1]
    long = "a red bar chart of yearly sales in five regions"
    assert bleu_clusters([long, long, long]) == [3, 3, 3]
    # two words: the 3- and 4-gram orders are smoothed, BLEU = 0.1^0.5 = 0.32: not linked
    assert bleu_clusters(["same text", "same text"]) == [1, 1]
    assert bleu_clusters(["one thing", "something else entirely"]) == [1, 1]


def test_bleu_clusters_average_linkage_not_single():
    """a~b and b~c are linked, a and c are not: single linkage would chain all three; average
    linkage (the method's) merges a and b at 0.054, then {a, b} and c sit at
    (0.296 + 0.241) / 2 = 0.27 >= 0.25, so c stays alone."""
    words = [f"w{i}" for i in range(1, 21)]

    def changed(tokens, *positions):
        return [("z" + t if i in positions else t) for i, t in enumerate(tokens)]

    b = changed(words, 0)
    c = changed(b, 4, 6)
    texts = [" ".join(t) for t in (words, b, c)]
    dist = B.bleu_distances(texts)
    assert dist[0, 1] < 0.25 and dist[1, 2] < 0.25 and dist[0, 2] > 0.25  # a chain
    assert (dist[0, 2] + dist[1, 2]) / 2 >= 0.25
    assert bleu_clusters(texts) == bleu_clusters_reference(texts) == [2, 2, 1]


def test_bleu_distance_direction_is_lower_index_hypothesis():
    """1 - BLEU(hypothesis=i, reference=j) for i < j, mirrored: the order of texts matters."""
    short, longer = "a b c d e f", "a b c d e f g h"
    dist = B.bleu_distances([short, longer])
    assert dist[0, 1] == dist[1, 0] == approx(1 - sentence_bleu(short.split(), longer.split()))
    flipped = B.bleu_distances([longer, short])
    assert flipped[0, 1] == approx(1 - sentence_bleu(longer.split(), short.split()))
    assert flipped[0, 1] != approx(dist[0, 1])


def _method_clusters(texts, threshold=0.25):
    """The MM-Zero reference procedure with NLTK and scikit-learn (test-only dependencies)."""
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    cluster = pytest.importorskip("sklearn.cluster")
    smooth = nltk_bleu.SmoothingFunction().method1
    n = len(texts)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            score = nltk_bleu.sentence_bleu(
                [texts[j].split()], texts[i].split(), smoothing_function=smooth
            )
            dist[i, j] = dist[j, i] = 1 - score
    if n < 2:
        return [1] * n
    labels = cluster.AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    ).fit_predict(dist)
    counts = np.bincount(labels)
    return [int(counts[label]) for label in labels]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("seed", range(6))
def test_bleu_clusters_equal_nltk_and_sklearn_random(seed):
    texts = _near_duplicates(48, seed)
    assert bleu_clusters(texts) == _method_clusters(texts)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bleu_clusters_equal_nltk_and_sklearn_adversarial():
    base = "what is the total value of the red bars in the chart for 2021 ?"
    sets = [
        [base] * 5 + ["completely different words here and there now"] * 3,  # duplicates
        [base, base.upper(), base.lower(), base.replace(" ", "  ")],  # case, spacing
        ["x", "x", "x y", "", "", "?"],  # very short and empty texts
        [" ".join([w] * 30) for w in "aaaa"] + ["a " * 29 + "b"],  # repeated tokens (clipping)
        [base.replace("red", c) for c in "red blue green teal gray pink".split()],  # a ladder
        [base[: k * 6] for k in range(2, 12)],  # prefixes: brevity penalty both ways
    ]
    for texts in sets:
        assert bleu_clusters(texts) == _method_clusters(texts), texts


def test_diversity_issue_example_six_questions():
    """Six questions, two near-copies in two pairs: the method's clusters [2, 2, 1, 1, 1, 1]."""
    questions = [
        "What is the value of the tallest bar in the chart shown above?",
        "What is the value of the tallest bar in the chart shown here?",
        "How many slices of the pie chart are larger than one quarter of it?",
        "How many slices of the pie chart are larger than one quarter of the pie?",
        "Which city had the highest rainfall in 2020?",
        "What is the angle between the two marked lines?",
    ]
    got = bleu_clusters(questions)
    assert got == [2, 2, 2, 2, 1, 1]
    assert got == _method_clusters(questions)


def test_text_diversity_penalties_hand_computed():
    cap = "a red bar chart of yearly sales"
    got = text_diversity_penalties(
        captions=[cap, cap, "a pie chart of votes by party in the last election"],
        easy_questions=[
            "what is the value of red?",
            "what is the value of red?",
            "which party won?",
        ],
        hard_questions=["how many more votes than blue?", "what is the mean of all bars?", "x?"],
    )
    assert got == approx([0.5 * (0.45 + 0.20), 0.5 * (0.45 + 0.20), 0.0])
    same = ["an identical text of six words"] * 3
    assert text_diversity_penalties(same, same, same) == approx([0.5] * 3)  # 1.0 capped
    assert text_diversity_penalties([], [], []) == []


# EvoLMM ----------------------------------------------------------------------------------------


def test_evolmm_solver_hand_computed():
    got = evolmm_solver_rewards(["a", "A.", "b", "c", None], [0, 12, 9, 6, 0])
    # N = 5 (the missing answer counts): p(a) = 2/5, p(b) = p(c) = 1/5; L = 0, 1, 0.5, 0
    assert got == approx([0.4**0.7, 0.4**0.7 * 0.9, 0.2**0.7 * 0.95, 0.2**0.7, 0.0])


def test_evolmm_share_counts_every_answer_issue_example():
    """Answers 5, 5, unknown, unknown, 7 with w = 2: '5' earns (2/5)^0.7 = 0.5266, not
    (2/3)^0.7 = 0.7529; a placeholder scores 0."""
    got = evolmm_solver_rewards(["5", "5", "unknown", "unknown", "7"], [2] * 5)
    assert got[0] == approx(0.5266, abs=1e-4) and got[1] == got[0]
    assert got[2] == got[3] == 0.0
    assert got[4] == approx(0.2**0.7)


def test_evolmm_solver_edge_cases():
    assert evolmm_solver_rewards(["5"] * 5, [3] * 5) == approx([1.0] * 5)  # all identical
    assert evolmm_solver_rewards(list("12345"), [0] * 5) == approx([0.2**0.7] * 5)  # all different
    assert evolmm_solver_rewards(["none", None, "n/a"], [0, 0, 0]) == [0.0] * 3  # placeholders
    assert evolmm_solver_rewards(["x"], [100]) == approx([0.9])  # single, rambling
    assert evolmm_solver_rewards([], []) == []


def test_majority_baseline():
    assert majority_solver_rewards(["a", "a", "b", "c", None], [0] * 5) == [1, 1, 0, 0, 0]
    assert majority_solver_rewards(["b", "a"], [0, 0]) == [1.0, 0.0]  # tie: first
    assert majority_solver_rewards(["none", "none", "7"], [0] * 3) == [0.0, 0.0, 1.0]
    assert majority_solver_rewards([None], [0]) == [0.0]


def test_entropy_and_proposer_hand_computed():
    gauss = lambda h: math.exp(-((h - 0.9) ** 2) / (2 * 0.35**2))  # noqa: E731
    assert answer_entropy(["a", "a", "b", "c"]) == approx(1.5 * math.log(2))
    assert answer_entropy(["none", None]) is None
    got = evolmm_proposer_rewards(
        [["a", "a", "b", "c", None], ["5"] * 5, list("12345"), ["none", None], ["x"], ["a"]],
        [True, True, True, True, True, False],
    )
    assert got == approx(
        [gauss(1.5 * math.log(2)), gauss(0.0), gauss(math.log(5)), 0.0, gauss(0.0), 0.0]
    )
    assert gauss(0.0) == approx(0.036659, abs=1e-6)


# frames ----------------------------------------------------------------------------------------

PROPOSAL_COLUMNS = {
    "proposal_id": pl.String,
    "group_id": pl.String,
    "parse_ok": pl.Boolean,
    "content_type": pl.String,
    "caption": pl.String,
    "easy_question": pl.String,
    "easy_answer": pl.String,
    "hard_question": pl.String,
    "hard_answer": pl.String,
}
PROGRAM_COLUMNS = {
    "program_id": pl.String,
    "proposal_id": pl.String,
    "language": pl.String,
    "code": pl.String,
    "extract_status": pl.String,
}
RENDER_COLUMNS = {"program_id": pl.String, "status": pl.String}
ANSWER_COLUMNS = {
    "answer_id": pl.String,
    "program_id": pl.String,
    "proposal_id": pl.String,
    "question_kind": pl.String,
    "answer": pl.String,
    "format_ok": pl.Boolean,
}


def _proposals(rows):
    return pl.DataFrame(rows, schema=PROPOSAL_COLUMNS, orient="row").with_columns(
        pl.lit("ignored").alias("completion")
    )


def _mmzero_round(render_status=("ok", "ok", "runtime_error", "not_code")):
    proposals = _proposals(
        [
            (
                "p0",
                "g0",
                True,
                "data_chart",
                "A bar chart of sales",
                "Red value?",
                "5",
                "Sum of bars?",
                "12",
            ),
            ("p1", "g0", False, None, None, None, None, None, None),
            (
                "p2",
                "g0",
                True,
                "geometry",
                "A triangle with sides 3 4 5",
                "Longest side?",
                "5",
                "Area?",
                "6",
            ),
        ]
    )
    programs = pl.DataFrame(
        [
            ("p0-c0", "p0", "svg", "<svg/>", "ok"),
            ("p0-c1", "p0", "svg", "<svg/>", "ok"),
            ("p0-c2", "p0", "svg", "<svg/>", "ok"),
            ("p2-c0", "p2", "svg", None, "not_code"),
        ],
        schema=PROGRAM_COLUMNS,
        orient="row",
    )
    renders = pl.DataFrame(
        list(zip(["p0-c0", "p0-c1", "p0-c2", "p2-c0"], render_status, strict=True)),
        schema=RENDER_COLUMNS,
        orient="row",
    )
    answers = []

    def add(program, kind, values, fmt=True):
        for j, v in enumerate(values):
            answers.append((f"{program}-{kind}-a{j}", program, program[:2], kind, v, fmt))

    add("p0-c0", "easy", ["5", "5", "5", "6"])  # s = 0.75, easy c = 0.75
    add("p0-c0", "hard", ["12", "12", "13", "14"])  # c = 0.5, d = 0.5
    add("p0-c1", "easy", [None, None, "none", "5"])  # s = 1/4 (m = 4), easy c = 1 (valid only)
    add("p0-c1", "hard", ["12", "12", "12", "12"], fmt=False)  # c = 1, d = 0
    return proposals, programs, renders, pl.DataFrame(answers, schema=ANSWER_COLUMNS, orient="row")


def test_score_mmzero_hand_computed():
    out = score_mmzero(*_mmzero_round(), MMZeroRewardConfig())
    assert set(out) == {"proposer", "coder", "solver"}
    prop = {r["sample_id"]: r for r in out["proposer"].to_dicts()}
    # p0: k = 3, rendered c0 (s .75, d .5) and c1 (s 1, d 0); c2 failed (counts in k)
    # content types: data_chart 1/2, geometry 1/2: no penalty; texts all distinct
    assert prop["p0"]["reward"] == approx((0.5 + 0.5 + 0.25 + 0.0) / 3)
    assert prop["p0"]["n_programs"] == 3 and prop["p0"]["n_rendered"] == 2
    assert prop["p0"]["mean_difficulty"] == approx(0.25)
    assert prop["p0"]["easy_penalty"] == 0.0
    assert prop["p1"]["reward"] == -1.0 and prop["p1"]["parse_ok"] is False
    assert prop["p2"]["reward"] == 0.0  # its only program was not code: nothing rendered
    assert out["proposer"]["sample_id"].to_list() == ["p0", "p1", "p2"]

    coder = {r["sample_id"]: r for r in out["coder"].to_dicts()}
    assert coder["p0-c0"]["reward"] == approx(1 + 0.75 + 0.5)
    assert coder["p0-c1"]["reward"] == approx(1 + 0.25 + 0.0)
    assert coder["p0-c2"]["reward"] == approx(-0.1) and coder["p0-c2"]["render_penalty"] == -0.1
    assert coder["p2-c0"]["reward"] == approx(-0.5)
    assert coder["p0-c0"]["group_id"] == "p0"

    solver = {r["sample_id"]: r for r in out["solver"].to_dicts()}
    assert solver["p0-c0-easy-a0"]["reward"] == approx(1.0)
    assert solver["p0-c0-easy-a3"]["reward"] == approx(0.1)
    assert solver["p0-c0-hard-a0"]["label"] == "12"
    assert solver["p0-c0-hard-a0"]["group_id"] == "p0-c0-hard"
    assert solver["p0-c0-hard-a0"]["in_band"] is True  # easy .75, hard .5
    assert solver["p0-c1-hard-a0"]["in_band"] is False  # hard agreement 1
    assert solver["p0-c1-hard-a0"]["reward"] == approx(0.9)  # correct, bad format
    # masked failures: never a vote, never -1
    assert solver["p0-c1-easy-a0"]["reward"] == approx(0.1)
    assert solver["p0-c1-easy-a0"]["answer_valid"] is False
    assert solver["p0-c1-easy-a3"]["label"] == "5"
    assert solver["p0-c1-easy-a3"]["easy_agreement"] == 1.0
    assert min(out["solver"]["reward"]) >= 0.0


def test_score_mmzero_every_render_failed():
    proposals, programs, renders, answers = _mmzero_round(("timeout",) * 4)
    out = score_mmzero(proposals, programs, renders, answers.clear())
    prop = {r["sample_id"]: r["reward"] for r in out["proposer"].to_dicts()}
    assert prop == {"p0": 0.0, "p1": -1.0, "p2": 0.0}
    assert out["coder"]["reward"].to_list() == approx([-0.1, -0.1, -0.1, -0.5])
    assert out["solver"].height == 0


def test_score_mmzero_no_renders_and_empty_frames():
    proposals, programs, renders, answers = _mmzero_round()
    out = score_mmzero(proposals, programs, renders.clear(), answers.clear())
    assert out["coder"]["rendered"].to_list() == [False] * 4
    empty = score_mmzero(proposals.clear(), programs.clear(), renders.clear(), answers.clear())
    for frame in empty.values():
        assert frame.height == 0
        assert frame.schema["reward"] == pl.Float64
        assert {"sample_id", "group_id", "reward"} <= set(frame.columns)


def test_score_mmzero_missing_column():
    proposals, programs, renders, answers = _mmzero_round()
    with pytest.raises(ValueError, match="answers frame lacks column"):
        score_mmzero(proposals, programs, renders, answers.drop("format_ok"))


def test_score_mmzero_content_type_and_diversity():
    cap = "A bar chart of sales per year with five bars"
    proposals = _proposals(
        [
            (
                f"p{i}",
                "g",
                True,
                "data_chart",
                cap,
                f"Question {i} about red?",
                "5",
                f"Hard question number {i} here?",
                "1",
            )
            for i in range(3)
        ]
        + [("p3", "g", True, "table", "A table of exam scores", "Top score?", "9", "Mean?", "7")]
    )
    none = pl.DataFrame(schema=PROGRAM_COLUMNS)
    out = score_mmzero(
        proposals, none, pl.DataFrame(schema=RENDER_COLUMNS), pl.DataFrame(schema=ANSWER_COLUMNS)
    )
    prop = {r["sample_id"]: r for r in out["proposer"].to_dicts()}
    # data_chart holds 3/4: 0.15 * 0.25 / 0.5; identical captions: cluster of 3
    assert prop["p0"]["content_type_penalty"] == approx(0.075)
    assert prop["p0"]["caption_cluster"] == 3
    assert prop["p0"]["diversity_penalty"] == approx(min(0.5, 0.5 * 0.45 * 2))
    assert prop["p0"]["reward"] == approx(-0.075 - 0.45)
    assert prop["p3"]["reward"] == 0.0


def test_score_evolmm_hand_computed():
    questions = pl.DataFrame(
        {
            "question_id": ["q0", "q1", "q2"],
            "group_id": ["img0", "img0", "img1"],
            "parse_ok": [True, False, True],
            "question": ["What color?", None, "How many?"],
        }
    )
    answers = pl.DataFrame(
        {
            "answer_id": [f"q0-a{j}" for j in range(5)] + [f"q2-a{j}" for j in range(2)],
            "question_id": ["q0"] * 5 + ["q2"] * 2,
            "answer": ["red", "Red", "blue", "none", None, "unknown", None],
            "words_before_answer": [0, 12, 3, 0, 0, 0, 0],
        },
        schema_overrides={"words_before_answer": pl.Int32},
    )
    out = score_evolmm(questions, answers, EvoLMMRewardConfig())
    prop = {r["sample_id"]: r for r in out["proposer"].to_dicts()}
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert prop["q0"]["entropy"] == approx(h)
    assert prop["q0"]["reward"] == approx(math.exp(-((h - 0.9) ** 2) / (2 * 0.35**2)))
    assert prop["q0"]["label"] == "red" and prop["q0"]["n_valid"] == 3
    assert prop["q1"]["reward"] == 0.0 and prop["q1"]["parse_ok"] is False
    assert prop["q2"]["reward"] == 0.0  # no valid answer
    solver = {r["sample_id"]: r for r in out["solver"].to_dicts()}
    # N = 5 answers (two are placeholders): p(red) = 2/5, p(blue) = 1/5
    assert solver["q0-a0"]["reward"] == approx((2 / 5) ** 0.7)
    assert solver["q0-a1"]["reward"] == approx((2 / 5) ** 0.7 * 0.9)
    assert solver["q0-a2"]["reward"] == approx((1 / 5) ** 0.7)
    assert solver["q0-a0"]["share"] == approx(0.4)
    assert solver["q0-a3"]["reward"] == 0.0 and solver["q0-a4"]["reward"] == 0.0
    assert solver["q0-a0"]["group_id"] == "q0"
    assert out["solver"]["sample_id"].to_list() == sorted(solver)

    majority = score_evolmm(questions, answers, EvoLMMRewardConfig(solver_reward="majority"))
    assert majority["solver"]["reward"].to_list() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_score_evolmm_empty():
    text = pl.String
    q = pl.DataFrame(
        schema=dict(question_id=text, group_id=text, parse_ok=pl.Boolean, question=text)
    )
    words = {"words_before_answer": pl.Int32}
    a = pl.DataFrame(schema=dict(answer_id=text, question_id=text, answer=text, **words))
    out = score_evolmm(q, a)
    assert out["proposer"].height == 0 and out["solver"].height == 0
    assert out["solver"].schema["reward"] == pl.Float64


def _single_image_round(easy, hard, k=4, easy_answer="7"):
    """One parsed proposal with k programs of which only c0 rendered, plus a second valid
    proposal of another type with no programs (so no content-type or diversity penalty)."""
    proposals = _proposals(
        [
            (
                "p0",
                "g0",
                True,
                "data_chart",
                "A bar chart of rainfall in seven towns over a year",
                "How tall is the first bar?",
                easy_answer,
                "What is the mean of the bars?",
                "3",
            ),
            (
                "p1",
                "g0",
                True,
                "geometry",
                "Two circles that touch at one point on a grid",
                "How many circles are there?",
                "2",
                "What is the ratio of the two radii?",
                "2",
            ),
        ]
    )
    programs = pl.DataFrame(
        [(f"p0-c{j}", "p0", "svg", "<svg/>", "ok") for j in range(k)],
        schema=PROGRAM_COLUMNS,
        orient="row",
    )
    renders = pl.DataFrame(
        [(f"p0-c{j}", "ok" if j == 0 else "runtime_error") for j in range(k)],
        schema=RENDER_COLUMNS,
        orient="row",
    )
    answers = [
        (f"p0-c0-{kind}-a{j}", "p0-c0", "p0", kind, v, True)
        for kind, values in (("easy", easy), ("hard", hard))
        for j, v in enumerate(values)
    ]
    answers = pl.DataFrame(answers, schema=ANSWER_COLUMNS, orient="row")
    out = score_mmzero(proposals, programs, renders, answers, MMZeroRewardConfig())
    prop = {r["sample_id"]: r for r in out["proposer"].to_dicts()}["p0"]
    coder = {r["sample_id"]: r for r in out["coder"].to_dicts()}["p0-c0"]
    return prop, coder


def test_visual_verification_divides_by_m_issue_example():
    """Easy answers 7, -, -, -, 8 (stated 7), k = 4, hard 1, 1, 2, 2, 3: s = 1/5 = 0.2 (not
    1/2), c = 2/5 so d = 0.4; Proposer (0.2 + 0.4) / 4 = 0.15, Coder 1 + 0.2 + 0.4 = 1.6."""
    easy = ["7", None, None, None, "8"]
    assert visual_verification(easy, "7") == approx(0.2)
    prop, coder = _single_image_round(easy, ["1", "1", "2", "2", "3"])
    assert prop["reward"] == approx(0.15)
    assert prop["easy_penalty"] == 0.0 and prop["diversity_penalty"] == 0.0
    assert prop["content_type_penalty"] == 0.0
    assert coder["s"] == approx(0.2) and coder["d"] == approx(0.4)
    assert coder["reward"] == approx(1.6)


def test_unanswerable_hard_question_earns_nothing_issue_example():
    """k = 4, one rendered image, easy all 7 (stated 7). All hard answers invalid: d = 0 and it
    counts in the mean, so the too-easy penalty applies: 0.5 / 4 - 0.3 = -0.175, the same as
    a hard question the Solver answers unanimously (was 0.125: unanswerable paid more)."""
    unanswerable, _ = _single_image_round(["7"] * 5, [None, "unknown", None, "none", None])
    unanimous, _ = _single_image_round(["7"] * 5, ["4"] * 5)
    assert unanswerable["reward"] == approx(-0.175)
    assert unanimous["reward"] == approx(-0.175)
    assert unanswerable["easy_penalty"] == 0.3 and unanswerable["n_judged"] == 0
    split, _ = _single_image_round(["7"] * 5, ["4", "4", "5", "5", None])  # c = 2/4, d = 0.5
    assert split["reward"] == approx((0.5 + 0.5) / 4)
    assert split["reward"] > unanswerable["reward"]


def test_unanswered_easy_question_verifies_nothing():
    """Our own example: every easy answer a placeholder: s = 0 (not masked), so neither the
    Proposer nor the Coder is paid for verification; hard 1, 2 -> c = 1/2, d = 0.5."""
    prop, coder = _single_image_round(["unknown"] * 4, ["1", "2", None, None], k=2)
    assert coder["s"] == 0.0 and coder["reward"] == approx(1.5)
    assert prop["reward"] == approx((0.0 + 0.5) / 2)


# EvoLMM's rewards as named components (rewards.evolmm.components)


def _evolmm_round(seed=0, n_questions=30, n=5):
    """A seeded EvoLMM round: questions (some not parsed) and n answers to each parsed one, drawn
    from answers that cluster (case, spacing, numbers within tolerance) or are placeholders."""
    rng = random.Random(seed)
    vocab = ["red", "Red", " red ", "blue", "3", "3.0", "3.00001", "7", "none", None, "unknown"]
    qs, ans = [], []
    for i in range(n_questions):
        ok = rng.random() > 0.15
        question = f"Question {i}?" if ok or rng.random() < 0.5 else None
        qs.append(
            {
                "question_id": f"q{i:02d}",
                "group_id": f"img{i // 3}",
                "parse_ok": ok,
                "question": question,
            }
        )
        if ok:
            for j in range(n):
                ans.append(
                    {
                        "answer_id": f"q{i:02d}-a{j}",
                        "question_id": f"q{i:02d}",
                        "answer": rng.choice(vocab),
                        "words_before_answer": rng.randint(0, 20),
                    }
                )
    return pl.DataFrame(qs), pl.DataFrame(ans, schema_overrides={"words_before_answer": pl.Int32})


# sha256 of each role's whole rewards table (its rows as JSON) before EvoLMM's rewards became
# components: the refactor changed no value, column or row.
_EVOLMM_TABLES = {
    "continuous": {
        "proposer": "bd0ca08dbca7b1370ed873310eecd5564e7b943725219f4dfb0156e94c0ac8f1",
        "solver": "9d16da44c6fc57d6defd163da0a25a6a6d9dddc13a6b34a4a825aa1b7941193c",
    },
    "majority": {
        "proposer": "bd0ca08dbca7b1370ed873310eecd5564e7b943725219f4dfb0156e94c0ac8f1",
        "solver": "264115f1b5bb52886753ebfcf69bc17dfc934787e4eee484ea4487afa207921f",
    },
}


@pytest.mark.parametrize("solver_reward", sorted(_EVOLMM_TABLES))
def test_evolmm_rewards_tables_are_the_recorded_ones(solver_reward):
    import hashlib
    import json

    questions, answers = _evolmm_round()
    out = score_evolmm(questions, answers, EvoLMMRewardConfig(solver_reward=solver_reward))
    digests = {
        role: hashlib.sha256(json.dumps(frame.to_dicts()).encode()).hexdigest()
        for role, frame in out.items()
    }
    assert digests == _EVOLMM_TABLES[solver_reward]
    # the same components named in rewards.evolmm.components: the same tables
    named = EvoLMMRewardConfig.from_dict({"components": ["entropy", solver_reward]})
    again = score_evolmm(questions, answers, named)
    assert all(again[role].equals(out[role]) for role in out)


def test_evolmm_components_are_named_in_the_config_and_summed():
    from evovlm.methods.evolmm.rewards import EVOLMM_COMPONENTS

    questions, answers = _evolmm_round()
    both = EvoLMMRewardConfig.from_dict({"components": ["entropy", "continuous", "majority"]})
    solver = score_evolmm(questions, answers, both)["solver"]
    continuous = score_evolmm(questions, answers, EvoLMMRewardConfig())["solver"]["reward"]
    majority = score_evolmm(questions, answers, EvoLMMRewardConfig(solver_reward="majority"))
    assert solver["reward"].to_list() == approx(
        (continuous + majority["solver"]["reward"]).to_list()
    )
    assert sorted(EVOLMM_COMPONENTS) == ["continuous", "entropy", "majority"]


@pytest.mark.parametrize(
    ("components", "message"),
    [
        (["entropy", "median"], "rewards.evolmm.components: unknown component 'median'"),
        (["continuous"], "rewards.evolmm.components names no proposer component"),
        (["entropy", "majority", "majority"], "'majority' is named twice"),
    ],
)
def test_evolmm_components_outside_the_registry_are_one_line_naming_the_key(components, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        EvoLMMRewardConfig.from_dict({"components": components})
    assert "\n" not in str(info.value)


def test_the_schema_lists_the_evolmm_components_of_the_registry():
    from evovlm.config import section_schema
    from evovlm.methods.evolmm.rewards import EVOLMM_COMPONENTS

    items = section_schema("rewards.evolmm")["properties"]["components"]["items"]
    assert sorted(items["enum"]) == sorted(EVOLMM_COMPONENTS)
