"""A pathological round of N programs (default 10,000) through the parsers and the render
stage, with peak memory.

    python bench/pathological.py [--n 10000] [--threads 2]

Completions come from :func:`evovlm.sandbox.replay.broken_completions` (megabyte replies,
unclosed tags, nested \\boxed{}, binary junk, invalid UTF-8, 1-pixel and 20,000-pixel pictures,
endless loops, memory hogs, good programs). Prints the status counts, the wall time, and peak
resident memory: of this process, of the largest single worker or program process, and of the
whole process tree (this process, the workers and their programs, sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

from evovlm.render import RenderConfig
from evovlm.sandbox.replay import broken_completions, replay


def _rss_kib(pid: int) -> tuple[int, int] | None:
    """(rss KiB, parent pid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            text = fh.read()
    except OSError:
        return None
    rss = ppid = 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("PPid:"):
            ppid = int(line.split()[1])
    return rss, ppid


def tree_rss_kib(root: int) -> int:
    info = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = _rss_kib(int(entry))
            if got is not None:
                info[int(entry)] = got
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in info:
            continue
        seen.add(pid)
        total += info[pid][0]
        todo.extend(p for p, (_, parent) in info.items() if parent == pid)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    peak = {"tree": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["tree"] = max(peak["tree"], tree_rss_kib(os.getpid()))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    completions = broken_completions(args.n, seed=args.seed)
    generated = time.perf_counter() - start
    text_mib = sum(len(t) for t in completions["text"].to_list()) / 2**20
    cfg = RenderConfig(timeout_s=5.0, cpu_seconds=4, memory_mb=1024)
    out = replay(completions, cfg, threads=args.threads)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()

    assert out.height == args.n and out["status"].null_count() == 0
    print(f"{args.n} completions ({text_mib:.0f} MiB of text, made in {generated:.1f} s), ")
    print(f"{args.threads} render workers, {seconds:.0f} s in all ({args.n / seconds:.1f} per s)")
    counts = out.group_by("status").len().sort("len", descending=True).rows()
    print("statuses: " + ", ".join(f"{s}={n}" for s, n in counts))
    by_kind = out.group_by("kind", "status").len().sort("kind", "status").rows()
    for kind, status, n in by_kind:
        print(f"  {kind:16s} {status:12s} {n:6d}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {own:.0f} MiB, largest worker or program {child:.0f} MiB, ")
    print(f"whole process tree (sampled) {peak['tree'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
