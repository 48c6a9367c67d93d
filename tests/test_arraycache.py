"""The on-disk array cache: a miss computes and stores, a hit reads back, writes are atomic."""

from __future__ import annotations

import threading

import numpy as np

from facelive.arraycache import cache_dir, cached_arrays, digest


def test_miss_then_hit_and_no_temporary_left(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACELIVE_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3.0)}

    first = cached_arrays("k", compute)
    second = cached_arrays("k", compute)
    assert len(calls) == 1 and cache_dir() == tmp_path
    np.testing.assert_array_equal(first["x"], second["x"])
    assert [p.name for p in tmp_path.iterdir()] == ["k.npz"]
    cached_arrays("k", compute, use_cache=False)
    assert len(calls) == 2


def test_concurrent_writers_of_one_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACELIVE_CACHE", str(tmp_path))
    big = {"x": np.random.default_rng(0).random((200, 200))}
    errors = []

    def write():
        try:
            out = cached_arrays("same", lambda: big, use_cache=True)
            np.testing.assert_array_equal(out["x"], big["x"])
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [p.name for p in tmp_path.iterdir()] == ["same.npz"]


def test_digest_is_short_and_stable() -> None:
    assert digest(["a", b"b"]) == digest(["a", b"b"]) != digest(["a", b"c"])
    assert len(digest(["a"])) == 16 and len(digest(["a"], 8)) == 8
