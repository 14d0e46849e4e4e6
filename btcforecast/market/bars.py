"""The one canonical form of market data, and the rules every import must pass.

Every source (CSV, exchange, synthetic) produces the same frame: a UTC ``DatetimeIndex`` named
``timestamp`` on whole hours and float64 columns ``open, high, low, close, volume``. Validation runs
on every import so that features and training never see a bar that cannot exist; a bad bar is
reported by the row of the source file (or its timestamp) and the column, so a user can fix it.

Provenance travels with the frame in ``df.attrs["source"]``: ``csv:<file>``, ``exchange:<name>``
or ``synthetic``. Synthetic data must stay labelled wherever it shows up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from btcforecast.errors import InputError

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
INDEX_NAME = "timestamp"
HOUR = pd.Timedelta(hours=1)
SOURCE_ATTR = "source"
SYNTHETIC = "synthetic"

# The seed API's default period (inclusive, hourly, UTC).
DEFAULT_START = pd.Timestamp("2024-01-01 00:00", tz="UTC")
DEFAULT_END = pd.Timestamp("2025-07-31 23:00", tz="UTC")


class MarketDataError(InputError):
    """Market data that breaks the canonical form; the message names the row (or time) and column."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass(frozen=True)
class Gap:
    """Missing hours between two present bars: ``after`` and ``before`` are the bars either side."""

    after: pd.Timestamp
    before: pd.Timestamp

    @property
    def missing_hours(self) -> int:
        return int((self.before - self.after) / HOUR) - 1


@dataclass(frozen=True)
class BarsReport:
    """What validation found: the range, the number of bars and any gaps (gaps are not errors)."""

    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    source: str | None
    gaps: tuple[Gap, ...] = field(default=())

    @property
    def missing_hours(self) -> int:
        return sum(g.missing_hours for g in self.gaps)

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC


def source_of(df: pd.DataFrame) -> str | None:
    """The provenance label of a frame, or None when nobody set it."""
    return df.attrs.get(SOURCE_ATTR)


def is_synthetic(df: pd.DataFrame) -> bool:
    """True when the bars were generated rather than observed."""
    return source_of(df) == SYNTHETIC


def with_source(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Label ``df`` with its provenance (in place) and return it."""
    df.attrs[SOURCE_ATTR] = source
    return df


def make_bars(
    index: pd.DatetimeIndex, values: np.ndarray | dict[str, np.ndarray], source: str
) -> pd.DataFrame:
    """Build a canonical frame from an index and column values (an (n, 5) array or a mapping)."""
    if isinstance(values, dict):
        data = {c: np.asarray(values[c], dtype="float64") for c in COLUMNS}
    else:
        arr = np.asarray(values, dtype="float64")
        data = {c: arr[:, i] for i, c in enumerate(COLUMNS)}
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    # No freq: frames from files and the store have none, and equal bars should compare equal.
    idx = pd.DatetimeIndex(idx, freq=None)
    df = pd.DataFrame(data, index=idx.rename(INDEX_NAME))
    return with_source(df, source)


def empty_bars(source: str) -> pd.DataFrame:
    """A canonical frame with no rows."""
    return make_bars(pd.DatetimeIndex([], tz="UTC"), np.empty((0, len(COLUMNS))), source)


def _where(i: int, index: pd.DatetimeIndex, rows: Sequence[int] | np.ndarray | None) -> str:
    if rows is not None:
        return f"row {int(rows[i])}"
    return f"timestamp {index[i].isoformat()}"


def _fail(
    problem: str, i: int, column: str, index: pd.DatetimeIndex, rows: Sequence[int] | np.ndarray | None
) -> MarketDataError:
    row = int(rows[i]) if rows is not None else None
    return MarketDataError(f"{_where(i, index, rows)}, column '{column}': {problem}", row=row, column=column)


def _check_shape(df: pd.DataFrame) -> pd.DatetimeIndex:
    if not isinstance(df.index, pd.DatetimeIndex):
        raise MarketDataError(
            f"index must be a DatetimeIndex, got {type(df.index).__name__}", column=INDEX_NAME
        )
    if df.index.tz is None or str(df.index.tz) != "UTC":
        raise MarketDataError(f"index must be in UTC, got tz={df.index.tz}", column=INDEX_NAME)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise MarketDataError(f"missing column(s): {', '.join(missing)}", column=missing[0])
    for c in COLUMNS:
        if df[c].dtype != np.float64:
            raise MarketDataError(f"column '{c}' must be float64, got {df[c].dtype}", column=c)
    return df.index


def validate_bars(df: pd.DataFrame, *, source_rows: Sequence[int] | np.ndarray | None = None) -> BarsReport:
    """Check ``df`` against the canonical rules; return a report or raise :class:`MarketDataError`.

    ``source_rows`` gives, per bar, its 1-based data row in the file it came from, so errors can
    point into that file; without it errors name the bar's timestamp.
    """
    index = _check_shape(df)
    if len(df) == 0:
        return BarsReport(rows=0, first=None, last=None, source=source_of(df))

    not_hourly = np.flatnonzero(np.asarray(index != index.floor("h")))
    if not_hourly.size:
        i = int(not_hourly[0])
        raise _fail(f"{index[i].isoformat()} is not on a whole hour", i, INDEX_NAME, index, source_rows)
    steps = np.diff(index.asi8)
    if steps.size:
        back = np.flatnonzero(steps < 0)
        if back.size:
            i = int(back[0]) + 1
            raise _fail(
                f"{index[i].isoformat()} is earlier than the bar before it", i, INDEX_NAME, index, source_rows
            )
        dup = np.flatnonzero(steps == 0)
        if dup.size:
            i = int(dup[0]) + 1
            raise _fail(f"duplicate hour {index[i].isoformat()}", i, INDEX_NAME, index, source_rows)

    values = {c: df[c].to_numpy() for c in COLUMNS}
    for c in COLUMNS:
        bad = np.flatnonzero(~np.isfinite(values[c]))
        if bad.size:
            i = int(bad[0])
            raise _fail(f"value {values[c][i]} is not a finite number", i, c, index, source_rows)
    for c in PRICE_COLUMNS:
        bad = np.flatnonzero(values[c] <= 0)
        if bad.size:
            i = int(bad[0])
            kind = "negative" if values[c][i] < 0 else "zero"
            raise _fail(f"{kind} price {values[c][i]}", i, c, index, source_rows)
    bad = np.flatnonzero(values["volume"] < 0)
    if bad.size:
        i = int(bad[0])
        raise _fail(f"negative volume {values['volume'][i]}", i, "volume", index, source_rows)
    body_top = np.maximum(values["open"], values["close"])
    body_bottom = np.minimum(values["open"], values["close"])
    bad = np.flatnonzero(values["high"] < body_top)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            f"high {values['high'][i]} is below max(open, close) {body_top[i]}", i, "high", index, source_rows
        )
    bad = np.flatnonzero(values["low"] > body_bottom)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            f"low {values['low'][i]} is above min(open, close) {body_bottom[i]}", i, "low", index, source_rows
        )

    gap_at = np.flatnonzero(steps > HOUR.value)
    gaps = tuple(Gap(after=index[int(i)], before=index[int(i) + 1]) for i in gap_at)
    return BarsReport(rows=len(df), first=index[0], last=index[-1], source=source_of(df), gaps=gaps)
