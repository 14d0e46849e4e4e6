"""Every endpoint against the contract, with the real predictor, MLflow and market store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.evaluation import BacktestReport, backtest_report
from btcforecast.features import WINDOW, compute_features, windows_for_range
from facade.api.format import report_payload
from facade.champion_plan import stitch_plan
from facade.predictor_client import (
    HEADER_LENGTH,
    PredictorClient,
    QuantilePredictions,
    decode_infer_response,
    encode_infer_request,
)
from facade.schemas import PredictResponse
from tests.facade.conftest import API_TOKEN, facade_env, facade_process
from tests.fixtures.registry import RegisteredModel


def test_health_has_the_contract_fields_and_the_data_source(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True
    assert body["model_alias"] == "production"
    assert body["model_version"] == registered.version_of("production")
    assert body["data_source"]
    assert isinstance(body["synthetic"], bool)


def test_predict_with_a_bare_date_returns_every_hour_from_the_date_to_the_end_of_data(
    api: httpx.Client, registered: RegisteredModel, market_bars: pd.DataFrame
) -> None:
    body = api.post("/predict", params={"alias": "20250327"}).json()
    assert body["start_date"] == "2025-03-27 00:00:00"
    hours = pd.date_range("2025-03-27", market_bars.index[-1].tz_localize(None), freq="h")
    assert [p["datetime"] for p in body["predictions"]] == list(hours.strftime("%Y-%m-%dT%H:%M:%S"))
    assert all(isinstance(p["prediction"], float) for p in body["predictions"])
    assert body["model_version"] == registered.version_of("backtest_20250327")


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/predict?alias=20250327"), ("GET", "/predict-champion")]
)
def test_prediction_answers_match_the_documented_response_model(
    api: httpx.Client, method: str, path: str
) -> None:
    response = api.request(method, path)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    PredictResponse.model_validate(response.json())


def test_both_alias_forms_give_the_same_predictions(api: httpx.Client) -> None:
    bare = api.post("/predict", params={"alias": "20250327"}).json()
    full = api.post("/predict", params={"alias": "backtest_20250327"}).json()
    assert bare["predictions"] == full["predictions"]
    assert full["model_alias"] == "backtest_20250327"


def test_predict_accepts_a_json_body_and_a_range(api: httpx.Client) -> None:
    body = api.post("/predict", json={"alias": "20250403", "start": "2025-04-05", "end": "2025-04-06"}).json()
    assert body["start_date"] == "2025-04-05 00:00:00"
    assert len(body["predictions"]) == 48


def test_a_named_alias_takes_start_date_and_end_date(api: httpx.Client) -> None:
    params = {"alias": "production", "start_date": "2025-07-01", "end_date": "2025-07-02"}
    body = api.post("/predict", params=params).json()
    assert body["start_date"] == "2025-07-01 00:00:00" and body["end_date"] == "2025-07-02 23:00:00"
    assert len(body["predictions"]) == 48


def test_a_named_alias_predicts_from_its_models_base_date(api: httpx.Client) -> None:
    body = api.post("/predict", params={"alias": "production"}).json()
    assert body["start_date"] == "2025-07-24 00:00:00"  # production = the 20250724 model


def test_predict_reports_metrics_beside_persistence(api: httpx.Client) -> None:
    metrics = api.post("/predict", params={"alias": "20250327"}).json()["metrics"]
    for pair in [metrics["overall"], *metrics["per_alias"]]:
        for key in ("mae", "rmse", "mape", "directional_accuracy", "flat_share", "n"):
            assert key in pair["model"] and key in pair["persistence"]


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/predict?alias=20250327"), ("GET", "/predict-champion")]
)
def test_every_hour_has_an_80_percent_interval_around_the_point_forecast(
    api: httpx.Client, method: str, path: str
) -> None:
    predictions = api.request(method, path).json()["predictions"]
    assert predictions
    for p in predictions:
        assert p["lower"] <= p["prediction"] <= p["upper"], p
    assert any(p["lower"] < p["upper"] for p in predictions)


def test_the_metrics_block_carries_the_interval_and_significance_figures(api: httpx.Client) -> None:
    metrics = api.get("/predict-champion").json()["metrics"]
    for report in [metrics["overall"], *metrics["per_alias"]]:
        assert report["significance"]["loss"] == "absolute"
        assert 0.0 <= report["significance"]["p_value"] <= 1.0
        assert report["interval"]["level"] == pytest.approx(0.8)
        assert set(report["interval"]["coverage_by_volatility"]) == {"calm", "normal", "volatile"}
        assert report["naive_band"]["n"] == report["interval"]["n"] == report["model"]["n"]
        assert report["pinball_ratio"] == pytest.approx(
            report["interval"]["pinball"] / report["naive_band"]["pinball"]
        )


def test_the_metrics_equal_backtest_report_on_the_predictors_own_answers(
    api: httpx.Client, predictor: ManagedProcess, registered: RegisteredModel, market_bars: pd.DataFrame
) -> None:
    body = api.get("/predict-champion").json()
    features = compute_features(market_bars)
    closes = market_bars["close"]
    plan = stitch_plan(registered.aliases, date(2025, 3, 27), market_bars.index[-1])
    answers = []
    for segment, reported in zip(plan, body["metrics"]["per_alias"], strict=True):
        windows, hours = windows_for_range(features, segment.start, segment.end, WINDOW)
        answer = infer_directly(predictor, segment.version, windows)
        answers.append((hours, answer))
        direct = report_payload(backtest_report(closes, hours, answer.values, answer.quantiles))
        assert same_figures(reported, {**reported, **direct})
    hours = answers[0][0].append([h for h, _ in answers[1:]])
    values = np.concatenate([a.values for _, a in answers])
    overall = report_payload(backtest_report(closes, hours, values, answers[0][1].quantiles))
    assert same_figures(body["metrics"]["overall"], overall)


def infer_directly(predictor: ManagedProcess, version: str, windows: np.ndarray) -> QuantilePredictions:
    """The predictor's answer for ``windows`` at ``version``, asked without the facade."""
    content, length = encode_infer_request(windows)
    response = httpx.post(
        f"{predictor.url}/v2/models/btc-lstm/versions/{version}/infer",
        content=content,
        headers={HEADER_LENGTH: str(length), "Content-Type": "application/octet-stream"},
        timeout=60,
    )
    response.raise_for_status()
    answer_length = response.headers.get(HEADER_LENGTH)
    return decode_infer_response(response.content, int(answer_length) if answer_length else None)


async def test_the_predictor_asked_for_an_alias_resolves_it_and_names_the_version_that_answered(
    predictor: ManagedProcess, registered: RegisteredModel, market_bars: pd.DataFrame
) -> None:
    alias, version = "backtest_20250403", registered.version_of("backtest_20250403")
    windows, _ = windows_for_range(compute_features(market_bars), pd.Timestamp("2025-04-03", tz="UTC"), None)
    async with httpx.AsyncClient() as client:
        answered, named = await PredictorClient(client, predictor.url).infer_alias(windows, alias)
    assert named == version
    assert np.array_equal(answered.values, infer_directly(predictor, version, windows).values)


def same_figures(reported: Any, direct: Any) -> bool:
    """Equal JSON figures, floats to 1e-9 relative (the JSON round trip of the same numbers)."""
    if isinstance(direct, dict):
        return reported.keys() == direct.keys() and all(same_figures(reported[k], direct[k]) for k in direct)
    if isinstance(direct, float) and isinstance(reported, float):
        return reported == pytest.approx(direct, rel=1e-9)
    return reported == direct


def test_champion_is_stitched_each_hour_once_from_the_champion_start(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    body = api.get("/predict-champion").json()
    assert body["start_date"] == "2025-03-27 00:00:00"
    times = pd.DatetimeIndex([p["datetime"] for p in body["predictions"]])
    assert times.is_unique and times.is_monotonic_increasing
    assert (times[1:] - times[:-1] == pd.Timedelta(hours=1)).all()
    by_alias = {a: [p for p in body["predictions"] if p["model_alias"] == a] for a in registered.aliases}
    assert not by_alias["backtest_20250320"]  # before the champion start
    assert by_alias["backtest_20250327"][0]["datetime"] == "2025-03-27T00:00:00"
    assert by_alias["backtest_20250327"][-1]["datetime"] == "2025-04-02T23:00:00"
    assert by_alias["backtest_20250403"][0]["datetime"] == "2025-04-03T00:00:00"
    assert by_alias["backtest_20250724"][0]["datetime"] == "2025-07-24T00:00:00"
    assert [m["model_alias"] for m in body["metrics"]["per_alias"]] == [
        "backtest_20250327",
        "backtest_20250403",
        "backtest_20250724",
    ]


def test_champion_segments_equal_the_alias_predictions_over_the_same_hours(api: httpx.Client) -> None:
    champion = api.get("/predict-champion").json()["predictions"]
    alone = api.post("/predict", params={"alias": "20250403", "end": "2025-07-23"}).json()["predictions"]
    stitched = [p for p in champion if p["model_alias"] == "backtest_20250403"]
    assert [p["prediction"] for p in stitched] == [p["prediction"] for p in alone]


def test_aliases_lists_named_first_then_backtests_by_date(api: httpx.Client) -> None:
    body = api.get("/aliases").json()
    assert body["aliases"] == [
        "production",
        "staging",
        "backtest_20250320",
        "backtest_20250327",
        "backtest_20250403",
        "backtest_20250724",
    ]


def test_btc_info_defaults_to_april_through_june(api: httpx.Client) -> None:
    body = api.get("/btc-info").json()
    assert body["datetime"][0] == "2025-04-01T00:00:00"
    assert body["datetime"][-1] == "2025-06-30T23:00:00"
    lengths = {
        len(body[k]) for k in ("datetime", "btc_open", "btc_high", "btc_low", "btc_close", "btc_volume")
    }
    assert lengths == {91 * 24}


def test_btc_info_takes_a_start_and_end(api: httpx.Client) -> None:
    body = api.get("/btc-info", params={"start": "2025-05-01", "end": "2025-05-01"}).json()
    assert len(body["datetime"]) == 24


def test_openapi_documents_every_endpoint(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/health",
        "/reload",
        "/predict",
        "/predict-champion",
        "/aliases",
        "/btc-info",
        "/jobs/{job_id}",
    ):
        assert path in paths


def test_openapi_documents_the_interval_and_the_report_fields(api: httpx.Client) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    prediction = schemas["Prediction"]["properties"]
    assert "80% interval" in prediction["lower"]["description"]
    assert "80% interval" in prediction["upper"]["description"]
    report = schemas["ReportModel"]["properties"]
    assert set(report) == set(BacktestReport.model_fields)
    assert all(report[name].get("description") for name in report)


BAD_INPUT = [
    # malformed (the documented patterns refuse it before any code runs): 422
    ("POST", "/predict", {"alias": ""}, 422, "query.alias: '' is malformed"),
    ("POST", "/predict", {"alias": "x" * 65}, 422, "malformed"),
    ("POST", "/predict", {"alias": "../../etc/passwd"}, 422, "malformed"),
    ("POST", "/predict", {"alias": "back test"}, 422, "malformed"),
    (
        "POST",
        "/predict",
        {"alias": "20250327", "start": "2025-02-30"},
        422,
        "query.start: '2025-02-30' is malformed",
    ),
    ("GET", "/btc-info", {"start": "2025-13-01"}, 422, "malformed"),
    ("POST", "/reload", {"alias": "a/b"}, 422, "malformed"),
    # well formed, naming nothing that exists: 404
    ("POST", "/predict", {"alias": "backtest_2025"}, 404, "backtest aliases are backtest_YYYYMMDD"),
    ("POST", "/predict", {"alias": "20250230"}, 404, "impossible date"),
    ("POST", "/predict", {"alias": "backtest_20250101"}, 404, "no alias"),
    ("POST", "/predict", {"alias": "nosuchalias"}, 404, "no alias"),
    ("GET", "/jobs/nope", {}, 404, "no job"),
    # hours the market data does not hold (or an empty range): 409
    ("POST", "/predict", {"alias": "20190101"}, 409, "outside the data"),
    ("POST", "/predict", {"alias": "20250327", "start": "2025-05-02", "end": "2025-05-01"}, 409, "after end"),
    ("POST", "/predict", {"alias": "20250327", "end": "2031-01-01"}, 409, "outside the data"),
    ("GET", "/btc-info", {"start": "2025-06-02", "end": "2025-06-01"}, 409, "after end"),
    ("GET", "/btc-info", {"start": "2030-01-01", "end": "2030-02-01"}, 409, "outside the data"),
]


@pytest.mark.parametrize(("method", "path", "params", "status", "problem"), BAD_INPUT)
def test_bad_input_is_a_4xx_naming_the_problem(
    api: httpx.Client, method: str, path: str, params: dict[str, str], status: int, problem: str
) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    response = api.request(method, path, params=params, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["title"], body["type"]) == (status, HTTPStatus(status).phrase, "about:blank")
    assert problem in body["detail"]


def test_a_malformed_parameter_is_a_problem_listing_each_invalid_parameter(api: httpx.Client) -> None:
    response = api.get("/btc-info", params={"start": "yesterday", "end": "2025-13-01"})
    assert response.status_code == 422
    assert [e["location"] for e in response.json()["errors"]] == ["query.start", "query.end"]


def test_malformed_json_body_is_422(api: httpx.Client) -> None:
    response = api.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_oversized_body_is_413(api: httpx.Client) -> None:
    response = api.post("/predict", json={"alias": "x" * 200_000})
    assert response.status_code == 413


def test_reload_needs_the_api_token(api: httpx.Client) -> None:
    assert api.post("/reload", params={"alias": "20250327"}).status_code == 401
    wrong = api.post("/reload", params={"alias": "20250327"}, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_reload_makes_an_alias_live_and_reports_its_version(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    try:
        body = api.post("/reload", params={"alias": "20250327"}, headers=auth).json()
        assert body == {
            "status": "reloaded",
            "model_alias": "backtest_20250327",
            "model_version": registered.version_of("backtest_20250327"),
        }
        assert api.get("/health").json()["model_version"] == registered.version_of("backtest_20250327")
        assert api.post("/reload", params={"alias": "nosuch"}, headers=auth).status_code == 404
    finally:
        back = api.post("/reload", headers=auth).json()  # no alias: the default, production
        assert back["model_version"] == registered.version_of("production")


def _stranded(
    tmp_path_factory: pytest.TempPathFactory, registered: RegisteredModel, market_uri: str, **env: str
):
    state = tmp_path_factory.mktemp("stranded")
    base = facade_env(
        registered=registered,
        predictor_url=env.pop("PREDICTOR_URL"),
        market_uri=market_uri,
        state=state,
        **env,
    )
    return facade_process(base, Path(state))


@pytest.fixture(scope="module")
def facade_without_predictor(
    tmp_path_factory: pytest.TempPathFactory, registered: RegisteredModel, market_uri: str
) -> Iterator[ManagedProcess]:
    """A facade whose predictor is down (nothing listens on its port); MLflow is up."""
    with _stranded(
        tmp_path_factory, registered, market_uri, PREDICTOR_URL=f"http://127.0.0.1:{free_port()}"
    ) as p:
        yield p


@pytest.fixture(scope="module")
def facade_without_mlflow(
    tmp_path_factory: pytest.TempPathFactory,
    registered: RegisteredModel,
    market_uri: str,
    predictor: ManagedProcess,
) -> Iterator[ManagedProcess]:
    """A facade whose MLflow is down; the predictor is up."""
    dead = f"http://127.0.0.1:{free_port()}"
    with _stranded(
        tmp_path_factory, registered, market_uri, PREDICTOR_URL=predictor.url, MLFLOW_TRACKING_URI=dead
    ) as p:
        yield p


def test_predictor_down_gives_503_with_a_message_and_degraded_health(
    facade_without_predictor: ManagedProcess,
) -> None:
    with httpx.Client(base_url=facade_without_predictor.url, timeout=60) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["predictor"] == "unavailable"
        predict = client.post("/predict", params={"alias": "20250327"})
        assert predict.status_code == 503 and "predictor" in predict.json()["detail"]
        assert client.get("/predict-champion").status_code == 503
        assert client.post("/predict", params={"alias": "a/b"}).status_code == 422


def test_mlflow_down_gives_aliases_503_and_health_degraded_but_200(
    facade_without_mlflow: ManagedProcess,
) -> None:
    with httpx.Client(base_url=facade_without_mlflow.url, timeout=60) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["mlflow"] == "unavailable"
        assert health.json()["model_loaded"] is True
        aliases = client.get("/aliases")
        assert aliases.status_code == 503 and "MLflow" in aliases.json()["detail"]
