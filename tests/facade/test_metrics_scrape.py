"""Each HTTP component's /metrics scraped over real HTTP from its real process and parsed with
prometheus-client's parser: the families are there, and a request moves the counter it should.

The facade, the receiver and the predictor are the session's processes (tests/facade/conftest.py);
counters are compared before and after, so what earlier tests did to them does not matter.
"""

from __future__ import annotations

import httpx

from btcforecast.devservers.process import ManagedProcess
from tests.facade.conftest import wait_until
from tests.fixtures.prometheus import scrape

PREDICT = {"route": "/predict", "method": "POST", "status": "200"}


def value(url: str, sample: str, **labels: str) -> float:
    return scrape(f"{url}/metrics").value(sample, **labels) or 0.0


def test_the_facades_metrics_count_a_prediction_and_its_cached_repeat(
    api: httpx.Client, facade: ManagedProcess
) -> None:
    params = {"alias": "20250327", "start": "2025-05-01", "end": "2025-05-03"}
    before = scrape(f"{facade.url}/metrics")
    assert api.post("/predict", params=params).status_code == 200
    assert api.post("/predict", params=params).status_code == 200
    after = scrape(f"{facade.url}/metrics")

    def moved(sample: str, **labels: str) -> float:
        return (after.value(sample, **labels) or 0.0) - (before.value(sample, **labels) or 0.0)

    assert moved("btcf_facade_http_requests_total", **PREDICT) == 2
    assert moved("btcf_facade_http_request_duration_seconds_count", route="/predict", method="POST") == 2
    assert moved("btcf_facade_result_cache_lookups_total", cache="forecast", result="hit") >= 1
    assert after.types()["btcf_facade_callback_jobs"] == "gauge"
    assert after.value("process_resident_memory_bytes") is not None


def test_a_delivered_callback_moves_the_facades_and_the_receivers_counters(
    api: httpx.Client, facade: ManagedProcess, receiver: ManagedProcess
) -> None:
    def counters() -> tuple[float, float, float]:
        return (
            value(facade.url, "btcf_facade_callback_delivery_attempts_total", outcome="delivered"),
            value(facade.url, "btcf_facade_callback_jobs", state="delivered"),
            value(receiver.url, "btcf_callback_results_received_total", outcome="stored"),
        )

    before = counters()
    accepted = api.post("/predict", params={"alias": "20250327", "callback_url": f"{receiver.url}/result"})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    wait_until(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "delivered", 60)

    after = counters()
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
    assert scrape(f"{receiver.url}/metrics").value("process_resident_memory_bytes") is not None


def test_the_predictors_metrics_count_the_inference_a_facade_cache_miss_asks_for(
    api: httpx.Client, facade: ManagedProcess, predictor: ManagedProcess
) -> None:
    params = {"alias": "20250403", "start": "2025-05-10", "end": "2025-05-11"}
    misses = value(facade.url, "btcf_facade_result_cache_lookups_total", cache="predictions", result="miss")
    inferences = scrape(f"{predictor.url}/metrics").total("request_predict_seconds_count")

    assert api.post("/predict", params=params).status_code == 200

    after = scrape(f"{predictor.url}/metrics")
    assert (
        value(facade.url, "btcf_facade_result_cache_lookups_total", cache="predictions", result="miss")
        - misses
        == 1
    )
    assert after.total("request_predict_seconds_count") - inferences >= 1
    assert {"btcf_predictor_reloads", "btcf_predictor_live_version", "process_resident_memory_bytes"} <= set(
        after.families
    )
