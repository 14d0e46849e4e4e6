"""The callback allowlist: refusals happen before any connection or name lookup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from facade.ssrf import Allowlist, UnsafeCallbackURL, check_callback_url
from tests.facade.inprocess import offline_facade, offline_settings

DEFAULT = Allowlist(["127.0.0.1", "localhost", "::1"])


def no_dns(host: str) -> list[str]:
    pytest.fail(f"a name lookup happened for {host}")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/result", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://localhost/", "scheme"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fe80::1]/result", "link-local"),
        ("http://169.254.10.10/result", "link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://10.0.0.5/result", "private address not on the callback allowlist"),
        ("http://192.168.1.1/result", "private address"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://example.com/result", "not on the callback allowlist"),
        ("http://user:pw@127.0.0.1/result", "credentials"),
        ("http:///result", "no host"),
        ("http://2130706433/result", "not on the callback allowlist"),
    ],
)
def test_unsafe_callback_urls_are_refused_without_a_lookup(url: str, problem: str) -> None:
    with pytest.raises(UnsafeCallbackURL, match=problem):
        check_callback_url(url, DEFAULT, resolver=no_dns)


def test_loopback_on_the_allowlist_is_accepted() -> None:
    assert check_callback_url("http://127.0.0.1:9001/result", DEFAULT, resolver=no_dns)


def test_a_private_network_passes_only_when_the_allowlist_names_it() -> None:
    allow = Allowlist(["10.0.0.0/8"])
    assert check_callback_url("http://10.1.2.3/result", allow, resolver=no_dns)


def test_an_allowlisted_name_that_resolves_to_metadata_is_refused() -> None:
    allow = Allowlist(["callback.example"])
    with pytest.raises(UnsafeCallbackURL, match="metadata"):
        check_callback_url("http://callback.example/result", allow, resolver=lambda _: ["169.254.169.254"])


@pytest.fixture
async def offline_app(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The facade in-process; its one outbound client fails the test if anything is ever sent."""
    async with offline_facade(offline_settings(tmp_path)) as client:
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "http://10.0.0.1/result",
        "https://example.com/hook",
    ],
)
async def test_the_api_refuses_unsafe_callbacks_with_403_before_any_connection(
    offline_app: httpx.AsyncClient, url: str
) -> None:
    for response in (
        await offline_app.post("/predict", params={"alias": "20250327", "callback_url": url}),
        await offline_app.post("/predict", json={"alias": "20250327", "callback_url": url}),
        await offline_app.get("/predict-champion", params={"callback_url": url}),
    ):
        assert response.status_code == 403
        assert "callback" in response.json()["detail"]


async def test_a_callback_url_not_http_is_malformed_422(offline_app: httpx.AsyncClient) -> None:
    url = "ftp://127.0.0.1/result"
    for response in (
        await offline_app.post("/predict", params={"alias": "20250327", "callback_url": url}),
        await offline_app.post("/predict", json={"alias": "20250327", "callback_url": url}),
        await offline_app.get("/predict-champion", params={"callback_url": url}),
    ):
        assert response.status_code == 422
        assert "callback_url" in response.json()["detail"]
