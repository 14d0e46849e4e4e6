"""GET /evaluation on the real facade, predictor and MLflow: the quality gate's backtest.

The session's `btc-lstm` has versions for base dates 2025-03-20, 03-27, 04-03 and 07-24; the
market data end on 2025-07-31 23:00, so 192 hours follow the last base date.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.registry import RegisteredModel

pytestmark = pytest.mark.timeout(300)


def evaluation(api: httpx.Client, candidate: str, incumbent: str, **params: object) -> httpx.Response:
    return api.get("/evaluation", params={"candidate": candidate, "incumbent": incumbent, **params})


def test_both_versions_are_scored_on_the_most_recent_hours_after_both_base_dates(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    newer, older = registered.version_of("backtest_20250724"), registered.version_of("backtest_20250403")
    response = evaluation(api, newer, older, hours=168)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["hours"], body["requested_hours"]) == (168, 168)
    assert (body["start"], body["end"]) == ("2025-07-25T00:00:00Z", "2025-07-31T23:00:00Z")
    assert body["candidate"]["version"] == newer and body["candidate"]["base_date"] == "2025-07-24"
    assert body["incumbent"]["version"] == older and body["incumbent"]["base_date"] == "2025-04-03"
    assert body["quantiles"] == [0.1, 0.5, 0.9]
    for side in ("candidate", "incumbent"):
        scores = body[side]
        assert scores["pinball"] > 0 and scores["mae"] > 0
        assert 0 <= scores["coverage"] <= 1
    assert body["persistence_mae"] > 0


def test_fewer_hours_are_taken_when_fewer_follow_the_later_base_date(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    newer, older = registered.version_of("backtest_20250724"), registered.version_of("backtest_20250403")
    body = evaluation(api, older, newer, hours=500).json()

    assert (body["hours"], body["start"]) == (192, "2025-07-24T00:00:00Z")


def test_an_old_pair_is_scored_on_the_latest_hours_not_right_after_its_base_dates(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    a, b = registered.version_of("backtest_20250320"), registered.version_of("backtest_20250327")
    body = evaluation(api, a, b, hours=24).json()

    assert (body["hours"], body["start"], body["end"]) == (24, "2025-07-31T00:00:00Z", "2025-07-31T23:00:00Z")


def test_too_few_hours_after_both_base_dates_is_409_naming_them(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    newer, older = registered.version_of("backtest_20250724"), registered.version_of("backtest_20250403")
    response = evaluation(api, newer, older, hours=720, min_hours=720)

    assert response.status_code == 409
    assert "only 192 hours" in response.json()["detail"]
    assert "at least 720 needed" in response.json()["detail"]


def test_an_unknown_version_is_404_naming_it(api: httpx.Client, registered: RegisteredModel) -> None:
    response = evaluation(api, "999", registered.version_of("production"))

    assert response.status_code == 404
    assert "999" in response.json()["detail"]


def test_another_registered_model_is_404(api: httpx.Client, registered: RegisteredModel) -> None:
    version = registered.version_of("production")
    response = evaluation(api, version, version, model="another-model")

    assert response.status_code == 404
    assert "another-model" in response.json()["detail"]


def test_min_hours_above_hours_is_409_like_too_few_hours(
    api: httpx.Client, registered: RegisteredModel
) -> None:
    version = registered.version_of("production")
    assert evaluation(api, version, version, hours=24, min_hours=48).status_code == 409
