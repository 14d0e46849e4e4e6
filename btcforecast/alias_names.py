"""MLflow alias names: parsing, validation, and the weekly backtest naming scheme.

Shared by the facade, the predictor and the operator so that `20250327`, `backtest_20250327` and
named aliases mean the same thing everywhere.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from btcforecast.errors import InputError

BACKTEST_PREFIX = "backtest_"
MAX_ALIAS_LENGTH = 64
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_BARE_DATE_RE = re.compile(r"^\d{8}$")
_BACKTEST_RE = re.compile(r"^backtest_(\d{8})$")
ALIAS_PATTERN = r"^(?:[0-9]{8}|[A-Za-z][A-Za-z0-9_-]{0,63})$"
"""The shape of an alias a request may name (a bare YYYYMMDD or a name), for OpenAPI documents; what
:func:`normalize_alias` refuses beyond it (``backtest_`` without a real date) names no alias."""


class InvalidAliasError(InputError):
    """An alias that can never exist: empty, too long, path-like, or not a valid date."""


def normalize_alias(raw: str) -> str:
    """Return the MLflow alias a user meant; raise InvalidAliasError naming the problem.

    `20250327` means `backtest_20250327`; named aliases pass through unchanged.
    """
    alias = raw.strip()
    if not alias:
        raise InvalidAliasError("alias is empty")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidAliasError(f"alias is longer than {MAX_ALIAS_LENGTH} characters")
    if _BARE_DATE_RE.match(alias):
        alias = BACKTEST_PREFIX + alias
    if not _ALIAS_RE.match(alias):
        raise InvalidAliasError(
            f"alias {raw!r} is malformed: use letters, digits, '_' or '-', starting with a letter"
        )
    match = _BACKTEST_RE.match(alias)
    if match:
        backtest_date(alias)
    elif alias.startswith(BACKTEST_PREFIX):
        raise InvalidAliasError(f"alias {raw!r} is malformed: backtest aliases are backtest_YYYYMMDD")
    return alias


def backtest_alias(day: date) -> str:
    return f"{BACKTEST_PREFIX}{day:%Y%m%d}"


def backtest_date(alias: str) -> date | None:
    """The base date of a backtest alias, or None for a named alias."""
    match = _BACKTEST_RE.match(alias)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError as e:
        raise InvalidAliasError(f"alias {alias!r} names an impossible date") from e


def is_backtest(alias: str) -> bool:
    return _BACKTEST_RE.match(alias) is not None


def sort_aliases(aliases: list[str]) -> list[str]:
    """Named aliases first (alphabetically), then backtest aliases by date."""
    named = sorted(a for a in aliases if not is_backtest(a))
    backtests = sorted((a for a in aliases if is_backtest(a)), key=lambda a: a[len(BACKTEST_PREFIX) :])
    return named + backtests
