"""Keep freed memory in the training process instead of handing it back to the OS and faulting it in again.

glibc's malloc serves a block above its mmap threshold (128 KiB at first, raised as such blocks are freed, up to
32 MiB) with a fresh ``mmap`` and unmaps it on ``free``; it also trims the heap's free top back to the OS. A training
step allocates and frees the same large activations every step, so each step page-faulted them in again: 3,500-4,800
minor faults per step of a 24-member laptop GAN group on one thread (52-67 ms a step, 42-48 ms without them; fig4b at
paper widths 244-261 ms against 217-225 ms; ``benchmarks/README.md``, "Freed memory stays in the process"). Numbers
are unchanged: only where the blocks come from changes (``tests/test_allocator.py``).

In a thread other than the process's main one (a Ray Tune trial's), malloc uses an arena of its own whose heaps are
unmapped when they empty, whatever the thresholds; ``TRAINING_PROCESS_ENV`` (set where a training process starts, such
as a Ray worker) makes every thread use the main arena, whose freed memory the thresholds then keep.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

KEEP_BELOW_BYTES = 1 << 30  # blocks up to this size come from (and return to) the heap, never from mmap
FALLBACK_THRESHOLD = 32 << 20  # the largest mmap threshold some glibc versions accept (their HEAP_MAX_SIZE / 2)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
TRAINING_PROCESS_ENV = {"MALLOC_ARENA_MAX": "1"}  # for a process whose training runs outside its main thread


def glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (with ``mallopt``), else None (macOS, musl)."""
    path = ctypes.util.find_library("c")
    libc = ctypes.CDLL(path) if path else None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks of up to ``KEEP_BELOW_BYTES`` in this process (once per process; process-wide).
    Returns whether it applied: False where the C library has no ``mallopt`` (macOS) or refuses it."""
    libc = glibc()
    if libc is None:
        return False
    threshold = KEEP_BELOW_BYTES
    if not libc.mallopt(M_MMAP_THRESHOLD, threshold):
        threshold = FALLBACK_THRESHOLD
        if not libc.mallopt(M_MMAP_THRESHOLD, threshold):
            return False
    # The trim threshold is set after the mmap threshold: setting it alone freezes the mmap threshold at 128 KiB.
    return bool(libc.mallopt(M_TRIM_THRESHOLD, threshold))
