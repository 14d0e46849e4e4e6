"""Prometheus metrics of the facade: requests, caches, callback jobs and their delivery.

Each app gets its own registry (several apps live in one test process, and a collector that reads
an app's job store belongs to that app). The cache and delivery counters are counted deep inside
plain functions that know no app, so they are process-wide objects registered into every app's
registry; in a deployed facade there is one app per process and the two views are the same.

Jobs by state and the age of the oldest pending job are read from the job store at scrape time
(:class:`JobCollector`), never mirrored in counters that could drift from the durable state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from facade.job_store import QueueStats

PREFIX = "btcf_facade"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: from a cached /predict (milliseconds) to a cold stitched backtest (seconds)."""
JOB_STATES = ("pending", "delivered", "failed")
DELIVERY_OUTCOMES = ("delivered", "refused", "unavailable", "unreachable")
"""delivered: 2xx; refused: a final 4xx; unavailable: 5xx, 408, 425 or 429 (retried);
unreachable: no answer (connection error or timeout; retried)."""
CACHE_RESULTS = ("hit", "miss")
RESULT_CACHES = ("forecast", "predictions")

RESULT_CACHE = Counter(
    f"{PREFIX}_result_cache_lookups",
    "Lookups of the result caches, by cache (forecast: whole answers; predictions: per version and"
    " range) and result",
    ["cache", "result"],
    registry=None,
)
ALIAS_CACHE = Counter(
    f"{PREFIX}_alias_cache_lookups",
    "Lookups of the alias -> version cache, by result",
    ["result"],
    registry=None,
)
DELIVERY_ATTEMPTS = Counter(
    f"{PREFIX}_callback_delivery_attempts",
    "Callback POST attempts, by outcome",
    ["outcome"],
    registry=None,
)
for _result in CACHE_RESULTS:
    for _cache in RESULT_CACHES:
        RESULT_CACHE.labels(cache=_cache, result=_result)
    ALIAS_CACHE.labels(result=_result)
for _outcome in DELIVERY_OUTCOMES:
    DELIVERY_ATTEMPTS.labels(outcome=_outcome)


def record_result_cache(hit: bool, cache: str = "predictions") -> None:
    RESULT_CACHE.labels(cache=cache, result="hit" if hit else "miss").inc()


def record_alias_cache(hit: bool) -> None:
    ALIAS_CACHE.labels(result="hit" if hit else "miss").inc()


def delivery_outcome(status_code: int | None, retryable: bool) -> str:
    """The ``outcome`` label of one callback attempt: its answer's status (None: no answer)."""
    if status_code is None:
        return "unreachable"
    if 200 <= status_code < 300:
        return "delivered"
    return "unavailable" if retryable else "refused"


def record_delivery_attempt(outcome: str) -> None:
    DELIVERY_ATTEMPTS.labels(outcome=outcome).inc()


class JobCollector(Collector):
    """Jobs by state and the age of the oldest pending job, read from the job store at scrape time.

    ``stats`` is the store's read-only query (:meth:`facade.job_store.JobStore.queue_stats`); before the
    store exists (the app not started) it returns None and the families are left out.
    """

    def __init__(
        self, stats: Callable[[], QueueStats | None], clock: Callable[[], float] = time.time
    ) -> None:
        self._stats = stats
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        if stats is None:
            return
        jobs = GaugeMetricFamily(
            f"{PREFIX}_callback_jobs", "Callback jobs in the store, by state", labels=["state"]
        )
        for state in sorted({*JOB_STATES, *stats.by_state}):
            jobs.add_metric([state], stats.by_state.get(state, 0))
        yield jobs
        oldest = stats.oldest_pending_created_at
        age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        yield GaugeMetricFamily(
            f"{PREFIX}_callback_oldest_pending_job_age_seconds",
            "Seconds since the oldest job still pending delivery was accepted (0 when none is)",
            value=age,
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # families depend on the store: nothing to check at registration


class FacadeMetrics:
    """One app's registry: its HTTP metrics, its job collector, the process-wide counters."""

    def __init__(self, stats: Callable[[], QueueStats | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        for collector in (RESULT_CACHE, ALIAS_CACHE, DELIVERY_ATTEMPTS):
            self.registry.register(collector)
        self.registry.register(JobCollector(stats))
        ProcessCollector(registry=self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.duration.labels(route=route, method=method).observe(seconds)
