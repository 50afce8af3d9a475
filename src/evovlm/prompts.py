"""Prompts per role (Jinja templates in each method's ``methods/<name>/templates``) and reference
outputs.

``render_messages(role, **fields)`` gives Hugging Face chat messages; roles that look at a picture get
an ``{"type": "image"}`` placeholder before the text. The ``format_*`` functions write a role's output in
exactly the form the parsers expect, for supervised warm-up examples.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

# The content types and the six proposal tags are declared once, in evovlm.parse.
from evovlm.parse import CONTENT_TYPES, PROPOSAL_TAGS  # noqa: F401 (re-exported)

DEFAULT_SEED_TOPICS: list[str] = [
    "chart and graph understanding",
    "statistical and trend analysis",
    "mathematical and quantitative reasoning",
    "spatial and geometric reasoning",
    "logical and abstract reasoning",
    "diagram and structural comprehension",
    "visual text recognition and OCR",
    "basic shape and object perception",
]


# role -> (template file under the package, whether the role sees an image); each built-in
# method's templates live in its folder, methods/<name>/templates/
ROLES: dict[str, tuple[str, bool]] = {
    "proposer": ("methods/mmzero/templates/proposer.jinja", False),
    "coder_svg": ("methods/mmzero/templates/coder_svg.jinja", False),
    "coder_python": ("methods/mmzero/templates/coder_python.jinja", False),
    "solver": ("methods/mmzero/templates/solver.jinja", True),
    "evolmm_proposer": ("methods/evolmm/templates/evolmm_proposer.jinja", True),
    "evolmm_solver": ("methods/evolmm/templates/evolmm_solver.jinja", True),
}

IMAGE_ROLES: set[str] = {role for role, (_, image) in ROLES.items() if image}


def register_template(role: str, path: str | os.PathLike, image: bool = False) -> None:
    """A plug-in method's prompt: ``role`` renders the Jinja file ``path`` (an image placeholder
    first when ``image``)."""
    ROLES[role] = (str(Path(path).resolve()), image)
    if image:
        IMAGE_ROLES.add(role)
    else:
        IMAGE_ROLES.discard(role)


class PromptError(ValueError):
    """A prompt could not be built: unknown role or a missing template variable."""


class _PackageLoader(jinja2.BaseLoader):
    """Loads templates through importlib.resources, so an installed wheel or zip works too."""

    def get_source(self, environment, template):
        if os.path.isabs(template):  # a plug-in's template (register_template)
            if not os.path.isfile(template):
                raise jinja2.TemplateNotFound(template)
            return Path(template).read_text(encoding="utf-8"), template, lambda: True
        resource = files("evovlm").joinpath(*template.split("/"))
        if not resource.is_file():
            raise jinja2.TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), None, lambda: True


@functools.cache
def _environment() -> jinja2.Environment:
    # Plain text prompts: no HTML autoescape; StrictUndefined turns a missing field into an error.
    return jinja2.Environment(
        loader=_PackageLoader(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def render_text(role: str, **fields: Any) -> str:
    """The prompt text of ``role`` with ``fields`` filled in."""
    if role not in ROLES:
        raise PromptError(f"unknown prompt role {role!r}; known roles: {', '.join(ROLES)}")
    template = _environment().get_template(ROLES[role][0])
    try:
        return template.render(**fields).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompt role {role!r} needs a value: {exc.message}") from exc


def render_messages(role: str, **fields: Any) -> list[dict[str, Any]]:
    """One user message for ``role``: an image placeholder (image roles only), then the text."""
    content: list[dict[str, Any]] = []
    if role in IMAGE_ROLES:
        content.append({"type": "image"})
    content.append({"type": "text", "text": render_text(role, **fields)})
    return [{"role": "user", "content": content}]


# ---------------------------------------------------------------------------------------------
# Reference outputs (the exact format each role's parser reads)


def format_proposal(fields: Mapping[str, Any]) -> str:
    """The six proposer tags, one per line, in SPEC order."""
    missing = [tag for tag in PROPOSAL_TAGS if tag not in fields]
    if missing:
        raise PromptError(f"format_proposal needs fields: {', '.join(missing)}")
    return "\n".join(f"<{tag}>{str(fields[tag]).strip()}</{tag}>" for tag in PROPOSAL_TAGS)


def format_code(code: str, language: str) -> str:
    """``code`` in a fenced block of ``language`` (``svg`` or ``python``)."""
    return f"```{language}\n{code.strip()}\n```"


def format_solver(reasoning: str, answer: str) -> str:
    """``<think>reasoning</think>`` followed by the boxed answer and nothing else."""
    return f"<think>{reasoning.strip()}</think>\n\\boxed{{{answer.strip()}}}"


def format_evolmm_question(question: str, rationale: str) -> str:
    return f"<question>{question.strip()}</question>\n<rationale>{rationale.strip()}</rationale>"


def format_evolmm_answer(reasoning: str, answer: str) -> str:
    """A brief reasoning line (may be empty), then the answer tag."""
    reasoning = reasoning.strip()
    tag = f"<answer>{answer.strip()}</answer>"
    return f"{reasoning}\n{tag}" if reasoning else tag
