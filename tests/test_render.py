"""The rendering sandbox: every hostile category gets its exact status and leaves the host
untouched; happy paths render; the CLI round-trips a Parquet file."""

from __future__ import annotations

import base64
import io
import os
import signal
import struct
import zlib

import polars as pl
import pyarrow.parquet as pq
import pytest
from PIL import Image

from evovlm.render import (
    RENDER_STATUSES,
    RENDERS_SCHEMA,
    RenderConfig,
    RenderPool,
    main,
    render_programs,
    render_svg,
)

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'
SIMPLE_SVG = f'<svg {SVG_NS} width="200" height="100"><rect x="10" y="10" width="80" height="60" fill="red"/></svg>'
BAR_CHART = (
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(4, 3))\n"
    "ax.bar(['a', 'b', 'c'], [3, 1, 2], color='navy')\n"
    "ax.set_title('sales')\n"
)
# Short limits keep the hostile tests quick; statuses do not depend on them.
FAST = RenderConfig(timeout_s=3.0, cpu_seconds=2, memory_mb=512, max_file_mb=4)


def proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgrp, session), from /proc (no psutil)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def sandbox_leftovers(sessions: set[int]) -> list[int]:
    """Processes in the workers' sessions (workers and every program they forked)."""
    return [pid for pid, (_, _, session) in proc_table().items() if session in sessions]


@pytest.fixture(scope="module")
def pool():
    old = os.environ.get("HF_TOKEN")
    os.environ["HF_TOKEN"] = "secret123"  # must not reach any program
    try:
        with RenderPool(FAST, workers=1) as p:
            yield p
    finally:
        if old is None:
            os.environ.pop("HF_TOKEN", None)
        else:
            os.environ["HF_TOKEN"] = old


def png_pixels(result) -> Image.Image:
    img = Image.open(io.BytesIO(result.png))
    assert img.format == "PNG"
    assert img.size == (result.width, result.height)
    return img.convert("RGB")


# ------------------------------------------------------------------ config


def test_config_from_dict():
    assert RenderConfig.from_dict(None) == RenderConfig()
    assert RenderConfig.from_dict({"timeout_s": 3}).timeout_s == 3
    with pytest.raises(ValueError, match="unknown render config key"):
        RenderConfig.from_dict({"timeout": 3})
    with pytest.raises(ValueError, match="memory_mb"):
        RenderConfig.from_dict({"memory_mb": 0})
    statuses = "ok empty not_code parse_error runtime_error timeout memory too_large"
    assert RENDER_STATUSES == (*statuses.split(), "blank_image", "forbidden")


# ------------------------------------------------------------------ SVG


def test_svg_ok_size_and_pixels():
    r = render_svg(SIMPLE_SVG, RenderConfig())
    assert (r.status, r.error) == ("ok", None)
    assert (r.width, r.height) == (448, 224)  # fits 448x448, aspect kept
    img = png_pixels(r)
    assert img.getpixel((100, 80)) == (255, 0, 0)
    assert img.getpixel((400, 200)) == (255, 255, 255)


def test_svg_transparent_background_is_white():
    svg = f'<svg {SVG_NS} width="100" height="100"><circle cx="50" cy="50" r="20" fill="black"/></svg>'
    img = png_pixels(render_svg(svg))
    assert img.getpixel((5, 5)) == (255, 255, 255)  # not black
    assert img.getpixel((224, 224)) == (0, 0, 0)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (None, "empty"),
        ("  \n\t", "empty"),
        ("Sure! Here is a chart of the sales.", "not_code"),
        ("\x00\xff\x13garbage\x89PNG\r\n", "not_code"),
        (f"<svg {SVG_NS}><rect></svg>", "parse_error"),
        (f'<svg {SVG_NS} width="100" height="100"></svg>', "blank_image"),
        (
            f'<svg {SVG_NS} width="100000000" height="100000000"><rect width="5" height="5"/></svg>',
            "too_large",
        ),
        (f'<svg {SVG_NS} viewBox="0 0 1e30 1e30"><rect width="5" height="5"/></svg>', "too_large"),
        (f'<svg {SVG_NS} width="4000" height="2"><rect width="5" height="5"/></svg>', "too_large"),
    ],
    ids=[
        "none",
        "whitespace",
        "prose",
        "garbage",
        "malformed",
        "blank",
        "huge",
        "huge-viewbox",
        "aspect",
    ],
)
def test_svg_statuses(code, status):
    assert render_svg(code).status == status


XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + f"]><svg {SVG_NS}><text>&lol9;</text></svg>"
)


@pytest.mark.parametrize(
    "svg",
    [
        f'<svg {SVG_NS} width="99" height="99"><image href="file:///etc/passwd" width="9" height="9"/></svg>',
        f'<svg {SVG_NS} xmlns:xlink="http://www.w3.org/1999/xlink" width="99" height="99">'
        '<image xlink:href="http://example.com/x.png" width="9" height="9"/></svg>',
        f'<svg {SVG_NS} width="99" height="99"><use href="other.svg#x"/></svg>',
        f'<svg {SVG_NS} width="99" height="99"><style>@import url(http://e.com/a.css);</style></svg>',
        f'<svg {SVG_NS} width="99" height="99"><style>@import "a.css"; rect {{fill: red}}</style></svg>',
        f'<svg {SVG_NS} width="99" height="99"><image href="picture.png" width="9" height="9"/></svg>',
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><text y="20"><tref xlink:href="t.svg#t"/></text></svg>',
        f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {SVG_NS}>&x;</svg>',
        BILLION_LAUGHS,
    ],
    ids=[
        "file-href",
        "http-xlink",
        "use-other-file",
        "css-import",
        "css-import-string",
        "relative-image",
        "tref-other-file",
        "xxe",
        "billion-laughs",
    ],
)
def test_svg_external_references_are_forbidden(svg):
    r = render_svg(svg)
    assert r.status == "forbidden", r
    assert r.png is None


RED = '<rect width="50" height="50" fill="red"/>'
PUBLIC_DOCTYPE = (
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
)


@pytest.mark.parametrize(
    "svg",
    [
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><a xlink:href="http://example.com/">{RED}</a></svg>',
        f'<svg {SVG_NS} width="99" height="99"><a href="https://example.com/x?y=1" target="_blank">{RED}</a></svg>',
        f'<svg {SVG_NS} {XLINK} width="99" height="99">{RED}'
        '<text x="5" y="90"><a xlink:href="mailto:x@example.com">mail</a></text></svg>',
        f'<?xml version="1.0" standalone="no"?>\n{PUBLIC_DOCTYPE}\n<svg {SVG_NS} width="99" height="99">{RED}</svg>',
        f'<!DOCTYPE svg><svg {SVG_NS} width="99" height="99">{RED}</svg>',
        f'<!DOCTYPE svg SYSTEM "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg {SVG_NS} width="99" height="99">{RED}</svg>',
        f'<svg {SVG_NS} width="99" height="99" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:cc="http://creativecommons.org/ns#" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<metadata><rdf:RDF><cc:Work rdf:about=""><dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/>'
        '<cc:license rdf:resource="http://creativecommons.org/licenses/by-sa/4.0/"/></cc:Work></rdf:RDF></metadata>'
        f"{RED}</svg>",
        # W3C test-suite style: an XHTML description with links, an editor's namespace
        f'<svg {SVG_NS} {XLINK} width="99" height="99" xmlns:d="http://www.w3.org/2000/02/svg/testsuite/description/">'
        '<d:SVGTestCase><d:testDescription xmlns="http://www.w3.org/1999/xhtml" '
        'href="http://www.w3.org/TR/SVG11/shapes.html#RectElement"><p>See <a href="http://w3.org/">spec</a>.</p>'
        "</d:testDescription></d:SVGTestCase><title>t</title>"
        f'<desc><a xlink:href="http://example.com/about">about</a></desc>{RED}</svg>',
        f'<svg {SVG_NS} width="99" height="99" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        'inkscape:export-filename="/home/user/drawing.png"><inkscape:perspective href="http://x.org/p"/>'
        f"{RED}</svg>",
        f'<svg {SVG_NS} width="99" height="99"><style>@namespace url(http://www.w3.org/2000/svg);'
        f" rect {{ stroke: blue }}</style>{RED}</svg>",
    ],
    ids=[
        "xlink-hyperlink",
        "href-hyperlink",
        "link-in-text",
        "public-doctype",
        "bare-doctype",
        "system-doctype-not-loaded",
        "rdf-metadata",
        "xhtml-description",
        "editor-namespace",
        "css-namespace",
    ],
)
def test_svg_links_and_doctype_headers_render(svg):
    """What no renderer ever fetches (hyperlinks, metadata, public DOCTYPEs) does not refuse
    the picture."""
    r = render_svg(svg)
    assert r.status == "ok", r
    assert png_pixels(r).getpixel((10, 10)) == (255, 0, 0)


@pytest.mark.parametrize(
    "svg",
    [
        # an image hidden in <metadata>, drawn through <use>: the fetcher still refuses it
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><metadata><image id="i" '
        'xlink:href="http://example.com/x.png" width="9" height="9"/></metadata><use xlink:href="#i"/>'
        f"{RED}</svg>",
        f'{PUBLIC_DOCTYPE[:-1]} [<!ENTITY ns_svg "http://www.w3.org/2000/svg">]>'
        f'<svg xmlns="&ns_svg;" width="99" height="99">{RED}</svg>',
    ],
    ids=["use-of-image-in-metadata", "internal-entity-subset"],
)
def test_svg_loads_stay_forbidden_next_to_links(svg):
    r = render_svg(svg)
    assert r.status == "forbidden", r
    assert r.png is None


@pytest.mark.parametrize(
    "svg",
    [
        f'<svg {SVG_NS} width="99" height="99"><style>@font-face {{ font-family: x; '
        f"src: url(http://example.com/x.woff) }}</style>{RED}</svg>",
        # an SVG font (librsvg's test fixtures: 157 of 1,363 files)
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><defs><font-face font-family="f">'
        '<font-face-src><font-face-uri xlink:href="fonts.svg#f"/></font-face-src></font-face>'
        f"</defs>{RED}</svg>",
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><defs><linearGradient id="g" '
        f'xlink:href="http://example.com/g.svg#a"/></defs>{RED}</svg>',
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><filter id="f"><feImage '
        f'xlink:href="file:///etc/passwd"/></filter>{RED}</svg>',
        f'<svg {SVG_NS} {XLINK} width="99" height="99"><pattern id="p" '
        f'href="https://example.com/p.svg#p"/>{RED}</svg>',
        f'<svg {SVG_NS} width="99" height="99">{RED}'
        '<rect x="60" width="9" height="9" fill="url(http://e.com/g#a) blue"/></svg>',
        f'<svg {SVG_NS} xmlns:xi="http://www.w3.org/2001/XInclude" width="99" height="99">'
        f'<xi:include href="/etc/passwd" parse="text"/>{RED}</svg>',
        f'<svg {SVG_NS} xmlns:xi="http://www.w3.org/2001/XInclude" width="99" height="99">'
        f'<metadata><xi:include href="/etc/passwd" parse="text"/></metadata>{RED}</svg>',
        f'<?xml-stylesheet type="text/css" href="http://example.com/s.css"?>'
        f'<svg {SVG_NS} width="99" height="99">{RED}</svg>',
        f'<svg {SVG_NS} {XLINK} width="99" height="99">{RED}<text y="90">'
        '<textPath xlink:href="other.svg#p">x</textPath></text></svg>',
    ],
    ids=[
        "font-face-url",
        "font-face-uri",
        "gradient-template",
        "feimage",
        "pattern-template",
        "paint-url",
        "xinclude",
        "xinclude-in-metadata",
        "xml-stylesheet",
        "textpath-other-file",
    ],
)
def test_svg_references_cairosvg_never_loads_render(svg):
    """cairosvg reads only the fragment of these, or ignores the element: nothing is fetched
    (the fetcher would refuse it), and the picture renders as plain cairosvg draws it."""
    r = render_svg(svg)
    assert r.status == "ok", r
    assert png_pixels(r).getpixel((10, 10)) == (255, 0, 0)


def test_svg_embedded_data_image_ok_but_bomb_too_large():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buf, "PNG")
    ok = f'<svg {SVG_NS} width="99" height="99"><image href="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" width="90" height="90"/></svg>'
    assert render_svg(ok).status == "ok"

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    svg = f'<svg {SVG_NS} width="99" height="99"><image href="data:image/png;base64,{base64.b64encode(bomb).decode()}" width="9" height="9"/></svg>'
    assert render_svg(svg).status == "too_large"


def test_svg_through_the_pool(pool):
    r = pool.render(SIMPLE_SVG, "svg")
    assert (r.status, r.width, r.height) == ("ok", 448, 224)
    assert pool.render(BILLION_LAUGHS, "svg").status == "forbidden"


# ------------------------------------------------------------------ Python


# Exponential <use> expansion: 2**39 rectangles, far past any deadline.
USE_BOMB = (
    f'<svg {SVG_NS} width="200" height="100"><defs><g id="a0"><rect width="1" height="1"/></g>'
    + "".join(
        f'<g id="a{k}"><use href="#a{k - 1}"/><use href="#a{k - 1}" x="1"/></g>'
        for k in range(1, 40)
    )
    + '</defs><use href="#a39"/></svg>'
)


def sized_svg(width: int) -> str:
    """An ok document whose output size tells which one it was."""
    return SIMPLE_SVG.replace('width="200"', f'width="{width}"')


def svg_processes(pool) -> dict[int, float]:
    """pid -> CPU seconds of the processes the pool's workers forked."""
    workers = set(pool.worker_pids())
    out = {}
    for pid, (ppid, _, _) in proc_table().items():
        if ppid in workers:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
    return out


def test_svg_batch_late_document_and_the_rest(pool):
    """SVG documents share one confined process: the late one gets ``timeout``, every other
    its own status and picture, in order, the next ones in a fresh process."""
    docs = [
        (sized_svg(200), "ok", 448),
        (sized_svg(300), "ok", 448),
        (f"<svg {SVG_NS}><rect></svg>", "parse_error", None),
        (USE_BOMB, "timeout", None),
        (sized_svg(400), "ok", 448),
        (BILLION_LAUGHS, "forbidden", None),
        (f'<svg {SVG_NS} width="100" height="100"></svg>', "blank_image", 448),
        (sized_svg(100), "ok", 448),
    ]
    results = [pool.render(code, "svg") for code, _, _ in docs]
    assert [r.status for r in results] == [status for _, status, _ in docs]
    heights = [r.height for r in results if r.status == "ok"]
    # 200x100, 300x100, 400x100, 100x100 fitted in 448x448: the order is kept
    assert heights == [224, 149, 112, 448]
    assert "wall clock" in results[3].error


def test_svg_batch_one_process_for_many_documents(pool):
    pool.render(SIMPLE_SVG, "svg")
    before = set(svg_processes(pool))
    for i in range(20):
        assert pool.render(sized_svg(100 + i), "svg").status == "ok"
    assert set(svg_processes(pool)) == before  # no fork per document


def test_svg_batch_process_killed_mid_document(pool):
    """A process that dies while rendering: that document gets the crash status, the next
    ones render in a fresh process."""
    import threading
    import time

    assert pool.render(SIMPLE_SVG, "svg").ok
    got = {}
    thread = threading.Thread(target=lambda: got.update(r=pool.render(USE_BOMB, "svg")))
    thread.start()
    time.sleep(1.0)
    busy = max(svg_processes(pool).items(), key=lambda kv: kv[1])[0]
    os.kill(busy, signal.SIGKILL)
    thread.join()
    assert got["r"].status in ("memory", "runtime_error"), got["r"]
    assert [pool.render(sized_svg(w), "svg").height for w in (200, 400)] == [224, 112]


def test_svg_batch_through_the_stage_keeps_ids():
    ids = [f"doc{i}" for i in range(10)]
    codes = [sized_svg(100 + 100 * (i % 4)) for i in range(10)]
    codes[3] = USE_BOMB
    codes[6] = "not an svg"
    df = pl.DataFrame({"program_id": ids, "language": ["svg"] * 10, "code": codes})
    out = render_programs(df, FAST, threads=2, progress=False)
    assert out["program_id"].to_list() == ids
    expected = ["ok"] * 10
    expected[3], expected[6] = "timeout", "not_code"
    assert out["status"].to_list() == expected
    heights = {100: 448, 200: 224, 300: 149, 400: 112}
    for i, row in enumerate(out.iter_rows(named=True)):
        if expected[i] == "ok":
            assert row["height"] == heights[100 + 100 * (i % 4)], (i, row["height"])


def test_python_bar_chart_ok(pool):
    r = pool.render(BAR_CHART)
    assert (r.status, r.error) == ("ok", None)
    assert (r.width, r.height) == (400, 300)  # 4x3 in at dpi 100
    img = png_pixels(r)
    assert (0, 0, 128) in {c for _, c in img.getcolors(1 << 20)}  # navy bars drawn


def test_python_saved_then_closed_figure_is_used(pool):
    code = BAR_CHART + "plt.savefig('chart.png')\nplt.close()\n"
    assert pool.render(code).status == "ok"


def test_python_transparent_figure_on_white(pool):
    code = BAR_CHART + "fig.patch.set_alpha(0)\nax.patch.set_alpha(0)\n"
    img = png_pixels(pool.render(code))
    assert img.getpixel((1, 1)) == (255, 255, 255)


HOSTILE = {
    # name: (code, status)
    "infinite-loop": ("while True:\n    pass\n", "timeout"),
    "sleep": ("import time\ntime.sleep(60)\n", "timeout"),
    "memory-bomb": ("x = bytearray(10**11)\n", "memory"),
    "memory-growth": (
        "import numpy as np\nxs = [np.empty(2**27, np.uint8) for _ in range(1000)]\n",
        "memory",
    ),
    "fork-bomb": ("import os\nwhile True:\n    os.fork()\n", "forbidden"),
    "multiprocessing": (
        "import multiprocessing as mp\np = mp.Process(target=print)\np.start()\n",
        "forbidden",
    ),
    "huge-file": (
        "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (64 * 2**20))\n",
        "too_large",
    ),
    "socket": ("import socket\ns = socket.socket()\ns.connect(('1.1.1.1', 80))\n", "forbidden"),
    "dns": ("import socket\nsocket.getaddrinfo('example.com', 80)\n", "forbidden"),
    "urllib": (
        "import urllib.request\nurllib.request.urlopen('http://example.com')\n",
        "forbidden",
    ),
    "os-system": ("import os\nos.system('sh -c \"echo pwned > /tmp/pwned\"')\n", "forbidden"),
    "subprocess": ("import subprocess\nsubprocess.run(['/bin/sh', '-c', 'true'])\n", "forbidden"),
    "exec-shell": ("import os\nos.execv('/bin/sh', ['sh'])\n", "forbidden"),
    "kill-parent": ("import os\nos.kill(os.getppid(), 9)\n", "forbidden"),
    "killpg": ("import os\nos.killpg(os.getpgid(os.getppid()), 9)\n", "forbidden"),
    "signal-handler": (
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\n",
        "forbidden",
    ),
    "signal-alarm": ("import signal\nsignal.alarm(0)\n", "forbidden"),
    "setsid": ("import os\nos.setsid()\n", "forbidden"),
    "ctypes-crash": ("import ctypes\nctypes.string_at(0)\n", "forbidden"),
    "interpreter-crash": ("import faulthandler\nfaulthandler._sigsegv()\n", "runtime_error"),
    "rlimit": ("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\n", "forbidden"),
    "swallowed": (
        "try:\n    import socket\n    socket.socket()\nexcept Exception:\n    pass\n" + BAR_CHART,
        "forbidden",
    ),
    "syntax-error": ("import matplotlib.pyplot as plt\nplt.plot([1, 2)\n", "parse_error"),
    "exception": ("import matplotlib.pyplot as plt\nplt.plot(undefined_name)\n", "runtime_error"),
    "no-figure": ("x = 1 + 1\n", "blank_image"),
    "flat-figure": ("import matplotlib.pyplot as plt\nplt.figure()\n", "blank_image"),
    "huge-figure": (
        "import matplotlib.pyplot as plt\nplt.figure(figsize=(1000, 1000), dpi=1000)\nplt.plot([1, 2])\n",
        "too_large",
    ),
    "svg-as-python": (SIMPLE_SVG, "not_code"),
    "garbage": ("\x00\x01\x02\xff garbage \x89PNG", "not_code"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_python_hostile(pool, name):
    code, status = HOSTILE[name]
    workers_before = pool.worker_pids()
    r = pool.render(code)
    assert r.status == status, r
    assert r.png is None
    # The host survived, and so did the warm worker (the program ran in a forked child).
    assert pool.worker_pids() == workers_before
    assert pool.render(BAR_CHART).status == "ok"
    assert not os.path.exists("/tmp/pwned")


def test_huge_figure_and_crash_errors_say_why(pool):
    assert "max_figure_inches" in pool.render(HOSTILE["huge-figure"][0]).error
    assert "SIGSEGV" in pool.render(HOSTILE["interpreter-crash"][0]).error
    assert pool.render(HOSTILE["exception"][0]).error.startswith("NameError: ")


def test_writes_outside_private_dir_forbidden(pool, tmp_path):
    target = tmp_path / "evil.txt"
    for code in (
        f"open({str(target)!r}, 'w').write('x')\n",
        f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)\n",
        f"import os\nos.chdir('/')\nopen({str(target)!r}[1:], 'w')\n",
        f"import pathlib\npathlib.Path({str(tmp_path)!r}).rmdir()\n",
        "import os\nos.symlink('/etc', 'etc')\n",
    ):
        assert pool.render(code).status == "forbidden", code
    assert not target.exists() and tmp_path.is_dir()
    # inside its own directory, writing is fine
    assert pool.render("open('ok.txt', 'w').write('x')\n" + BAR_CHART).status == "ok"


def test_a_caught_violation_cannot_be_undone(pool, tmp_path):
    """A program that catches the denial and reaches the audit state through the traceback
    (to clear the violation and widen its roots) gets no further than the denial itself."""
    target = tmp_path / "escaped.txt"
    code = (
        "try:\n"
        "    import socket\n"
        "    socket.socket()\n"
        "except BaseException as exc:\n"
        "    tb = exc.__traceback__\n"
        "    while tb is not None:\n"
        "        state = tb.tb_frame.f_locals.get('self')\n"
        "        if hasattr(state, 'violation'):\n"
        "            state.violation = None\n"
        "            state.private_dir = '/'\n"
        "            state.read_roots = ('/',)\n"
        "        tb = tb.tb_next\n"
        f"open({str(target)!r}, 'w').write('escaped')\n" + BAR_CHART
    )
    result = pool.render(code)
    assert result.status == "forbidden" and "socket" in result.error
    assert not target.exists()


def test_frames_reach_no_write_outside_the_private_dir(pool, tmp_path):
    """Python-level state is reachable from the program's frames (sys._getframe); the kernel's
    Landlock rules still refuse any write outside the private directory."""
    if not pool.info.get("landlock"):
        pytest.skip("the kernel has no Landlock")
    target = tmp_path / "escaped.txt"
    code = (
        "import sys\n"
        "frame = sys._getframe()\n"
        "while frame is not None:\n"
        "    for value in list(frame.f_locals.values()):\n"
        "        if type(value).__name__ == 'AuditState':\n"
        "            value.private_dir = '/'\n"
        "            value.read_roots = ('/',)\n"
        "    frame = frame.f_back\n"
        f"open({str(target)!r}, 'w').write('escaped')\n" + BAR_CHART
    )
    result = pool.render(code)
    assert result.status == "runtime_error" and "Permission denied" in result.error
    assert not target.exists()


def test_private_dirs_are_removed(pool):
    pool.render("open('left.txt', 'w').write('x' * 1000)\n" + BAR_CHART)
    pool.render(BAR_CHART)
    pool.render(BAR_CHART)
    left = sorted(os.listdir(pool.root))
    # mplconfig, at most the last program's folder (removed while the worker is idle), the
    # empty folder of the process forked for the next request and, once the pool has rendered
    # SVG, the SVG batch process's (empty) folder; the writer's folder is gone
    assert left[0] == "mplconfig" and len(left) <= 4, left
    for folder in left[1:]:
        try:
            assert "left.txt" not in os.listdir(os.path.join(pool.root, folder))
        except FileNotFoundError:  # reaped meanwhile
            pass


def test_environment_secrets_invisible(pool):
    assert os.environ["HF_TOKEN"] == "secret123"
    code = (
        "import os\n"
        "leaked = [k for k, v in os.environ.items() if 'secret123' in v or 'TOKEN' in k]\n"
        "assert not leaked, leaked\n"
        "assert set(os.environ) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'MPLCONFIGDIR',\n"
        "    'MPLBACKEND', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'}, set(os.environ)\n"
        + BAR_CHART
    )
    r = pool.render(code)
    assert r.status == "ok", r
    # nor through the host's /proc entry
    r = pool.render(f"print(open('/proc/{os.getpid()}/environ').read())\n")
    assert r.status == "forbidden"


def test_worker_replaced_after_timeout_and_after_death(pool):
    assert pool.render("while True:\n    pass\n").status == "timeout"
    assert pool.render(BAR_CHART).status == "ok"
    (pid,) = pool.worker_pids()
    restarts = pool.restarts
    os.killpg(pid, signal.SIGKILL)  # the warm worker itself dies
    r = pool.render(BAR_CHART)
    assert r.status in ("ok", "runtime_error")  # the request in flight may be lost
    assert pool.render(BAR_CHART).status == "ok"
    assert pool.worker_pids() != [pid] and pool.restarts == restarts + 1


@pytest.mark.skipif(os.uname().machine not in ("x86_64", "aarch64"), reason="seccomp filter")
def test_seccomp_blocks_fork_even_without_the_audit_hook():
    from evovlm.sandbox.jail import install_seccomp
    from evovlm.sandbox.worker import _libc

    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            if install_seccomp(_libc()):
                code = 4
                try:
                    os.posix_spawn("/bin/true", ["true"], {})
                except PermissionError:
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WEXITSTATUS(status) == 3:
        pytest.skip("seccomp not available here")
    assert os.WEXITSTATUS(status) == 0


# ------------------------------------------------------------------ stage, CLI, leftovers


def mixed_frame(n: int) -> pl.DataFrame:
    rows = []
    for i in range(n):
        kind = i % 10
        if kind in (0, 1, 2, 3, 4):
            code, lang = SIMPLE_SVG.replace('x="10"', f'x="{10 + i % 50}"'), "svg"
        elif kind == 5:
            code, lang = f"x = {i}\n", "python"
        elif kind == 6:
            code, lang = "import os\nos.kill(os.getppid(), 9)\n", "python"
        elif kind == 7:
            code, lang = None, "python"
        elif kind == 8:
            code, lang = "not an svg", "svg"
        else:
            code, lang = "import os\nos.fork()\n", "python"
        rows.append({"program_id": f"p{i:05d}", "language": lang, "code": code})
    return pl.DataFrame(
        rows, schema={"program_id": pl.String, "language": pl.String, "code": pl.String}
    )


def test_cli_round_trip(tmp_path):
    df = mixed_frame(20)
    df = pl.concat(
        [
            df,
            pl.DataFrame(
                {
                    "program_id": ["bar", "loop", "weird"],
                    "language": ["python", "python", "cobol"],
                    "code": [BAR_CHART, "while True: pass", "x"],
                }
            ),
        ]
    )
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    df.write_parquet(src)
    config = tmp_path / "config.yaml"
    config.write_text("render:\n  timeout_s: 3\n  cpu_seconds: 2\n")
    assert (
        main([str(src), str(out), "--config", str(config), "--threads", "2", "--no-progress"]) == 0
    )
    table = pq.read_table(out)
    assert table.schema.equals(RENDERS_SCHEMA)
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"
    res = pl.from_arrow(table)
    assert res["program_id"].to_list() == df["program_id"].to_list()
    status = dict(zip(res["program_id"], res["status"], strict=True))
    assert status["bar"] == "ok" and status["loop"] == "timeout" and status["weird"] == "not_code"
    assert status["p00007"] == "empty" and status["p00006"] == "forbidden"
    for row in res.iter_rows(named=True):
        assert row["status"] in RENDER_STATUSES
        if row["status"] == "ok":
            assert row["image"]["path"] is None
            assert Image.open(io.BytesIO(row["image"]["bytes"])).size == (
                row["width"],
                row["height"],
            )
        else:
            assert row["image"] is None and row["width"] is None
    assert not list(tmp_path.glob(".out.parquet.*"))  # atomic write left no temp file

    config.write_text("render:\n  timeout: 3\n")
    assert main([str(src), str(tmp_path / "x.parquet"), "--config", str(config)]) == 2


def test_thousand_programs_leave_nothing_behind():
    df = mixed_frame(1000)
    sessions: set[int] = set()
    with RenderPool(FAST, workers=2) as p:
        results = []
        for row in df.iter_rows(named=True):
            results.append(p.render(row["code"], row["language"]).status)
            sessions.update(p.worker_pids())
        assert sandbox_leftovers(sessions)  # the workers are alive while the pool is open
        root = p.root
    assert results.count("ok") == 500 and results.count("forbidden") == 200
    assert sandbox_leftovers(sessions) == []
    assert not os.path.exists(root)
    # the stage function too
    out = render_programs(df.head(30), FAST, threads=2, progress=False)
    assert out.height == 30 and out["program_id"].to_list() == df.head(30)["program_id"].to_list()
