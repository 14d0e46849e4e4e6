"""btcforecast.mlflow_webhooks: MLflow's signature scheme, the alias event, idempotent registration."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from btcforecast import registry
from btcforecast.devservers.process import ManagedProcess
from btcforecast.errors import InputError
from btcforecast.mlflow_webhooks import (
    ALIAS_EVENTS,
    AliasEvent,
    SignatureError,
    parse_alias_event,
    register_webhook,
    sign,
    verify,
)

SECRET = "webhook-secret"
BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-12-02T03:12:11+00:00",
        "data": {"name": "btc-lstm", "alias": "production", "version": "7"},
    }
).encode()


def headers(body: bytes = BODY, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, "d-1", timestamp, body),
    }


def test_a_delivery_signed_with_the_secret_verifies() -> None:
    verify(SECRET, headers(), BODY)


def test_a_delivery_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, headers(secret="other"), BODY)


def test_a_body_changed_after_signing_is_refused() -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, headers(), BODY.replace(b'"7"', b'"8"'))


def test_a_delivery_older_than_the_tolerance_is_refused_as_a_replay() -> None:
    sent = time.time() - 301
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, headers(at=sent), BODY)


def test_a_retry_resent_within_the_tolerance_verifies() -> None:
    sent = 1_000_000.0
    verify(SECRET, headers(at=sent), BODY, now=sent + 7)  # MLflow's retries keep the first timestamp


def test_missing_headers_are_refused() -> None:
    for missing in ("X-MLflow-Delivery-Id", "X-MLflow-Timestamp", "X-MLflow-Signature"):
        partial = {k: v for k, v in headers().items() if k != missing}
        with pytest.raises(SignatureError, match="missing"):
            verify(SECRET, partial, BODY)


def test_one_matching_signature_among_several_verifies() -> None:
    good = headers()
    good["X-MLflow-Signature"] = "v1,bm9wZQ== " + good["X-MLflow-Signature"]
    verify(SECRET, good, BODY)


def test_an_alias_set_event_reads_as_created_with_its_version() -> None:
    assert parse_alias_event(BODY) == AliasEvent("btc-lstm", "production", "created", "7")


def test_an_alias_deleted_event_has_no_version() -> None:
    body = json.dumps(
        {"entity": "model_version_alias", "action": "deleted", "data": {"name": "m", "alias": "a"}}
    ).encode()
    assert parse_alias_event(body) == AliasEvent("m", "a", "deleted", None)


def test_other_events_are_not_alias_events() -> None:
    body = json.dumps({"entity": "model_version", "action": "created", "data": {"name": "m"}}).encode()
    assert parse_alias_event(body) is None


def test_a_body_that_is_not_an_mlflow_event_is_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_alias_event(b'{"hello": 1}')


class _Receiver:
    """A loopback HTTP server recording what MLflow POSTs."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers.items()), body))
                receiver.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_registering_twice_keeps_one_webhook_with_the_latest_url(mlflow: ManagedProcess) -> None:
    client = registry.connect(mlflow.url)
    first = register_webhook(client, "twice", "http://127.0.0.1:9/a", SECRET)
    second = register_webhook(client, "twice", "http://127.0.0.1:9/b", SECRET)

    same = [w for w in client.list_webhooks() if w.name == "twice"]
    assert [w.webhook_id for w in same] == [first.webhook_id] == [second.webhook_id]
    assert same[0].url == "http://127.0.0.1:9/b"
    assert sorted(str(e) for e in same[0].events) == sorted(ALIAS_EVENTS)


def test_a_real_mlflow_server_signs_an_alias_move_that_verifies_and_parses(
    mlflow: ManagedProcess, receiver: _Receiver
) -> None:
    client = registry.connect(mlflow.url)
    register_webhook(client, "signed-move", receiver.url, SECRET)
    client.create_registered_model("webhook-move")
    version = client.create_model_version("webhook-move", source="s3://bucket/model").version
    for _ in range(20):  # MLflow caches each event's webhook list for MLFLOW_WEBHOOK_CACHE_TTL (2 s here)
        client.set_registered_model_alias("webhook-move", "production", version)
        if receiver.arrived.wait(5):
            break
    assert receiver.received

    received_headers, body = receiver.received[-1]
    verify(SECRET, received_headers, body)
    assert parse_alias_event(body) == AliasEvent("webhook-move", "production", "created", str(version))
