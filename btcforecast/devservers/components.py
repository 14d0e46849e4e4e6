"""The project's own servers as managed processes on a loopback port: one launcher each for the
predictor, the facade and the callback receiver, shared by ``btcf up``, the tests and the benches."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from btcforecast.devservers.process import LOOPBACK, ManagedProcess

READY_TIMEOUT = 120.0
"""Seconds a component may take to answer its health URL (the predictor loads torch and a model)."""


def module_process(
    name: str,
    module: str,
    args: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    ready_url: str,
    *,
    ready_timeout: float = READY_TIMEOUT,
    cwd: Path | None = None,
) -> ManagedProcess:
    """``python -m <module> <args>`` with this interpreter, ready once ``ready_url`` answers."""
    return ManagedProcess(
        name,
        [sys.executable, "-m", module, *args],
        env=env,
        log_path=log_path,
        ready_url=ready_url,
        ready_timeout=ready_timeout,
        cwd=cwd,
    )


def predictor_process(
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    *,
    ready_path: str = "/v2/health/ready",
    extra_args: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
    cwd: Path | None = None,
    host: str = LOOPBACK,
    name: str = "predictor",
) -> ManagedProcess:
    """``python -m predictor`` on ``host:port``, ready at ``ready_path``.

    ``/v2/health/live`` answers before a model is loaded. ``host`` is another loopback address when a
    test plays several pods on one port.
    """
    args = ["--host", host, "--http_port", str(port), *extra_args]
    url = f"http://{host}:{port}{ready_path}"
    return module_process(name, "predictor", args, env, log_path, url, ready_timeout=ready_timeout, cwd=cwd)


def facade_process(
    port: int, env: Mapping[str, str], log_path: Path, *, name: str = "facade", ready_timeout: float = 90.0
) -> ManagedProcess:
    """``python -m facade`` on ``port``; ready once ``/health`` answers (it answers while degraded)."""
    args = ["--host", LOOPBACK, "--port", str(port)]
    url = f"http://{LOOPBACK}:{port}/health"
    return module_process(name, "facade", args, env, log_path, url, ready_timeout=ready_timeout)


def receiver_process(
    port: int, env: Mapping[str, str], log_path: Path, *, ready_timeout: float = 90.0
) -> ManagedProcess:
    """``python -m callback`` on ``port``; ready once ``/health`` answers."""
    args = ["--host", LOOPBACK, "--port", str(port)]
    url = f"http://{LOOPBACK}:{port}/health"
    return module_process("callback", "callback", args, env, log_path, url, ready_timeout=ready_timeout)
