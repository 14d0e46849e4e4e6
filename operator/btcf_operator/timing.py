"""Times as the status writes them (UTC, to the second), deadlines, and the retry backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deadline_passed(started_at: str | None, deadline_seconds: float, now: datetime) -> bool:
    """True once ``deadline_seconds`` have passed since ``started_at`` (no start recorded: never)."""
    started = parse_time(started_at)
    return started is not None and now - started > timedelta(seconds=deadline_seconds)


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Exponential backoff: initial, 2x, 4x, ... capped at ``maximum``."""
    return min(initial * (2 ** max(attempt, 0)), maximum)
