"""The MLflow model registry: register trained models, move aliases, resolve and load versions.

An alias is resolved to a version exactly once and that version is what gets loaded, so the
version a component reports is the version it serves. Model files are config.json plus
safetensors weights; loading never unpickles.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from btcforecast.aliases import normalize_alias
from btcforecast.errors import DependencyUnavailable

if TYPE_CHECKING:
    from btcforecast.model import ForecastLSTM, ModelConfig
    from btcforecast.training import TrainedModel

MODEL_ARTIFACT_PATH = "model"
EXPERIMENT = "btc-lstm-training"

# MLflow's HTTP client retries for minutes by default; a service must answer "unavailable" quickly.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class AliasNotFoundError(LookupError):
    """The registered model has no such alias."""


class VersionNotFoundError(LookupError):
    """The registered model has no such version (or no such registered model)."""


class RegistryUnavailable(DependencyUnavailable):
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


def download_version(client: MlflowClient, ref: ResolvedVersion, cache_dir: Path) -> Path:
    """The version's files in ``cache_dir/<name>/<version>``, downloaded once (atomically)."""
    target = cache_dir / ref.name / ref.version
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{ref.version}-", dir=target.parent))
    try:
        uri = client.get_model_version_download_uri(ref.name, ref.version)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(staging), tracking_uri=client._tracking_client.tracking_uri
        )
        os.replace(local, target) if Path(local) != staging else os.replace(staging, target)
    except MlflowException as e:
        raise _unavailable(e) from e
    except OSError as e:
        if (target / "config.json").is_file():  # another process finished the same download first
            return target
        raise _unavailable(e) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_version(client: MlflowClient, ref: ResolvedVersion, cache_dir: Path) -> LoadedModel:
    from btcforecast.model import load_model  # torch: only what loads models pays for it (not the operator)

    model, config = load_model(download_version(client, ref, cache_dir))
    return LoadedModel(model=model, config=config, resolved=ref)


def load_alias(client: MlflowClient, name: str, alias: str, cache_dir: Path) -> LoadedModel:
    return load_version(client, resolve(client, name, alias=alias), cache_dir)


def register(client: MlflowClient, name: str, trained: TrainedModel, alias: str | None = None) -> str:
    """Log ``trained`` as an MLflow run and a new version of ``name``; set ``alias`` on it."""
    config = trained.config
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
            from btcforecast.model import save_model

            save_model(trained.model, config, Path(tmp) / MODEL_ARTIFACT_PATH)
            client.log_artifacts(run_id, str(Path(tmp) / MODEL_ARTIFACT_PATH), MODEL_ARTIFACT_PATH)
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
