"""The README is a short front door that cites only what a clone has (issues 29 and 32); the
measurements it leaves out live in docs/, and what cites a README section finds it."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text()
PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]


def _table(text, header):
    """The lines of the Markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_page_cites_a_file_outside_the_repository(page):
    text = page.read_text()
    cited = re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(([^)\s]+)\)", text)
    outside = [c for c in cited if c.startswith(("../", "/work/")) or "/shared/" in c]
    assert outside == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_points_to_a_file_in_the_repository(page):
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link)]
    broken = [link for link in local if not (page.parent / link).resolve().exists()]
    assert broken == []


def test_readme_links_both_papers():
    assert "https://arxiv.org/abs/2603.09206" in README  # MM-Zero
    assert "https://arxiv.org/abs/2511.16672" in README  # EvoLMM


def test_readme_is_a_short_front_door_with_one_table():
    assert len(README.splitlines()) <= 250
    assert len(re.findall(r"^\|(-+\|)+$", README, flags=re.M)) == 1
    # what it leaves out is a link away
    assert {"docs/results.md", "docs/deviations.md", "CHANGELOG.md"} <= set(
        re.findall(r"\]\(([^)]+)\)", README)
    )


def test_readme_results_table_is_the_one_recorded_in_docs():
    # The one table of the README is a copy of the record in docs/results.md: the two agree.
    header = "| round | run | parse_rate |"
    table = _table(README, header)
    assert len(table) == 13  # header, rule, the base and five rounds of two runs
    assert table == _table((REPO / "docs" / "results.md").read_text(), header)


def _readme_sections():
    headings = re.findall(r"^#+ (.+)$", README, flags=re.M)
    leads = re.findall(r"^\*\*(.+?)\.?\*\*", README, flags=re.M)
    return {h.strip() for h in headings + leads}


CITERS = [
    *sorted((REPO / "config").glob("*.yaml")),  # not the presets: they cite the references' READMEs
    *sorted((REPO / "envs").glob("*.txt")),
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "src").rglob("*.py")),
]


def test_every_readme_section_cited_elsewhere_exists():
    sections = _readme_sections()
    cited, missing = 0, []
    for path in CITERS:
        text = " ".join(path.read_text().replace("#", " ").split())
        for name in re.findall(
            r"(?<!its )(?<!reference's )README,? (?:\"([^\"]+)\"|'([^']+)')", text
        ):
            name, cited = "".join(name), cited + 1
            if not any(s == name or s.startswith(name + " (") for s in sections):
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []


def test_every_docs_page_cited_by_a_config_comment_exists():
    cited = set()
    for path in [*(REPO / "config").glob("*.yaml"), *(REPO / "config" / "presets").glob("*.yaml")]:
        cited |= set(re.findall(r"docs/[\w./-]+\.md", path.read_text()))
    assert cited and sorted(c for c in cited if not (REPO / c).exists()) == []


# Paths of the reference implementations (MM-Zero, EvoLMM) that docs/presets.md and
# docs/deviations.md cite as sources: they are not in this repository.
REFERENCE_PATHS = {
    "scripts/codegen_train.sh",
    "scripts/main.sh",
    "scripts/main_svg.sh",
    "scripts/solver_train.sh",
    "src/train.py",
    "src/train.sh",
}
TOP = (
    "src/",
    "scripts/",
    "workflow/",
    "config/",
    "envs/",
    "tests/",
    "bench/",
    "profiles/",
    "docs/",
)


def _module_exists(dotted):
    """``evovlm.a.b.name``: some prefix of at least two parts is a module or package in src/."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):
        base = REPO / "src" / Path(*parts[:n])
        if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
            return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_repository_path_and_module_a_page_names_exists(page):
    # A move of a file or module that leaves its old name in the docs fails here.
    names = [c.split("::")[0] for c in re.findall(r"`([^`\s]+)`", page.read_text())]
    paths = [c for c in names if c.startswith(TOP) and not re.search(r"[{}*<>]|NAME", c)]
    stale = [c for c in paths if c not in REFERENCE_PATHS and not (REPO / c).exists()]
    modules = [c.rstrip("()") for c in names if re.fullmatch(r"evovlm(\.\w+)+(\(\))?", c)]
    stale += [m for m in modules if not _module_exists(m)]
    assert stale == []
