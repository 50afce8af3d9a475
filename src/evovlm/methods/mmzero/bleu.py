"""Text diversity of MM-Zero Proposer texts: BLEU-4 between whitespace-tokenised texts, and the
average-linkage clusters of the BLEU distances.

As the method computes it: whitespace tokens (case kept), NLTK's sentence BLEU-4 with smoothing
method1 (an order with no match counts 0.1 matches), the distance of texts i < j is
``1 - BLEU(hypothesis=i, reference=j)`` mirrored to (j, i), and the clusters are average-linkage
agglomerative clusters merged while the distance is under the threshold (SciPy's linkage, the one
scikit-learn runs). ``pairwise_bleu`` computes the exact same numbers as the per-pair
``sentence_bleu`` for all pairs at once: clipped n-gram matches ``sum_g min(c_a(g), c_b(g))`` come
from posting lists (n-grams in few texts) and from thresholded count-matrix products (n-grams in
many texts), then BLEU is evaluated as arrays.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = [
    "bleu_clusters",
    "bleu_clusters_reference",
    "bleu_distances",
    "bleu_tokens",
    "pairwise_bleu",
    "sentence_bleu",
]

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
