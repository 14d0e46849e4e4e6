"""`make up` end to end: `btcf up` starts every component, answers the public API, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from btcforecast.devservers.process import LOOPBACK, free_ports, port_open
from btcforecast.local_stack import LocalPorts, example_alias

UP_TIMEOUT = 420.0


@dataclass
class Stack:
    ports: LocalPorts
    lines: list[str]
    proc: subprocess.Popen[str]

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.ports.facade}{path}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ports = LocalPorts(*free_ports(5))
    state = tmp_path_factory.mktemp("up")
    argv = [
        sys.executable, "-c", "from btcforecast.cli import main; main()", "up",
        "--facade-port", str(ports.facade), "--predictor-port", str(ports.predictor),
        "--callback-port", str(ports.callback), "--mlflow-port", str(ports.mlflow),
        "--backtest-start", "2025-07-17", "--backtest-end", "2025-07-24",
    ]  # fmt: skip
    env = {**os.environ, "STATE_DIR": str(state)}
    env.pop("CALLBACK_SECRET", None)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "btc-forecast is up" in line:
                up.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + UP_TIMEOUT
        while not up.wait(1.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("btcf up did not come up:\n" + "".join(lines[-40:]) + _logs(state))
        yield Stack(ports, lines, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _logs(state: Path) -> str:
    out = []
    for log in sorted((state / "logs").glob("*.log")):
        out.append(f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
    return "".join(out)


def test_the_suggested_curl_names_a_backtest_that_was_trained() -> None:
    assert example_alias((date(2025, 1, 2), date(2025, 6, 26))) == "20250327"
    assert example_alias((date(2025, 7, 17), date(2025, 7, 24))) == "20250724"


def test_up_prints_where_everything_is(stack: Stack) -> None:
    text = "".join(stack.lines)
    assert f"http://{LOOPBACK}:{stack.ports.facade}" in text
    assert f"http://{LOOPBACK}:{stack.ports.predictor}" in text
    assert "predict?alias=20250724" in text


def test_up_serves_a_backtest_prediction(stack: Stack) -> None:
    response = httpx.post(stack.url("/predict"), params={"alias": "20250724"}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["start_date"] == "2025-07-24 00:00:00"
    assert body["predictions"][0]["datetime"] == "2025-07-24T00:00:00"
    assert len(body["predictions"]) == 8 * 24


def test_up_serves_production(stack: Stack) -> None:
    health = httpx.get(stack.url("/health"), timeout=30).json()
    assert health["model_loaded"] is True and health["model_alias"] == "production"


def test_up_registers_the_backtests_and_serving_aliases(stack: Stack) -> None:
    aliases = httpx.get(stack.url("/aliases"), timeout=30).json()["aliases"]
    assert aliases == ["production", "staging", "backtest_20250717", "backtest_20250724"]


def test_ctrl_c_stops_every_component(stack: Stack) -> None:
    """Last in this module: stop the stack as a user would and check nothing is left listening."""
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=90) == 0
    ports = stack.ports
    for port in (ports.facade, ports.predictor, ports.callback, ports.mlflow):
        assert not port_open(LOOPBACK, port), port
