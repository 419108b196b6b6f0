"""Keep freed tensor memory in the process: on glibc, large tensors otherwise cost page faults every step."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
TRIM_THRESHOLD = 2**31 - 1  # bytes of free heap glibc keeps before returning memory to the system
_done = False


def reuse_freed_memory() -> bool:
    """Ask glibc to serve every allocation from the heap and to keep freed memory for reuse.

    By default glibc maps each block over 128 kB-32 MB freshly from the kernel and unmaps it on free,
    so every training step zero-fills its (B, N, hidden) activations page by page again: measured on
    the PBMC graph (one thread, busy 2-core machine) 10 s per epoch instead of 3 s. Freed memory now
    stays in the process for the next step (the peak is unchanged). Returns True when applied (Linux
    with glibc), False elsewhere; idempotent.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        applied = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _done = applied
    log.debug("glibc malloc keeps freed memory for reuse: %s", applied)
    return applied
