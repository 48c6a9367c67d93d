"""Process-wide settings, applied only by the entry points (the CLI and the server) or on request.

Library code never changes process-wide state on import or on first call: an application that
embeds facelive calls :func:`tune_process` itself if it wants the same tuning as ``facelive``.
What each setting buys is measured in ``docs/quality-measures.md`` (Speed) and in the pipeline's
benchmark (``benchmarks/bench_pipeline.py``).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import sys
import threading

__all__ = ["filter_native_stderr", "limit_library_threads", "quiet_native_logs",
           "release_free_memory", "tune_allocator", "tune_process"]

_TUNE_LOCK = threading.Lock()
_TUNED: bool | None = None
MMAP_THRESHOLD = 32 << 20
"""glibc's largest M_MMAP_THRESHOLD (64-bit): every image-sized buffer comes from the heap."""
TRIM_THRESHOLD = 64 << 20
"""Free heap memory kept by the process (instead of being returned to the kernel)."""


def tune_allocator() -> bool:
    """Make glibc reuse freed image-sized buffers instead of mapping fresh pages (process-wide).

    The measures allocate ~40 temporary 0.6 MB float64 arrays per 320x240 frame; by default glibc
    serves each from a fresh ``mmap`` (or returns the heap top to the kernel), so every call pays
    thousands of page faults (about 13 ms of system time per frame on the development VM).
    ``mallopt(M_MMAP_THRESHOLD, 32 MiB)`` and ``mallopt(M_TRIM_THRESHOLD, 64 MiB)`` keep them in
    the heap. Values are unchanged. Opt-in (:func:`tune_process` does it for the CLI and the
    server); a no-op returning False where glibc's ``mallopt`` is missing, or when the
    environment variable ``FACELIVE_MALLOC_TUNING`` is ``0``.
    """
    global _TUNED
    with _TUNE_LOCK:
        if _TUNED is None:
            _TUNED = False
            if os.environ.get("FACELIVE_MALLOC_TUNING", "1") != "0" and sys.platform == "linux":
                try:
                    mallopt = ctypes.CDLL(None).mallopt
                except (OSError, AttributeError):
                    return False
                mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                mallopt.restype = ctypes.c_int
                m_trim_threshold, m_mmap_threshold = -1, -3  # glibc <malloc.h>
                _TUNED = (mallopt(m_mmap_threshold, MMAP_THRESHOLD) == 1
                          and mallopt(m_trim_threshold, TRIM_THRESHOLD) == 1)
        return _TUNED


def release_free_memory() -> bool:
    """Give the kernel back the free memory of every glibc heap (``malloc_trim(0)``).

    A server process frees request bodies of several MB from many threads; glibc keeps the freed
    pages in its per-thread heaps (arenas), so the resident memory stays at the peak of a burst of
    uploads long after it. ``malloc_trim`` returns the whole free pages of every arena (glibc
    2.8+). Costs a walk of the heaps (milliseconds); returns whether memory was released, False
    where glibc's ``malloc_trim`` is missing.
    """
    if sys.platform != "linux":
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return bool(trim(0))


_THREADS_LIMITED = False


def limit_library_threads() -> None:
    """Make BLAS (threadpoolctl) and OpenCV single-threaded, process-wide.

    The pipeline runs its tests in parallel, one thread per core; library thread pools on top of
    that only compete for the cores (OpenBLAS workers busy-wait): 62 ms per frame instead of 46 ms
    on the 2-core development VM (``benchmarks/bench_pipeline.py``).
    """
    global _THREADS_LIMITED
    if _THREADS_LIMITED:
        return
    import cv2
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    cv2.setNumThreads(1)
    _THREADS_LIMITED = True


def quiet_native_logs() -> None:
    """Turn down the C++ start-up chatter of MediaPipe/TFLite/absl (errors still show).

    Sets ``GLOG_minloglevel`` and ``TF_CPP_MIN_LOG_LEVEL`` (unless already set) and, when
    ``absl.logging`` is imported, absl's Python verbosity; must run before MediaPipe is imported
    to take full effect.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # absl's Python logging only where it is loaded already: facelive's MediaPipe modules do not
    # use it (facelive.face.detection defers the package parts that do), and importing it
    # costs ~30 ms of start-up (benchmarks/bench_pipeline.py, load rows)
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:
        absl_logging.set_verbosity(absl_logging.ERROR)


NATIVE_NOISE = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+ +\d+ [^\]]+\] "  # absl/glog INFO and WARNING lines
    r"|INFO: Created TensorFlow Lite XNNPACK delegate"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
"""Lines that MediaPipe's C++ code (absl, glog, TFLite) writes to the process's stderr while it
loads and runs its graphs, whatever ``GLOG_minloglevel`` says. Errors (``E...``/``F...``) pass."""

_FILTER_LOCK = threading.Lock()
_FILTERING = False


def filter_native_stderr(noise: re.Pattern[str] = NATIVE_NOISE) -> bool:
    """Drop the native libraries' informational stderr lines; everything else still shows.

    File descriptor 2 (where C++ code writes) becomes a pipe read by a thread that forwards
    every line not matching ``noise`` to the real stderr; Python's ``sys.stderr`` writes to the
    real stderr directly, so no Python message waits on that thread. Process-wide, so only an
    entry point calls it (``facelive`` without ``--verbose``). Returns False where it cannot.
    """
    global _FILTERING
    with _FILTER_LOCK:
        if _FILTERING:
            return True
        try:
            sys.stderr.flush()
            real = os.dup(2)
            read_end, write_end = os.pipe()
            os.dup2(write_end, 2)
            os.close(write_end)
        except (OSError, ValueError, AttributeError):
            return False
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        sys.stderr = open(real, "w", buffering=1, encoding=encoding,  # noqa: SIM115
                          errors="backslashreplace", closefd=False)

        def forward() -> None:
            with open(read_end, "rb") as pipe:
                for line in pipe:
                    if not noise.match(line.decode("utf-8", "replace")):
                        os.write(real, line)

        thread = threading.Thread(target=forward, name="facelive-stderr-filter", daemon=True)
        thread.start()

        def restore() -> None:  # at exit: give the native side's last lines to the thread
            try:
                os.dup2(real, 2)  # closes the pipe's last write end: the reader sees EOF
            except OSError:
                return
            thread.join(timeout=1.0)

        atexit.register(restore)
        _FILTERING = True
        return True


def tune_process(*, threads: bool = True, allocator: bool = True, quiet: bool = True,
                 filter_stderr: bool = True) -> None:
    """Everything the ``facelive`` entry points apply before loading models: single-threaded
    libraries, the allocator setting, and (``quiet``) the native libraries' chatter turned down
    and (``filter_stderr``) filtered out of file descriptor 2."""
    if quiet:
        quiet_native_logs()
        if filter_stderr:
            filter_native_stderr()
    if threads:
        limit_library_threads()
    if allocator:
        tune_allocator()
