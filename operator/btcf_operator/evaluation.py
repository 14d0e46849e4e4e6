"""The operator's client of the facade's ``GET /evaluation``: both versions backtested, as figures.

The backtest runs in the facade, where the market data and the predictor are; the operator only
asks and judges (:mod:`btcf_operator.gate`), so it stays free of torch and of market data. The
facade's 409 means "no recent hours to judge on" (:class:`GateNoData`); anything else that is not
an evaluation, an unreachable facade included, is :class:`GateUnavailable`.
"""

from __future__ import annotations

import httpx

from btcf_operator.gate import Evaluation, EvaluationFormatError, parse_evaluation
from btcforecast.modelalias import Gate


class GateNoData(Exception):
    """Too few hours after both versions' base dates (the facade's 409 detail is the message)."""


class GateUnavailable(Exception):
    """No evaluation could be had: no facade configured, unreachable, or an unexpected answer."""


async def request_evaluation(
    http: httpx.AsyncClient,
    facade_url: str | None,
    *,
    model: str,
    candidate: str,
    incumbent: str,
    gate: Gate,
    timeout: float,
) -> Evaluation:
    """Ask the facade to backtest ``candidate`` against ``incumbent`` on the gate's hours."""
    if not facade_url:
        raise GateUnavailable("the operator has no FACADE_URL to ask for the quality gate's backtest")
    url = facade_url.rstrip("/") + "/evaluation"
    params = {
        "model": model,
        "candidate": candidate,
        "incumbent": incumbent,
        "hours": gate.hours,
        "min_hours": gate.min_hours,
    }
    try:
        response = await http.get(url, params=params, timeout=httpx.Timeout(timeout, connect=5.0))
    except httpx.HTTPError as e:
        raise GateUnavailable(f"facade at {facade_url} unreachable: {type(e).__name__}: {e}") from e
    if response.status_code == 409:
        raise GateNoData(_detail(response))
    if response.status_code != 200:
        raise GateUnavailable(f"facade answered {response.status_code}: {_detail(response)}")
    try:
        return parse_evaluation(response.json())
    except (ValueError, EvaluationFormatError) as e:
        raise GateUnavailable(str(e)) from e


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:300]
    return str(body)[:300]
