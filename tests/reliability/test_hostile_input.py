"""Hostile requests across the facade, the predictor and the receiver: each a 4xx naming the problem.

One table, one test. Every answer must be the expected 4xx with a JSON message containing the
words that name the problem, never a 5xx, and nothing may be stored or changed: no job in the
facade's jobs database, no result in the receiver's, the predictor's live version and version
cache as they were. All three apps run in-process; the facade's outbound HTTP client fails the
test if a request is ever aimed off loopback (callback URLs at metadata, link-local or private
addresses must be refused before any connection is tried), and its predictor URL is a closed
loopback port, so a hostile request that got as far as the predictor would show up as a 503.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from btcforecast.devservers.process import free_port
from btcforecast.features import FEATURES, WINDOW
from btcforecast.signing import SIGNATURE_HEADER, sign
from tests.fixtures.registry import RegisteredModel
from tests.reliability.conftest import (
    API_TOKEN,
    RELOAD_TOKEN,
    SECRET,
    InProcessFacade,
    InProcessPredictor,
    InProcessReceiver,
    facade_settings,
    in_process_facade,
    in_process_predictor,
    in_process_receiver,
)

T, F = WINDOW, len(FEATURES)  # what the registered models take (checked in the fixture)
PREDICTOR_BODY_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Case:
    id: str
    target: str  # facade | predictor | receiver
    method: str
    path: str
    status: int
    words: tuple[str, ...]  # all must appear in the message (case-insensitive)
    params: dict[str, str] | None = None
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] | Callable[[], dict[str, str]] = field(default_factory=dict)
    """Headers, or a function making them when the request is sent (signatures carry the time)."""


def facade(id: str, method: str, path: str, status: int, *words: str, **kw: Any) -> Case:
    return Case(id, "facade", method, path, status, words, **kw)


def predictor(id: str, status: int, *words: str, path: str = "/v2/models/btc-lstm/infer", **kw: Any) -> Case:
    kw.setdefault("headers", {"content-type": "application/json"})
    return Case(id, "predictor", "POST", path, status, words, **kw)


def receiver(
    id: str, status: int, *words: str, method: str = "POST", path: str = "/result", **kw: Any
) -> Case:
    return Case(id, "receiver", method, path, status, words, **kw)


def predict(alias: str, id: str, *words: str, status: int = 422, **params: str) -> Case:
    return facade(id, "POST", "/predict", status, *words, params={"alias": alias, **params})


def callback(id: str, url: str, *words: str, status: int = 403) -> Case:
    """403: the SSRF rules refuse a well-formed URL; 422: the URL is not in the documented form."""
    return facade(
        id, "POST", "/predict", status, "callback", *words, params={"alias": "20250327", "callback_url": url}
    )


def tensor(shape: list[int], data: Any, datatype: str = "FP32", **extra: Any) -> bytes:
    body = {"inputs": [{"name": "windows", "shape": shape, "datatype": datatype, "data": data}], **extra}
    return json.dumps(body).encode()  # json.dumps writes NaN/Infinity as the bare words


def window_values(n: int, value: float = 1.0) -> list[float]:
    values = [1.0] * (n * T * F)
    values[5] = value
    return values


AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
RELOAD_AUTH = {"Authorization": f"Bearer {RELOAD_TOKEN}"}
BINARY_HEADER = json.dumps(
    {
        "inputs": [
            {
                "name": "windows",
                "shape": [1, T, F],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 10**9},
            }
        ]
    }
).encode()
SIGNED_BODY = b'{"job_id":"hostile-1","status":"succeeded"}'


def signed(body: bytes, *, secret: str = SECRET, age: int = 0) -> Callable[[], dict[str, str]]:
    """Signature headers made at send time: a table built at collection would go stale in a long run."""
    return lambda: {
        SIGNATURE_HEADER: sign(secret, body, int(time.time()) - age),
        "content-type": "application/json",
    }


CASES: list[Case] = [
    # --- facade: aliases -----------------------------------------------------------------------
    predict("a" * 65, "alias-overlong", "malformed"),
    predict("../../etc/passwd", "alias-path-traversal", "malformed"),
    predict("models/production", "alias-with-slash", "malformed"),
    predict("a\\b", "alias-with-backslash", "malformed"),
    predict("%2e%2e%2fetc", "alias-url-encoded-traversal", "malformed"),
    predict("pr\u043eduction", "alias-cyrillic-homoglyph", "malformed"),
    predict("\u202eproduction", "alias-right-to-left-override", "malformed"),
    predict("prod\x00uction", "alias-nul-byte", "malformed"),
    predict("\U0001f680", "alias-emoji", "malformed"),
    predict("production' OR '1'='1", "alias-sql-quote", "malformed"),
    predict("   ", "alias-blank", "malformed"),
    predict("20250230", "alias-impossible-date", "impossible date", status=404),
    predict("backtest_2025", "alias-truncated-backtest", "backtest_YYYYMMDD", status=404),
    facade(
        "reload-alias-path-like", "POST", "/reload", 422, "malformed", params={"alias": "../x"}, headers=AUTH
    ),
    # --- facade: dates ---------------------------------------------------------------------------
    predict("20250327", "start-impossible-date", "start", "malformed", start="2025-02-30"),
    predict(
        "20250327",
        "start-before-the-data",
        "outside the data",
        status=409,
        start="1999-01-01",
        end="1999-01-02",
    ),
    predict("20250327", "start-after-end", "after", status=409, start="2025-06-02", end="2025-06-01"),
    predict("20250327", "start-year-99999", "start", start="99999-01-01"),
    predict("20250327", "start-garbage", "malformed", start="yesterday; DROP TABLE jobs"),
    predict("20250327", "start-not-on-the-hour", "malformed", start="2025-04-01T10:30:00"),
    predict("20250327", "end-month-13", "end", end="2025-13-01"),
    facade("btc-info-impossible-date", "GET", "/btc-info", 422, "start", params={"start": "2025-13-01"}),
    facade(
        "btc-info-far-future",
        "GET",
        "/btc-info",
        409,
        "outside the data",
        params={"start": "2040-01-01", "end": "2040-01-02"},
    ),
    facade("btc-info-nan-date", "GET", "/btc-info", 422, "start", params={"start": "NaN"}),
    facade("btc-info-overlong-date", "GET", "/btc-info", 422, "start", params={"start": "2025-01-01" * 20}),
    # --- facade: bodies and content types --------------------------------------------------------
    facade(
        "body-malformed-json",
        "POST",
        "/predict",
        422,
        "json",
        content=b"{not json",
        headers={"content-type": "application/json"},
    ),
    facade(
        "body-not-utf8",
        "POST",
        "/predict",
        422,
        "not readable json",
        content=b'{"alias": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    ),
    facade("body-json-array", "POST", "/predict", 422, "body", json_body=[1, 2, 3]),
    facade("body-alias-not-a-string", "POST", "/predict", 422, "alias", json_body={"alias": 20250327}),
    facade(
        "body-nested-60k-deep",
        "POST",
        "/predict",
        422,
        "not readable json",
        content=b"[" * 60_000,
        headers={"content-type": "application/json"},
    ),
    facade("body-oversized-200k", "POST", "/predict", 413, "limit", json_body={"alias": "x" * 200_000}),
    facade(
        "body-text-plain",
        "POST",
        "/predict",
        422,
        "body",
        content=b"alias=20250327",
        headers={"content-type": "text/plain"},
    ),
    facade(
        "body-form-encoded",
        "POST",
        "/predict",
        422,
        "body",
        content=b"alias=20250327",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    facade(
        "body-xml",
        "POST",
        "/predict",
        422,
        "body",
        content=b"<alias>20250327</alias>",
        headers={"content-type": "application/xml"},
    ),
    # --- facade: tokens --------------------------------------------------------------------------
    facade("reload-without-token", "POST", "/reload", 401, "bearer", params={"alias": "20250327"}),
    facade(
        "reload-wrong-token",
        "POST",
        "/reload",
        401,
        "bearer",
        params={"alias": "20250327"},
        headers={"Authorization": "Bearer not-the-token"},
    ),
    facade(
        "reload-basic-auth",
        "POST",
        "/reload",
        401,
        "bearer",
        params={"alias": "20250327"},
        headers={"Authorization": f"Basic {API_TOKEN}"},
    ),
    facade(
        "reload-token-with-suffix",
        "POST",
        "/reload",
        401,
        "bearer",
        params={"alias": "20250327"},
        headers={"Authorization": f"Bearer {API_TOKEN}x"},
    ),
    facade("job-unknown", "GET", "/jobs/0123456789abcdef", 404, "job"),
    facade("job-id-path-like", "GET", "/jobs/..%2f..%2fetc%2fpasswd", 404, "not found"),
    # --- facade: callback URLs (refused before any connection) -----------------------------------
    callback("callback-file-scheme", "file:///etc/passwd", "malformed", status=422),
    callback("callback-gopher-scheme", "gopher://127.0.0.1:6379/_INFO", "malformed", status=422),
    callback("callback-ftp-scheme", "ftp://127.0.0.1/result", "malformed", status=422),
    callback("callback-javascript-scheme", "javascript:alert(1)", "malformed", status=422),
    callback("callback-aws-metadata", "http://169.254.169.254/latest/meta-data/", "metadata"),
    callback("callback-ecs-metadata", "http://169.254.170.2/v2/credentials", "metadata"),
    callback("callback-link-local", "http://169.254.10.10/result", "link-local"),
    callback("callback-gcp-metadata-name", "http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    callback("callback-private-10", "http://10.0.0.1/result", "private", "allowlist"),
    callback("callback-private-172-16", "http://172.16.0.1/result", "private", "allowlist"),
    callback("callback-private-192-168", "http://192.168.1.1/result", "private", "allowlist"),
    callback("callback-ipv6-link-local", "http://[fe80::1]/result", "link-local"),
    callback("callback-ipv6-ula", "http://[fd00::1]/result", "private", "allowlist"),
    callback("callback-ipv6-aws-metadata", "http://[fd00:ec2::254]/", "metadata"),
    callback("callback-ipv4-mapped-metadata", "http://[::ffff:169.254.169.254]/", "metadata"),
    callback("callback-decimal-loopback", "http://2130706433/result", "allowlist"),
    callback("callback-decimal-metadata", "http://2852039166/latest/meta-data/", "allowlist"),
    callback("callback-hex-metadata", "http://0xa9fea9fe/latest/meta-data/", "allowlist"),
    callback("callback-octal-metadata", "http://0251.0376.0251.0376/", "allowlist"),
    callback("callback-userinfo-trick", "http://127.0.0.1@10.0.0.1/result", "malformed", status=422),
    callback("callback-userinfo-password", "http://user:pw@127.0.0.1/result", "malformed", status=422),
    callback("callback-unspecified-address", "http://0.0.0.0/result", "unicast"),
    callback("callback-no-host", "http:///result", "malformed", status=422),
    callback("callback-bad-port", "http://127.0.0.1:99999/result", "not a valid url"),
    callback("callback-public-name", "https://example.com/hook", "allowlist"),
    facade(
        "callback-overlong-url",
        "POST",
        "/predict",
        422,
        "callback",
        "at most 2048 characters",
        json_body={"alias": "20250327", "callback_url": "http://127.0.0.1/" + "a" * 3000},
    ),
    facade(
        "callback-metadata-in-json-body",
        "POST",
        "/predict",
        403,
        "callback",
        "metadata",
        json_body={"alias": "20250327", "callback_url": "http://169.254.169.254/"},
    ),
    facade(
        "champion-callback-private",
        "GET",
        "/predict-champion",
        403,
        "callback",
        "private",
        params={"callback_url": "http://10.1.2.3/hook"},
    ),
    # --- predictor -------------------------------------------------------------------------------
    predictor("tensor-nan", 400, "nan", content=tensor([1, T, F], window_values(1, float("nan")))),
    predictor("tensor-infinity", 400, "infinite", content=tensor([1, T, F], window_values(1, float("inf")))),
    predictor(
        "tensor-minus-infinity", 400, "infinite", content=tensor([1, T, F], window_values(1, float("-inf")))
    ),
    predictor("tensor-wrong-window", 400, "window length", content=tensor([1, 5, F], [1.0] * 5 * F)),
    predictor("tensor-wrong-features", 400, "features", content=tensor([1, T, 3], [1.0] * T * 3)),
    predictor("tensor-two-dimensional", 400, "shape", content=tensor([T, F], [1.0] * T * F)),
    predictor("tensor-empty", 400, "empty", content=tensor([0, T, F], [])),
    predictor("tensor-huge-n-claimed", 400, "values", content=tensor([10**9, T, F], [1.0] * T * F)),
    predictor("tensor-n-over-max", 400, "maximum", content=tensor([11, T, F], [1.0] * 11 * T * F)),
    predictor("tensor-negative-shape", 400, "shape", content=tensor([-1, T, F], [1.0] * T * F)),
    predictor("tensor-int64", 400, "datatype", content=tensor([1, T, F], [1] * T * F, datatype="INT64")),
    predictor("tensor-strings", 400, "numbers", content=tensor([1, T, F], ["x"] * T * F)),
    predictor("tensor-ragged", 400, "rectangular", content=tensor([2, T, F], [[1.0] * 3, [1.0]])),
    predictor("body-malformed-json", 400, "malformed json", content=b'{"inputs": [}'),
    predictor("body-empty", 400, "empty", content=b""),
    predictor("body-no-inputs", 400, "inputs", content=b'{"outputs": []}'),
    predictor(
        "body-form-encoded",
        400,
        "malformed json",
        content=b"windows=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    predictor(
        "binary-header-not-a-number",
        400,
        "integer",
        content=b"{}",
        headers={"inference-header-content-length": "abc"},
    ),
    predictor(
        "binary-header-past-the-body",
        400,
        "outside the body",
        content=b"{}",
        headers={"inference-header-content-length": "4096"},
    ),
    predictor(
        "binary-size-past-the-bytes",
        400,
        "does not fit",
        content=BINARY_HEADER + b"\0" * 16,
        headers={"inference-header-content-length": str(len(BINARY_HEADER))},
    ),
    predictor(
        "param-version-injection",
        400,
        "model_version",
        content=tensor([1, T, F], window_values(1), parameters={"model_version": "1; DROP"}),
    ),
    predictor(
        "param-alias-path-like",
        400,
        "malformed",
        content=tensor([1, T, F], window_values(1), parameters={"model_alias": "../../x"}),
    ),
    predictor(
        "path-version-not-a-number",
        400,
        "number",
        path="/v2/models/btc-lstm/versions/1%20OR%201/infer",
        content=tensor([1, T, F], window_values(1)),
    ),
    predictor(
        "v1-instances-not-a-list",
        400,
        "instances",
        path="/v1/models/btc-lstm:predict",
        content=b'{"instances": "x"}',
    ),
    predictor(
        "body-over-the-limit",
        413,
        "limit",
        content=b"[" + b"1," * (PREDICTOR_BODY_LIMIT // 2) + b"1]",
    ),
    predictor("reload-without-token", 401, "bearer", path="/v2/models/btc-lstm/reload?alias=20250327"),
    predictor(
        "reload-wrong-token",
        401,
        "bearer",
        path="/v2/models/btc-lstm/reload?alias=20250327",
        headers={"Authorization": "Bearer nope"},
    ),
    predictor(
        "reload-alias-path-like",
        400,
        "malformed",
        path="/v2/models/btc-lstm/reload?alias=..%2F..%2Fx",
        headers=RELOAD_AUTH,
    ),
    predictor(
        "reload-version-not-a-number",
        400,
        "version",
        path="/v2/models/btc-lstm/reload?version=1%20or%201",
        headers=RELOAD_AUTH,
    ),
    # --- receiver --------------------------------------------------------------------------------
    receiver("unsigned", 401, "missing", content=SIGNED_BODY, headers={"content-type": "application/json"}),
    receiver(
        "signature-wrong-hex",
        401,
        "signature",
        content=SIGNED_BODY,
        headers=lambda: {SIGNATURE_HEADER: f"t={int(time.time())},v1={'0' * 64}"},
    ),
    receiver(
        "signature-wrong-secret",
        401,
        "signature",
        content=SIGNED_BODY,
        headers=signed(SIGNED_BODY, secret="x"),
    ),
    receiver("signature-stale", 401, "stale", content=SIGNED_BODY, headers=signed(SIGNED_BODY, age=3600)),
    receiver(
        "signature-from-the-future", 401, "stale", content=SIGNED_BODY, headers=signed(SIGNED_BODY, age=-3600)
    ),
    receiver(
        "signature-replayed-on-another-body",
        401,
        "signature",
        content=b'{"job_id":"hostile-2","status":"succeeded"}',
        headers=signed(SIGNED_BODY),
    ),
    receiver(
        "signature-replayed-after-the-window",
        401,
        "stale",
        content=SIGNED_BODY,
        headers=signed(SIGNED_BODY, age=301),
    ),
    receiver(
        "signature-garbage", 401, "key=value", content=SIGNED_BODY, headers={SIGNATURE_HEADER: "garbage"}
    ),
    receiver("signature-no-v1", 401, "v1", content=SIGNED_BODY, headers={SIGNATURE_HEADER: "t=1,v2=abc"}),
    receiver(
        "signature-bad-timestamp",
        401,
        "timestamp",
        content=SIGNED_BODY,
        headers={SIGNATURE_HEADER: "t=x,v1=a"},
    ),
    receiver("signed-not-json", 400, "json", content=b"not json", headers=signed(b"not json")),
    receiver("signed-json-array", 400, "object", content=b"[1]", headers=signed(b"[1]")),
    receiver(
        "signed-without-job-id", 400, "job_id", content=b'{"status":"x"}', headers=signed(b'{"status":"x"}')
    ),
    receiver(
        "signed-overlong-job-id",
        400,
        "job_id",
        content=json.dumps({"job_id": "j" * 200}).encode(),
        headers=signed(json.dumps({"job_id": "j" * 200}).encode()),
    ),
    receiver(
        "signed-numeric-job-id", 400, "job_id", content=b'{"job_id":7}', headers=signed(b'{"job_id":7}')
    ),
    receiver("body-over-8-mib", 413, "limit", content=b"x" * (8 * 1024 * 1024 + 1)),
    receiver("results-limit-zero", 422, "limit", method="GET", path="/results?limit=0"),
    receiver("results-limit-huge", 422, "limit", method="GET", path="/results?limit=100000"),
    receiver("result-unknown", 404, "no result", method="GET", path="/results/nope"),
]


@dataclass
class Services:
    facade: InProcessFacade
    predictor: InProcessPredictor
    receiver: InProcessReceiver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    tmp_path_factory: pytest.TempPathFactory, registered: RegisteredModel, market_uri: str
) -> AsyncIterator[Services]:
    dead_predictor = f"http://127.0.0.1:{free_port()}"
    state = tmp_path_factory.mktemp("hostile")
    settings = facade_settings(state / "facade", registered, market_uri, dead_predictor)
    async with (
        in_process_facade(settings) as facade_app,
        in_process_predictor(
            registered,
            state / "predictor",
            reload_token=RELOAD_TOKEN,
            max_windows=10,
            max_body_bytes=PREDICTOR_BODY_LIMIT,
        ) as predictor_app,
        in_process_receiver(Path(state / "receiver")) as receiver_app,
    ):
        config = predictor_app.model.live.loaded.config
        assert (config.window, config.n_features) == (T, F), "the table's tensors assume this model shape"
        yield Services(facade_app, predictor_app, receiver_app)
        assert facade_app.transport.off_loopback == []


def test_the_table_is_big_enough_and_ids_are_unique() -> None:
    assert len(CASES) >= 60
    assert len({(c.target, c.id) for c in CASES}) == len(CASES)
    assert {c.target for c in CASES} == {"facade", "predictor", "receiver"}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[f"{c.target}-{c.id}" for c in CASES])
async def test_a_hostile_request_is_a_4xx_naming_the_problem_and_stores_nothing(
    services: Services, case: Case
) -> None:
    client = {"facade": services.facade, "predictor": services.predictor, "receiver": services.receiver}[
        case.target
    ].client
    jobs_before = services.facade.jobs_stored()
    results_before = services.receiver.stored()
    live_before = services.predictor.model.live.version
    cached_before = services.predictor.model.swapper.cache.versions()

    headers = case.headers() if callable(case.headers) else case.headers
    kwargs: dict[str, Any] = {"params": case.params, "headers": headers}
    if case.json_body is not None:
        kwargs["json"] = case.json_body
    elif case.content is not None:
        kwargs["content"] = case.content
    response = await client.request(case.method, case.path, **kwargs)

    assert response.status_code < 500, response.text
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == case.status
    if case.target == "predictor":
        assert body["error"] == body["detail"]  # the Open Inference Protocol's member, kept
    message = body["detail"]
    for word in case.words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    assert services.facade.jobs_stored() == jobs_before
    assert services.receiver.stored() == results_before
    assert services.predictor.model.live.version == live_before
    assert services.predictor.model.swapper.cache.versions() == cached_before
    assert services.facade.transport.off_loopback == []
    assert services.facade.transport.attempted == []  # refused before the predictor or a callback
