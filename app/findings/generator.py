"""Realistic findings and monitoring events in bulk, set-based, with the inconsistencies
findings.lifecycle.backfill repairs: stale lifecycle fields and duplicate findings of one
fingerprint. Used by `flask --app wsgi findings generate`, the demo data and the benchmark."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, text

from app.errors import ValidationFailed
from app.extensions import db
from app.findings import lifecycle
from app.workspaces.models import Tenant

SERVICES = ["checkout-api", "payments-gateway", "search", "identity", "ledger", "notifications", "inventory",
            "pricing-model", "fraud-scoring", "reporting", "edge-proxy", "data-pipeline"]
ALERT_TYPES = ["HighErrorRate", "HighLatencyP99", "PodCrashLooping", "DiskPressure", "CertificateExpiring",
               "ReplicationLag", "QueueBacklog", "ModelDriftDetected", "HostDown", "MemoryPressure"]
SEVERITIES = ["critical", "high", "warning", "info"]
SOURCES = ["alertmanager", "pagerduty", "generic"]

MAX_PER_TENANT = 1_000_000

_FINDINGS = text("""
INSERT INTO findings (workspace_id, tenant_id, fingerprint, title, service, alert_type, severity, status,
                      acknowledged_at, created_at, updated_at)
SELECT :workspace_id, :tenant_id, fp, alert || ' on ' || service, service, alert, severity, 'new',
       CASE WHEN random() < 0.3 THEN started + interval '7 minutes' END, started, started
FROM (
    SELECT md5(:tenant_id || ':' || :batch || ':' || g) AS fp,
           (CAST(:services AS text[]))[1 + floor(random() * cardinality(CAST(:services AS text[])))::int] AS service,
           (CAST(:alerts AS text[]))[1 + floor(random() * cardinality(CAST(:alerts AS text[])))::int] AS alert,
           (CAST(:severities AS text[]))[1 + floor(random() * cardinality(CAST(:severities AS text[])))::int]
               AS severity,
           now() - random() * interval '30 days' AS started
    FROM generate_series(1, :count) AS g
) AS s
RETURNING id
""")

# 1-5 events per finding, alternating firing and resolved, every ~40 minutes from its start
_EVENTS = text("""
INSERT INTO monitoring_events (workspace_id, tenant_id, finding_id, source, service, alert_type, severity,
                               fingerprint, status, occurred_at, ingested_at, labels, payload_excerpt)
SELECT f.workspace_id, f.tenant_id, f.id, (CAST(:sources AS text[]))[1 + f.id % 3], f.service, f.alert_type,
       f.severity, f.fingerprint, CASE WHEN k % 2 = 1 THEN 'firing' ELSE 'resolved' END,
       f.created_at + (k - 1) * interval '40 minutes', f.created_at + (k - 1) * interval '40 minutes' + interval '2 s',
       jsonb_build_object('alertname', f.alert_type, 'service', f.service, 'severity', f.severity),
       '{"status": "' || CASE WHEN k % 2 = 1 THEN 'firing' ELSE 'resolved' END || '", "alertname": "'
           || f.alert_type || '"}'
FROM findings f
CROSS JOIN LATERAL generate_series(1, 1 + (hashint4(f.id::int) & 2147483647) % 5) AS k
WHERE f.workspace_id = :workspace_id AND f.tenant_id = :tenant_id AND f.id >= :first_id
""")

# a copy of some findings takes over their later events: two findings of one fingerprint
_DUPLICATES = text("""
WITH picked AS (
    SELECT f.* FROM findings f
    WHERE f.workspace_id = :workspace_id AND f.tenant_id = :tenant_id AND f.id >= :first_id
      AND random() < :share
      AND (SELECT count(*) FROM monitoring_events e WHERE e.finding_id = f.id) >= 2
), copies AS (
    INSERT INTO findings (workspace_id, tenant_id, fingerprint, title, service, alert_type, severity, status,
                          acknowledged_at, created_at, updated_at)
    SELECT workspace_id, tenant_id, fingerprint, title, service, alert_type, severity, 'new', NULL,
           created_at + interval '50 minutes', now()
    FROM picked
    RETURNING id, fingerprint
)
UPDATE monitoring_events e SET finding_id = c.id
FROM copies c JOIN picked p ON p.fingerprint = c.fingerprint
WHERE e.finding_id = p.id AND e.occurred_at >= p.created_at + interval '40 minutes'
""")

# stale lifecycle fields, three kinds: a wrong count, a wrong last-seen, a wrong status
_STALE = text("""
UPDATE findings f SET
    times_seen = CASE WHEN r < 0.34 THEN times_seen + 1 + floor(random() * 3)::int ELSE times_seen END,
    last_seen_at = CASE WHEN r >= 0.34 AND r < 0.67 THEN last_seen_at - interval '3 hours' ELSE last_seen_at END,
    status = CASE WHEN r >= 0.67 THEN CASE WHEN status = 'resolved' THEN 'new' ELSE 'resolved' END ELSE status END,
    updated_at = now() - interval '2 days'
FROM (SELECT id, random() AS r FROM findings
      WHERE workspace_id = :workspace_id AND tenant_id = :tenant_id AND id >= :first_id AND random() < :share) s
WHERE f.id = s.id
""")


@dataclass
class GeneratedFindings:
    tenants: int = 0
    findings: int = 0
    events: int = 0
    duplicates: int = 0
    stale: int = 0
    per_tenant: dict[str, int] = field(default_factory=dict)


def generate(*, workspace_id: int, per_tenant: int, broken_ratio: float = 0.1, tenant_ids: list[int] | None = None,
             batch: str = "", progress: Callable[[int], None] | None = None) -> GeneratedFindings:
    """Add `per_tenant` findings with events to each tenant (all of the workspace's unless named),
    then break `broken_ratio` of them: three quarters stale, one quarter duplicated. Each tenant is
    committed on its own; `progress` is told how many findings each committed tenant added."""
    problems = {}
    if not 1 <= per_tenant <= MAX_PER_TENANT:
        problems["per_tenant"] = f"must be between 1 and {MAX_PER_TENANT:,}"
    if not 0 <= broken_ratio <= 1:
        problems["broken_ratio"] = "must be between 0 and 1"
    query = select(Tenant).where(Tenant.workspace_id == workspace_id).order_by(Tenant.id)
    if tenant_ids is not None:
        query = query.where(Tenant.id.in_(tenant_ids))
    tenants = db.session.scalars(query).all()
    if not tenants:
        problems["workspace"] = "has no tenants"
    if problems:
        raise ValidationFailed("Cannot generate findings.", fields=problems)
    result = GeneratedFindings()
    batch = batch or db.session.scalar(text("SELECT to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS')"))
    arrays = {"services": SERVICES, "alerts": ALERT_TYPES, "severities": SEVERITIES, "sources": SOURCES}
    for tenant in tenants:
        scope = {"workspace_id": workspace_id, "tenant_id": tenant.id}
        ids = db.session.scalars(_FINDINGS, {**scope, **arrays, "batch": batch, "count": per_tenant}).all()
        first_id = min(ids)
        events = db.session.execute(_EVENTS, {**scope, **arrays, "first_id": first_id}).rowcount
        db.session.execute(_DUPLICATES, {**scope, "first_id": first_id, "share": broken_ratio / 4})
        lifecycle.recompute_all(**scope)
        stale = db.session.execute(_STALE, {**scope, "first_id": first_id,
                                            "share": broken_ratio * 3 / 4}).rowcount
        db.session.commit()
        added = db.session.scalar(text("SELECT count(*) FROM findings WHERE tenant_id = :tenant_id AND id >= :first"),
                                  {"tenant_id": tenant.id, "first": first_id})
        result.tenants += 1
        result.findings += added
        result.events += events
        result.duplicates += added - per_tenant
        result.stale += stale
        result.per_tenant[tenant.slug] = added
        if progress:
            progress(added)
    return result
