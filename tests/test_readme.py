"""The README cites only what a clone has, and the two papers it implements (issue 29)."""

import re

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_cites_no_file_outside_the_repository():
    cited = re.findall(r"`([^`\s]+)`", README) + re.findall(r"\]\(([^)\s]+)\)", README)
    outside = [c for c in cited if c.startswith(("../", "/work/")) or "/shared/" in c]
    assert outside == []


def test_readme_links_both_papers():
    assert "https://arxiv.org/abs/2603.09206" in README  # MM-Zero
    assert "https://arxiv.org/abs/2511.16672" in README  # EvoLMM
