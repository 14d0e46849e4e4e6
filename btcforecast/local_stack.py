"""`make up`: every component as a local process, with embedded defaults, until Ctrl-C.

MLflow (sqlite, served artifacts), optionally SeaweedFS for the market data, then seeding (data,
weekly backtests, staging/production), then the predictor, the callback receiver and the facade.
Stops everything in reverse order on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from btcforecast import registry
from btcforecast.backtests import DEFAULT_END, DEFAULT_START, base_dates
from btcforecast.devservers.components import facade_process, predictor_process, receiver_process
from btcforecast.devservers.mlflow_server import mlflow_server
from btcforecast.devservers.process import LOOPBACK, ManagedProcess, port_open
from btcforecast.devservers.seaweedfs import DEFAULT_S3_PORT, seaweedfs
from btcforecast.errors import InputError
from btcforecast.market import open_store
from btcforecast.seeding import seed
from btcforecast.settings import CoreSettings

log = logging.getLogger(__name__)
PREDICTOR_READY_TIMEOUT = 180.0
EXAMPLE_DATE = date(2025, 3, 27)


@dataclass(frozen=True)
class LocalPorts:
    facade: int = 8000
    predictor: int = 8080
    callback: int = 9001
    mlflow: int = 5000
    s3: int = DEFAULT_S3_PORT


def component_processes(
    settings: CoreSettings, ports: LocalPorts, env: dict[str, str], logs: Path
) -> list[ManagedProcess]:
    """The predictor, the callback receiver and the facade, in start order."""
    predictor_env = {**env, "MODEL_ALIAS": settings.model_alias}
    facade_env = {**env, "PREDICTOR_URL": f"http://{LOOPBACK}:{ports.predictor}"}
    return [
        predictor_process(
            ports.predictor,
            predictor_env,
            logs / "predictor.log",
            extra_args=["--model_name", settings.model_name],
            ready_timeout=PREDICTOR_READY_TIMEOUT,
        ),
        receiver_process(ports.callback, env, logs / "callback.log"),
        facade_process(ports.facade, facade_env, logs / "facade.log"),
    ]


def example_alias(backtests: tuple[date, date]) -> str:
    """20250327 (the README's example) when it was trained, else the newest backtest."""
    if backtests[0] <= EXAMPLE_DATE <= backtests[1] and (EXAMPLE_DATE - backtests[0]).days % 7 == 0:
        return f"{EXAMPLE_DATE:%Y%m%d}"
    return f"{base_dates(*backtests)[-1]:%Y%m%d}"


def busy_ports(ports: LocalPorts, with_s3: bool) -> list[str]:
    wanted = {
        "facade": ports.facade,
        "predictor": ports.predictor,
        "callback": ports.callback,
        "mlflow": ports.mlflow,
    }
    if with_s3:
        wanted["s3"] = ports.s3
    return [f"{name} port {port}" for name, port in wanted.items() if port_open(LOOPBACK, port)]


def run_stack(
    settings: CoreSettings,
    ports: LocalPorts,
    *,
    online: bool,
    with_s3: bool,
    backtests: tuple[date, date] = (DEFAULT_START, DEFAULT_END),
) -> None:
    """Start everything, print where it is, block until Ctrl-C, stop everything."""
    busy = busy_ports(ports, with_s3)
    if busy:
        raise InputError(
            f"already in use on {LOOPBACK}: {', '.join(busy)} (stop it or pass other --*-port options)"
        )
    state = settings.state_dir.resolve()
    logs = state / "logs"
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with ExitStack() as stack:
        env = {
            "STATE_DIR": str(state),
            "MODEL_NAME": settings.model_name,
            # the facade signs callbacks and the bundled receiver verifies them with the same key
            "CALLBACK_SECRET": os.environ.get("CALLBACK_SECRET") or secrets.token_urlsafe(32),
        }
        overrides: dict[str, object] = {"state_dir": state}
        if with_s3:
            s3 = stack.enter_context(
                seaweedfs(
                    state,
                    s3_port=ports.s3,
                    access_key=settings.aws_access_key_id,
                    secret_key=settings.aws_secret_access_key.get_secret_value()
                    if settings.aws_secret_access_key
                    else None,
                )
            )
            env.update(
                S3_ENDPOINT_URL=s3.endpoint_url,
                AWS_ACCESS_KEY_ID=s3.access_key,
                AWS_SECRET_ACCESS_KEY=s3.secret_key,
            )
            overrides.update(
                s3_endpoint_url=s3.endpoint_url,
                aws_access_key_id=s3.access_key,
                aws_secret_access_key=SecretStr(s3.secret_key),
            )
        s3_settings = settings.model_copy(update=overrides)
        mlflow = stack.enter_context(
            mlflow_server(
                state / "mlflow", port=ports.mlflow, s3=s3_settings if s3_settings.s3_endpoint_url else None
            )
        )
        env["MLFLOW_TRACKING_URI"] = mlflow.url
        overrides["mlflow_tracking_uri"] = mlflow.url
        run_settings = settings.model_copy(update=overrides)
        if run_settings.btc_data_csv:
            env["BTC_DATA_CSV"] = str(run_settings.btc_data_csv)
        print(f"seeding: market data and backtest models (logs in {logs}) ...", flush=True)
        report = seed(
            run_settings,
            registry.connect(mlflow.url),
            open_store(run_settings),
            online=online,
            start=backtests[0],
            end=backtests[1],
            on_trained=lambda r: print(f"  trained {r.alias} -> version {r.version}", flush=True),
        )
        if report.data.synthetic:
            print(
                "WARNING: serving SYNTHETIC market data: set BTC_DATA_CSV for real BTC bars", file=sys.stderr
            )
        for process in component_processes(run_settings, ports, {**os.environ, **env}, logs):
            print(f"starting {process.name} ...", flush=True)
            stack.enter_context(process)
        print(
            "\nbtc-forecast is up:\n"
            f"  REST facade        http://{LOOPBACK}:{ports.facade}  (docs /docs, dashboard /dashboard)\n"
            f"  predictor (KServe) http://{LOOPBACK}:{ports.predictor}/v2/models/{settings.model_name}\n"
            f"  callback receiver  http://{LOOPBACK}:{ports.callback}/results\n"
            f"  MLflow             {mlflow.url}\n"
            f"  market data        {run_settings.resolved_market_data_uri} ({report.data.source})\n"
            f"  try: curl -X POST 'http://{LOOPBACK}:{ports.facade}/predict?alias={example_alias(backtests)}'\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        stop.wait()
        print("stopping ...", flush=True)
