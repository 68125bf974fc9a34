"""The incident metrics of spec §12, read from the database at scrape time (every process agrees)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import text

from app.extensions import db
from app.incidents.vocabulary import SEVERITIES
from app.metrics import truth_source


@truth_source
def incident_metrics() -> Iterable[Metric]:
    totals = CounterMetricFamily("mlplatform_incidents_total", "Total incidents created since service start",
                                 labels=["severity", "trigger_source"])
    for row in db.session.execute(text("""
        SELECT severity, trigger_source, sum(total)::bigint AS n FROM incident_totals
        GROUP BY severity, trigger_source ORDER BY severity, trigger_source
    """)):
        totals.add_metric([row.severity, row.trigger_source], row.n)
    open_gauge = GaugeMetricFamily("mlplatform_incidents_open", "Currently open incidents by severity",
                                   labels=["severity"])
    counts = dict(db.session.execute(text("""
        SELECT severity, sum(n)::bigint FROM incident_status_counts
        WHERE status IN ('open', 'investigating', 'escalated', 'pending_vendor', 'mitigated') AND NOT is_simulation
        GROUP BY severity
    """)).all())
    db.session.rollback()
    for severity in SEVERITIES:
        open_gauge.add_metric([severity], counts.get(severity, 0))
    yield totals
    yield open_gauge
