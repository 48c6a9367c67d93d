"""Process-wide settings of the entry points (``facelive.runtime``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from facelive.runtime import release_free_memory


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim: Linux only")
def test_freed_heap_memory_goes_back_to_the_kernel() -> None:
    # many mid-sized buffers from the heap (below glibc's mmap threshold once it has grown),
    # freed but for the last one, which keeps the heap's top in place
    keep = [np.ones(100_000, np.uint8) for _ in range(2000)]  # ~200 MB in 100 kB blocks
    last = np.ones(100_000, np.uint8)
    del keep
    before = _rss_kib()
    assert release_free_memory() is True
    after = _rss_kib()
    assert before - after > 100_000, (before, after)  # most of the ~195 MiB freed
    del last
