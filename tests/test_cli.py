"""The command line a new user meets first: --version and build-tiny --help."""

import re
import subprocess
import sys

from evovlm import __version__
from tests.conftest import REPO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evovlm", *args], capture_output=True, text=True, cwd=REPO
    )


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"evovlm {__version__}"


def test_build_tiny_help_names_only_real_things():
    proc = run("build-tiny", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    # Every file or folder the help names exists in a checkout (or is the rule's output).
    for path in re.findall(r"\b[\w.-]+/[\w./-]+", text):
        assert path == "resources/tiny-base" or (REPO / path).exists(), path
    assert "vocab_size=4096" in text  # the spec's fields and defaults are listed
