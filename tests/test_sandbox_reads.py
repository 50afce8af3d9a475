"""File reads are closed at the kernel: a program that first disarms the Python audit hook
(through its own frames) still cannot open any file outside the interpreter, fonts, caches and
its private folder, by any route, and the file's content reaches no output column.

The same programs run once more with the Landlock read rules switched off: then the content
does come back, which shows what the kernel rules add (and that these tests can fail)."""

from __future__ import annotations

import os

import pytest

from evovlm.render import RenderConfig, RenderPool

FAST = RenderConfig(timeout_s=5.0, cpu_seconds=4, memory_mb=512, max_file_mb=4)
CANARY = "canary-7f3a9c-not-for-programs"

# Walks its frames to the audit hook's state and makes the hook ignore every file open.
DISARM = (
    "import sys\n"
    "frame = sys._getframe()\n"
    "while frame is not None:\n"
    "    for value in list(frame.f_locals.values()):\n"
    "        if type(value).__name__ == 'AuditState':\n"
    "            value.violation = None\n"
    "            value.read_roots = ('/',)\n"
    "            value.inert.add('open')\n"
    "    frame = frame.f_back\n"
)

READS = {
    "open": "data = open({path!r}).read()\n",
    "os.open": "import os\nfd = os.open({path!r}, os.O_RDONLY)\ndata = os.read(fd, 4096).decode()\n",
    "io": "import io\ndata = io.open({path!r}, 'rb').read().decode()\n",
    "io.FileIO": "import io\ndata = io.FileIO({path!r}).read().decode()\n",
    "pathlib": "import pathlib\ndata = pathlib.Path({path!r}).read_text()\n",
    "mmap": (
        "import mmap, os\n"
        "fd = os.open({path!r}, os.O_RDONLY)\n"
        "data = mmap.mmap(fd, 0, prot=mmap.PROT_READ)[:].decode()\n"
    ),
    "numpy": "import numpy\ndata = numpy.fromfile({path!r}, dtype='uint8').tobytes().decode()\n",
    # the folder's listing: file names are content too
    "listdir": "import os\ndata = ' '.join(os.listdir({folder!r}))\n",
}
# On success the content goes out through the error column, and into the picture's title.
LEAK = (
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3])\n"
    "plt.title(data[:60])\n"
    "raise RuntimeError('leaked: ' + data)\n"
)


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outside")
    path = folder / "secret.txt"
    path.write_text(CANARY + "\n")
    return str(path)


@pytest.fixture(scope="module")
def pools():
    with (
        RenderPool(FAST, workers=1) as closed,
        RenderPool(FAST, workers=1, landlock_reads=False) as open_reads,
    ):
        if not closed.info.get("landlock_reads"):
            pytest.skip("the kernel has no Landlock: reads are guarded by the audit hook only")
        assert open_reads.info.get("landlock_reads") is False
        yield closed, open_reads


def program(route: str, canary: str) -> str:
    return DISARM + READS[route].format(path=canary, folder=os.path.dirname(canary)) + LEAK


def secret(route: str) -> str:
    """What must not come out: the file's content, or for a listing the file's name."""
    return "secret.txt" if route == "listdir" else CANARY


def no_leak(result, mark: str = CANARY) -> None:
    assert result.status != "ok", result
    assert result.png is None
    assert mark not in (result.error or ""), result.error


@pytest.mark.parametrize("route", sorted(READS))
def test_reads_outside_fail_at_the_kernel(pools, canary, route):
    closed, _ = pools
    result = closed.render(program(route, canary))
    no_leak(result, secret(route))
    assert result.status in ("runtime_error", "forbidden"), result
    if result.status == "runtime_error":
        assert "Permission denied" in result.error, result.error


@pytest.mark.parametrize("route", sorted(READS))
def test_without_the_read_rules_the_same_programs_leak(pools, canary, route):
    _, open_reads = pools
    result = open_reads.render(program(route, canary))
    assert result.status == "runtime_error" and secret(route) in result.error, result


def test_the_parents_environment_is_unreadable(pools):
    """The worker's and the host's /proc/<pid>/environ (the host has secrets in its
    environment), even with the hook disarmed."""
    closed, _ = pools
    os.environ["EVOVLM_TEST_SECRET"] = CANARY
    try:
        for target in ("os.getppid()", str(os.getpid())):
            code = DISARM + f"data = open(f'/proc/{{{target}}}/environ', 'rb').read().decode()\n"
            no_leak(closed.render(code + LEAK))
    finally:
        del os.environ["EVOVLM_TEST_SECRET"]


def test_rendering_still_reads_what_it_needs(pools):
    """Fonts of every family, mathtext, numpy's random state, dates and an SVG with text: all
    render with the read rules on."""
    closed, _ = pools
    code = (
        "import datetime\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "rng = np.random.default_rng(0)\n"
        "fig, (a, b) = plt.subplots(1, 2, figsize=(6, 3))\n"
        "a.plot([datetime.date(2024, 1, d) for d in (1, 2, 3)], rng.random(3), label=r'$\\alpha^2$')\n"
        "a.legend(); a.set_title('serif', family='serif', weight='bold')\n"
        "b.text(0.1, 0.5, 'mono', family='monospace'); b.imshow(rng.random((4, 4)))\n"
        "open('scratch.txt', 'w').write('x'); open('scratch.txt').read()\n"
    )
    assert closed.render(code).status == "ok"
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60">'
        '<text x="5" y="30" font-family="serif" font-weight="bold">Serif</text>'
        '<text x="5" y="55" font-family="monospace">mono</text></svg>'
    )
    assert closed.render(svg, "svg").status == "ok"
