"""Keeping freed memory in the process, so that a new tensor does not page-fault its way in (docs/design.md §23).

glibc's ``malloc`` serves a large block (above its mmap threshold, at most 32 MiB) with fresh
pages from the kernel and hands them back when the block is freed, and shrinks the heap's top
past its trim threshold. A CPU tensor freed and made again, step after step, then costs the
kernel's zero-filled pages every time: MiniLM's word embedding alone is 47 MB, and Adam makes
several temporaries its size at every step. ``keep_freed_memory`` raises both thresholds, so a
freed block serves the next tensor. Numbers are unchanged; the process's resident memory stays
near its peak instead of falling back between steps. ``LENS_RELEARN_KEEP_FREED_MEMORY=0`` in the
environment leaves glibc's defaults.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
LARGEST = 2**31 - 1  # mallopt takes an int
OPT_OUT = "LENS_RELEARN_KEEP_FREED_MEMORY"


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once; elsewhere than glibc, or with
    ``LENS_RELEARN_KEEP_FREED_MEMORY=0``, nothing).

    Returns:
        Whether the thresholds were raised.

    Example:
        >>> keep_freed_memory() == (platform.libc_ver()[0] == "glibc" and os.environ.get(OPT_OUT) != "0")
        True
    """
    if platform.libc_ver()[0] != "glibc" or os.environ.get(OPT_OUT) == "0":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(libc.mallopt(M_TRIM_THRESHOLD, LARGEST))
