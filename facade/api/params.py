"""Query parameters several routes share, declared once with what the code enforces (patterns and
lengths), so the OpenAPI document refuses exactly what the routes refuse."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from btcforecast.alias_names import ALIAS_PATTERN
from facade.schemas import CALLBACK_URL_PATTERN
from facade.ssrf import MAX_URL_LENGTH
from facade.time_range import TIME_PATTERN

TIME_FORMS = "YYYY-MM-DD, YYYYMMDD or an ISO datetime on the hour, UTC unless an offset says otherwise"

AliasQuery = Annotated[
    str | None, Query(pattern=ALIAS_PATTERN, description="backtest_20250327, 20250327 or a named alias")
]


def time_query(description: str) -> object:
    return Query(pattern=TIME_PATTERN, description=f"{description} ({TIME_FORMS})")


StartQuery = Annotated[str | None, time_query("first hour")]
EndQuery = Annotated[str | None, time_query("last hour, inclusive; a bare date means its last hour")]
CallbackQuery = Annotated[
    str | None,
    Query(
        pattern=CALLBACK_URL_PATTERN,
        max_length=MAX_URL_LENGTH,
        description="answer 202 and POST the result here (403 when the SSRF rules refuse it)",
    ),
]
