"""Reloads through the HTTP endpoint: swaps, failures that change nothing, concurrency, metrics."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from btcforecast import registry
from tests.fixtures.registry import RegisteredModel
from tests.predictor.conftest import Predictor, v2_body

RELOAD = "/v2/models/btc-lstm/reload"
INFER = "/v2/models/btc-lstm/infer"


async def live_version(predictor: Predictor) -> str:
    return (await predictor.client.get("/v2/models/btc-lstm/serving")).json()["model_version"]


async def test_reload_to_another_alias_serves_that_version(predictor, registered, windows, expected):
    response = await predictor.client.post(RELOAD, params={"alias": "20250327"})
    assert response.status_code == 200, response.text
    version = registered.version_of("backtest_20250327")
    assert response.json() == {
        "status": "reloaded",
        "model_name": "btc-lstm",
        "model_alias": "backtest_20250327",
        "model_version": version,
        "previous_version": registered.version_of("production"),
        "was_cached": False,
    }
    body = (await predictor.client.post(INFER, json=v2_body(windows))).json()
    assert body["model_version"] == version
    np.testing.assert_array_equal(
        np.asarray(body["outputs"][0]["data"], np.float32), expected(version)["close"]
    )


async def test_reload_to_a_pinned_version(predictor, registered):
    version = registered.version_of("backtest_20250403")
    response = await predictor.client.post(RELOAD, params={"version": version})
    assert response.status_code == 200
    assert (response.json()["model_alias"], response.json()["model_version"]) == (None, version)
    assert await live_version(predictor) == version


async def test_reload_with_alias_and_version_labels_the_version(predictor, registered):
    version = registered.version_of("backtest_20250320")
    response = await predictor.client.post(RELOAD, params={"alias": "production", "version": version})
    assert (response.json()["model_alias"], response.json()["model_version"]) == ("production", version)


async def test_reload_to_an_unknown_alias_is_a_404_and_keeps_serving(predictor, registered, windows):
    before = await live_version(predictor)
    response = await predictor.client.post(RELOAD, params={"alias": "nosuch"})
    assert response.status_code == 404
    assert "nosuch" in response.json()["error"]
    assert await live_version(predictor) == before
    assert (await predictor.client.post(INFER, json=v2_body(windows[:1]))).status_code == 200


async def test_reload_to_a_malformed_alias_or_version_is_a_400(predictor):
    assert (await predictor.client.post(RELOAD, params={"alias": "../x"})).status_code == 400
    assert (await predictor.client.post(RELOAD, params={"version": "abc"})).status_code == 400


async def test_reload_needs_the_token_when_one_is_set(make_predictor, registered):
    predictor = make_predictor(registered, reload_token="s3cret")
    assert (await predictor.client.post(RELOAD)).status_code == 401
    bad = await predictor.client.post(RELOAD, headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401
    good = await predictor.client.post(RELOAD, headers={"Authorization": "Bearer s3cret"})
    assert good.status_code == 200


async def test_alias_moved_in_mlflow_is_picked_up_by_a_bare_reload(make_predictor, register_models):
    reg: RegisteredModel = register_models()
    predictor = make_predictor(reg)
    assert await live_version(predictor) == reg.version_of("production")
    target = reg.version_of("backtest_20250327")
    registry.set_alias(registry.connect(reg.tracking_uri), reg.name, "production", target)
    response = await predictor.client.post(RELOAD)
    assert response.json()["model_alias"] == "production"
    assert response.json()["model_version"] == target
    assert await live_version(predictor) == target


async def test_200_concurrent_requests_across_a_reload_each_answered_wholly_by_one_version(
    predictor, registered, windows, expected
):
    old, new = registered.version_of("production"), registered.version_of("backtest_20250327")

    reloaded = asyncio.Event()

    async def one(i: int) -> dict:
        if i >= 100:  # the first half races the reload, the second half follows it
            await reloaded.wait()
        response = await predictor.client.post(INFER, json=v2_body(windows[i % 8 : i % 8 + 4]))
        assert response.status_code == 200, response.text
        return {"i": i, **response.json()}

    async def reload() -> None:
        assert (await predictor.client.post(RELOAD, params={"alias": "backtest_20250327"})).status_code == 200
        reloaded.set()

    answers, _ = await asyncio.gather(asyncio.gather(*(one(i) for i in range(200))), reload())
    versions = {a["model_version"] for a in answers}
    assert versions <= {old, new}
    assert {a["model_version"] for a in answers if a["i"] >= 100} == {new}
    for answer in answers:
        i, version = answer["i"], answer["model_version"]
        data = np.asarray(answer["outputs"][0]["data"], np.float32)
        np.testing.assert_array_equal(data, expected(version)["close"][i % 8 : i % 8 + 4])


async def test_metrics_show_live_version_cache_and_reloads(predictor, registered):
    await predictor.client.post(RELOAD, params={"alias": "nosuch"})
    await predictor.client.post(RELOAD, params={"alias": "backtest_20250327"})
    text = (await predictor.client.get("/metrics")).text
    version = registered.version_of("backtest_20250327")
    assert f'btcf_predictor_live_version{{model="btc-lstm"}} {float(version)}' in text
    assert 'btcf_predictor_version_cache_size{model="btc-lstm"}' in text
    assert 'btcf_predictor_reloads_total{model="btc-lstm"}' in text
    assert 'btcf_predictor_reload_failures_total{model="btc-lstm",reason="AliasNotFoundError"}' in text


async def test_repository_unload_takes_the_model_off_and_load_brings_it_back(predictor, windows):
    assert (await predictor.client.post("/v2/repository/models/btc-lstm/unload")).status_code == 200
    assert (await predictor.client.post(INFER, json=v2_body(windows[:1]))).status_code == 404
    assert (await predictor.client.get("/v2/health/ready")).status_code == 503
    assert (await predictor.client.post("/v2/repository/models/btc-lstm/load")).status_code == 200
    assert (await predictor.client.post(INFER, json=v2_body(windows[:1]))).status_code == 200


@pytest.mark.parametrize("action", ["unload", "load"])
async def test_repository_load_and_unload_need_the_reload_token_when_one_is_set(
    make_predictor, registered, action: str
) -> None:
    predictor = make_predictor(registered, reload_token="s3cret")
    path = f"/v2/repository/models/btc-lstm/{action}"
    refused = await predictor.client.post(path)
    assert refused.status_code == 401 and "RELOAD_TOKEN" in refused.json()["error"]
    assert predictor.model.ready
    allowed = await predictor.client.post(path, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200 and allowed.json() == {"name": "btc-lstm", action: True}


async def test_cache_size_metric_counts_the_versions_kept_loaded(predictor):
    await predictor.client.post(RELOAD, params={"alias": "backtest_20250327"})
    text = (await predictor.client.get("/metrics")).text
    kept = len(predictor.model.swapper.cache)
    assert kept >= 1
    assert f'btcf_predictor_version_cache_size{{model="btc-lstm"}} {float(kept)}' in text
