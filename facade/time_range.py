"""The hours a request asks for: times parsed to UTC hours and ranges checked against the market data.

A prediction labelled hour ``t`` is the close of bar ``t`` made from the bars before it
(docs/architecture.md), so the first predictable hour is the first with a whole window of defined
features before it.
"""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from btcforecast.errors import InputError
from btcforecast.features import WARMUP, WINDOW

HOUR = pd.Timedelta(hours=1)
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2})?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_COMPACT_RE = re.compile(r"^\d{8}$")
MAX_TIME_LENGTH = 40


def _calendar_date(sep: str) -> str:
    """A regular expression of the real dates of years 1700-2199 (leap days included), ``sep``-separated:
    the years a timestamp in nanoseconds holds, as the market data's index does."""
    year = "(?:1[7-9]|2[01])[0-9]{2}"
    leap_year = "(?:(?:1[7-9]|2[01])(?:0[48]|[2468][048]|[13579][26])|2000)"
    days = (
        f"{sep}(?:(?:0[1-9]|1[0-2]){sep}(?:0[1-9]|1[0-9]|2[0-8])"
        f"|(?:0[13-9]|1[0-2]){sep}(?:29|30)|(?:0[13578]|1[02]){sep}31)"
    )
    return f"(?:{year}{days}|{leap_year}{sep}02{sep}29)"


TIME_PATTERN = (
    f"^(?:{_calendar_date('')}|{_calendar_date('-')}"
    "(?:[T ](?:[01][0-9]|2[0-3])(?::00(?::00)?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):?00)?)?)$"
)
"""What :func:`parse_time` accepts, for the OpenAPI document: a real date (``YYYY-MM-DD`` or
``YYYYMMDD``), optionally an hour on the hour with a whole-hour UTC offset."""


class OutOfData(InputError):
    """Times that are well formed but outside the market data we hold, or an empty range (409: the
    same request may succeed once the data covers it)."""


def parse_time(field: str, raw: str, *, end_of_day: bool = False) -> pd.Timestamp:
    """A UTC hour from ``YYYY-MM-DD``, ``YYYYMMDD`` or an ISO datetime on the hour.

    A bare date means its first hour, or its last hour when ``end_of_day`` (an inclusive end).
    """
    text = raw.strip()
    if not text:
        raise InputError(f"{field} is empty")
    if len(text) > MAX_TIME_LENGTH:
        raise InputError(f"{field} is longer than {MAX_TIME_LENGTH} characters")
    if _COMPACT_RE.match(text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if not _TIME_RE.match(text):
        raise InputError(f"{field} {raw!r} is not a date (YYYY-MM-DD) or an ISO datetime")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError(f"{field} {raw!r} is an impossible date: {e}") from e
    ts = pd.Timestamp(parsed)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.floor("h"):
        raise InputError(f"{field} {raw!r} is not on the hour; forecasts are hourly")
    if end_of_day and len(text) == 10:
        ts += 23 * HOUR
    return ts


def first_predictable(index: pd.DatetimeIndex, window: int = WINDOW) -> pd.Timestamp:
    """The first hour with a whole window of defined features before it."""
    need = WARMUP + window
    if len(index) <= need:
        raise OutOfData(f"the market data holds {len(index)} hours; a forecast needs more than {need}")
    return index[need]


def check_range(
    index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp | None, window: int = WINDOW
) -> pd.Timestamp:
    """Validate [start, end] against the data; return the end (the last bar when None)."""
    lo, hi = first_predictable(index, window), index[-1]
    span = f"predictions are possible from {_fmt(lo)} to {_fmt(hi)}"
    if end is not None and start > end:
        raise OutOfData(f"start {_fmt(start)} is after end {_fmt(end)}")
    if not lo <= start <= hi:
        raise OutOfData(f"start {_fmt(start)} is outside the data: {span}")
    if end is None:
        return hi
    if end > hi:
        raise OutOfData(f"end {_fmt(end)} is outside the data: {span}")
    return end


def _fmt(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M")
