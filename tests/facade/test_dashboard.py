"""The dashboard in a real headless Chromium: the chart must have drawn the data."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from btcforecast.services.process import ManagedProcess

HOURS = 91 * 24  # the /btc-info period, 2025-04-01 .. 2025-06-30


def chromium_dom(url: str, profile: Path) -> str:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (make chromium)")
    argv = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_dashboard_draws_close_and_predictions_in_a_browser(
    facade: ManagedProcess, api: httpx.Client, tmp_path: Path
) -> None:
    api.get("/predict-champion")  # warm the cache so the page renders quickly
    dom = chromium_dom(f"{facade.url}/dashboard", tmp_path / "profile")
    svg = re.search(r"<svg[^>]*id=\"chart\"[^>]*>", dom)
    assert svg, dom[:2000]
    close = int(re.search(r'data-close-points="(\d+)"', svg.group(0)).group(1))
    predicted = int(re.search(r'data-prediction-points="(\d+)"', svg.group(0)).group(1))
    assert close == HOURS and predicted == HOURS
    lines = re.findall(r'<polyline[^>]*\spoints="([^"]+)"', dom)
    assert len(lines) == 2 and all(len(points.split()) > 1000 for points in lines)
    assert "backtest_20250403" in dom and "overall" in dom  # the metrics table
