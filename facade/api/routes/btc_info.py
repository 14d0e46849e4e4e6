"""GET /btc-info: hourly bars, 2025-04-01 00:00 .. 2025-06-30 23:00 unless start/end say otherwise.

409: the range is empty or outside the market data held.
"""

from __future__ import annotations

from fastapi import APIRouter

from btcforecast.problems import problem_responses
from facade.api.deps import ForecasterDep
from facade.api.format import iso_hours
from facade.api.params import EndQuery, StartQuery
from facade.schemas import BtcInfoResponse
from facade.time_range import parse_time

router = APIRouter(tags=["market"])


@router.get("/btc-info", responses=problem_responses(409, 422, 503))
async def get_btc_info(
    forecaster: ForecasterDep,
    start: StartQuery = None,
    end: EndQuery = None,
) -> BtcInfoResponse:
    lo = parse_time("start", start) if start is not None else None
    hi = parse_time("end", end, end_of_day=True) if end is not None else None
    bars = await forecaster.bars(lo, hi)
    source = bars.attrs.get("source")
    return BtcInfoResponse(
        datetime=iso_hours(bars.index),
        btc_open=bars["open"].tolist(),
        btc_high=bars["high"].tolist(),
        btc_low=bars["low"].tolist(),
        btc_close=bars["close"].tolist(),
        btc_volume=bars["volume"].tolist(),
        data_source=source,
        synthetic=source == "synthetic",
    )
