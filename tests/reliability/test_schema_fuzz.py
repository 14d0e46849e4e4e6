"""Property-based fuzz of the facade's and the receiver's OpenAPI schemas (schemathesis).

Both apps run in-process (ASGI). The facade talks to the real predictor process and the session's
MLflow, through an outbound client held to loopback; callbacks it might accept can only go to
loopback too. Bounded for CI: few examples per operation, no deadline. Every response must be
documented, match its schema, and never be a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from btcforecast.devservers.process import ManagedProcess
from callback.main import create_app as create_receiver
from callback.settings import CallbackSettings
from facade.main import create_app as create_facade
from tests.fixtures.registry import RegisteredModel
from tests.reliability.conftest import SECRET, LoopbackOnly, facade_settings

pytestmark = pytest.mark.timeout(240)

BOUNDED = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases on every run: a CI failure reproduces locally
)


@pytest.fixture(scope="module")
def outbound() -> Iterator[LoopbackOnly]:
    transport = LoopbackOnly()
    yield transport
    assert transport.off_loopback == []


@pytest.fixture(scope="module")
def facade_schema(
    tmp_path_factory: pytest.TempPathFactory,
    registered: RegisteredModel,
    market_uri: str,
    predictor: ManagedProcess,
    outbound: LoopbackOnly,
) -> Iterator[schemathesis.BaseSchema]:
    state = tmp_path_factory.mktemp("fuzz-facade")
    client = httpx.AsyncClient(transport=outbound, timeout=httpx.Timeout(30.0, connect=2.0))
    app = create_facade(facade_settings(state, registered, market_uri, predictor.url), http_client=client)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def receiver_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    state = Path(tmp_path_factory.mktemp("fuzz-receiver"))
    app = create_receiver(CallbackSettings(state_dir=state, callback_secret=SECRET))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()


FACADE_OPERATIONS = [
    ("GET", "/health"),
    ("POST", "/reload"),
    ("POST", "/predict"),
    ("GET", "/predict-champion"),
    ("POST", "/predict-champion"),
    ("GET", "/aliases"),
    ("GET", "/btc-info"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/dashboard"),
    ("GET", "/evaluation"),
]
RECEIVER_OPERATIONS = [
    ("GET", "/health"),
    ("POST", "/result"),
    ("GET", "/metrics"),
    ("GET", "/results"),
    ("GET", "/results/{job_id}"),
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def operations(schema: schemathesis.BaseSchema) -> list[tuple[str, str]]:
    return [(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()]


def fuzz(schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode) -> None:
    """Run bounded generated cases of one operation through every default check."""
    operation = schema[path][method]

    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        # Every default check but "schema-valid data is accepted": the schema cannot say "a date
        # inside the market data" or "an alias that exists", so such requests are rightly 4xx.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing in this operation can be made invalid (no parameters, free-form strings)


def test_the_fuzzed_facade_operations_are_all_of_its_operations(
    facade_schema: schemathesis.BaseSchema,
) -> None:
    assert operations(facade_schema) == FACADE_OPERATIONS


def test_the_fuzzed_receiver_operations_are_all_of_its_operations(
    receiver_schema: schemathesis.BaseSchema,
) -> None:
    assert operations(receiver_schema) == RECEIVER_OPERATIONS


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), FACADE_OPERATIONS, ids=lambda v: v)
def test_the_facade_answers_generated_requests_as_documented_and_never_5xx(
    facade_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(facade_schema, method, path, mode)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), RECEIVER_OPERATIONS, ids=lambda v: v)
def test_the_receiver_answers_generated_requests_as_documented_and_never_5xx(
    receiver_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(receiver_schema, method, path, mode)
