"""`btcf`: the command line for data, training, the registry and the local stack.

Commands parse, call a plain function from the core package and print; an error is one line on
stderr and a non-zero exit.
"""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from btcforecast import registry
from btcforecast.alias_names import backtest_alias, sort_aliases
from btcforecast.backtests import DEFAULT_END, DEFAULT_START, base_dates, parse_every, train_backtests
from btcforecast.devservers.seaweedfs import DEFAULT_S3_PORT
from btcforecast.errors import InputError, ProjectError
from btcforecast.market import (
    MarketDataNotFound,
    download_into_store,
    import_csv,
    open_store,
)
from btcforecast.settings import CoreSettings, get_settings
from btcforecast.training import TrainingParams, train_for_base_date

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=__doc__)
data_app = typer.Typer(no_args_is_help=True, help="Market data: import, download, inspect.")
app.add_typer(data_app, name="data")

EXPECTED_ERRORS = (ProjectError, FileNotFoundError)
"""Printed as one line: what the user can act on. Anything else is a bug and keeps its traceback."""

OnlineOption = Annotated[
    bool,
    typer.Option(
        "--online/--offline",
        envvar="BTCF_ONLINE",
        help="May market data be downloaded from the public exchange when no CSV is configured?",
    ),
]


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise InputError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from e


def _settings() -> CoreSettings:
    return get_settings()


def _client() -> registry.MlflowClient:
    return registry.connect(_settings().mlflow_tracking_uri)


@data_app.command("import")
def data_import(csv: Path) -> None:
    """Validate a CSV of hourly bars and replace the stored market data with it."""
    store = open_store(_settings())
    report = import_csv(csv, store)
    typer.echo(f"imported {report.rows} bars {report.first} .. {report.last} into {store.uri}")
    for gap in report.gaps:
        typer.echo(f"warning: gap of {gap.missing_hours} h after {gap.after}", err=True)


@data_app.command("download")
def data_download(
    start: Annotated[str, typer.Option(help="first hour (UTC)")] = "2024-01-01",
    end: Annotated[str, typer.Option(help="last hour (UTC)")] = "2025-07-31 23:00",
    base_url: Annotated[str | None, typer.Option(help="exchange API base URL")] = None,
) -> None:
    """Download hourly candles from the exchange into the store; resumes after what it holds."""
    store = open_store(_settings())
    kwargs = {"base_url": base_url} if base_url else {}
    report = download_into_store(store, start, end, **kwargs)
    typer.echo(f"stored {report.rows} bars {report.first} .. {report.last} in {store.uri}")


@data_app.command("info")
def data_info() -> None:
    """What the market data store holds."""
    info = open_store(_settings()).info()
    if not info.exists:
        raise MarketDataNotFound(f"no market data at {info.uri}")
    label = " (SYNTHETIC)" if info.synthetic else ""
    typer.echo(f"{info.uri}: {info.rows} bars {info.first} .. {info.last}, source {info.source}{label}")


@app.command()
def train(
    base_date: Annotated[str, typer.Option("--base-date", help="YYYY-MM-DD; trains on the bars before it")],
    alias: Annotated[str | None, typer.Option(help="alias to set (default backtest_YYYYMMDD)")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = TrainingParams.epochs,
    train_days: Annotated[int, typer.Option(min=1, help="days of bars before the base date")] = (
        TrainingParams.train_days
    ),
) -> None:
    """Train one model for a base date and register it as a new version."""
    day = _day("--base-date", base_date)
    bars = open_store(_settings()).read()
    trained = train_for_base_date(bars, day, TrainingParams(epochs=epochs, train_days=train_days))
    version = registry.register(
        _client(), _settings().model_name, trained, alias=alias or backtest_alias(day), bars=bars
    )
    metrics = trained.config.metrics["validation"]
    typer.echo(f"version {version} ({alias or backtest_alias(day)}): validation MAE {metrics['mae']:.2f}")


@app.command("train-backtests")
def train_backtests_command(
    start: Annotated[str, typer.Option(help="first base date")] = DEFAULT_START.isoformat(),
    end: Annotated[str, typer.Option(help="last base date")] = DEFAULT_END.isoformat(),
    every: Annotated[str, typer.Option(help="spacing, e.g. 7d")] = "7d",
    epochs: Annotated[int, typer.Option(min=1)] = TrainingParams.epochs,
) -> None:
    """Train one model per base date (weekly by default), each aliased backtest_YYYYMMDD."""
    dates = base_dates(_day("--start", start), _day("--end", end), parse_every(every))
    bars = open_store(_settings()).read()
    with tqdm(total=len(dates), unit="model", file=sys.stderr) as bar:
        results = train_backtests(
            bars,
            _client(),
            _settings().model_name,
            dates,
            TrainingParams(epochs=epochs),
            on_done=lambda r: (bar.set_postfix_str(f"{r.alias} -> v{r.version}"), bar.update()),
        )
    for result in results:
        typer.echo(f"{result.alias}\t{result.version}")


@app.command()
def promote(
    alias: str,
    from_alias: Annotated[str | None, typer.Option("--from", help="point at where this alias points")] = None,
    version: Annotated[str | None, typer.Option(help="point at this version")] = None,
) -> None:
    """Point an alias (production, staging, champion, ...) at a version or at another alias."""
    if (from_alias is None) == (version is None):
        raise InputError("give exactly one of --from ALIAS or --version V")
    target = registry.promote(
        _client(), _settings().model_name, alias, version=version, from_alias=from_alias
    )
    typer.echo(f"{alias} -> version {target}")


@app.command()
def aliases() -> None:
    """Aliases of the registered model and their versions."""
    found = registry.list_aliases(_client(), _settings().model_name)
    for alias in sort_aliases(list(found)):
        typer.echo(f"{alias}\t{found[alias]}")


@app.command()
def seed(
    online: OnlineOption = False,
    start: Annotated[str, typer.Option(help="first backtest base date")] = DEFAULT_START.isoformat(),
    end: Annotated[str, typer.Option(help="last backtest base date")] = DEFAULT_END.isoformat(),
    every: Annotated[str, typer.Option(help="spacing, e.g. 7d")] = "7d",
) -> None:
    """Load market data if needed, train missing weekly backtests, set staging and production."""
    from btcforecast.seeding import seed as run_seed

    settings = _settings()
    report = run_seed(
        settings,
        _client(),
        open_store(settings),
        online=online,
        start=_day("--start", start),
        end=_day("--end", end),
        every=parse_every(every),
        on_trained=lambda r: typer.echo(f"trained {r.alias} -> version {r.version}"),
    )
    label = " (SYNTHETIC)" if report.data.synthetic else ""
    typer.echo(f"market data: {report.data.rows} bars, source {report.data.source}{label}")
    for alias, version in report.aliases_set.items():
        typer.echo(f"{alias} -> version {version}")


@app.command()
def up(
    online: OnlineOption = False,
    s3: Annotated[bool, typer.Option(help="run a local S3 server (SeaweedFS) for market data")] = False,
    facade_port: int = 8000,
    predictor_port: int = 8080,
    callback_port: int = 9001,
    mlflow_port: int = 5000,
    s3_port: int = DEFAULT_S3_PORT,
    backtest_start: Annotated[str, typer.Option(help="first backtest base date")] = DEFAULT_START.isoformat(),
    backtest_end: Annotated[str, typer.Option(help="last backtest base date")] = DEFAULT_END.isoformat(),
) -> None:
    """Run MLflow, the predictor, the facade and the callback receiver until Ctrl-C."""
    from btcforecast.local_stack import LocalPorts, run_stack

    ports = LocalPorts(facade_port, predictor_port, callback_port, mlflow_port, s3_port)
    backtests = (_day("--backtest-start", backtest_start), _day("--backtest-end", backtest_end))
    run_stack(_settings(), ports, online=online, with_s3=s3, backtests=backtests)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "urllib3", "httpx", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()  # standalone: usage errors print and exit 2
    except EXPECTED_ERRORS as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)
