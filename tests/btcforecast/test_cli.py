"""`btcf` as a user runs it: a subprocess, real files, real MLflow; errors are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from btcforecast import cli
from btcforecast.errors import InputError

BTCF = [sys.executable, "-c", "from btcforecast.cli import main; main()"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BTCF, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, mlflow) -> dict[str, str]:
    state = tmp_path_factory.mktemp("cli")
    return {"STATE_DIR": str(state), "MLFLOW_TRACKING_URI": mlflow.url, "MODEL_NAME": f"cli-{state.name}"}


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory, market_bars: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("csv") / "bars.csv"
    market_bars.loc["2025-02-01":"2025-04-30"].rename_axis("timestamps").to_csv(path)
    return path


@pytest.fixture(scope="module")
def trained(env: dict[str, str], csv_file: Path) -> dict[str, str]:
    """Market data imported and one model trained through the CLI, once for this module."""
    imported = run(["data", "import", str(csv_file)], env)
    assert imported.returncode == 0, imported.stderr
    result = run(["train", "--base-date", "2025-04-03", "--epochs", "2", "--train-days", "30"], env)
    assert result.returncode == 0, result.stderr
    return env


def test_data_info_describes_the_imported_csv(trained: dict[str, str]) -> None:
    info = run(["data", "info"], trained)
    assert info.returncode == 0 and "2136 bars" in info.stdout and "csv:bars.csv" in info.stdout


def test_a_broken_csv_is_one_error_line_and_a_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamps,open,high,low,close\n2025-01-01T00:00:00Z,1,2,0.5,1.5\n")
    result = run(["data", "import", str(bad)], {"STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "volume" in result.stderr
    assert not (tmp_path / "market").exists()


def test_train_registers_a_version_under_its_backtest_alias(trained: dict[str, str]) -> None:
    listed = run(["aliases"], trained)
    assert "backtest_20250403\t1" in listed.stdout.splitlines()


def test_promote_from_an_unknown_alias_fails_with_its_name(trained: dict[str, str]) -> None:
    result = run(["promote", "production", "--from", "backtest_20990101"], trained)
    assert result.returncode == 1 and "backtest_20990101" in result.stderr


def test_promote_moves_an_alias(trained: dict[str, str]) -> None:
    result = run(["promote", "production", "--from", "backtest_20250403"], trained)
    assert result.returncode == 0 and result.stdout.strip() == "production -> version 1"


def test_a_project_error_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def failing() -> None:
        raise InputError("--every 'x': use a number of days like 7d")

    monkeypatch.setattr(cli, "app", failing)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: --every 'x': use a number of days like 7d\n"


@pytest.mark.parametrize("bug", [KeyError("alias"), IndexError("list index out of range"), ValueError("x")])
def test_a_programming_error_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, bug: Exception) -> None:
    def failing() -> None:
        raise bug

    monkeypatch.setattr(cli, "app", failing)
    with pytest.raises(type(bug)):
        cli.main()


def test_an_impossible_date_option_is_a_user_error(env: dict[str, str]) -> None:
    result = run(["train", "--base-date", "2025-02-30"], env)
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1] == "error: --base-date '2025-02-30' is not a date (YYYY-MM-DD)"
    )
