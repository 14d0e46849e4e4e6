from __future__ import annotations

from datetime import date

import pytest

from btcforecast.alias_names import (
    InvalidAliasError,
    backtest_alias,
    backtest_date,
    normalize_alias,
    sort_aliases,
)


def test_bare_date_means_the_backtest_alias() -> None:
    assert normalize_alias("20250327") == "backtest_20250327"


def test_backtest_alias_passes_through() -> None:
    assert normalize_alias("backtest_20250327") == "backtest_20250327"


def test_named_alias_passes_through() -> None:
    assert normalize_alias("production") == "production"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * 65, "longer than 64"),
        ("../etc/passwd", "malformed"),
        ("prod/uction", "malformed"),
        ("prod uction", "malformed"),
        ("produção", "malformed"),
        ("20251341", "impossible date"),
        ("backtest_2025", "backtest aliases are"),
    ],
)
def test_invalid_alias_is_refused_naming_the_problem(raw: str, problem: str) -> None:
    with pytest.raises(InvalidAliasError, match=problem):
        normalize_alias(raw)


def test_backtest_date_round_trips() -> None:
    assert backtest_date(backtest_alias(date(2025, 6, 26))) == date(2025, 6, 26)


def test_named_alias_has_no_backtest_date() -> None:
    assert backtest_date("staging") is None


def test_aliases_sort_named_first_then_backtests_by_date() -> None:
    unsorted = ["backtest_20250403", "staging", "backtest_20250327", "production"]
    assert sort_aliases(unsorted) == ["production", "staging", "backtest_20250327", "backtest_20250403"]
