"""Back the zygote's memory with 2 MB pages, so that forking a child and ending it cost less.

``fork()`` copies one page-table entry for each 4 KB page the zygote has written, and
a child's exit drops them again: with torch imported that is about 140 MB, 35,000
entries, some 15 ms of kernel time per submission. Transparent huge pages map the same
memory with one entry per 2 MB. Best effort and Linux only: where THP is disabled or
the kernel lacks ``MADV_COLLAPSE`` (6.1), nothing changes but the speed.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping

MALLOC_TUNABLE = "glibc.malloc.hugetlb=1"
"""Makes glibc's malloc ask for huge pages as its heap grows (glibc 2.35+; ignored before)."""

_HUGE = 1 << 21
_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25


def environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with :data:`MALLOC_TUNABLE` added to ``GLIBC_TUNABLES``, for the zygote's command line."""
    tunables = [item for item in env.get("GLIBC_TUNABLES", "").split(":") if item]
    if not any(item.startswith("glibc.malloc.hugetlb=") for item in tunables):
        tunables.append(MALLOC_TUNABLE)
    return {**env, "GLIBC_TUNABLES": ":".join(tunables)}


def collapse() -> int:
    """Remap this process's private anonymous memory onto huge pages now; returns the bytes collapsed."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        regions = _dense_anonymous_regions()
    except OSError:  # no /proc: leave the memory as it is
        return 0
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    collapsed = 0
    for start, end in regions:
        if madvise(start, end - start, _MADV_HUGEPAGE) == 0 and madvise(start, end - start, _MADV_COLLAPSE) == 0:
            collapsed += end - start
    return collapsed


def _dense_anonymous_regions() -> list[tuple[int, int]]:
    """Writable private anonymous mappings (the heap included), trimmed to whole 2 MB pages, that are at
    least half resident: collapsing fills every 2 MB page, so a sparse mapping would grow."""
    regions = []
    with open("/proc/self/smaps") as smaps:
        region = None
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                name = fields[5] if len(fields) > 5 else ""
                low, high = (int(part, 16) for part in fields[0].split("-"))
                anonymous = fields[1].startswith("rw") and fields[1].endswith("p") and name in ("", "[heap]")
                region = (low, high) if anonymous else None
            elif region is not None and fields[0] == "Rss:":
                low, high = region
                start, end = -(-low // _HUGE) * _HUGE, high // _HUGE * _HUGE
                if end > start and 2 * int(fields[1]) * 1024 >= high - low:
                    regions.append((start, end))
                region = None
    return regions
