"""A small on-disk cache of named NumPy arrays for training runs.

Per-image features and scores derived from the research-only databases must never be committed,
so they are cached outside the repository: ``$FACELIVE_CACHE`` or ``~/.cache/facelive``. Each
entry is one ``.npz`` file named by the caller's key (which should hash everything the arrays
depend on), written atomically and read without pickle.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    return Path(os.environ.get("FACELIVE_CACHE", Path.home() / ".cache" / "facelive"))


def digest(parts: Iterable[bytes | str], length: int = 16) -> str:
    """A short SHA-256 hex digest of ``parts`` (strings are UTF-8 encoded)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()[:length]


def cached_arrays(name: str, compute: Callable[[], dict[str, np.ndarray]], *,
                  use_cache: bool = True) -> dict[str, np.ndarray]:
    """The arrays stored under ``name``, or ``compute()``'s result, stored for next time."""
    path = cache_dir() / f"{name}.npz"
    if use_cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays = compute()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return arrays
