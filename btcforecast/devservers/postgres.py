"""A throwaway PostgreSQL server from Debian's ``postgresql`` package: initdb, pg_ctl, free loopback port.

For tests and benches of the replicated paths (facade jobs, receiver results, MLflow's backend store).
The cluster lives in a directory of its own (unix sockets in it too); a password is required on TCP.
Run as root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from btcforecast.devservers.process import LOOPBACK, free_port

PG_BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"), Path("/usr/bin"))
SUPERUSER = "postgres"


def pg_bin(name: str) -> str:
    """The path of a PostgreSQL server program (``initdb``, ``pg_ctl``); Debian keeps them off PATH."""
    for directory in PG_BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(
            f"{name} not found: install Debian's postgresql package (scripts/host-deps.sh)"
        )
    return found


@dataclass
class PostgresServer:
    directory: Path
    port: int
    password: str
    run_as: str | None

    def url(self, database: str = "postgres", scheme: str = "postgresql") -> str:
        return f"{scheme}://{SUPERUSER}:{self.password}@{LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Creates database ``name``; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _ctl(self, *args: str) -> None:
        argv = [pg_bin("pg_ctl"), "-D", str(self.directory / "data"), *args]
        subprocess.run(argv, check=True, capture_output=True, user=self.run_as, timeout=120)

    def start(self) -> None:
        """Start the server on its port and wait until it accepts connections."""
        options = f"-p {self.port} -h {LOOPBACK} -k {self.directory} -c fsync=off -c max_connections=200"
        self._ctl("start", "-w", "-t", "120", "-l", str(self.directory / "postgres.log"), "-o", options)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast", "-w")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(parent: Path | None = None) -> PostgresServer:
    """initdb into a new directory, start the server on a free loopback port, wait until it accepts."""
    server = init_postgres(parent)
    server.start()
    return server


def init_postgres(parent: Path | None = None) -> PostgresServer:
    """initdb into a new directory for a server on a free loopback port, not started yet."""
    run_as = SUPERUSER if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="btcf-pg-", dir=parent))
    password = secrets.token_hex(12)
    (directory / "pw").write_text(password)
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(directory, user.pw_uid, user.pw_gid)
        os.chown(directory / "pw", user.pw_uid, user.pw_gid)
    subprocess.run(
        [
            pg_bin("initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            SUPERUSER,
            f"--pwfile={directory / 'pw'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        user=run_as,
        timeout=300,
    )
    return PostgresServer(directory, free_port(), password, run_as)
