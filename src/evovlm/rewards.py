"""Reward functions for MM-Zero and EvoLMM, and frame-level scoring for ``score_rewards``.

Reward functions are plain module-level functions that take lists and return one float per
sample; ``REWARD_FUNCTIONS`` maps config names to them. ``score_mmzero`` and ``score_evolmm`` join
the stage frames, call them, and return one frame per role with every reward component in its
own column, so a user can see why a sample scored what it did.

Fixed reference bugs: a Solver reply with no answer, or with a placeholder answer ("none",
"unknown", ...), is masked: it is never a vote, never a pseudo-label, never counted in an
agreement or a verification share, and never scored -1 (its own Solver reward is the format
term only, i.e. 0 without a boxed answer).

Text diversity (MM-Zero Proposer), as the method computes it: whitespace tokens (case kept),
NLTK's sentence BLEU-4 with smoothing method1 (an order with no match counts 0.1 matches), the
distance of texts i < j is ``1 - BLEU(hypothesis=i, reference=j)`` mirrored to (j, i), and the
clusters are average-linkage agglomerative clusters merged while the distance is under the
threshold (SciPy's linkage, the one scikit-learn runs). ``pairwise_bleu`` computes the exact same
numbers as the per-pair ``sentence_bleu`` for all pairs at once: clipped n-gram matches
``sum_g min(c_a(g), c_b(g))`` come from posting lists (n-grams in few texts) and from thresholded
count-matrix products (n-grams in many texts), then BLEU is evaluated as arrays.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
import polars as pl

from evovlm.grade import DEFAULT_REL_TOL, agreement, cluster_answers, grade, is_placeholder

__all__ = [
    "EvoLMMRewardConfig",
    "MMZeroRewardConfig",
    "REWARD_FUNCTIONS",
    "answer_entropy",
    "bleu_clusters",
    "bleu_tokens",
    "content_type_penalties",
    "difficulty",
    "evolmm_proposer_rewards",
    "evolmm_solver_rewards",
    "majority_solver_rewards",
    "mid_band",
    "mmzero_coder_rewards",
    "mmzero_proposer_rewards",
    "mmzero_solver_rewards",
    "pairwise_bleu",
    "score_evolmm",
    "score_mmzero",
    "sentence_bleu",
    "text_diversity_penalties",
    "visual_verification",
]

_C = TypeVar("_C")


def _from_dict(cls: type[_C], data: Mapping[str, Any] | None) -> _C:
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    values = {}
    for name, value in data.items():
        default = getattr(cls, name)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError(f"{cls.__name__}.{name} must be a string, got {value!r}")
            values[name] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{cls.__name__}.{name} must be a number, got {value!r}")
            values[name] = type(default)(value) if isinstance(default, float) else value
    config = cls(**values)
    config.validate()  # type: ignore[attr-defined]
    return config


@dataclass(frozen=True)
class MMZeroRewardConfig:
    """Constants of the MM-Zero rewards (config ``rewards.mmzero``); defaults from SPEC.md."""

    # Proposer reward when its reply does not parse (missing caption or question/answer tags).
    invalid_proposal_reward: float = -1.0
    # Visual verification s_j is capped at this inside the Proposer reward (not the Coder's).
    visual_verification_cap: float = 0.5
    # When the mean difficulty d_j over a proposal's rendered images is below this ...
    easy_threshold: float = 0.15
    # ... the Proposer loses this much (its questions are too easy for the Solver).
    easy_penalty: float = 0.3
    # Two texts of one field are linked when their BLEU distance (1 - BLEU) is under this.
    diversity_threshold: float = 0.25
    # Weight of the caption's cluster size in the text-diversity penalty.
    diversity_caption_weight: float = 0.45
    # Weight of the easy question's cluster size in the text-diversity penalty.
    diversity_easy_question_weight: float = 0.20
    # Weight of the hard question's cluster size in the text-diversity penalty.
    diversity_hard_question_weight: float = 0.35
    # Text-diversity penalty = min(max, scale * sum_f weight_f * (cluster size_f - 1)).
    diversity_scale: float = 0.5
    # Upper bound of the text-diversity penalty.
    diversity_max: float = 0.5
    # A content type with more than this share of the batch's valid proposals is penalised ...
    content_type_share: float = 0.5
    # ... by this much at share 1, linearly from 0 at the share above (proposals of that type).
    content_type_penalty: float = 0.15
    # Coder reward for a program that rendered: this + s + d of its own image.
    render_reward: float = 1.0
    # Coder reward for code of the right language that failed to render.
    render_failed_reward: float = -0.1
    # Coder reward for an empty reply or one with no code of the right language.
    not_code_reward: float = -0.5
    # Solver reward = correct_weight * grade(answer, pseudo-label) + format_weight * format.
    solver_correct_weight: float = 0.9
    # Weight of the format term (<think>...</think> then one \boxed{} and nothing else).
    solver_format_weight: float = 0.1
    # Mid-band filter: a rendered image trains the Solver when its easy agreement is at least this
    easy_agreement_min: float = 0.5
    # ... and its hard agreement is at least this ...
    hard_agreement_min: float = 0.25
    # ... and at most this.
    hard_agreement_max: float = 0.75
    # Relative tolerance for numeric answers in grade().
    grade_rel_tol: float = DEFAULT_REL_TOL

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MMZeroRewardConfig:
        """Build from the ``rewards.mmzero`` config mapping; ValueError on an unknown key."""
        return _from_dict(cls, data)

    def validate(self) -> None:
        if not 0 < self.diversity_threshold <= 1:
            raise ValueError("rewards.mmzero.diversity_threshold must be in (0, 1]")
        if not 0 <= self.content_type_share < 1:
            raise ValueError("rewards.mmzero.content_type_share must be in [0, 1)")
        if not self.hard_agreement_min <= self.hard_agreement_max:
            raise ValueError("rewards.mmzero.hard_agreement_min must not exceed hard_agreement_max")
        if self.grade_rel_tol < 0:
            raise ValueError("rewards.mmzero.grade_rel_tol must be >= 0")


@dataclass(frozen=True)
class EvoLMMRewardConfig:
    """Constants of the EvoLMM rewards (config ``rewards.evolmm``); defaults from SPEC.md."""

    # Solver reward: "continuous" (p(a)^exponent * length factor) or "majority" (the discrete
    # baseline: 1 for an answer in the largest cluster, else 0).
    solver_reward: str = "continuous"
    # Exponent on the answer's share p(a) = count(a) / N (all N answers) in the continuous Solver reward.
    consistency_exponent: float = 0.7
    # Length factor = 1 - length_penalty * L, L = clip((w - free_words) / scale_words, 0, 1) ...
    length_penalty: float = 0.1
    # ... where w is the number of words before <answer>; this many words are free ...
    length_free_words: float = 6.0
    # ... and the penalty is full this many words later.
    length_scale_words: float = 6.0
    # Proposer reward = exp(-(H - entropy_target)^2 / (2 * entropy_sigma^2)), H in nats.
    entropy_target: float = 0.90
    # Width of the Proposer's Gaussian.
    entropy_sigma: float = 0.35
    # Proposer reward for a question that did not parse or got no valid Solver answer.
    invalid_question_reward: float = 0.0
    # Relative tolerance for numeric answers in grade().
    grade_rel_tol: float = DEFAULT_REL_TOL

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvoLMMRewardConfig:
        """Build from the ``rewards.evolmm`` config mapping; ValueError on an unknown key."""
        return _from_dict(cls, data)

    def validate(self) -> None:
        if self.solver_reward not in EVOLMM_SOLVER_REWARDS:
            raise ValueError(
                f"rewards.evolmm.solver_reward must be one of {sorted(EVOLMM_SOLVER_REWARDS)}, "
                f"got {self.solver_reward!r}"
            )
        if self.entropy_sigma <= 0:
            raise ValueError("rewards.evolmm.entropy_sigma must be > 0")
        if self.length_scale_words <= 0:
            raise ValueError("rewards.evolmm.length_scale_words must be > 0")
        if self.grade_rel_tol < 0:
            raise ValueError("rewards.evolmm.grade_rel_tol must be >= 0")


MMZERO_DEFAULTS = MMZeroRewardConfig()
EVOLMM_DEFAULTS = EvoLMMRewardConfig()


# ---------------------------------------------------------------------------------------------
# MM-Zero building blocks


def difficulty(c: float) -> float:
    """d = min(c, 1 - c): highest (0.5) when the Solver is split in half."""
    return min(c, 1.0 - c)


def visual_verification(
    easy_answers: Sequence[str | None], easy_answer: str | None, *, rel_tol: float = DEFAULT_REL_TOL
) -> float | None:
    """s_j: the share of the Solver's m answers that grade equal to the Proposer's easy answer.

    The denominator is m, all answers sampled (SPEC, MM-Zero): a missing or placeholder answer
    counts as a disagreement. None only when no answer was sampled at all. A placeholder easy
    answer ("unknown") verifies nothing: 0.
    """
    if not easy_answers:
        return None
    if is_placeholder(easy_answer):
        return 0.0
    matches = sum(
        not is_placeholder(a) and grade(a, easy_answer, rel_tol=rel_tol) for a in easy_answers
    )
    return matches / len(easy_answers)


def _proposer_terms(
    n_programs: int, s: Sequence[float | None], d: Sequence[float | None], cfg: MMZeroRewardConfig
) -> tuple[float, float, float]:
    """(verification term, difficulty term, easy penalty) over a proposal's rendered images.

    A None (no answer sampled for that image) contributes 0 and is left out of the mean d."""
    k = max(int(n_programs), 1)
    verification = sum(min(x, cfg.visual_verification_cap) for x in s if x is not None) / k
    known = [x for x in d if x is not None]
    hardness = sum(known) / k
    too_easy = bool(known) and sum(known) / len(known) < cfg.easy_threshold
    return verification, hardness, cfg.easy_penalty if too_easy else 0.0


def mmzero_proposer_rewards(
    parse_ok: Sequence[bool],
    n_programs: Sequence[int],
    s: Sequence[Sequence[float | None]],
    d: Sequence[Sequence[float | None]],
    diversity_penalty: Sequence[float],
    content_type_penalty: Sequence[float],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """MM-Zero Proposer reward per proposal.

    ``s[i]`` and ``d[i]`` hold s_j and d_j for each *rendered* image of proposal i (None where the
    Solver gave no valid answer: masked, contributes 0); ``n_programs[i]`` is k, failed renders
    included. r = (1/k) sum_j [min(s_j, cap) + d_j] - easy penalty - diversity - content type;
    an unparseable proposal scores ``invalid_proposal_reward``.
    """
    out = []
    for ok, k, s_i, d_i, div, ctype in zip(
        parse_ok, n_programs, s, d, diversity_penalty, content_type_penalty, strict=True
    ):
        if not ok:
            out.append(float(cfg.invalid_proposal_reward))
            continue
        verification, hardness, easy = _proposer_terms(k, s_i, d_i, cfg)
        out.append(verification + hardness - easy - float(div) - float(ctype))
    return out


def mmzero_coder_rewards(
    rendered: Sequence[bool],
    extract_status: Sequence[str],
    s: Sequence[float | None],
    d: Sequence[float | None],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """MM-Zero Coder reward per program: rendered -> 1 + s + d (masked s or d count 0); not
    rendered -> -0.1 when the reply held code of the right language, -0.5 when empty or not code."""
    out = []
    for ok, status, s_j, d_j in zip(rendered, extract_status, s, d, strict=True):
        if ok:
            out.append(cfg.render_reward + (s_j or 0.0) + (d_j or 0.0))
        elif status == "ok":
            out.append(float(cfg.render_failed_reward))
        else:
            out.append(float(cfg.not_code_reward))
    return out


def mmzero_solver_rewards(
    answers: Sequence[str | None],
    labels: Sequence[str | None],
    format_ok: Sequence[bool],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """MM-Zero Solver reward per answer: 0.9 * grade(answer, label) + 0.1 * format.

    A missing or placeholder answer, or a group without a label, is never correct (and so scores
    only its format term; never -1).
    """
    out = []
    for answer, label, fmt in zip(answers, labels, format_ok, strict=True):
        correct = (
            label is not None
            and not is_placeholder(answer)
            and grade(answer, label, rel_tol=cfg.grade_rel_tol)
        )
        out.append(cfg.solver_correct_weight * correct + cfg.solver_format_weight * bool(fmt))
    return out


def mid_band(
    easy_agreement: Sequence[float],
    hard_agreement: Sequence[float],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[bool]:
    """The Solver's mid-band filter per image: easy agreement >= 0.5 and hard in [0.25, 0.75]."""
    return [
        e >= cfg.easy_agreement_min and cfg.hard_agreement_min <= h <= cfg.hard_agreement_max
        for e, h in zip(easy_agreement, hard_agreement, strict=True)
    ]


def content_type_penalties(
    content_types: Sequence[str | None], cfg: MMZeroRewardConfig = MMZERO_DEFAULTS
) -> list[float]:
    """Penalty per proposal of a type holding over ``content_type_share`` of the batch:
    penalty * (share - t) / (1 - t); 0 for every other proposal. Missing types count as "other"."""
    types = [t or "other" for t in content_types]
    if not types:
        return []
    counts = Counter(types)
    t = cfg.content_type_share
    out = []
    for ctype in types:
        share = counts[ctype] / len(types)
        out.append(cfg.content_type_penalty * (share - t) / (1 - t) if share > t else 0.0)
    return out


# ---------------------------------------------------------------------------------------------
# BLEU and text diversity

BLEU_MAX_ORDER = 4
# NLTK's SmoothingFunction().method1: an n-gram order with no match counts epsilon matches.
BLEU_EPSILON = 0.1
_DENSE_DF = 48  # n-grams in more texts than this go through matrix products, the rest through pairs
_PAIR_CHUNK = 4_000_000  # posting pairs expanded at once (bounds memory)


def bleu_tokens(text: str | None) -> list[str]:
    """Whitespace tokens, case kept (what the MM-Zero reference feeds NLTK's BLEU)."""
    return text.split() if text else []


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """BLEU-4 of one tokenised hypothesis against one reference, as NLTK's ``sentence_bleu``
    with uniform weights and smoothing method1 (the straightforward version; the oracle)."""
    log_terms = []
    for n in range(1, BLEU_MAX_ORDER + 1):
        hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
        matches = sum(min(count, ref[gram]) for gram, count in hyp.items())
        total = max(1, len(hypothesis) - n + 1)
        if n == 1 and matches == 0:
            return 0.0
        precision = (matches if matches else BLEU_EPSILON) / total
        log_terms.append(math.log(precision) / BLEU_MAX_ORDER)
    h, r = len(hypothesis), len(reference)
    brevity = 1.0 if h > r else math.exp(1.0 - r / h)
    return brevity * math.exp(math.fsum(log_terms))


def _pairwise_min_counts(doc: np.ndarray, gram: np.ndarray, count: np.ndarray, n_docs: int):
    """M[a, b] = sum_g min(count[a, g], count[b, g]) for a != b (diagonal undefined)."""
    out = np.zeros((n_docs, n_docs), dtype=np.float64)
    if doc.size == 0:
        return out
    df = np.bincount(gram)
    keep = df[gram] >= 2  # an n-gram in one text matches nothing
    doc, gram, count = doc[keep], gram[keep], count[keep]
    dense = df[gram] > _DENSE_DF
    if dense.any():
        # sum_g min(x, y) = sum_{t>=1} sum_g [x >= t][y >= t]: one 0/1 matrix product per level.
        columns, col_index = np.unique(gram[dense], return_inverse=True)
        counts = np.zeros((n_docs, columns.size), dtype=np.float32)
        counts[doc[dense], col_index] = count[dense]
        for level in range(1, int(counts.max()) + 1):
            hit = counts >= level
            hit = hit[:, hit.any(axis=0)].astype(np.float32)
            out += hit @ hit.T  # exact: integer sums far below 2**24
    doc, gram, count = doc[~dense], gram[~dense], count[~dense]
    if doc.size:
        order = np.lexsort((doc, gram))
        doc, gram, count = doc[order], gram[order], count[order]
        starts = np.flatnonzero(np.r_[True, gram[1:] != gram[:-1]])
        ends = np.r_[starts[1:], gram.size]
        group_end = np.repeat(ends, ends - starts)
        partners = group_end - np.arange(gram.size) - 1  # later postings of the same n-gram
        cum = np.cumsum(partners)
        lo = 0
        while lo < gram.size:
            # the chunk [lo, hi) expands to at most _PAIR_CHUNK pairs (at least one posting)
            base = cum[lo - 1] if lo else 0
            hi = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right")), lo + 1)
            reps = partners[lo:hi]
            left = np.repeat(np.arange(lo, hi), reps)
            offset = np.arange(left.size) - np.repeat(np.cumsum(reps) - reps, reps) + 1
            right = left + offset
            weight = np.minimum(count[left], count[right]).astype(np.float64)
            flat = np.bincount(
                doc[left] * n_docs + doc[right], weights=weight, minlength=n_docs * n_docs
            ).reshape(n_docs, n_docs)
            out += flat + flat.T
            lo = hi
    return out


def pairwise_bleu(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """``B[i, j] = sentence_bleu(hypothesis=i, reference=j)`` for every pair (n x n), exact.

    Clipped n-gram matches ``sum_g min(c_a(g), c_b(g))`` are symmetric, so they are computed once
    for all pairs: from posting lists for n-grams in few texts, from thresholded count-matrix
    products for n-grams in many texts. The diagonal is BLEU of a text against itself.
    """
    n_docs = len(token_lists)
    lengths = np.array([len(t) for t in token_lists], dtype=np.float64)
    vocab: dict[str, int] = {}
    tok = np.array(
        [vocab.setdefault(w, len(vocab)) for tokens in token_lists for w in tokens], dtype=np.int64
    )
    tok_doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths.astype(np.int64))
    doc_end = np.repeat(np.cumsum(lengths.astype(np.int64)), lengths.astype(np.int64))
    hyp = lengths[:, None]  # rows are hypotheses, columns references
    ref = lengths[None, :]
    log_sum = np.zeros((n_docs, n_docs))
    gram = tok  # ids of the n-grams starting at each position (compact: renumbered per order)
    for n in range(1, BLEU_MAX_ORDER + 1):
        if n > 1:
            # n-gram at i = (n-1)-gram at i followed by the token at i + n - 1
            gram = gram[:-1] * max(len(vocab), 1) + tok[n - 1 :]
            gram = np.unique(gram, return_inverse=True)[1].astype(np.int64)
        inside = np.arange(gram.size) + n <= doc_end[: gram.size]  # within one text
        width = int(gram.max(initial=0)) + 1
        key, count = np.unique(
            tok_doc[: gram.size][inside] * width + gram[inside], return_counts=True
        )
        matches = _pairwise_min_counts(key // width, key % width, count, n_docs)
        own = np.bincount(key // width, weights=count, minlength=n_docs)
        np.fill_diagonal(matches, own)  # a text matches all of its own n-grams
        if n == 1:
            unigram_hit = matches > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            np.maximum(matches, BLEU_EPSILON, out=matches)  # counts are integers: 0 -> epsilon
            matches /= np.maximum(hyp - n + 1, 1)
            np.log(matches, out=matches)
            matches /= BLEU_MAX_ORDER
            # NLTK adds the four terms with math.fsum; a sequential sum differs by an ulp at
            # most, which could only matter for a distance within ~1e-16 of the threshold.
            log_sum += matches
        del matches
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        brevity = np.where(hyp > ref, 1.0, np.exp(1.0 - ref / hyp))
        return np.where(unigram_hit, brevity * np.exp(log_sum), 0.0)


def bleu_distances(texts: Sequence[str | None]) -> np.ndarray:
    """The MM-Zero distance matrix: for i < j, ``1 - BLEU(hypothesis=i, reference=j)``,
    mirrored to (j, i); 0 on the diagonal."""
    directed = pairwise_bleu([bleu_tokens(t) for t in texts])
    upper = np.triu(1.0 - directed, k=1)
    return upper + upper.T


def bleu_clusters(texts: Sequence[str | None], threshold: float = 0.25) -> list[int]:
    """Size of each text's cluster: average-linkage agglomerative clustering of
    :func:`bleu_distances`, merging while the linkage distance is under ``threshold``
    (scikit-learn's ``AgglomerativeClustering(metric="precomputed", linkage="average",
    distance_threshold=threshold)``, which runs the same SciPy linkage)."""
    n = len(texts)
    if n == 0:
        return []
    if n == 1:
        return [1]
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    tree = linkage(squareform(bleu_distances(texts), checks=False), method="average")
    # fcluster keeps merges at heights <= t; scikit-learn stops at heights >= threshold.
    labels = fcluster(tree, np.nextafter(threshold, -np.inf), criterion="distance")
    sizes = np.bincount(labels)
    return [int(sizes[label]) for label in labels]


def bleu_clusters_reference(texts: Sequence[str | None], threshold: float = 0.25) -> list[int]:
    """The straightforward O(n^2) ``bleu_clusters``: per-pair ``sentence_bleu`` and a plain
    average-linkage loop (UPGMA); the oracle for tests and the baseline for ``bench/rewards.py``."""
    tokens = [bleu_tokens(t) for t in texts]
    n = len(tokens)
    dist = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            dist[i][j] = dist[j][i] = 1.0 - sentence_bleu(tokens[i], tokens[j])
    clusters: dict[int, list[int]] = {i: [i] for i in range(n)}
    while len(clusters) > 1:
        best = None
        keys = sorted(clusters)
        for x, a in enumerate(keys):
            for b in keys[x + 1 :]:
                pairs = [dist[i][j] for i in clusters[a] for j in clusters[b]]
                d = sum(pairs) / len(pairs)
                if best is None or d < best[0]:
                    best = (d, a, b)
        if best[0] >= threshold:
            break
        _d, a, b = best
        clusters[a] = clusters[a] + clusters.pop(b)
    size = {i: len(members) for members in clusters.values() for i in members}
    return [size[i] for i in range(n)]


def text_diversity_penalties(
    captions: Sequence[str | None],
    easy_questions: Sequence[str | None],
    hard_questions: Sequence[str | None],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """min(max, scale * sum_f w_f * (cluster size of the proposal in field f - 1)) per proposal.

    Pass the batch's valid proposals only.
    """
    sizes = _field_cluster_sizes(captions, easy_questions, hard_questions, cfg)
    return [_diversity_from_sizes(c, e, h, cfg) for c, e, h in zip(*sizes, strict=True)]


def _field_cluster_sizes(captions, easy_questions, hard_questions, cfg):
    t = cfg.diversity_threshold
    return (
        bleu_clusters(captions, t),
        bleu_clusters(easy_questions, t),
        bleu_clusters(hard_questions, t),
    )


def _diversity_from_sizes(caption: int, easy: int, hard: int, cfg: MMZeroRewardConfig) -> float:
    weighted = (
        cfg.diversity_caption_weight * (caption - 1)
        + cfg.diversity_easy_question_weight * (easy - 1)
        + cfg.diversity_hard_question_weight * (hard - 1)
    )
    return min(cfg.diversity_max, cfg.diversity_scale * weighted)


# ---------------------------------------------------------------------------------------------
# EvoLMM


def _shares(answers: Sequence[str | None], rel_tol: float) -> tuple[list[float | None], list[int]]:
    """(p(a) = count(a) / N per answer, None when masked; cluster sizes of the valid answers).

    N is every answer sampled (SPEC): a missing or placeholder answer is in N but in no cluster.
    """
    clusters = cluster_answers(answers, rel_tol=rel_tol)
    sizes = Counter(c for c in clusters if c is not None)
    n = len(answers)
    shares = [None if c is None else sizes[c] / n for c in clusters]
    return shares, [sizes[c] for c in sorted(sizes)]


def length_factor(words: int, cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS) -> float:
    """1 - 0.1 * L, L = clip((w - 6) / 6, 0, 1)."""
    excess = (float(words) - cfg.length_free_words) / cfg.length_scale_words
    return 1.0 - cfg.length_penalty * min(max(excess, 0.0), 1.0)


def evolmm_solver_rewards(
    answers: Sequence[str | None],
    words_before_answer: Sequence[int],
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> list[float]:
    """Continuous EvoLMM Solver reward for the N answers to one question:
    p(a)^0.7 * (1 - 0.1 * L). p(a) = count(a) / N over all N answers (SPEC); a missing or
    placeholder answer counts in N, is nobody's vote, and scores 0 itself (our choice: the
    reference would score its text like any other answer)."""
    shares, _sizes = _shares(answers, cfg.grade_rel_tol)
    return [
        0.0 if p is None else p**cfg.consistency_exponent * length_factor(w, cfg)
        for p, w in zip(shares, words_before_answer, strict=True)
    ]


def majority_solver_rewards(
    answers: Sequence[str | None],
    words_before_answer: Sequence[int],
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> list[float]:
    """Discrete baseline for the N answers to one question: 1 for an answer in the largest
    cluster (ties: the first to appear), else 0. ``words_before_answer`` is unused."""
    del words_before_answer
    label, _c = agreement(answers, rel_tol=cfg.grade_rel_tol)
    return [
        float(
            label is not None
            and not is_placeholder(a)
            and grade(a, label, rel_tol=cfg.grade_rel_tol)
        )
        for a in answers
    ]


def answer_entropy(
    answers: Sequence[str | None], *, rel_tol: float = DEFAULT_REL_TOL
) -> float | None:
    """Entropy (nats) of the answer-cluster histogram over the valid answers; None if none."""
    _shares_, sizes = _shares(answers, rel_tol)
    n = sum(sizes)
    if n == 0:
        return None
    return -sum(k / n * math.log(k / n) for k in sizes)


def evolmm_proposer_rewards(
    answer_groups: Sequence[Sequence[str | None]],
    parse_ok: Sequence[bool],
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> list[float]:
    """EvoLMM Proposer reward per question: exp(-(H - 0.90)^2 / (2 * 0.35^2)), H the entropy of
    its Solver answers; ``invalid_question_reward`` when it did not parse or got no valid answer."""
    out = []
    for answers, ok in zip(answer_groups, parse_ok, strict=True):
        entropy = answer_entropy(answers, rel_tol=cfg.grade_rel_tol) if ok else None
        out.append(_gaussian(entropy, cfg))
    return out


def _gaussian(entropy: float | None, cfg: EvoLMMRewardConfig) -> float:
    if entropy is None:
        return float(cfg.invalid_question_reward)
    return math.exp(-((entropy - cfg.entropy_target) ** 2) / (2 * cfg.entropy_sigma**2))


EVOLMM_SOLVER_REWARDS: dict[str, Callable[..., list[float]]] = {
    "continuous": evolmm_solver_rewards,
    "majority": majority_solver_rewards,
}

# Config name -> reward function (one float per sample).
REWARD_FUNCTIONS: dict[str, Callable[..., list[float]]] = {
    "mmzero_proposer": mmzero_proposer_rewards,
    "mmzero_coder": mmzero_coder_rewards,
    "mmzero_solver": mmzero_solver_rewards,
    "evolmm_proposer": evolmm_proposer_rewards,
    "evolmm_solver": evolmm_solver_rewards,
    "evolmm_solver_majority": majority_solver_rewards,
}


# ---------------------------------------------------------------------------------------------
# Frame-level scoring (the score_rewards rule)


def _require(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s) {', '.join(missing)}")
    return frame.select(columns)


_PROPOSER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "parse_ok": pl.Boolean,
    "content_type": pl.String,
    "n_programs": pl.Int64,
    "n_rendered": pl.Int64,
    "n_judged": pl.Int64,
    "visual_verification": pl.Float64,
    "difficulty": pl.Float64,
    "mean_difficulty": pl.Float64,
    "easy_penalty": pl.Float64,
    "caption_cluster": pl.Int64,
    "easy_question_cluster": pl.Int64,
    "hard_question_cluster": pl.Int64,
    "diversity_penalty": pl.Float64,
    "content_type_penalty": pl.Float64,
}
_CODER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "extract_status": pl.String,
    "render_status": pl.String,
    "rendered": pl.Boolean,
    "s": pl.Float64,
    "d": pl.Float64,
    "render_penalty": pl.Float64,
}
_SOLVER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "answer": pl.String,
    "question_kind": pl.String,
    "answer_valid": pl.Boolean,
    "label": pl.String,
    "correct": pl.Boolean,
    "format_ok": pl.Boolean,
    "easy_agreement": pl.Float64,
    "hard_agreement": pl.Float64,
    "in_band": pl.Boolean,
}


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema).sort("sample_id", maintain_order=True)


def score_mmzero(
    proposals: pl.DataFrame,
    programs: pl.DataFrame,
    renders: pl.DataFrame,
    answers: pl.DataFrame,
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> dict[str, pl.DataFrame]:
    """Score one MM-Zero round: frames "proposer", "coder", "solver", one row per sample.

    Rows are sorted by ``sample_id``; within a Solver group, answers vote in input order (ties in
    agreement go to the answer seen first). Extra input columns are ignored.
    """
    rel = cfg.grade_rel_tol
    props = _require(
        proposals,
        "proposals",
        ["proposal_id", "group_id", "parse_ok", "content_type", "caption", "easy_question"]
        + ["easy_answer", "hard_question", "hard_answer"],
    ).to_dicts()
    if "group_id" not in programs.columns:  # one group per proposal (a single language)
        programs = programs.with_columns(pl.col("proposal_id").alias("group_id"))
    progs = _require(
        programs, "programs", ["program_id", "proposal_id", "group_id", "extract_status"]
    ).to_dicts()
    render_status: dict[str, str] = {}
    for row in _require(renders, "renders", ["program_id", "status"]).iter_rows(named=True):
        render_status.setdefault(row["program_id"], row["status"])
    answer_rows = _require(
        answers,
        "answers",
        ["answer_id", "program_id", "proposal_id", "question_kind", "answer", "format_ok"],
    ).to_dicts()
    by_question: dict[tuple[str, str], list[str | None]] = {}
    for row in answer_rows:
        by_question.setdefault((row["program_id"], row["question_kind"]), []).append(row["answer"])

    required = ("caption", "easy_question", "easy_answer", "hard_question", "hard_answer")
    proposal_by_id = {p["proposal_id"]: p for p in props}
    valid = [p for p in props if p["parse_ok"] and all(p[f] is not None for f in required)]

    # Per image (program): verification, agreements, difficulty.
    image: dict[str, dict[str, Any]] = {}
    for prog in progs:
        pid = prog["program_id"]
        easy = by_question.get((pid, "easy"), [])
        hard = by_question.get((pid, "hard"), [])
        easy_label, easy_c = agreement(easy, rel_tol=rel)
        hard_label, hard_c = agreement(hard, rel_tol=rel)
        proposal = proposal_by_id.get(prog["proposal_id"])
        s = (
            visual_verification(easy, proposal["easy_answer"], rel_tol=rel)
            if proposal is not None
            else None
        )
        image[pid] = {
            "rendered": render_status.get(pid) == "ok",
            "s": s,
            # No valid hard answer: c = 0, so d = 0; no difficulty credit, and it counts in the
            # mean that decides the too-easy penalty (an unanswerable question must not pay).
            "d": difficulty(hard_c) if hard else None,
            "hard_valid": hard_label is not None,
            "labels": {"easy": easy_label, "hard": hard_label},
            "easy_c": easy_c,
            "hard_c": hard_c,
        }
    for key in by_question:  # answers to programs the programs frame does not list
        if key[0] not in image:
            easy_label, easy_c = agreement(by_question.get((key[0], "easy"), []), rel_tol=rel)
            hard_label, hard_c = agreement(by_question.get((key[0], "hard"), []), rel_tol=rel)
            image[key[0]] = {
                "rendered": False,
                "s": None,
                "d": None,
                "hard_valid": hard_label is not None,
                "labels": {"easy": easy_label, "hard": hard_label},
                "easy_c": easy_c,
                "hard_c": hard_c,
            }

    # Proposer.
    sizes = _field_cluster_sizes(
        [p["caption"] for p in valid],
        [p["easy_question"] for p in valid],
        [p["hard_question"] for p in valid],
        cfg,
    )
    ctype_pen = content_type_penalties([p["content_type"] for p in valid], cfg)
    batch = {
        p["proposal_id"]: (c, e, h, pen)
        for p, c, e, h, pen in zip(valid, *sizes, ctype_pen, strict=True)
    }
    programs_of: dict[str, list[str]] = {}
    for prog in progs:
        programs_of.setdefault(prog["proposal_id"], []).append(prog["program_id"])
    proposer_rows = []
    for p in props:
        pid = p["proposal_id"]
        images = [image[j] for j in programs_of.get(pid, [])]
        rendered = [im for im in images if im["rendered"]]
        row = {
            "sample_id": pid,
            "group_id": p["group_id"],
            "parse_ok": pid in batch,
            "content_type": p["content_type"],
            "n_programs": len(images),
            "n_rendered": len(rendered),
            "n_judged": sum(im["hard_valid"] for im in rendered),
        }
        if pid not in batch:
            row |= {"reward": float(cfg.invalid_proposal_reward)}
            proposer_rows.append(row)
            continue
        s_list = [im["s"] for im in rendered]
        d_list = [im["d"] for im in rendered]
        verification, hardness, easy = _proposer_terms(len(images), s_list, d_list, cfg)
        caption, easy_q, hard_q, ctype = batch[pid]
        diversity = _diversity_from_sizes(caption, easy_q, hard_q, cfg)
        known = [x for x in d_list if x is not None]
        (reward,) = mmzero_proposer_rewards(
            [True], [len(images)], [s_list], [d_list], [diversity], [ctype], cfg
        )
        row |= {
            "reward": reward,
            "visual_verification": verification,
            "difficulty": hardness,
            "mean_difficulty": sum(known) / len(known) if known else None,
            "easy_penalty": easy,
            "caption_cluster": caption,
            "easy_question_cluster": easy_q,
            "hard_question_cluster": hard_q,
            "diversity_penalty": diversity,
            "content_type_penalty": ctype,
        }
        proposer_rows.append(row)

    # Coder.
    coder_rows = []
    for prog in progs:
        im = image[prog["program_id"]]
        s = im["s"] if im["rendered"] else None
        d = im["d"] if im["rendered"] else None
        (reward,) = mmzero_coder_rewards([im["rendered"]], [prog["extract_status"]], [s], [d], cfg)
        coder_rows.append(
            {
                "sample_id": prog["program_id"],
                # one prompt per group: (proposal, language), as write_code samples them
                "group_id": prog["group_id"],
                "reward": reward,
                "extract_status": prog["extract_status"],
                "render_status": render_status.get(prog["program_id"]),
                "rendered": im["rendered"],
                "s": s,
                "d": d,
                "render_penalty": 0.0 if im["rendered"] else reward,
            }
        )

    # Solver.
    solver_rows = []
    band: dict[str, bool] = {}
    for pid, im in image.items():
        (band[pid],) = mid_band([im["easy_c"]], [im["hard_c"]], cfg)
    for row in answer_rows:
        im = image[row["program_id"]]
        label = im["labels"].get(row["question_kind"])
        (reward,) = mmzero_solver_rewards([row["answer"]], [label], [row["format_ok"]], cfg)
        valid_answer = not is_placeholder(row["answer"])
        solver_rows.append(
            {
                "sample_id": row["answer_id"],
                "group_id": f"{row['program_id']}-{row['question_kind']}",
                "reward": reward,
                "answer": row["answer"],
                "question_kind": row["question_kind"],
                "answer_valid": valid_answer,
                "label": label,
                "correct": bool(
                    label is not None and valid_answer and grade(row["answer"], label, rel_tol=rel)
                ),
                "format_ok": bool(row["format_ok"]),
                "easy_agreement": im["easy_c"],
                "hard_agreement": im["hard_c"],
                "in_band": band[row["program_id"]],
            }
        )
    return {
        "proposer": _frame(proposer_rows, _PROPOSER_SCHEMA),
        "coder": _frame(coder_rows, _CODER_SCHEMA),
        "solver": _frame(solver_rows, _SOLVER_SCHEMA),
    }


_EVOLMM_PROPOSER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "parse_ok": pl.Boolean,
    "n_answers": pl.Int64,
    "n_valid": pl.Int64,
    "n_clusters": pl.Int64,
    "entropy": pl.Float64,
    "label": pl.String,
    "agreement": pl.Float64,
}
_EVOLMM_SOLVER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "answer": pl.String,
    "answer_valid": pl.Boolean,
    "share": pl.Float64,
    "majority": pl.Boolean,
    "words_before_answer": pl.Int64,
    "length_factor": pl.Float64,
}


def score_evolmm(
    questions: pl.DataFrame,
    answers: pl.DataFrame,
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> dict[str, pl.DataFrame]:
    """Score one EvoLMM round: frames "proposer" (per question) and "solver" (per answer).

    Rows are sorted by ``sample_id``; a question's answers are clustered in input order.
    """
    rel = cfg.grade_rel_tol
    solver_fn = EVOLMM_SOLVER_REWARDS[cfg.solver_reward]
    qs = _require(questions, "questions", ["question_id", "group_id", "parse_ok", "question"])
    answer_rows = _require(
        answers, "answers", ["answer_id", "question_id", "answer", "words_before_answer"]
    ).to_dicts()
    by_question: dict[str, list[dict[str, Any]]] = {}
    for row in answer_rows:
        by_question.setdefault(row["question_id"], []).append(row)

    proposer_rows = []
    for q in qs.iter_rows(named=True):
        group = by_question.get(q["question_id"], [])
        texts = [r["answer"] for r in group]
        ok = bool(q["parse_ok"]) and q["question"] is not None
        (reward,) = evolmm_proposer_rewards([texts], [ok], cfg)
        label, c = agreement(texts, rel_tol=rel)
        _shares_, sizes = _shares(texts, rel)
        proposer_rows.append(
            {
                "sample_id": q["question_id"],
                "group_id": q["group_id"],
                "reward": reward,
                "parse_ok": ok,
                "n_answers": len(texts),
                "n_valid": sum(sizes),
                "n_clusters": len(sizes),
                "entropy": answer_entropy(texts, rel_tol=rel),
                "label": label,
                "agreement": c,
            }
        )

    solver_rows = []
    for question_id, group in by_question.items():
        texts = [r["answer"] for r in group]
        words = [int(r["words_before_answer"] or 0) for r in group]
        rewards = solver_fn(texts, words, cfg)
        shares, _sizes = _shares(texts, rel)
        majority = majority_solver_rewards(texts, words, cfg)
        for row, reward, share, major, w in zip(
            group, rewards, shares, majority, words, strict=True
        ):
            solver_rows.append(
                {
                    "sample_id": row["answer_id"],
                    "group_id": question_id,
                    "reward": reward,
                    "answer": row["answer"],
                    "answer_valid": share is not None,
                    "share": share,
                    "majority": bool(major),
                    "words_before_answer": w,
                    "length_factor": length_factor(w, cfg),
                }
            )
    return {
        "proposer": _frame(proposer_rows, _EVOLMM_PROPOSER_SCHEMA),
        "solver": _frame(solver_rows, _EVOLMM_SOLVER_SCHEMA),
    }
