"""`/metrics`: the exporter's defaults, our request histogram, and gauges read at scrape time.

Under gunicorn the processes share counters and histograms through PROMETHEUS_MULTIPROC_DIR
(set in gunicorn.conf.py). Gauges are not kept in any process: collectors read the database and
Redis when Prometheus scrapes, so two web processes never disagree.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable

from flask import Flask, current_app, g, request
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_flask_exporter import PrometheusMetrics

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Areas add functions yielding metric families read from the database or Redis at scrape time.
_truth_sources: list[Callable[[], Iterable[Metric]]] = []


def truth_source(fn: Callable[[], Iterable[Metric]]) -> Callable[[], Iterable[Metric]]:
    _truth_sources.append(fn)
    return fn


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _TruthCollector(Collector):
    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        with self.app.app_context():
            for source in _truth_sources:
                try:
                    yield from source()
                except Exception:  # a scrape must not fail because one source is down
                    log.warning("metrics source %s failed", source.__name__, exc_info=True)


class OpsdeskMetrics(PrometheusMetrics):
    """PrometheusMetrics whose scrape also runs the truth collectors, in multiprocess mode too."""

    def generate_metrics(self, accept_header=None, names=None):
        from prometheus_flask_exporter import choose_encoder

        registry = CollectorRegistry()
        if multiprocess_mode():
            prometheus_multiprocess.MultiProcessCollector(registry)
        else:
            registry.register(_RegistryProxy(self.registry))
        registry.register(_TruthCollector(current_app._get_current_object()))
        if names:
            registry = registry.restricted_registry(names)
        generate_latest, content_type = choose_encoder(accept_header)
        return generate_latest(registry).decode("utf-8"), content_type


class _RegistryProxy(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def init_metrics(app: Flask) -> None:
    if multiprocess_mode():
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    registry = CollectorRegistry()
    app.extensions["opsdesk_metrics_registry"] = registry
    OpsdeskMetrics(app, registry=registry, group_by="url_rule", buckets=LATENCY_BUCKETS,
                   excluded_paths=["^/static/", "^/metrics$"])
    duration = Histogram(
        "mlplatform_api_request_duration_seconds", "API latency distribution",
        ("method", "endpoint", "status_code"), buckets=LATENCY_BUCKETS, registry=registry)

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("request_started", None)
        if started is not None and request.endpoint not in {"static", "prometheus_metrics"}:
            rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
            duration.labels(request.method, rule, str(response.status_code)).observe(
                time.perf_counter() - started)
        return response


@truth_source
def _denylist_size() -> Iterable[Metric]:
    from app.api.tokens import denylist_size

    gauge = GaugeMetricFamily("mlplatform_redis_denylist_size", "Current number of denylisted JWT JTIs in Redis")
    gauge.add_metric([], denylist_size())
    yield gauge
