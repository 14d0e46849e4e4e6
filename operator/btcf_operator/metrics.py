"""Prometheus metrics of the operator: reconciles, rollouts, gate decisions, phases, webhook deliveries.

The operator is one process with one event loop, so its metrics are module-level objects in one
registry (``REGISTRY``), recorded where they happen (the reconcile step, the strategies, the gate).
It is served at ``/metrics`` by an aiohttp server on kopf's own loop (:func:`serve`), started and
stopped with the operator: kopf already runs aiohttp for its liveness endpoint, and prometheus-client
ships the handler (``prometheus_client.aiohttp``), so there is no extra thread and the port is
released at cleanup. It is a server of its own because kopf's liveness server takes no extra routes.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

from btcf_operator.registry import RegistryUnavailable
from btcf_operator.spec import SpecError
from btcf_operator.status import Phase
from btcf_operator.step import InvalidTarget, RetryLater
from btcforecast.kube import KubeError, KubeUnavailable

PREFIX = "btcf_operator"
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

RECONCILE_OUTCOMES = ("ok", "gone", "retry", "invalid_target", "invalid_spec", "kube_error", "error")
"""ok: the step went through; gone: the resource was deleted meanwhile; retry: a dependency (MLflow,
the target) is not there yet; invalid_target / invalid_spec: the resource must be fixed; kube_error:
the Kubernetes API failed; error: anything else (a bug)."""
GATE_RESULTS = ("passed", "refused", "no_data", "unavailable")
WEBHOOK_OUTCOMES = ("accepted", "ignored", "bad_signature", "invalid")
"""accepted: a signed alias event that made the operator reconcile; ignored: signed but about nothing
this operator follows; bad_signature: refused, nothing changes; invalid: not a webhook payload."""


def _counter(name: str, documentation: str, labels: list[str], known: tuple[str, ...] = ()) -> Counter:
    """A counter in ``REGISTRY``; ``known`` values of its one label are exported (at 0) from the start."""
    counter = Counter(f"{PREFIX}_{name}", documentation, labels, registry=REGISTRY)
    for value in known:
        counter.labels(value)
    return counter


RECONCILES = _counter(
    "reconciles", "Reconciliation steps of ModelAliases, by outcome", ["outcome"], RECONCILE_OUTCOMES
)
ROLLOUTS_STARTED = _counter("rollouts_started", "Version changes started, by strategy", ["strategy"])
ROLLOUTS_COMPLETED = _counter(
    "rollouts_completed", "Version changes finished (Ready), by strategy", ["strategy"]
)
ROLLBACKS = _counter(
    "rollbacks",
    "Version changes given up and sent back to the previous version, by strategy and reason",
    ["strategy", "reason"],
)
GATE_DECISIONS = _counter("gate_decisions", "Quality-gate decisions, by result", ["result"], GATE_RESULTS)
WEBHOOK_DELIVERIES = _counter(
    "webhook_deliveries", "MLflow webhook deliveries received, by outcome", ["outcome"], WEBHOOK_OUTCOMES
)
PHASE = Gauge(
    f"{PREFIX}_modelalias_phase",
    "1 for the phase each ModelAlias is in, 0 for the others",
    ["namespace", "name", "phase"],
    registry=REGISTRY,
)

_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidTarget, "invalid_target"),
    (RetryLater, "retry"),
    (SpecError, "invalid_spec"),
    (RegistryUnavailable, "retry"),
    (KubeError, "kube_error"),
    (KubeUnavailable, "kube_error"),
)


def reconcile_outcome(found: bool, error: BaseException | None) -> str:
    """The ``outcome`` label of one reconcile step: whether it found the resource, what it raised."""
    if error is None:
        return "ok" if found else "gone"
    return next((outcome for kind, outcome in _ERRORS if isinstance(error, kind)), "error")


def record_reconcile(found: bool, error: BaseException | None) -> None:
    RECONCILES.labels(outcome=reconcile_outcome(found, error)).inc()


def record_phase(namespace: str, name: str, phase: str | None) -> None:
    """Set the phase gauge of one ModelAlias: 1 for ``phase`` (Pending when it has none), 0 for the rest."""
    current = phase or Phase.PENDING
    for known in {*Phase, current}:
        PHASE.labels(namespace=namespace, name=name, phase=str(known)).set(1 if known == current else 0)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted ModelAlias's phase series."""
    for labels in [s.labels for family in PHASE.collect() for s in family.samples]:
        if (labels["namespace"], labels["name"]) == (namespace, name):
            PHASE.remove(namespace, name, labels["phase"])


def record_rollout_started(strategy: str) -> None:
    ROLLOUTS_STARTED.labels(strategy=strategy).inc()


def record_rollout_completed(strategy: str) -> None:
    ROLLOUTS_COMPLETED.labels(strategy=strategy).inc()


def record_rollback(strategy: str, reason: str) -> None:
    ROLLBACKS.labels(strategy=strategy, reason=reason).inc()


def record_gate_decision(result: str) -> None:
    GATE_DECISIONS.labels(result=result).inc()


def record_webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


async def serve(host: str, port: int) -> web.AppRunner:
    """Start serving ``REGISTRY`` at ``http://host:port/metrics``; the runner's ``cleanup()`` stops it."""
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(REGISTRY))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
