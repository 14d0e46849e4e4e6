"""The facade's metrics as plain functions and in-process: collectors, labels, the /metrics route."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route

from facade.http_metrics import UNMATCHED, route_label
from facade.job_store import QueueStats
from facade.metrics import JobCollector, delivery_outcome
from tests.facade.inprocess import offline_facade, offline_settings
from tests.fixtures.prometheus import parse


def collected(collector: JobCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_the_job_collector_reports_every_state_and_the_oldest_pending_jobs_age() -> None:
    stats = QueueStats(by_state={"pending": 2, "delivered": 5}, oldest_pending_created_at=1000.0)
    samples = collected(JobCollector(lambda: stats, clock=lambda: 1042.5))
    assert samples == {
        ("btcf_facade_callback_jobs", (("state", "delivered"),)): 5,
        ("btcf_facade_callback_jobs", (("state", "failed"),)): 0,
        ("btcf_facade_callback_jobs", (("state", "pending"),)): 2,
        ("btcf_facade_callback_oldest_pending_job_age_seconds", ()): 42.5,
    }


def test_the_oldest_pending_age_is_zero_when_nothing_is_pending() -> None:
    stats = QueueStats(by_state={"delivered": 1}, oldest_pending_created_at=None)
    samples = collected(JobCollector(lambda: stats, clock=lambda: 1e9))
    assert samples[("btcf_facade_callback_oldest_pending_job_age_seconds", ())] == 0


def test_the_job_collector_reports_nothing_before_the_store_exists() -> None:
    assert collected(JobCollector(lambda: None)) == {}


def test_delivery_outcomes_follow_the_answer() -> None:
    assert delivery_outcome(204, retryable=False) == "delivered"
    assert delivery_outcome(401, retryable=False) == "refused"
    assert delivery_outcome(503, retryable=True) == "unavailable"
    assert delivery_outcome(429, retryable=True) == "unavailable"
    assert delivery_outcome(None, retryable=True) == "unreachable"


def test_the_route_label_is_the_template_or_the_mount_or_unmatched() -> None:
    assert route_label({"route": Route("/jobs/{job_id}", lambda r: None)}) == "/jobs/{job_id}"
    assert route_label({"route": Mount("/static", routes=[])}) == "/static"
    assert route_label({}) == UNMATCHED


async def test_metrics_are_served_in_the_text_format_and_left_out_of_the_schema(tmp_path: Path) -> None:
    async with offline_facade(offline_settings(tmp_path)) as client:
        response = await client.get("/metrics")
        schema = (await client.get("/openapi.json")).json()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "/metrics" not in schema["paths"]
    types = parse(response.text).types()
    assert types["btcf_facade_http_requests"] == "counter"
    assert types["btcf_facade_http_request_duration_seconds"] == "histogram"
    assert types["btcf_facade_result_cache_lookups"] == "counter"
    assert types["btcf_facade_alias_cache_lookups"] == "counter"
    assert types["btcf_facade_callback_delivery_attempts"] == "counter"
    assert types["btcf_facade_callback_jobs"] == "gauge"
    assert types["btcf_facade_callback_oldest_pending_job_age_seconds"] == "gauge"


async def test_a_request_is_counted_under_its_route_template_and_status(tmp_path: Path) -> None:
    labels = {"route": "/jobs/{job_id}", "method": "GET"}
    async with offline_facade(offline_settings(tmp_path)) as client:
        assert (await client.get("/jobs/no-such-job")).status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404
        scrape = parse((await client.get("/metrics")).text)
    assert scrape.value("btcf_facade_http_requests_total", **labels, status="404") == 1
    assert scrape.value("btcf_facade_http_request_duration_seconds_count", **labels) == 1
    assert scrape.value("btcf_facade_http_requests_total", route=UNMATCHED, status="404") == 1
    assert scrape.value("btcf_facade_http_requests_total", route="/jobs/no-such-job") is None


async def test_a_refused_oversized_body_is_counted_with_its_status(tmp_path: Path) -> None:
    async with offline_facade(offline_settings(tmp_path, max_body_bytes=1024)) as client:
        answer = await client.post(
            "/predict-champion", content=b"x" * 4096, headers={"content-type": "application/json"}
        )
        scrape = parse((await client.get("/metrics")).text)
    assert answer.status_code == 413
    assert scrape.value("btcf_facade_http_requests_total", method="POST", status="413") == 1
