"""Prometheus metrics of the predictor, on KServe's registry so that its /metrics shows them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class PredictorMetrics:
    live_version: Gauge
    cache_size: Gauge
    reloads: Counter
    reload_failures: Counter

    def set_live(self, model: str, version: str) -> None:
        if version.isdigit():
            self.live_version.labels(model=model).set(int(version))


@lru_cache
def get_metrics(registry: CollectorRegistry = REGISTRY) -> PredictorMetrics:
    """One set per registry (metrics cannot be registered twice on the same registry)."""
    return PredictorMetrics(
        live_version=Gauge(
            "btcf_predictor_live_version", "Model version being served live", ["model"], registry=registry
        ),
        cache_size=Gauge(
            "btcf_predictor_version_cache_size", "Model versions kept loaded", ["model"], registry=registry
        ),
        reloads=Counter(
            "btcf_predictor_reloads", "Successful reloads of the live version", ["model"], registry=registry
        ),
        reload_failures=Counter(
            "btcf_predictor_reload_failures",
            "Failed reloads, by reason",
            ["model", "reason"],
            registry=registry,
        ),
    )
