"""A small on-disk cache of named NumPy arrays for training runs.

Per-image features and scores derived from the research-only databases must never be committed,
so they are cached outside the repository: ``$FACELIVE_CACHE`` or ``~/.cache/facelive``. Each
entry is one ``.npz`` file named by the caller's key (which should hash everything the arrays
depend on), written atomically (a temporary file of the writer's own, then an atomic rename, so
concurrent writers of one key never see or leave a half-written file) and read without pickle.
(The module is not named ``diskcache``: that is a PyPI package of its own.)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """The cache folder: ``$FACELIVE_CACHE``, else ``~/.cache/facelive``."""
    return Path(os.environ.get("FACELIVE_CACHE", Path.home() / ".cache" / "facelive"))


def digest(parts: Iterable[bytes | str], length: int = 16) -> str:
    """A short SHA-256 hex digest of ``parts`` (strings are UTF-8 encoded)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()[:length]


def cached_arrays(name: str, compute: Callable[[], dict[str, np.ndarray]], *,
                  use_cache: bool = True) -> dict[str, np.ndarray]:
    """The arrays stored under ``name``, or ``compute()``'s result, stored for next time.

    Parameters
    ----------
    name : str
        The entry's key (a file name: it should hash everything the arrays depend on).
    compute : callable
        Returns the arrays when the entry is missing (or ``use_cache`` is false).
    use_cache : bool
        Read and write the cache (false: always compute, store nothing).

    Returns
    -------
    dict of str to ndarray
    """
    path = cache_dir() / f"{name}.npz"
    if use_cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays = compute()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return arrays
