"""The MLflow model registry: register trained models, move aliases, resolve and load versions.

An alias is resolved to a version exactly once and that version is what gets loaded, so the
version a component reports is the version it serves. Model files are config.json plus
safetensors weights; loading never unpickles. Each version is also an MLflow Model (an ``MLmodel``
beside those files, see btcforecast.mlflow_model), and, registered with the market bars, its run
carries a backtest of the hours the version would serve (metrics, report JSON and a PNG plot).
Versions registered before the MLmodel existed (the two files alone) keep loading.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import mlflow
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from btcforecast.alias_names import normalize_alias
from btcforecast.errors import NotFound, Unavailable

if TYPE_CHECKING:  # numpy and pandas: imported where versions are evaluated, not by the operator's import
    import numpy as np
    import pandas as pd

    from btcforecast.evaluation import BacktestReport
    from btcforecast.model import ForecastLSTM, ModelConfig
    from btcforecast.training import TrainedModel

log = logging.getLogger(__name__)

MODEL_ARTIFACT_PATH = "model"
BACKTEST_ARTIFACT_PATH = "backtest"
BACKTEST_PLOT = f"{BACKTEST_ARTIFACT_PATH}/forecast.png"
BACKTEST_REPORT = f"{BACKTEST_ARTIFACT_PATH}/report.json"
EXPERIMENT = "btc-lstm-training"
BACKTEST_DAYS = 7
"""A weekly version serves the 7 days after its base date in the stitched champion backtest."""

# MLflow's HTTP client retries for minutes by default; a service must answer "unavailable" quickly.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class AliasNotFoundError(NotFound):
    """The registered model has no such alias."""


class VersionNotFoundError(NotFound):
    """The registered model has no such version (or no such registered model)."""


class RegistryUnavailable(Unavailable):
    """MLflow cannot be reached."""


@dataclass(frozen=True)
class ResolvedVersion:
    name: str
    version: str
    alias: str | None
    run_id: str | None
    source: str


@dataclass
class LoadedModel:
    model: ForecastLSTM
    config: ModelConfig
    resolved: ResolvedVersion

    @property
    def version(self) -> str:
        return self.resolved.version


def connect(tracking_uri: str) -> MlflowClient:
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _is_missing(error: MlflowException) -> bool:
    return error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def _unavailable(error: Exception) -> RegistryUnavailable:
    return RegistryUnavailable(f"MLflow is unreachable: {str(error).splitlines()[0][:300]}")


def _as_ref(mv: ModelVersion, alias: str | None) -> ResolvedVersion:
    return ResolvedVersion(
        name=mv.name, version=str(mv.version), alias=alias, run_id=mv.run_id, source=mv.source
    )


def list_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version of the registered model; empty when the model is not registered yet."""
    try:
        model = client.get_registered_model(name)
    except RestException as e:
        if _is_missing(e):
            return {}
        raise _unavailable(e) from e
    except MlflowException as e:
        raise _unavailable(e) from e
    return {alias: str(version) for alias, version in model.aliases.items()}


def resolve(
    client: MlflowClient, name: str, alias: str | None = None, version: str | None = None
) -> ResolvedVersion:
    """Pin an alias (or check a version) to one concrete version."""
    try:
        if version is not None:
            return _as_ref(client.get_model_version(name, str(version)), alias)
        if alias is None:
            raise ValueError("resolve needs an alias or a version")
        alias = normalize_alias(alias)
        return _as_ref(client.get_model_version_by_alias(name, alias), alias)
    except RestException as e:
        if _is_missing(e):
            if version is not None:
                raise VersionNotFoundError(f"model {name!r} has no version {version!r}") from e
            raise AliasNotFoundError(f"model {name!r} has no alias {alias!r}") from e
        raise _unavailable(e) from e
    except MlflowException as e:
        raise _unavailable(e) from e


SERVING_FILES = ("config.json", "weights.safetensors")
"""What :func:`load_version` reads of a version (``btcforecast.model.CONFIG_FILE``/``WEIGHTS_FILE``,
named here because that module imports torch)."""

_INDIRECT_SCHEMES = ("models:", "runs:")
"""Sources that name no storage location: MLflow is asked where the files are."""


def _artifact_uri(client: MlflowClient, ref: ResolvedVersion) -> str:
    """Where the version's files are stored: its ``source`` when that is a storage location (what
    :func:`register` records, e.g. ``mlflow-artifacts:/...`` or ``s3://...``), else MLflow's answer."""
    if ref.source and not ref.source.startswith(_INDIRECT_SCHEMES):
        return ref.source
    return client.get_model_version_download_uri(ref.name, ref.version)


def download_version(client: MlflowClient, ref: ResolvedVersion, cache_dir: Path) -> Path:
    """The version's whole MLflow Model (MLmodel, environment files, config, weights) in
    ``cache_dir/<name>/<version>``, downloaded once (atomically). Serving needs less: see
    :func:`download_serving_files`, which shares the directory."""
    target = cache_dir / ref.name / ref.version
    if (target / "MLmodel").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{ref.version}-", dir=target.parent))
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=_artifact_uri(client, ref),
                dst_path=str(staging),
                tracking_uri=client._tracking_client.tracking_uri,
            )
        )
        _publish(local, target)
    except MlflowException as e:
        raise _unavailable(e) from e
    except OSError as e:
        if (target / "MLmodel").is_file():  # another process finished the same download first
            return target
        raise _unavailable(e) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download_serving_files(client: MlflowClient, ref: ResolvedVersion, cache_dir: Path) -> Path:
    """``config.json`` and the weights of the version in ``cache_dir/<name>/<version>``, downloaded
    once: two file requests (concurrent) and no listing, where the whole model costs a download-URI
    call, two listings and six files. A version is immutable, so files on disk are never fetched again.
    """
    target = cache_dir / ref.name / ref.version
    if all((target / f).is_file() for f in SERVING_FILES):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{ref.version}-", dir=target.parent))
    try:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(
            _artifact_uri(client, ref), tracking_uri=client._tracking_client.tracking_uri
        )
        with ThreadPoolExecutor(len(SERVING_FILES)) as pool:
            # _download_file: one request per file (download_artifacts lists the path first)
            list(pool.map(lambda f: repo._download_file(f, str(staging / f)), SERVING_FILES))
        _publish(staging, target)
    except MlflowException as e:
        raise _unavailable(e) from e
    except OSError as e:
        if all((target / f).is_file() for f in SERVING_FILES):  # another process was first
            return target
        raise _unavailable(e) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _publish(staging: Path, target: Path) -> None:
    """Move downloaded files to ``target``: the directory at once when it does not exist yet, else
    file by file (each ``os.replace`` is atomic, and a version's files never change)."""
    try:
        os.replace(staging, target)
        return
    except OSError:
        if not target.is_dir():
            raise
    for path in staging.iterdir():
        os.replace(path, target / path.name)


def load_version(client: MlflowClient, ref: ResolvedVersion, cache_dir: Path) -> LoadedModel:
    from btcforecast.model import load_model  # torch: only what loads models pays for it (not the operator)

    model, config = load_model(download_serving_files(client, ref, cache_dir))
    return LoadedModel(model=model, config=config, resolved=ref)


def load_alias(client: MlflowClient, name: str, alias: str, cache_dir: Path) -> LoadedModel:
    return load_version(client, resolve(client, name, alias=alias), cache_dir)


@dataclass(frozen=True)
class VersionBacktest:
    """A version scored on the hours it would serve (or, without later bars, its validation tail)."""

    period: Literal["after_base_date", "validation_tail"]
    hours: pd.DatetimeIndex
    windows: np.ndarray
    """float32 [N, T, F], the real windows predicted (the first one is the model's input example)."""
    actual: np.ndarray
    quantiles: np.ndarray
    """float32 [N, Q], in the order of the model's ``config.quantiles``."""
    report: BacktestReport


def backtest_period(
    bars: pd.DataFrame, trained: TrainedModel
) -> tuple[Literal["after_base_date", "validation_tail"], pd.Timestamp, pd.Timestamp]:
    """Up to BACKTEST_DAYS of hours from the base date on; else the validation tail before it."""
    import pandas as pd

    hour = pd.Timedelta(hours=1)
    start = pd.Timestamp(trained.base_date.isoformat(), tz="UTC")
    later = bars.index[bars.index >= start]
    if len(later):
        return "after_base_date", start, min(start + pd.Timedelta(days=BACKTEST_DAYS) - hour, later[-1])
    training = trained.config.training
    return (
        "validation_tail",
        pd.Timestamp(training["validation_start"]),
        pd.Timestamp(training["train_end"]) - hour,
    )


def backtest_version(trained: TrainedModel, bars: pd.DataFrame) -> VersionBacktest:
    """Predict every hour of :func:`backtest_period` with the trained model and score it."""
    import numpy as np

    from btcforecast.evaluation import backtest_report  # scipy: not for the operator's import
    from btcforecast.features import compute_features, history_start, windows_for_range
    from btcforecast.model import predict_quantiles  # torch: the caller already holds a trained model

    config = trained.config
    period, start, end = backtest_period(bars, trained)
    features = compute_features(bars.loc[history_start(start, config.window) : end])
    windows, hours = windows_for_range(features, start, end, config.window)
    quantiles = predict_quantiles(trained.model, windows)
    closes = bars["close"]
    report = backtest_report(closes, hours, quantiles, config.quantiles)
    actual = closes.loc[hours].to_numpy(dtype=np.float64)
    return VersionBacktest(period, hours, windows, actual, quantiles, report)


def backtest_metrics(report: BacktestReport) -> dict[str, float]:
    """The report as flat MLflow metric names (``backtest_mae``, ``backtest_coverage``, ...)."""
    figures: dict[str, float] = {}
    for prefix, metrics in (("backtest", report.model), ("backtest_persistence", report.persistence)):
        figures.update({f"{prefix}_{key}": value for key, value in metrics.model_dump().items()})
    if report.persistence.mae > 0:
        figures["backtest_mae_ratio"] = report.model.mae / report.persistence.mae
    if report.significance is not None:
        dm = report.significance
        figures.update(
            backtest_dm_statistic=dm.statistic, backtest_dm_p_value=dm.p_value, backtest_dm_lags=dm.lags
        )
    for prefix, interval in (("backtest", report.interval), ("backtest_naive", report.naive_band)):
        if interval is None:
            continue
        figures[f"{prefix}_coverage"] = interval.coverage
        figures.update(
            {
                f"{prefix}_coverage_{tercile}": value
                for tercile, value in interval.coverage_by_volatility.items()
            }
        )
        figures[f"{prefix}_interval_width"] = interval.mean_width
        figures[f"{prefix}_pinball"] = interval.pinball
        figures[f"{prefix}_interval_level"] = interval.level
    if report.pinball_ratio is not None:
        figures["backtest_pinball_ratio"] = report.pinball_ratio
    return {key: float(value) for key, value in figures.items() if math.isfinite(value)}


def _plot_title(name: str, trained: TrainedModel, backtest: VersionBacktest) -> str:
    report = backtest.report
    text = (
        f"{name} {trained.base_date:%Y-%m-%d}: {backtest.period.replace('_', ' ')} "
        f"{backtest.hours[0]:%Y-%m-%d %H:%M} .. {backtest.hours[-1]:%Y-%m-%d %H:%M} UTC "
        f"({len(backtest.hours)} h)"
        f"\nMAE {report.model.mae:.1f} vs persistence {report.persistence.mae:.1f}"
    )
    if report.interval is not None:
        text += f", {report.interval.level:.0%} band covers {report.interval.coverage:.1%}"
    if report.pinball_ratio is not None:
        text += f", pinball / naive band {report.pinball_ratio:.3f}"
    return text


def _log_backtest(
    client: MlflowClient, run_id: str, name: str, trained: TrainedModel, backtest: VersionBacktest
) -> None:
    now_ms = int(time.time() * 1000)
    metrics = [Metric(key, value, now_ms, 0) for key, value in backtest_metrics(backtest.report).items()]
    params = {
        "backtest_period": backtest.period,
        "backtest_start": backtest.hours[0].isoformat(),
        "backtest_end": backtest.hours[-1].isoformat(),
    }
    if backtest.report.significance is not None:
        params["backtest_dm_better"] = backtest.report.significance.better
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    client.log_dict(run_id, {**params, **json.loads(backtest.report.model_dump_json())}, BACKTEST_REPORT)
    try:
        from btcforecast.version_plot import backtest_figure

        figure = backtest_figure(
            backtest.hours,
            backtest.actual,
            backtest.quantiles,
            trained.config.quantiles,
            _plot_title(name, trained, backtest),
        )
    except ImportError as e:  # matplotlib missing: the figures are logged, the picture is not
        log.warning("no backtest plot for %s %s: %s", name, trained.base_date, e)
        return
    client.log_figure(run_id, figure, BACKTEST_PLOT)


def register(
    client: MlflowClient,
    name: str,
    trained: TrainedModel,
    alias: str | None = None,
    bars: pd.DataFrame | None = None,
) -> str:
    """Log ``trained`` as an MLflow run and a new version of ``name``; set ``alias`` on it.

    The version's ``model/`` artifact is an MLflow Model (MLmodel, signature). With ``bars``, the
    version is backtested (:func:`backtest_version`) before anything is logged; its run gets the
    ``backtest_*`` metrics, ``backtest/report.json`` and ``backtest/forecast.png``, and the model
    its input example (the first real window of that backtest).
    """
    config = trained.config
    backtest = backtest_version(trained, bars) if bars is not None else None
    try:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
        run = client.create_run(experiment_id, run_name=f"{name}-{trained.base_date:%Y%m%d}")
        run_id = run.info.run_id
        now_ms = int(time.time() * 1000)
        params = {
            **config.training,
            "data_source": config.data_source.get("source"),
            "synthetic": config.synthetic,
        }
        metrics = [
            Metric(f"{group}_{key}", float(value), now_ms, 0)
            for group, values in config.metrics.items()
            for key, value in values.items()
            if isinstance(value, int | float) and math.isfinite(value)
        ]
        client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
        with tempfile.TemporaryDirectory() as tmp:
            from btcforecast import mlflow_model
            from btcforecast.model import save_model

            directory = Path(tmp) / MODEL_ARTIFACT_PATH
            save_model(trained.model, config, directory)
            mlflow_model.write_mlmodel(
                directory,
                config,
                input_example=backtest.windows[:1] if backtest else None,
                run_id=run_id,
                artifact_path=MODEL_ARTIFACT_PATH,
            )
            client.log_artifacts(run_id, str(directory), MODEL_ARTIFACT_PATH)
        if backtest is not None:
            _log_backtest(client, run_id, name, trained, backtest)
        client.set_terminated(run_id)
        try:
            client.get_registered_model(name)
        except RestException as e:
            if not _is_missing(e):
                raise
            client.create_registered_model(name, description="LSTM forecast of the next hour's BTC close")
        source = f"{run.info.artifact_uri}/{MODEL_ARTIFACT_PATH}"
        mv = client.create_model_version(
            name,
            source=source,
            run_id=run_id,
            tags={"base_date": trained.base_date.isoformat(), "synthetic": str(config.synthetic).lower()},
        )
        if alias:
            client.set_registered_model_alias(name, normalize_alias(alias), mv.version)
    except MlflowException as e:
        raise _unavailable(e) from e
    return str(mv.version)


def set_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    try:
        client.set_registered_model_alias(name, normalize_alias(alias), str(version))
    except RestException as e:
        if _is_missing(e):
            raise VersionNotFoundError(f"model {name!r} has no version {version!r}") from e
        raise _unavailable(e) from e
    except MlflowException as e:
        raise _unavailable(e) from e


def promote(
    client: MlflowClient, name: str, alias: str, *, version: str | None = None, from_alias: str | None = None
) -> str:
    """Point ``alias`` at ``version`` or at wherever ``from_alias`` points now; returns the version."""
    if (version is None) == (from_alias is None):
        raise ValueError("promote needs exactly one of version or from_alias")
    target = resolve(client, name, alias=from_alias, version=version).version
    set_alias(client, name, alias, target)
    return target
