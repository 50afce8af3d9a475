"""Copy-on-write pages, copied ahead of time.

A program's process is forked from the warm worker, so it shares the worker's memory page by
page until it writes to one: a render of a typical matplotlib chart then takes ~3,600 page
faults (reference counts of shared objects, allocator pools), about a quarter of its time.
Those are the same pages from one program to the next. So the worker renders a few typical
charts once in a probe process (its own code, no program's) and reads from
``/proc/self/pagemap`` which of its private pages that process then owned alone
(:func:`exclusive_ranges`). Every later program process, forked ahead and idle while the
previous program runs, copies those pages before its request arrives (:func:`populate`, with
``madvise(MADV_POPULATE_WRITE)``: the kernel takes the write faults, contents unchanged).

Nothing depends on it: where pagemap has no "exclusively mapped" bit (Linux < 4.2) the list is
empty, and where ``MADV_POPULATE_WRITE`` is unknown (Linux < 5.14) :func:`populate` stops at the
first refusal; the program then takes its faults itself, as before.
"""

from __future__ import annotations

import ctypes
import os
import struct

PAGE = os.sysconf("SC_PAGE_SIZE")
MADV_POPULATE_WRITE = 23
_PRESENT, _EXCLUSIVE = 1 << 63, 1 << 56


def exclusive_ranges() -> list[tuple[int, int]]:
    """``(address, length)`` of every present page of a private writable mapping that this
    process maps alone, in runs of consecutive pages; [] where pagemap cannot tell."""
    ranges: list[tuple[int, int]] = []
    try:
        with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
            for line in maps:
                fields = line.split()
                perms = fields[1]
                if not perms.startswith("rw") or perms[3] != "p":
                    continue
                if len(fields) > 5 and fields[5] in ("[vvar]", "[vdso]", "[vsyscall]"):
                    continue
                low, high = (int(x, 16) for x in fields[0].split("-"))
                pages = (high - low) // PAGE
                pagemap.seek(low // PAGE * 8)
                entries = pagemap.read(pages * 8)
                start = None
                for i, (entry,) in enumerate(struct.iter_unpack("<Q", entries)):
                    owned = entry & _PRESENT and entry & _EXCLUSIVE
                    if owned and start is None:
                        start = i
                    elif not owned and start is not None:
                        ranges.append((low + start * PAGE, (i - start) * PAGE))
                        start = None
                if start is not None:
                    ranges.append((low + start * PAGE, (pages - start) * PAGE))
    except (OSError, ValueError, struct.error):
        return []
    return ranges


def populate(libc, ranges: list[tuple[int, int]]) -> int:
    """Write-fault ``ranges`` in (copy them from the parent) without changing a byte; ranges no
    longer mapped are skipped. Returns the pages populated (0 when the kernel cannot)."""
    if libc is None or not ranges:
        return 0
    madvise = libc.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    done = 0
    for address, length in ranges:
        if madvise(address, length, MADV_POPULATE_WRITE) == 0:
            done += length
        elif ctypes.get_errno() == 22:  # EINVAL: no MADV_POPULATE_WRITE in this kernel
            return done // PAGE
    return done // PAGE
