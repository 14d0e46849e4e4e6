"""A local MLflow tracking server: sqlite backend, artifacts served by the server itself.

Used by `make up` and by the test fixtures; clients then need only the tracking URI.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from btcforecast.services.process import ManagedProcess, free_port


def mlflow_argv(state_dir: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return [
        mlflow,
        "server",
        "--backend-store-uri",
        f"sqlite:///{(state_dir / 'mlflow.db').resolve()}",
        "--artifacts-destination",
        str((state_dir / "artifacts").resolve()),
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def mlflow_server(state_dir: Path, port: int | None = None, ready_timeout: float = 60.0) -> ManagedProcess:
    """A not-yet-started MLflow server keeping its state in ``state_dir``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return ManagedProcess(
        name="mlflow",
        argv=mlflow_argv(state_dir, port),
        env=env,
        log_path=state_dir / "mlflow.log",
        ready_url=f"http://127.0.0.1:{port}/health",
        ready_timeout=ready_timeout,
    )
