"""``facelive.distributed``: ordered, bounded, retried chunk scoring on Dask; ``facelive evaluate
--engine dask`` gives the single-process run's metrics and scores, also when a worker dies.

The chunk-mapping tests use an in-process cluster (threads); the ``evaluate`` tests start real
local clusters of 2 worker processes on loopback and read the Replay-Attack devel share (skipped
when absent).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="the scale extra (dask) is not installed")

from facelive.cli import main  # noqa: E402
from facelive.distributed import LOOPBACK_HTTP, MapStats, ordered_map  # noqa: E402
from facelive.errors import FaceliveError  # noqa: E402

LIMIT = "40"  # Replay-Attack devel frames scored by the evaluate tests (8 whole videos)


@pytest.fixture(scope="module")
def thread_client():
    """A client of an in-process cluster (inproc:// transport): 2 single-threaded workers."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": LOOPBACK_HTTP}
                                  ) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _slow_square(chunk: list[int]) -> list[int]:
    """Later chunks finish first: 0 waits longest."""
    time.sleep(0.02 * max(0, 5 - chunk[0] // 3))
    return [x * x for x in chunk]


def test_ordered_map_keeps_order_and_reads_input_lazily(thread_client) -> None:
    consumed = 0

    def items():
        nonlocal consumed
        for i in range(60):
            consumed += 1
            yield i

    stats = MapStats()
    done: list[int] = []
    out: list[int] = []
    for j, y in enumerate(ordered_map(thread_client, _slow_square, items(), chunk_size=3,
                                      window=4, stats=stats, on_chunk_done=done.append)):
        out.append(y)
        # back-pressure: never more than `window` chunks read ahead of the one being handed out
        assert consumed <= (j // 3 + 4) * 3
    assert out == [x * x for x in range(60)]
    assert stats.chunks == 20 and stats.peak_in_flight <= 4
    assert sum(done) == 60
    # a second run with the same stats (evaluate scores the threshold split after the test split)
    assert list(ordered_map(thread_client, _slow_square, range(7), chunk_size=3, window=2,
                            stats=stats)) == [x * x for x in range(7)]
    assert stats.chunks == 23


def test_ordered_map_reruns_a_chunk_whose_task_raised(thread_client, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"

    def flaky(chunk: list[int]) -> list[int]:
        if chunk[0] == 6 and not marker.exists():
            marker.write_text("x")
            raise OSError("transient")
        return [x + 1 for x in chunk]

    assert list(ordered_map(thread_client, flaky, range(12), chunk_size=3, window=2)) == \
        list(range(1, 13))
    assert marker.exists()


def test_ordered_map_reports_a_chunk_that_keeps_failing(thread_client) -> None:
    def broken(chunk: list[int]) -> list[int]:
        raise ValueError("always")

    with pytest.raises(FaceliveError) as e:
        list(ordered_map(thread_client, broken, range(4), chunk_size=2, retries=1))
    assert e.value.code == "cluster_error" and "always" in str(e.value)


@pytest.mark.parametrize("argv", [
    ["--scheduler", "tcp://127.0.0.1:1"],  # needs --engine dask
    ["--engine", "dask", "--workers", "0"],
    ["--engine", "dask", "--chunk-size", "0"],
    ["--engine", "dask", "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"],
    ["--engine", "dask", "--conditions", "jpeg70"],
    ["--engine", "dask", "--protocol", "cross-session"],
])
def test_evaluate_engine_usage_errors(argv: list[str], tmp_path: Path, capsys) -> None:
    (tmp_path / "ds").mkdir()
    assert main(["evaluate", "--dataset", "folder", "--root", str(tmp_path / "ds"),
                 "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert any(o in err for o in ("--engine", "--workers", "--chunk-size", "--scheduler")), err


# -- facelive evaluate --engine dask on the Replay-Attack devel share -------------------------

def _evaluate(shared: Path, out: Path, *engine: str) -> dict:
    rc = main(["evaluate", "--dataset", "replay-attack", "--root", str(shared / "replay-attack"),
               "--split", "devel", "--limit", LIMIT, "--no-plots", "--quiet", "--out", str(out),
               *engine])
    assert rc == 0
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def single_process(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the same evaluation in this process (``--engine local``)."""
    out = tmp_path_factory.mktemp("local")
    _evaluate(shared_data, out)
    return out


def assert_same_evaluation(reference: Path, out: Path) -> None:
    """metrics.json byte for byte, but for the two members that say how the run went (its
    ``timing`` and its ``command``), and scores.csv byte for byte."""
    ref_text = (reference / "metrics.json").read_text(encoding="utf-8")
    ref, got = json.loads(ref_text), json.loads((out / "metrics.json").read_text("utf-8"))
    assert "--engine dask" in got["command"] and "--engine" not in ref["command"]
    got["timing"], got["command"] = ref["timing"], ref["command"]
    assert json.dumps(got, indent=2) == ref_text
    assert (out / "scores.csv").read_bytes() == (reference / "scores.csv").read_bytes()
    assert ref["n_samples"] >= 30 and ref["frame"]["n_live"] + ref["frame"]["n_spoof"] \
        + ref["frame"]["n_no_decision"] == ref["n_samples"]


@pytest.mark.slow
@pytest.mark.data
def test_evaluate_dask_equals_single_process(shared_data: Path, single_process: Path,
                                             tmp_path: Path) -> None:
    import psutil

    # no --scheduler: the command starts a local cluster of 2 worker processes and stops it
    def children() -> dict[int, str]:  # multiprocessing's resource tracker lives on: not ours
        found = {}
        for c in psutil.Process().children(recursive=True):
            try:
                found[c.pid] = " ".join(c.cmdline())
            except psutil.Error:  # gone meanwhile
                continue
        return {pid: cmd for pid, cmd in found.items() if "resource_tracker" not in cmd}

    before = children()
    _evaluate(shared_data, tmp_path, "--engine", "dask", "--workers", "2", "--chunk-size", "4")
    assert_same_evaluation(single_process, tmp_path)
    deadline = time.monotonic() + 30
    while (left := set(children()) - set(before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"the local cluster's processes outlived the command: {children()}"


class KillWorkerOnce(distributed.WorkerPlugin):
    """Kill the worker process (no clean-up, as a crash would) shortly after the ``nth`` scoring
    chunk it starts; only once in the cluster (an exclusively created marker file says whom)."""

    name = "test-kill-worker-once"

    def __init__(self, marker: str, nth: int = 2) -> None:
        self.marker, self.nth, self.started = marker, nth, 0

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing" or not str(key).startswith("facelive-score-chunk"):
            return
        self.started += 1
        if self.started != self.nth:
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {key}".encode())
        os.close(fd)
        threading.Timer(0.05, os._exit, args=(1,)).start()  # mid-chunk


@pytest.mark.slow
@pytest.mark.data
def test_evaluate_dask_survives_a_dead_worker(shared_data: Path, single_process: Path,
                                              tmp_path: Path) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the plugin, on the workers
    marker = tmp_path / "killed"
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None,
                                      scheduler_kwargs={"dashboard_address": LOOPBACK_HTTP},
                                      silence_logs=50) as cluster, \
                distributed.Client(cluster) as client:
            client.register_plugin(KillWorkerOnce(str(marker)))
            out = tmp_path / "out"
            _evaluate(shared_data, out, "--engine", "dask", "--scheduler",
                      cluster.scheduler_address, "--chunk-size", "4")
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    pid, key = marker.read_text().split()
    with pytest.raises(ProcessLookupError):  # the worker that held the chunk is gone
        os.kill(int(pid), 0)
    assert key.startswith("facelive-score-chunk")
    assert_same_evaluation(single_process, out)  # nothing lost, nothing counted twice


def test_video_frame_samples_travel_to_workers(tmp_path: Path) -> None:
    """A sample of a video frame goes through Dask's serialization (its loader is a partial of a
    module function), so a worker can decode it; the copy decodes the same pixels."""
    import cv2
    import numpy as np

    from facelive.datasets.base import Sample
    from facelive.datasets.video import frame_loader

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    smp = Sample(key="clip.avi#00002", label="live", attack_type=None, subject="1",
                 group="clip", split="devel", path=video, loader=frame_loader(video, 2, (0, 2)))
    from distributed.protocol import deserialize, serialize

    copy = deserialize(*serialize(smp))  # how Dask sends it to a worker
    assert copy == smp and np.array_equal(copy.load(), smp.load())
