"""Pages copied ahead (evovlm.sandbox.prefault): a program's process takes the copy-on-write
faults of a typical render before its program runs, and the render is unchanged."""

from __future__ import annotations

import os
import resource
import struct
import sys

import pytest

from evovlm.render import RenderConfig, RenderPool
from evovlm.sandbox.jail import run_python, warm_up
from evovlm.sandbox.prefault import populate
from evovlm.sandbox.worker import _libc, _probe_pages

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pagemap and madvise are Linux")

CHART = (
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(4, 3))\n"
    "ax.bar(['p', 'q', 'r'], [5, 1, 8], color='darkorange')\n"
    "ax.set_title('Another chart')\n"
)


def _render_in_child(cfg: RenderConfig, ranges) -> tuple[int, int, bytes]:
    """Fork, populate ``ranges`` (or not), render CHART: (pages populated, minor faults taken
    by the render itself, PNG)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            done = populate(_libc(), ranges) if ranges else 0
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            result = run_python(CHART, cfg, None)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            png = result.png or b""
            os.write(write_fd, struct.pack("<QQ", done, faults) + png)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 1 << 20):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    data = b"".join(chunks)
    done, faults = struct.unpack("<QQ", data[:16])
    return done, faults, data[16:]


def test_pages_copied_ahead_take_the_render_faults_and_change_nothing():
    cfg = RenderConfig()
    warm_up(cfg)
    ranges = _probe_pages(cfg)
    if not ranges:
        pytest.skip("pagemap has no exclusively-mapped bit here")
    plain = _render_in_child(cfg, None)
    ahead = _render_in_child(cfg, ranges)
    if ahead[0] == 0:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE (Linux < 5.14)")
    assert plain[2].startswith(b"\x89PNG") and ahead[2] == plain[2]  # same picture, byte for byte
    assert ahead[1] < plain[1] / 2, (plain[1], ahead[1])  # measured: ~3,600 faults -> ~200


def test_populate_skips_unmapped_ranges():
    assert populate(_libc(), [(0x1000, 4096)]) == 0  # page 1 is never mapped
    assert populate(None, [(0x1000, 4096)]) == 0


def test_pool_reports_pages_copied_ahead_and_renders():
    with RenderPool(RenderConfig(), workers=1) as pool:
        assert pool.info["prefault_pages"] > 0
        result = pool.render(CHART, "python")
    assert result.status == "ok", result
