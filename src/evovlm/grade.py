"""Answer equivalence: ``grade``, ``boxed`` and ``agreement``.

``grade(pred, ref)`` runs a cascade and stops at the first layer that can decide:

1. Normalise both sides (Unicode NFKC, LaTeX delimiters and ``\\text{}`` wrappers removed, a leading
   "answer:" dropped, lower-case, whitespace collapsed, trailing punctuation stripped, true/false as
   yes/no). Equal strings are equal; an empty side is never equal.
2. Multiple-choice letters: "B", "(B)", "B.", "B)", "option B" and "(B) 45" all read as the letter B.
   When both sides are letters, the letters decide.
3. Numbers: when both sides read as a number (thousands separators, a currency sign, a unit or ``%``
   after the number, simple fractions "1/2" and ``\\frac{1}{2}``, number words up to twenty, scale
   words such as "million"), the values decide, with relative tolerance ``rel_tol``. Units are dropped
   on both sides, so "5 cm" == "5" and "25%" == "25". "25%" != "0.25": the Solver is asked for the
   value as the picture shows it, and reading a percent both ways would make equivalence
   non-transitive ("25%" would equal both "25" and "0.25", which differ), so clusters would depend
   on answer order.
4. Math: when both sides look like a formula (no words, only digits, operators, single-letter
   variables and LaTeX commands), ``math-verify`` compares them symbolically.
5. Strings: punctuation-insensitive comparison ("the red bar" == "red bar" == "red-bar").

Time bound. ``math-verify`` bounds its own work with ``signal.alarm``, which only works in the main
thread (elsewhere it raises), and sympy can hang on small hostile inputs ("9^9^9^9"). So the bound
is layered, and identical in every thread so that a grade never depends on where it runs:
- inputs longer than ``MAX_ANSWER_CHARS`` are compared as normalised strings only;
- math-verify only sees formulas of at most ``MAX_MATH_CHARS`` characters, bracket nesting at most
  ``MAX_NESTING``, at most ``MAX_POWERS`` powers, no chained powers (``a^b^c``, ``a^{b^c}``), no
  exponent literal over two digits (one digit when the formula has variables), factorials only
  of one- or two-digit numbers, no number over ``MAX_DIGITS`` digits, and only whitelisted LaTeX
  commands (``_SAFE_COMMANDS``: arithmetic, roots, comparisons, elementary functions, Greek
  letters; no sums, integrals, limits, binomials or Gamma);
- in the main thread, math-verify's own alarm (``MATH_TIMEOUT_S`` per parse and per comparison) is
  a second line of defence; in other threads the guards above are the bound.
Measured on this design: the hostile inputs in tests/test_grade.py return in milliseconds; random
nested formulas of up to 100 characters (fractions, roots, functions, powers) take at most about
4 s per call in a worker thread (no alarm), typically well under 0.1 s; plain numbers, letters and
words never reach sympy. Every exception inside the cascade is caught; ``grade`` returns False
rather than raise. Results are memoised per (pred, ref) for answers up to ``MAX_ANSWER_CHARS``.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = [
    "PLACEHOLDERS",
    "agreement",
    "boxed",
    "cluster_answers",
    "grade",
    "is_placeholder",
    "normalize",
]

MAX_ANSWER_CHARS = 2_000  # longer answers: normalised string comparison only
MAX_NUMBER_CHARS = 64  # longer strings are not read as numbers
MAX_MATH_CHARS = 100  # longer formulas never reach math-verify
MAX_NESTING = 10
MAX_POWERS = 4
MAX_DIGITS = 30
MATH_TIMEOUT_S = 1  # math-verify's alarm (whole seconds), main thread only
DEFAULT_REL_TOL = 1e-4

# Normalised answers that mean "no answer": never a vote, never a pseudo-label.
PLACEHOLDERS = frozenset(
    {
        "",
        "none",
        "n/a",
        "na",
        "n.a",
        "null",
        "nil",
        "nan",
        "unknown",
        "-",
        "--",
        "?",
        "...",
        "…",
        "no answer",
        "not sure",
        "unsure",
        "unclear",
        "i don't know",
        "i do not know",
        "idk",
        "cannot determine",
        "can't determine",
        "cannot be determined",
        "can not be determined",
        "undetermined",
        "not determinable",
        "not applicable",
        "not available",
        "not visible",
        "unanswerable",
        "insufficient information",
        "not enough information",
    }
)

_BOXED_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOXED_BARE = re.compile(r"\\boxed[ \t]+([^\s${}]+)")
_WS = re.compile(r"\s+")
_TEXT_WRAP = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|operatorname|mbox)\s*\{([^{}]*)\}"
)
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("`", "`"))
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*:?|:)\s*")
_TRAILING_PUNCT = " .,;:!?。"
_QUOTES = "\"'“”‘’"
_SIZED_DELIMS = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)\s*")
_CHOICE_STRICT = re.compile(r"^(?:option\s+|choice\s+)?\(?([a-j])\s*(?:\)|\]|\.|:)?$")
_CHOICE_WITH_TEXT = re.compile(r"^(?:\(([a-j])\)|([a-j])[.):])\s+\S")
_NUM = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[+-]?\d{1,3})?|[+-]?\.\d+(?:e[+-]?\d{1,3})?"
_NUMBER = re.compile(rf"^({_NUM})$")
_FRACTION = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$")
_LATEX_FRACTION = re.compile(
    r"^([+-]?)\\[dt]?frac\s*(?:\{\s*([+-]?\d+(?:\.\d+)?)\s*\}|(\d))\s*(?:\{\s*(\d+(?:\.\d+)?)\s*\}|(\d))$"
)
_VARIABLE_PREFIX = re.compile(r"^[a-z]\s*=\s*")
_CURRENCY_PREFIX = re.compile(r"^(?:\\?\$|€|£|¥|usd\s|eur\s)\s*")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree")
_PERCENT = re.compile(r"\\?%")
_UNIT = re.compile(r"^[a-zµ]+(?:\^?\{?[23]\}?|[²³])?(?:/[a-zµ]+(?:\^?\{?[23]\}?|[²³])?)?\.?$")
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_NUMBER_WORDS = {
    w: float(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update({"thirty": 30.0, "forty": 40.0, "fifty": 50.0, "hundred": 100.0})
_BOOL = {"true": "yes", "false": "no"}
_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")
_MATH_FUNCS = re.compile(r"\b(?:sin|cos|tan|cot|sec|csc|log|ln|exp|sqrt|pi|min|max|deg)\b")
_WORD = re.compile(r"[a-z]{2,}")
_MATH_CHARS = re.compile(r"[\d\\^+*/=<>()\[\]{}π√∞-]")
_CHAINED_POWER = re.compile(r"(?:\^|\*\*)[\s{(]*[\w.\\]*[\s})]*(?:\^|\*\*)")
_BIG_EXPONENT = re.compile(r"(?:\^|\*\*)\s*[{(]?\s*[+-]?\d{3,}")
_BIG_EXPONENT_SYMBOLIC = re.compile(r"(?:\^|\*\*)\s*[{(]?\s*[+-]?\d{2,}")
_BIG_FACTORIAL = re.compile(r"(?:[)}a-z]|\d{3,})\s*!")
# LaTeX commands math-verify may see: arithmetic, roots, comparison, elementary functions and
# symbols. Anything else (\sum, \prod, \int, \lim, \binom, \gamma read as the Gamma function,
# matrices, ...) can make sympy work without bound, so such answers are compared as strings.
_SAFE_COMMANDS = frozenset(
    """frac dfrac tfrac sqrt pi cdot times div pm mp circ degree infty le leq ge geq ne neq lt gt
    approx sin cos tan cot sec csc arcsin arccos arctan log ln exp alpha beta theta lambda mu
    sigma phi varphi omega delta epsilon varepsilon tau rho eta xi kappa nu chi psi zeta""".split()
)
_DIGIT_RUN = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")
_STRING_PUNCT = re.compile(r"[\"'“”‘’`*_\-–—]+")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+(?=\S)")


def boxed(text: str | None) -> str | None:
    """Content of the last balanced ``\\boxed{...}`` (or ``\\fbox{...}``), stripped; None if absent.

    A ``\\boxed`` whose brace never closes is skipped (an earlier balanced one still counts);
    escaped braces ``\\{`` ``\\}`` do not count towards balance. ``\\boxed 5`` (no braces) counts
    when no braced form follows it. Linear time in the length of the text.
    """
    if not isinstance(text, str) or "\\" not in text:
        return None
    opens = [(m.start(), m.end() - 1) for m in _BOXED_OPEN.finditer(text)]
    best_start, best = -1, None
    if opens:
        closing = _match_braces(text)
        for start, brace in reversed(opens):
            end = closing.get(brace)
            if end is not None:
                best_start, best = start, text[brace + 1 : end]
                break
    for m in _BOXED_BARE.finditer(text):
        if m.start() > best_start:
            best_start, best = m.start(), m.group(1)
    return None if best is None else best.strip()


def _match_braces(text: str) -> dict[int, int]:
    """Map each unescaped ``{`` position to its matching ``}`` position (one pass, a stack)."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def normalize(text: object) -> str:
    """The normalised form used for comparison (see the module docstring, step 1)."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    s = unicodedata.normalize("NFKC", s).replace("\u2212", "-").replace("\u2044", "/")
    s = _strip_delimiters(s.strip())
    m = _BOXED_OPEN.match(s)
    if m and s.endswith("}") and _match_braces(s).get(m.end() - 1) == len(s) - 1:
        s = _strip_delimiters(s[m.end() : -1].strip())  # the whole answer is one \boxed{...}
    s = _TEXT_WRAP.sub(r" \1 ", s)
    s = _SIZED_DELIMS.sub("", s)
    s = _WS.sub(" ", s).strip().lower()
    s = _ANSWER_PREFIX.sub("", s)
    s = _strip_delimiters(s)
    s = s.strip(_QUOTES).rstrip(_TRAILING_PUNCT).strip().strip(_QUOTES).strip()
    return _BOOL.get(s, s)


def _strip_delimiters(s: str) -> str:
    changed = True
    while changed and s:
        changed = False
        for left, right in _DELIMS:
            if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)].strip()
                changed = True
    return s


def is_placeholder(answer: object) -> bool:
    """True for a missing answer or one that means "no answer" ("none", "n/a", "unknown", "")."""
    if answer is None:
        return True
    return normalize(answer) in PLACEHOLDERS


def grade(pred: object, ref: object, *, rel_tol: float = DEFAULT_REL_TOL) -> bool:
    """Whether ``pred`` is equivalent to ``ref``. Never raises; bounded time (module docstring)."""
    if pred is None or ref is None:
        return False
    try:
        pred, ref = str(pred), str(ref)
        if len(pred) > MAX_ANSWER_CHARS or len(ref) > MAX_ANSWER_CHARS:
            a = normalize(pred)
            return bool(a) and a == normalize(ref)  # long text: never cached, never parsed
        return _grade_cached(pred, ref, float(rel_tol))
    except Exception:  # noqa: BLE001 - grading model output must never crash scoring
        return False


@lru_cache(maxsize=1 << 16)
def _grade_cached(pred: str, ref: str, rel_tol: float) -> bool:
    a, b = normalize(pred), normalize(ref)
    if not a or not b:
        return False
    if a == b:
        return True
    la, lb = _choice_letter(a), _choice_letter(b)
    if la is not None and lb is not None:
        return la == lb
    xa, xb = _as_number(a), _as_number(b)
    if xa is not None and xb is not None:
        return math.isclose(xa, xb, rel_tol=rel_tol, abs_tol=1e-12)
    if _looks_like_math(a) and _looks_like_math(b) and _safe_for_math(a) and _safe_for_math(b):
        verdict = _math_verify(a, b)
        if verdict:
            return True
    return _string_key(a) == _string_key(b)


def _choice_letter(s: str) -> str | None:
    m = _CHOICE_STRICT.match(s)
    if m:
        return m.group(1)
    m = _CHOICE_WITH_TEXT.match(s)
    if m:
        return m.group(1) or m.group(2)
    return None


def _as_number(s: str) -> float | None:
    """The value of a number-with-optional-unit answer, or None when it is not one."""
    if len(s) > MAX_NUMBER_CHARS:
        return None
    if s in _NUMBER_WORDS:
        return _NUMBER_WORDS[s]
    s = _VARIABLE_PREFIX.sub("", s)
    s = _CURRENCY_PREFIX.sub("", s)
    s = _DEGREE.sub(" ", s)
    s = _PERCENT.sub(" ", s)
    s = s.replace("\\,", "").replace("\\!", "").replace("{,}", ",").strip()
    value = _number_head(s)
    if value is not None:
        return value
    # A number followed by a scale word and/or a unit of at most two words.
    parts = s.split(" ")
    if len(parts) < 2 or len(parts) > 4:
        return None
    value = _number_head(parts[0])
    if value is None:
        return None
    rest = parts[1:]
    if rest and rest[0] in _SCALE:
        value *= _SCALE[rest[0]]
        rest = rest[1:]
    if len(rest) > 2 or not all(_UNIT.match(w) for w in rest):
        return None
    return value


def _number_head(s: str) -> float | None:
    m = _NUMBER.match(s)
    if m:
        value = float(m.group(1).replace(",", ""))
        return value if math.isfinite(value) else None
    m = _FRACTION.match(s)
    if m:
        den = float(m.group(2))
        return float(m.group(1)) / den if den else None
    m = _LATEX_FRACTION.match(s)
    if m:
        num = float(m.group(2) or m.group(3))
        den = float(m.group(4) or m.group(5))
        if not den:
            return None
        return (-1.0 if m.group(1) == "-" else 1.0) * num / den
    return None


def _looks_like_math(s: str) -> bool:
    if not _MATH_CHARS.search(s):
        return False
    words = _MATH_FUNCS.sub(" ", _LATEX_CMD.sub(" ", s))
    return _WORD.search(words) is None


def _safe_for_math(s: str) -> bool:
    if len(s) > MAX_MATH_CHARS:
        return False
    depth = deepest = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        return False
    if s.count("^") + s.count("**") > MAX_POWERS:
        return False
    if any(cmd[1:] not in _SAFE_COMMANDS for cmd in _LATEX_CMD.findall(s)):
        return False
    symbolic = re.search(r"[a-z]", _LATEX_CMD.sub(" ", s)) is not None
    if symbolic and _BIG_EXPONENT_SYMBOLIC.search(s):
        return False  # (x + y + z + w)^{99} expands to ~10^5 terms
    return not (
        _CHAINED_POWER.search(s)
        or _BIG_EXPONENT.search(s)
        or _BIG_FACTORIAL.search(s)
        or _DIGIT_RUN.search(s)
    )


def _math_verify(a: str, b: str) -> bool:
    from math_verify import parse, verify

    timeout = MATH_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        gold = parse(f"${b}$", parsing_timeout=timeout)
        pred = parse(f"${a}$", parsing_timeout=timeout)
        if not gold or not pred:
            return False
        return bool(verify(gold, pred, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - includes math-verify's TimeoutException
        return False


def _string_key(s: str) -> str:
    s = _STRING_PUNCT.sub(" ", s)
    s = _WS.sub(" ", s).strip()
    return _ARTICLE.sub("", s)


def cluster_answers(
    answers: Sequence[object], *, rel_tol: float = DEFAULT_REL_TOL
) -> list[int | None]:
    """Cluster index of each answer (None for missing or placeholder answers).

    Greedy and order-stable: each valid answer joins the first cluster whose representative (its
    first member) it grades equal to, else opens a new cluster. Cluster indices count from 0 in
    order of first occurrence.
    """
    reps: list[str] = []
    out: list[int | None] = []
    for answer in answers:
        if answer is None or is_placeholder(answer):
            out.append(None)
            continue
        text = str(answer).strip()
        for index, rep in enumerate(reps):
            if grade(text, rep, rel_tol=rel_tol):
                out.append(index)
                break
        else:
            reps.append(text)
            out.append(len(reps) - 1)
    return out


def agreement(
    answers: Sequence[object], *, rel_tol: float = DEFAULT_REL_TOL
) -> tuple[str | None, float]:
    """(label, c): the largest cluster's representative and its share of the valid answers.

    Placeholders and missing answers are excluded from both the vote and the count. Ties go to
    the cluster that appeared first. (None, 0.0) when no answer is valid.
    """
    clusters = cluster_answers(answers, rel_tol=rel_tol)
    sizes: dict[int, int] = {}
    first: dict[int, str] = {}
    for answer, cluster in zip(answers, clusters, strict=True):
        if cluster is None:
            continue
        sizes[cluster] = sizes.get(cluster, 0) + 1
        first.setdefault(cluster, str(answer).strip())
    if not sizes:
        return None, 0.0
    best = max(sorted(sizes), key=lambda k: sizes[k])  # max keeps the first (lowest index) on ties
    return first[best], sizes[best] / sum(sizes.values())
