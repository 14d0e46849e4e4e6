"""First-run setup shared by `make up` and the chart's seed Job: data, backtest models, aliases.

Idempotent: existing data is kept unless a different CSV is configured, only the missing weekly
models are trained, and `staging`/`production` are set only when absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from mlflow.tracking import MlflowClient

from btcforecast import registry
from btcforecast.alias_names import backtest_alias
from btcforecast.backtests import (
    DEFAULT_END,
    DEFAULT_EVERY,
    DEFAULT_START,
    BacktestResult,
    base_dates,
    train_backtests,
)
from btcforecast.market import MarketStore, StoreInfo, import_into_store, load_market_data
from btcforecast.settings import CoreSettings
from btcforecast.training import TrainingParams

log = logging.getLogger(__name__)
SERVING_ALIASES = ("staging", "production")


@dataclass
class SeedReport:
    data: StoreInfo
    trained: list[BacktestResult] = field(default_factory=list)
    aliases_set: dict[str, str] = field(default_factory=dict)


def ensure_market_data(settings: CoreSettings, store: MarketStore, *, online: bool) -> tuple[StoreInfo, bool]:
    """Keep what the store holds unless a CSV is configured that it was not loaded from."""
    info = store.info()
    wanted_csv = settings.btc_data_csv
    if info.exists and (wanted_csv is None or info.source == f"csv:{wanted_csv.name}"):
        return info, False
    import_into_store(load_market_data(settings, online=online), store)
    return store.info(), True


def seed(
    settings: CoreSettings,
    client: MlflowClient,
    store: MarketStore,
    *,
    online: bool = False,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    every: timedelta = DEFAULT_EVERY,
    params: TrainingParams | None = None,
    on_trained: Callable[[BacktestResult], None] | None = None,
) -> SeedReport:
    info, _ = ensure_market_data(settings, store, online=online)
    report = SeedReport(data=info)
    existing = registry.list_aliases(client, settings.model_name)
    missing = [day for day in base_dates(start, end, every) if backtest_alias(day) not in existing]
    if missing:
        log.info("training %d backtest models (%s .. %s)", len(missing), missing[0], missing[-1])
        bars = store.read()
        report.trained = train_backtests(bars, client, settings.model_name, missing, params, on_trained)
        existing = registry.list_aliases(client, settings.model_name)
    newest = existing.get(backtest_alias(base_dates(start, end, every)[-1]))
    for alias in SERVING_ALIASES:
        if alias not in existing and newest is not None:
            registry.set_alias(client, settings.model_name, alias, newest)
            report.aliases_set[alias] = newest
    return report
