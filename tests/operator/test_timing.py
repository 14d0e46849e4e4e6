"""Status times, deadlines and the retry backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from btcf_operator.timing import backoff, deadline_passed, format_time, parse_time

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def test_times_are_written_in_utc_to_the_second_and_read_back() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    assert format_time(local) == "2025-07-01T12:00:00Z"
    assert parse_time("2025-07-01T12:00:00Z") == NOW
    assert parse_time(None) is None


def test_the_deadline_passes_after_its_seconds() -> None:
    started = format_time(NOW)
    assert not deadline_passed(started, 300, NOW + timedelta(seconds=299))
    assert deadline_passed(started, 300, NOW + timedelta(seconds=301))


def test_no_recorded_start_never_passes_the_deadline() -> None:
    assert not deadline_passed(None, 0, NOW)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 5, 30) for n in range(5)] == [5, 10, 20, 30, 30]
