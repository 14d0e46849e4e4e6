"""Read hourly OHLCV bars from a CSV a user gives us, whatever its column names and time format.

Exports differ: the timestamp column may be ``timestamps``, ``timestamp``, ``datetime``, ``date``,
``time`` or ``open_time``, in any case; times may be ISO strings (naive means UTC) or epoch seconds
or milliseconds. Extra columns (``amount``, ``trades``...) are ignored. Every error names the 1-based
data row (the header is not counted; file line = row + 1) and the column, because the user has to
find and fix it in the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from btcforecast.market.bars import COLUMNS, INDEX_NAME, MarketDataError, make_bars, validate_bars

TIMESTAMP_NAMES: tuple[str, ...] = ("timestamps", "timestamp", "datetime", "date", "time", "open_time")
# Above these magnitudes an epoch number is in milliseconds or microseconds (1e11 s is year 5138).
_EPOCH_MS_FROM = 1e11
_EPOCH_US_FROM = 1e14


def _row(position: int) -> int:
    return position + 1


def _find_columns(header: list[str]) -> tuple[str, dict[str, str]]:
    by_lower = {h.strip().lower(): h for h in header}
    ts_col = next((by_lower[n] for n in TIMESTAMP_NAMES if n in by_lower), None)
    if ts_col is None:
        raise MarketDataError(
            f"header row, column 'timestamp': missing (expected one of {', '.join(TIMESTAMP_NAMES)}); "
            f"found {', '.join(header)}",
            column="timestamp",
        )
    mapping: dict[str, str] = {}
    for c in COLUMNS:
        if c not in by_lower:
            raise MarketDataError(f"header row, column '{c}': missing; found {', '.join(header)}", column=c)
        mapping[c] = by_lower[c]
    return ts_col, mapping


def _parse_timestamps(raw: pd.Series, column: str) -> pd.DatetimeIndex:
    text = raw.fillna("").str.strip()
    empty = np.flatnonzero((text == "").to_numpy())
    if empty.size:
        i = int(empty[0])
        raise MarketDataError(
            f"row {_row(i)}, column '{column}': empty timestamp", row=_row(i), column=column
        )
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        magnitude = float(numbers.abs().max())
        unit = "us" if magnitude >= _EPOCH_US_FROM else "ms" if magnitude >= _EPOCH_MS_FROM else "s"
        return pd.DatetimeIndex(pd.to_datetime(numbers.to_numpy(), unit=unit, utc=True))
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise MarketDataError(
            f"row {_row(i)}, column '{column}': cannot parse timestamp {text.iloc[i]!r} "
            "(expected ISO 8601 or epoch seconds/milliseconds)",
            row=_row(i),
            column=column,
        )
    return pd.DatetimeIndex(parsed)


def _parse_numbers(raw: pd.Series, column: str) -> np.ndarray:
    text = raw.fillna("").str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    bad = np.flatnonzero(np.isnan(values) & (text.str.lower() != "nan").to_numpy())
    if bad.size:
        i = int(bad[0])
        shown = text.iloc[i]
        problem = "empty value" if shown == "" else f"not a number: {shown!r}"
        raise MarketDataError(f"row {_row(i)}, column '{column}': {problem}", row=_row(i), column=column)
    return values


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV of hourly bars into the canonical form, validated; label it ``csv:<file name>``.

    Rows may come in any order (they are sorted by time); a duplicate hour is an error naming both
    rows. Raises :class:`MarketDataError` naming the row and column of the first problem.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError as e:
        raise MarketDataError(f"{path}: no such file") from e
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise MarketDataError(f"{path.name}: not a readable CSV: {e}") from e
    try:
        return _to_bars(raw, path)
    except MarketDataError as e:
        raise MarketDataError(f"{path.name}: {e}", row=e.row, column=e.column) from e


def _to_bars(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    ts_col, mapping = _find_columns(list(raw.columns))
    index = _parse_timestamps(raw[ts_col], ts_col)
    values = {c: _parse_numbers(raw[src], src) for c, src in mapping.items()}
    rows = np.arange(1, len(raw) + 1)

    order = np.argsort(index.asi8, kind="stable")
    index, rows = index[order], rows[order]
    values = {c: v[order] for c, v in values.items()}
    dup = np.flatnonzero(np.diff(index.asi8) == 0)
    if dup.size:
        i = int(dup[0])
        first, second = sorted((int(rows[i]), int(rows[i + 1])))
        raise MarketDataError(
            f"row {second}, column '{ts_col}': duplicate hour {index[i].isoformat()} (also in row {first})",
            row=second,
            column=ts_col,
        )

    df = make_bars(index, values, source=f"csv:{path.name}")
    try:
        validate_bars(df, source_rows=rows)
    except MarketDataError as e:
        # Name the user's own column (e.g. 'Close' or 'open_time'), not ours.
        column = ts_col if e.column == INDEX_NAME else mapping.get(e.column or "", e.column)
        message = str(e).replace(f"column '{e.column}'", f"column '{column}'")
        raise MarketDataError(message, row=e.row, column=column) from e
    return df
