"""Prometheus metrics of the receiver: results received by outcome, refused by reason.

Each app gets its own registry (several apps live in one test process, and a metric name can be
registered only once per registry), served at ``/metrics`` in the text exposition format.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, ProcessCollector

OUTCOMES = ("stored", "duplicate")
"""stored: a new job id; duplicate: a job id stored before (nothing changes)."""
REFUSALS: dict[str, str] = {
    "BodyTooLarge": "too_large",
    "InvalidResult": "invalid",
    "SignatureError": "bad_signature",
}
"""Exception class name -> the ``reason`` label of ``btcf_callback_results_refused_total``."""


class ReceiverMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "btcf_callback_results_received",
            "Results accepted, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.refused = Counter(
            "btcf_callback_results_refused", "Results refused, by reason", ["reason"], registry=self.registry
        )
        ProcessCollector(registry=self.registry)
        for outcome in OUTCOMES:
            self.received.labels(outcome=outcome)
        for reason in REFUSALS.values():
            self.refused.labels(reason=reason)

    def refusal(self, error: Exception) -> None:
        self.refused.labels(reason=REFUSALS[type(error).__name__]).inc()
