"""Prometheus metrics of the liveness service, in a registry of their own (one per app).

Each worker process exposes its own numbers at ``/metrics``; with several workers behind one port,
scrape each replica/worker separately or run one worker per container (see docs/deployment.md).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from facelive.types import LivenessResult

__all__ = ["Metrics", "CONTENT_TYPE"]

# Seconds; frames take tens of milliseconds, overloaded ones up to seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counts and latencies by outcome, per-test and face-detection time, in-flight gauge.

    ``outcome`` is the decision (``live``, ``spoof``, ``unknown``) for answered requests, or the
    error code (``empty_image``, ``overloaded``, ...; a bounded set) for refused ones.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("facelive_requests", "Liveness requests by outcome",
                                ["outcome"], registry=r)
        self.latency = Histogram("facelive_request_duration_seconds",
                                 "Liveness request latency (receipt to response) by outcome",
                                 ["outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.test_time = Histogram("facelive_test_duration_seconds",
                                   "Time spent in each liveness test per frame", ["test"],
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.test_status = Counter("facelive_test_results", "Liveness test results by status",
                                   ["test", "status"], registry=r)
        self.face_time = Histogram("facelive_face_detection_duration_seconds",
                                   "Face detection time per frame", buckets=LATENCY_BUCKETS,
                                   registry=r)
        self.in_flight = Gauge("facelive_requests_in_flight",
                               "Liveness requests being processed now", registry=r)
        self.ready = Gauge("facelive_ready", "1 when the models are loaded", registry=r)
        self.model_load = Gauge("facelive_model_load_seconds", "Time taken to load the models",
                                registry=r)
        self.workers = Gauge("facelive_pipeline_processes",
                             "Pipeline processes ready or working (0 in the in-process mode)",
                             registry=r)
        self.worker_restarts = Counter(
            "facelive_pipeline_process_restarts",
            "Pipeline processes killed and replaced, by reason (timeout, test_timeout, memory, "
            "crashed)", ["reason"], registry=r)

        self.sessions = Counter(
            "facelive_session_events",
            "Challenge session events: created, uploaded, abandoned (cancel requests), results "
            "by decision (live, spoof, unknown), refusals by error code (refused_<code>)",
            ["event"], registry=r)
        self.verifications = Gauge(
            "facelive_clip_verifications",
            "Challenge clips admitted for verification in this server process, by state "
            "(waiting for a slot, running)", ["state"], registry=r)
        self.held_results = Gauge(
            "facelive_session_results_held",
            "Signed results this server process holds because the session store has not taken "
            "them yet (retried in the background)", registry=r)

    def observe_request(self, outcome: str, seconds: float) -> None:
        self.requests.labels(outcome).inc()
        self.latency.labels(outcome).observe(seconds)

    def observe_result(self, result: LivenessResult) -> None:
        """Record the per-test and face-detection times of one pipeline result."""
        for name, t in result.tests.items():
            self.test_time.labels(name).observe(t.ms / 1e3)
            self.test_status.labels(name, t.status).inc()
        if result.tests:
            self.face_time.observe(result.face_ms / 1e3)

    def render(self) -> bytes:
        return generate_latest(self.registry)
