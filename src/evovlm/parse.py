"""Parsers for every role's output: tags, code fences, boxed answers.

Model output that does not parse is data, not an error: every parser returns a value that says
what went wrong and never raises on any string. Field text is never rewritten beyond stripping
surrounding whitespace ("x < 3" stays "x < 3"). All parsers run in linear time (no nested
quantifiers on the model's text), so a 100k-character reply is cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from evovlm.grade import boxed

__all__ = [
    "CONTENT_TYPES",
    "ProposalFields",
    "QuestionFields",
    "extract_code",
    "find_tag",
    "parse_answer_tag",
    "parse_proposal",
    "parse_question",
    "parse_solver",
    "words_before_answer",
]

CONTENT_TYPES = ("data_chart", "diagram", "geometry", "timeline", "map", "table", "other")
PROPOSAL_TAGS = (
    "content_type",
    "caption",
    "easy_question",
    "easy_answer",
    "hard_question",
    "hard_answer",
)
REQUIRED_PROPOSAL_TAGS = PROPOSAL_TAGS[1:]


@lru_cache(maxsize=64)
def _tag_patterns(name: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    tag = re.escape(name)
    return (
        re.compile(rf"<\s*{tag}\s*>", re.IGNORECASE),
        re.compile(rf"<\s*/\s*{tag}\s*>", re.IGNORECASE),
    )


def find_tag(text: str | None, name: str) -> str | None:
    """Stripped inner text of the first closed ``<name>...</name>``; None when there is none.

    "First closed" means the first closing tag, paired with the nearest opening tag before it, so
    a stray earlier ``<name>`` (e.g. the model announcing the tag) does not swallow the text in
    between. Case-insensitive; whitespace inside the tag brackets is allowed.
    """
    if not isinstance(text, str):
        return None
    opening, closing = _tag_patterns(name)
    pos = 0
    while True:
        close = closing.search(text, pos)
        if close is None:
            return None
        last_open = None
        for last_open in opening.finditer(text, pos, close.start()):  # noqa: B007
            pass
        if last_open is not None:
            return text[last_open.end() : close.start()].strip()
        pos = close.end()  # a closing tag with no opening before it: look further


@dataclass(frozen=True)
class ProposalFields:
    """The six MM-Zero Proposer fields; ``ok`` when caption and the four Q/A fields are present."""

    content_type: str
    caption: str | None
    easy_question: str | None
    easy_answer: str | None
    hard_question: str | None
    hard_answer: str | None
    ok: bool
    error: str | None  # e.g. "missing tags: caption, hard_answer"; None when ok


def _content_type(raw: str | None) -> str:
    if not raw:
        return "other"
    key = re.sub(r"[\s-]+", "_", raw.strip().lower())
    return key if key in CONTENT_TYPES else "other"


def parse_proposal(text: str | None) -> ProposalFields:
    """Parse a Proposer reply: each tag's first closed occurrence; an unknown type is "other"."""
    values = {name: find_tag(text, name) for name in PROPOSAL_TAGS}
    missing = [n for n in REQUIRED_PROPOSAL_TAGS if values[n] is None]
    empty = [n for n in REQUIRED_PROPOSAL_TAGS if values[n] == ""]
    errors = []
    if missing:
        errors.append("missing tags: " + ", ".join(missing))
    if empty:
        errors.append("empty tags: " + ", ".join(empty))
    fields = {n: (values[n] or None) for n in REQUIRED_PROPOSAL_TAGS}
    return ProposalFields(
        content_type=_content_type(values["content_type"]),
        **fields,
        ok=not errors,
        error="; ".join(errors) or None,
    )


# ---------------------------------------------------------------------------------------------
# Code

_LANGUAGE_TAGS = {
    "svg": ("svg", "xml", "svg+xml", "image/svg+xml"),
    "xml": ("svg", "xml", "svg+xml", "image/svg+xml"),
    "python": ("python", "py", "python3", "py3"),
    "py": ("python", "py", "python3", "py3"),
}
# An opening fence: three or more backticks at a line start (up to 3 spaces of indent), then the
# info string; the block runs to the next line that starts with a closing fence, or to the end
# of the text (a reply cut off at the token limit).
_FENCE_OPEN = re.compile(r"^[ ]{0,3}(`{3,})[ \t]*([^\n`]*)$", re.MULTILINE)
_SVG_TAG = re.compile(r"<\s*svg\b[^<>]*>|<\s*/\s*svg\s*>", re.IGNORECASE)


def _fences(text: str) -> list[tuple[str, str, bool]]:
    """(info word, body, closed) for each fenced block, in order."""
    blocks = []
    pos = 0
    while True:
        m = _FENCE_OPEN.search(text, pos)
        if m is None:
            return blocks
        ticks = m.group(1)
        info = m.group(2).strip().split(" ")[0].lower() if m.group(2).strip() else ""
        body_start = m.end() + 1
        close = re.compile(rf"^[ ]{{0,3}}{ticks}`*[ \t]*$", re.MULTILINE).search(text, body_start)
        if close is None:
            # An inline closing fence at the end of the last code line ("...</svg>```") counts too.
            tail = text[body_start:]
            inline = tail.rfind(ticks)
            if inline >= 0 and not tail[inline + len(ticks) :].strip():
                blocks.append((info, tail[:inline], True))
            else:
                blocks.append((info, tail, False))
            return blocks
        blocks.append((info, text[body_start : close.start()], True))
        pos = close.end()


def _first_svg_element(text: str) -> str | None:
    """The first balanced ``<svg ...>...</svg>`` element (nested ``<svg>`` elements allowed)."""
    depth = 0
    start = None
    for m in _SVG_TAG.finditer(text):
        closing = m.group(0).lstrip("<").lstrip().startswith("/")
        if not closing:
            if m.group(0).rstrip(">").rstrip().endswith("/"):
                if depth == 0:
                    return m.group(0)  # a self-closing <svg/> is an (empty) element
                continue
            if depth == 0:
                start = m.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0 and start is not None:
                return text[start : m.end()]
    return None


def extract_code(text: str | None, language: str) -> tuple[str | None, str]:
    """(code, status) from a Coder reply; status is "ok", "empty" or "not_code".

    Order: the first non-empty fenced block tagged with the language (```svg/```xml for SVG,
    ```python/```py for Python); else, for SVG, the first ``<svg ...>...</svg>`` element anywhere
    (including inside a fence with another tag); else the first non-empty untagged fence. "empty"
    means the reply was blank or its only matching fences were empty; "not_code" means nothing
    that looks like code in that language was found.
    """
    language = language.lower()
    if language not in _LANGUAGE_TAGS:
        raise ValueError(f"unknown code language {language!r}; expected svg or python")
    if not isinstance(text, str) or not text.strip():
        return None, "empty"
    tags = _LANGUAGE_TAGS[language]
    is_svg = language in ("svg", "xml")
    blocks = _fences(text)
    saw_empty = False
    for info, body, _closed in blocks:
        if info in tags:
            if body.strip():
                return body.strip("\n").rstrip(), "ok"
            saw_empty = True
    if is_svg:
        element = _first_svg_element(text)
        if element is not None:
            return element, "ok"
    for info, body, _closed in blocks:
        if info == "" and body.strip():
            if is_svg and "<svg" not in body.lower():
                continue
            return body.strip("\n").rstrip(), "ok"
        if info == "" and not body.strip():
            saw_empty = True
    return None, "empty" if saw_empty else "not_code"


# ---------------------------------------------------------------------------------------------
# MM-Zero Solver

_THINK_OPEN = re.compile(r"<\s*think\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
_BOXED_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)"))
_TRIVIAL_TAIL = " \t\r\n.!。"


def parse_solver(text: str | None) -> tuple[str | None, bool]:
    """(answer, format_ok) for an MM-Zero Solver reply.

    answer: the last balanced ``\\boxed{}`` anywhere in the reply, stripped; None when absent or
    empty. format_ok: the reply is exactly one ``<think>...</think>`` block (at the start, after
    whitespace) followed by exactly one boxed answer, optionally inside ``$``/``$$``/``\\[ \\]``/
    ``\\( \\)``, and nothing after it but whitespace and a full stop.
    """
    if not isinstance(text, str):
        return None, False
    answer = boxed(text) or None
    return answer, answer is not None and _solver_format_ok(text)


def _solver_format_ok(text: str) -> bool:
    opens = list(_THINK_OPEN.finditer(text))
    closes = list(_THINK_CLOSE.finditer(text))
    if len(opens) != 1 or len(closes) != 1:
        return False
    if text[: opens[0].start()].strip() or closes[0].start() < opens[0].end():
        return False
    tail = text[closes[0].end() :].strip().rstrip(_TRIVIAL_TAIL)
    for left, right in _ANSWER_WRAPPERS:
        if tail.startswith(left) and tail.endswith(right) and len(tail) > len(left) + len(right):
            tail = tail[len(left) : len(tail) - len(right)].strip().rstrip(_TRIVIAL_TAIL)
            break
    m = _BOXED_START.match(tail)
    if m is None:
        return False
    # The box must span the whole tail: its brace closes at the tail's last character.
    depth = 0
    escaped = False
    for i in range(m.end() - 1, len(tail)):
        ch = tail[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i == len(tail) - 1
    return False


# ---------------------------------------------------------------------------------------------
# EvoLMM


@dataclass(frozen=True)
class QuestionFields:
    """An EvoLMM Proposer reply: ``ok`` when a non-empty ``<question>`` is present."""

    question: str | None
    rationale: str | None
    ok: bool
    error: str | None  # "missing tags: question" or "empty tags: question"; None when ok


def parse_question(text: str | None) -> QuestionFields:
    """``<question>`` and the optional ``<rationale>`` (first closed occurrence of each)."""
    question = find_tag(text, "question")
    rationale = find_tag(text, "rationale") or None
    if question is None:
        return QuestionFields(None, rationale, False, "missing tags: question")
    if not question:
        return QuestionFields(None, rationale, False, "empty tags: question")
    return QuestionFields(question, rationale, True, None)


_TAG = re.compile(r"<\s*/?\s*[A-Za-z_][\w-]*\s*/?\s*>")
_ANSWER_OPEN = re.compile(r"<\s*answer\s*>", re.IGNORECASE)
# A closing tag, also one cut short of its ">" ("4</answer": a reply that stopped there) or
# missing its "</" ("4answer>", glued to the answer).
_ANSWER_CLOSE = re.compile(r"<\s*/\s*answer\b\s*>?|(?<![<\s/])answer\s*>", re.IGNORECASE)
# Brackets left of a broken tag at the answer's end ("14</", "4<") and empty ones ("<>").
_TAG_DEBRIS = re.compile(r"<\s*>|\s*<\s*/?\s*\Z")
# What a reply cut at the token limit may end with: the start of a tag ("<", "</ans", "<answ").
_CUT_TAG = re.compile(r"<[/A-Za-z]*\Z")
_ANSWER_TRAILING = " \t\r\n.,;:!?。"
_BOX_WORD = re.compile(r"\\(?:boxed|fbox)")


def _clean_answer(inner: str, *, at_end: bool) -> str:
    """The answer in the text between an ``<answer>`` and its end: remaining tags removed, a
    ``\\boxed{}`` inside unwrapped, surrounding whitespace and trailing punctuation stripped."""
    if at_end:
        cut = _CUT_TAG.search(inner)
        if cut is not None and any(
            tag.startswith(cut.group(0).lower()) for tag in ("</answer>", "<answer>")
        ):
            inner = inner[: cut.start()]
    inner = _TAG.sub(" ", _ANSWER_CLOSE.sub(" ", inner))
    box = boxed(inner)
    if box:
        inner = box
    inner = inner.strip().rstrip(_ANSWER_TRAILING)
    return _TAG_DEBRIS.sub("", inner).strip().rstrip(_ANSWER_TRAILING).strip()


def _answer_spans(text: str) -> list[tuple[int, int, int, bool]]:
    """(tag start, inner start, inner end, closed) of each ``<answer>``: its text runs to the next
    closing tag (closed; also a broken one, ``</answer``), else to the next ``<answer>`` or the
    end of the reply (not closed)."""
    ends = sorted(
        [(m.start(), True) for m in _ANSWER_CLOSE.finditer(text)]
        + [(m.start(), False) for m in _ANSWER_OPEN.finditer(text)]
    )
    spans = []
    i = 0
    for m in _ANSWER_OPEN.finditer(text):
        while i < len(ends) and ends[i][0] < m.end():
            i += 1
        end, closed = ends[i] if i < len(ends) else (len(text), False)
        spans.append((m.start(), m.end(), end, closed))
    return spans


def _locate_answer(text: str) -> tuple[str | None, int]:
    """(answer, index where the answer starts being given) for an EvoLMM Solver reply.

    The prompt (methods/evolmm/templates/evolmm_solver.jinja) asks to think, then the answer in
    ``<answer></answer>``: so the last non-empty closed ``<answer>`` is the answer (a reply that
    restates or corrects itself ends with its final one), whatever state its closing tag is in;
    with none closed, the last non-empty unclosed one (a reply cut at the token limit). A closed
    answer wins over a later unclosed one: text after a complete answer is more often a small
    model's babble than a correction.
    """
    spans = _answer_spans(text)
    for want_closed in (True, False):
        for tag_start, inner_start, inner_end, closed in reversed(spans):
            if closed != want_closed:
                continue
            inner = _clean_answer(text[inner_start:inner_end], at_end=inner_end == len(text))
            if inner:
                return inner, tag_start
    if spans:  # the answer was given in the format, and given empty: no answer
        return None, len(text)
    # No usable tag: the last \boxed{} (an answer given the MM-Zero way) ...
    box = boxed(text)
    if box:
        last = None
        for last in _BOX_WORD.finditer(text):  # noqa: B007
            pass
        return box.rstrip(_ANSWER_TRAILING).strip() or box, last.start() if last else len(text)
    # ... else the last non-empty line (tags removed).
    end = len(text)
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        line = _clean_answer(text[start:end], at_end=end == len(text))
        if line:
            return line, start
        end = start - 1
    return None, len(text)


def parse_answer_tag(text: str | None) -> str | None:
    """The answer of an EvoLMM Solver reply: inside the last non-empty ``<answer>`` tag closed
    (any case, spaces inside the brackets), also by a broken tag (``4</answer``, ``4answer>``),
    else the last one never closed (the reply hit the token limit); a ``\\boxed{}`` inside is
    unwrapped, trailing punctuation dropped. Only empty tags: None. With no tag: the last
    ``\\boxed{}``, else the last non-empty line."""
    if not isinstance(text, str):
        return None
    return _locate_answer(text)[0]


def words_before_answer(text: str | None) -> int:
    """Whitespace-separated words (tags removed) before the answer that ``parse_answer_tag``
    returns: before its ``<answer>`` tag, or before the last non-empty line when untagged."""
    if not isinstance(text, str):
        return 0
    _answer, start = _locate_answer(text)
    return len(_TAG.sub(" ", text[:start]).split())
