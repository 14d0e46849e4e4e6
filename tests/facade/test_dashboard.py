"""The dashboard in a real headless Chromium against the real facade: what the charts drew.

chart.js writes data-* attributes read back from the uPlot instances after every draw (points per
series, bands, alias markers drawn, the x range); the tests compare them with /predict-champion.
The screenshot test checks the PNG's pixels for the colours of the band, the gain line and the markers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from PIL import Image

from btcforecast.devservers.process import ManagedProcess

DAY = 86_400
DEFAULT_DAYS = 14  # the upper panel opens on the last 14 days (chart.js)
WINDOW = (1280, 1400)
BAND_FILL = (255, 227, 202)  # rgba(255,127,14,0.22) over white (chart.js COLORS.band)
GAIN_LINE = (44, 160, 44)  # #2ca02c (COLORS.gain)
MARKER = (123, 50, 148)  # #7b3294 (COLORS.marker)


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (make chromium)")
    argv = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--force-device-scale-factor=1", *extra, url,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def chromium_dom(url: str, profile: Path) -> str:
    return chromium(url, profile, "--dump-dom").stdout


def attributes(dom: str, element_id: str) -> dict[str, str]:
    tag = re.search(rf'<div[^>]*\bid="{element_id}"[^>]*>', dom)
    assert tag, dom[:2000]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


def column(dom: str, table_id: str, col: str) -> list[str]:
    table = re.search(rf'<table id="{table_id}">.*?</table>', dom, re.S)
    assert table, dom[-3000:]
    return re.findall(rf'<td data-col="{col}">([^<]*)</td>', table.group(0))


def unix(iso: str) -> int:
    return int(pd.Timestamp(iso, tz="UTC").timestamp())


@pytest.fixture(scope="module")
def champion(facade: ManagedProcess) -> dict[str, Any]:
    """/predict-champion (also warms the facade's cache so the page renders quickly)."""
    with httpx.Client(base_url=facade.url, timeout=120, trust_env=False) as client:
        response = client.get("/predict-champion")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def dom(facade: ManagedProcess, champion: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    return chromium_dom(f"{facade.url}/dashboard", tmp_path_factory.mktemp("chromium") / "profile")


def test_the_upper_panel_draws_close_prediction_and_the_80_percent_band(
    dom: str, champion: dict[str, Any]
) -> None:
    price = attributes(dom, "chart")
    assert price["data-drawn"] == "1"
    assert price["data-series"] == "BTC close|prediction (median)|90% quantile|10% quantile"
    assert int(price["data-close-points"]) == champion["n"]
    assert int(price["data-prediction-points"]) == champion["n"]
    with_band = sum(p["lower"] is not None and p["upper"] is not None for p in champion["predictions"])
    assert with_band > 0 and int(price["data-band-points"]) == with_band
    assert price["data-bands"] == "1"


def test_the_upper_panel_opens_on_the_last_two_weeks_with_their_alias_markers(
    dom: str, champion: dict[str, Any]
) -> None:
    price = attributes(dom, "chart")
    x_min, x_max = int(price["data-x-min"]), int(price["data-x-max"])
    assert x_max == unix(champion["predictions"][-1]["datetime"])
    assert x_max - x_min == DEFAULT_DAYS * DAY
    in_view = [
        a["model_alias"] for a in champion["metrics"]["per_alias"] if x_min <= unix(a["start"]) <= x_max
    ]
    assert price["data-boundary-aliases"].split(",") == in_view and int(price["data-boundaries"]) == len(
        in_view
    )


def test_the_lower_panel_draws_the_cumulative_gain_over_the_whole_backtest(
    dom: str, champion: dict[str, Any]
) -> None:
    gain = attributes(dom, "gain-chart")
    assert gain["data-drawn"] == "1" and int(gain["data-gain-points"]) == champion["n"]
    overall = champion["metrics"]["overall"]
    n, model_mae, persistence_mae = (
        overall["model"]["n"],
        overall["model"]["mae"],
        overall["persistence"]["mae"],
    )
    # the last value of the running sum of |persistence error| - |model error| is n * the MAE gap
    assert float(gain["data-gain-last"]) == pytest.approx(n * (persistence_mae - model_mae), abs=1.0)
    assert int(gain["data-x-min"]) == unix(champion["predictions"][0]["datetime"])
    aliases = [a["model_alias"] for a in champion["metrics"]["per_alias"]]
    assert gain["data-boundary-aliases"].split(",") == aliases


def test_the_lower_panel_shades_the_window_shown_above(dom: str) -> None:
    price, gain = attributes(dom, "chart"), attributes(dom, "gain-chart")
    assert (gain["data-window-min"], gain["data-window-max"]) == (price["data-x-min"], price["data-x-max"])


def test_a_days_fragment_opens_on_that_range_in_both_panels(
    facade: ManagedProcess, champion: dict[str, Any], tmp_path: Path
) -> None:
    dom = chromium_dom(f"{facade.url}/dashboard#days=0", tmp_path / "profile")
    price, gain = attributes(dom, "chart"), attributes(dom, "gain-chart")
    assert (price["data-x-min"], price["data-x-max"]) == (gain["data-x-min"], gain["data-x-max"])
    assert int(price["data-boundaries"]) == len(champion["metrics"]["per_alias"])


def test_the_interval_table_gives_the_coverage_of_each_alias_and_overall(
    dom: str, champion: dict[str, Any]
) -> None:
    per_alias = champion["metrics"]["per_alias"]
    assert column(dom, "intervals", "alias") == [a["model_alias"] for a in per_alias] + ["overall"]
    reports = [*per_alias, champion["metrics"]["overall"]]
    expected = [f"{r['interval']['coverage'] * 100:.1f}" if r["interval"] else "n/a" for r in reports]
    assert column(dom, "intervals", "coverage") == expected
    assert any(value != "n/a" for value in expected)


def test_the_point_table_gives_the_significance_against_persistence(
    dom: str, champion: dict[str, Any]
) -> None:
    overall = champion["metrics"]["overall"]
    assert column(dom, "metrics", "dm_p")[-1] == f"{overall['significance']['p_value']:.3g}"
    assert 'id="summary"' in dom and "Diebold-Mariano p = " in dom


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel[:3], colour, strict=True))


def test_a_screenshot_shows_the_band_the_gain_panel_and_the_markers(
    facade: ManagedProcess, champion: dict[str, Any], tmp_path: Path
) -> None:
    png = tmp_path / "dashboard.png"
    chromium(f"{facade.url}/dashboard", tmp_path / "profile", f"--screenshot={png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    with Image.open(png) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert colours is not None
    pixels = {colour: n for n, colour in colours}
    assert len(pixels) > 500  # a drawn page, not a blank or an error text

    def share(colour: tuple[int, int, int], tolerance: int) -> int:
        return sum(n for pixel, n in pixels.items() if near(pixel, colour, tolerance))

    assert share(BAND_FILL, 3) > 5_000  # the 80% band's fill
    assert share(GAIN_LINE, 40) > 300  # the cumulative gain's line
    assert share(MARKER, 40) > 100  # the dashed alias markers and their labels
