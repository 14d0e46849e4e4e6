"""A local MLflow tracking server: sqlite backend (or a database URL), artifacts served by the server itself.

Used by `make up` and by the test fixtures; clients then need only the tracking URI. Artifacts go
to a local folder, or to S3 when the settings name an S3 endpoint (the server alone talks to S3).
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from pathlib import Path

from btcforecast.devservers.process import ManagedProcess, free_port
from btcforecast.mlflow_webhooks import server_env
from btcforecast.settings import CoreSettings

ARTIFACTS_BUCKET = "mlflow"


def backend_store_uri(database_url: str) -> str:
    """A PostgreSQL URL as MLflow's SQLAlchemy store needs it: through psycopg 3 (``postgresql+psycopg``).

    SQLAlchemy's plain ``postgresql://`` means psycopg2, which the project does not install.
    """
    scheme, sep, rest = database_url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return database_url


def mlflow_argv(
    state_dir: Path, port: int, artifacts: str, host: str = "127.0.0.1", backend_store: str | None = None
) -> list[str]:
    """``backend_store``: a database URL (PostgreSQL); None = ``STATE_DIR/mlflow.db`` (sqlite)."""
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    store = (
        backend_store_uri(backend_store)
        if backend_store
        else f"sqlite:///{(state_dir / 'mlflow.db').resolve()}"
    )
    return [
        mlflow,
        "server",
        "--backend-store-uri",
        store,
        "--artifacts-destination",
        artifacts,
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def s3_artifacts(settings: CoreSettings, bucket: str = ARTIFACTS_BUCKET) -> tuple[str, dict[str, str]]:
    """The artifacts destination in S3 and the environment the server needs to reach it.

    Creates the bucket if it is missing.
    """
    from btcforecast.market.store import s3_client

    client = s3_client(settings)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else ""
    env = {
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": settings.aws_region,
    }
    return f"s3://{bucket}/artifacts", env


def webhook_encryption_key(state_dir: Path) -> str:
    """The Fernet key MLflow encrypts webhook secrets with, kept beside its database across restarts."""
    path = state_dir / "webhook-encryption.key"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def mlflow_server(
    state_dir: Path,
    port: int | None = None,
    ready_timeout: float = 60.0,
    s3: CoreSettings | None = None,
    backend_store: str | None = None,
) -> ManagedProcess:
    """A not-yet-started MLflow server keeping its state in ``state_dir`` (artifacts in S3 if ``s3``).

    ``backend_store``: a PostgreSQL URL for runs and the registry instead of ``state_dir``'s sqlite file.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.update(server_env(webhook_encryption_key(state_dir)))  # webhooks to loopback peers
    if s3 is not None and s3.s3_endpoint_url:
        artifacts, s3_env = s3_artifacts(s3)
        env.update(s3_env)
    else:
        artifacts = str((state_dir / "artifacts").resolve())
    return ManagedProcess(
        name="mlflow",
        argv=mlflow_argv(state_dir, port, artifacts, backend_store=backend_store),
        env=env,
        log_path=state_dir / "mlflow.log",
        ready_url=f"http://127.0.0.1:{port}/health",
        ready_timeout=ready_timeout,
    )
