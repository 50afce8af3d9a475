"""Real SVG files through the sandbox against plain cairosvg: how many render, why the rest not.

    python bench/svg_files.py FOLDER [FOLDER ...] [--workers 2] [--no-plain]

Every ``*.svg`` under the folders (recursively) goes through the sandbox pool
(``evovlm.render.RenderPool``, the default render config) and, unless ``--no-plain``, through
plain ``cairosvg.svg2png`` (its default, safe URL fetcher; one process per worker, 20 s and
2 GiB per file). Prints the file count, each side's ok count, the sandbox's statuses and the
most common reasons it refused files (status ``forbidden``).

Real files found offline: librsvg's test fixtures (``apt-get download librsvg2-tests``, then
``dpkg-deb -x``: /usr/libexec/installed-tests/RSVG/fixtures), the Adwaita icon theme
(/usr/share/icons/Adwaita) and matplotlib's mpl-data/images.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evovlm.render import RenderConfig, RenderPool


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _plain_cairosvg(data: bytes) -> bool:
    import cairosvg

    try:
        png = cairosvg.svg2png(bytestring=data, output_width=448)
    except Exception:  # noqa: BLE001 - counted as not ok
        return False
    return bool(png) and png.startswith(b"\x89PNG")


def plain_ok(files: list[Path], workers: int, timeout_s: float = 20.0) -> int:
    """Files plain cairosvg renders; a pool is replaced after a file that hangs."""
    ok, todo = 0, list(files)
    while todo:
        with mp.get_context("fork").Pool(workers, initializer=_limit_memory) as pool:
            pending = [(f, pool.apply_async(_plain_cairosvg, (f.read_bytes(),))) for f in todo]
            todo = []
            for i, (_f, job) in enumerate(pending):
                try:
                    ok += bool(job.get(timeout_s))
                except mp.TimeoutError:
                    # the rest is resubmitted to a fresh pool, without the file that hung
                    todo = [g for g, _ in pending[i + 1 :]]
                    pool.terminate()
                    break
                except Exception:  # noqa: BLE001 - a worker killed by the memory limit
                    continue
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-plain", action="store_true", help="skip plain cairosvg")
    args = ap.parse_args()
    files = sorted(f for folder in args.folders for f in folder.rglob("*.svg") if f.is_file())
    codes = [f.read_bytes().decode("utf-8", "replace") for f in files]

    start = time.perf_counter()
    with RenderPool(RenderConfig(), workers=args.workers) as pool:
        with ThreadPoolExecutor(args.workers) as ex:
            results = list(ex.map(lambda code: pool.render(code, "svg"), codes))
    sandbox_s = time.perf_counter() - start
    status = Counter(r.status for r in results)
    print(f"{len(files)} SVG files under {', '.join(map(str, args.folders))}")
    print(f"sandbox: {status['ok']} ok in {sandbox_s:.1f} s; statuses {dict(status.most_common())}")
    reasons = Counter(
        re.sub(r"'[^']*'", "'...'", r.error or "") for r in results if r.status == "forbidden"
    )
    for reason, n in reasons.most_common(8):
        print(f"  forbidden {n:4d}: {reason}")
    if not args.no_plain:
        start = time.perf_counter()
        n = plain_ok(files, args.workers)
        print(f"plain cairosvg: {n} ok in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
