"""CSV import: the real file as is, other exports' formats, and broken files named by row and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from btcforecast.market import (
    DEFAULT_END,
    DEFAULT_START,
    MarketDataError,
    generate_bars,
    read_csv,
    validate_bars,
)

HEADER = "timestamps,open,high,low,close,volume,amount"


def _write(tmp_path: Path, lines: list[str], name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(n: int = 5) -> list[str]:
    bars = generate_bars("2024-01-01", f"2024-01-01 {n - 1:02d}:00", seed=1)
    return [
        f"{ts:%Y-%m-%d %H:%M:%S},{r.open},{r.high},{r.low},{r.close},{r.volume},1.0"
        for ts, r in zip(bars.index, bars.itertuples(), strict=True)
    ]


def test_reads_the_real_file_as_is(real_csv_path: Path) -> None:
    bars = read_csv(real_csv_path)
    report = validate_bars(bars)
    assert (report.rows, report.first, report.last) == (13_872, DEFAULT_START, DEFAULT_END)
    assert report.gaps == ()
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.attrs["source"] == f"csv:{real_csv_path.name}"


def test_extra_columns_are_ignored_and_source_is_the_file_name(tmp_path: Path) -> None:
    bars = read_csv(_write(tmp_path, [HEADER, *_rows()]))
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.attrs["source"] == "csv:bars.csv"
    assert bars.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


@pytest.mark.parametrize("name", ["timestamps", "Timestamp", "DATETIME", "date", "time", "open_time"])
def test_timestamp_column_names_are_recognised(tmp_path: Path, name: str) -> None:
    header = HEADER.replace("timestamps", name)
    assert len(read_csv(_write(tmp_path, [header, *_rows(3)]))) == 3


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["1704067200", "1704070800"], "2024-01-01 00:00"),
        (["1704067200000", "1704070800000"], "2024-01-01 00:00"),
        (["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"], "2024-01-01 00:00"),
        (["2024-01-01T02:00:00+02:00", "2024-01-01T03:00:00+02:00"], "2024-01-01 00:00"),
    ],
    ids=["epoch-seconds", "epoch-milliseconds", "iso-z", "iso-offset"],
)
def test_timestamp_formats_are_detected(tmp_path: Path, stamps: list[str], expected: str) -> None:
    lines = [HEADER] + [f"{s},100,110,90,105,1,0" for s in stamps]
    bars = read_csv(_write(tmp_path, lines))
    assert bars.index[0] == pd.Timestamp(expected, tz="UTC")
    assert bars.index[1] - bars.index[0] == pd.Timedelta(hours=1)


def test_rows_in_reverse_order_are_sorted(tmp_path: Path) -> None:
    bars = read_csv(_write(tmp_path, [HEADER, *reversed(_rows())]))
    assert bars.index.is_monotonic_increasing


def test_missing_column_names_the_header_and_column(tmp_path: Path) -> None:
    lines = [HEADER.replace(",close", "")] + [",".join(r.split(",")[:4] + r.split(",")[5:]) for r in _rows()]
    with pytest.raises(MarketDataError, match=r"bars\.csv: header row, column 'close': missing") as info:
        read_csv(_write(tmp_path, lines))
    assert info.value.column == "close"


def test_unparsable_timestamp_names_row_and_column(tmp_path: Path) -> None:
    rows = _rows()
    rows[2] = "yesterday-ish" + rows[2][19:]
    with pytest.raises(
        MarketDataError, match=r"row 3, column 'timestamps': cannot parse timestamp 'yesterday-ish'"
    ):
        read_csv(_write(tmp_path, [HEADER, *rows]))


def test_duplicate_hour_names_row_and_column(tmp_path: Path) -> None:
    rows = _rows()
    rows.insert(4, rows[1])
    with pytest.raises(
        MarketDataError, match=r"row 5, column 'timestamps': duplicate hour .* \(also in row 2\)"
    ) as info:
        read_csv(_write(tmp_path, [HEADER, *rows]))
    assert (info.value.row, info.value.column) == (5, "timestamps")


def test_negative_price_names_row_and_column(tmp_path: Path) -> None:
    rows = _rows()
    fields = rows[3].split(",")
    fields[3] = "-" + fields[3]
    rows[3] = ",".join(fields)
    with pytest.raises(MarketDataError, match=r"row 4, column 'low': negative price") as info:
        read_csv(_write(tmp_path, [HEADER, *rows]))
    assert (info.value.row, info.value.column) == (4, "low")


def test_non_numeric_value_names_row_and_column(tmp_path: Path) -> None:
    rows = _rows()
    fields = rows[0].split(",")
    fields[5] = "lots"
    rows[0] = ",".join(fields)
    with pytest.raises(MarketDataError, match=r"row 1, column 'volume': not a number: 'lots'"):
        read_csv(_write(tmp_path, [HEADER, *rows]))


def test_errors_use_the_files_own_column_names(tmp_path: Path) -> None:
    rows = _rows()
    fields = rows[1].split(",")
    fields[4] = "-1"
    rows[1] = ",".join(fields)
    header = "Date,Open,High,Low,Close,Volume"
    with pytest.raises(MarketDataError, match=r"row 2, column 'Close': negative price"):
        read_csv(_write(tmp_path, [header, *(",".join(r.split(",")[:6]) for r in rows)]))
