"""A finding's lifecycle as its events say it should be, and the set-based repair of findings
that disagree (findings.lifecycle.backfill).

The rules, applied to the events of one tenant and fingerprint:
- first_seen_at / last_seen_at: the earliest / latest event; times_seen: the firing events;
- status: `resolved` when the latest event resolves the alert (a resolve at the same instant as a
  firing wins); otherwise `acknowledged` if someone acknowledged it since the last resolve,
  `reopened` if it was resolved before, else `new`; resolved_at is the last resolve when resolved;
- duplicates (the same tenant and fingerprint twice) are consolidated into the oldest finding
  (lowest id): it takes every event, the latest acknowledgement and an incident link, the others
  are deleted. Each deleted duplicate counts as one updated finding.
A finding without events keeps its lifecycle fields. Repairing is idempotent: a second pass finds
nothing to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from app.extensions import db

# `members`: the findings of the fingerprints in play, each with the survivor of its group
_GROUPS = """
groups AS (
    -- one pass over the members and their events (CTE results carry no statistics, so joining two
    -- of them would invite a nested loop over both)
    SELECT m.survivor_id AS id, max(m.acknowledged_at) AS acknowledged_at,
           (array_agg(m.incident_id ORDER BY m.id = m.survivor_id DESC, m.id DESC)
                FILTER (WHERE m.incident_id IS NOT NULL))[1] AS incident_id,
           count(e.id) AS events, min(e.occurred_at) AS first_seen, max(e.occurred_at) AS last_seen,
           count(e.id) FILTER (WHERE e.status = 'firing') AS times_seen,
           max(e.occurred_at) FILTER (WHERE e.status = 'resolved') AS last_resolved,
           max(e.occurred_at) FILTER (WHERE e.status = 'firing') AS last_firing
    FROM members m LEFT JOIN monitoring_events e ON e.finding_id = m.id
    GROUP BY m.survivor_id
), target AS (
    SELECT f.id, g.acknowledged_at, g.incident_id,
           CASE WHEN g.events = 0 THEN f.first_seen_at ELSE g.first_seen END AS first_seen_at,
           CASE WHEN g.events = 0 THEN f.last_seen_at ELSE g.last_seen END AS last_seen_at,
           CASE WHEN g.events = 0 THEN f.times_seen ELSE g.times_seen END AS times_seen,
           CASE WHEN g.events = 0 THEN f.status
                WHEN g.last_resolved >= coalesce(g.last_firing, '-infinity') THEN 'resolved'
                WHEN g.acknowledged_at >= coalesce(g.last_resolved, '-infinity') THEN 'acknowledged'
                WHEN g.last_resolved IS NOT NULL THEN 'reopened'
                ELSE 'new' END AS status,
           CASE WHEN g.events = 0 THEN f.resolved_at
                WHEN g.last_resolved >= coalesce(g.last_firing, '-infinity') THEN g.last_resolved END AS resolved_at
    FROM groups g JOIN findings f ON f.id = g.id
)"""

_DIFFERS = """(f.first_seen_at, f.last_seen_at, f.times_seen, f.status, f.resolved_at, f.acknowledged_at, f.incident_id)
    IS DISTINCT FROM (t.first_seen_at, t.last_seen_at, t.times_seen, t.status, t.resolved_at, t.acknowledged_at,
                      t.incident_id)"""

# a million findings sort and hash more than the default work_mem; JIT costs more than it saves here
_SURVEY_SETTINGS = ("SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off")

_PREFLIGHT = text(f"""
WITH members AS (
    SELECT f.id, f.tenant_id, f.acknowledged_at, f.incident_id,
           min(f.id) OVER (PARTITION BY f.tenant_id, f.fingerprint) AS survivor_id
    FROM findings f
    WHERE f.workspace_id = :workspace_id AND (CAST(:tenant_id AS integer) IS NULL OR f.tenant_id = :tenant_id)
), {_GROUPS.strip()}
SELECT (SELECT count(*) FROM members) AS total,
       (SELECT count(*) FROM members WHERE id <> survivor_id) AS duplicates,
       (SELECT count(*) FROM target t JOIN findings f ON f.id = t.id WHERE {_DIFFERS}) AS stale,
       (SELECT count(DISTINCT tenant_id) FROM members) AS tenants
""")

# one chunk: about `chunk` findings of one tenant, consolidated and repaired in one statement
_REPAIR_CHUNK = text(f"""
WITH bounds AS (
    -- the chunk ends with a whole fingerprint: every duplicate of it is in this chunk
    SELECT max(fingerprint) AS last_fingerprint FROM (
        SELECT fingerprint FROM findings
        WHERE workspace_id = :workspace_id AND tenant_id = :tenant_id AND fingerprint > :after
        ORDER BY fingerprint LIMIT :chunk) AS next_rows
), members AS (
    SELECT f.id, f.acknowledged_at, f.incident_id, min(f.id) OVER (PARTITION BY f.fingerprint) AS survivor_id
    FROM findings f CROSS JOIN bounds
    WHERE f.workspace_id = :workspace_id AND f.tenant_id = :tenant_id
      AND f.fingerprint > :after AND f.fingerprint <= bounds.last_fingerprint
), {_GROUPS.strip()}, moved AS (
    UPDATE monitoring_events e SET finding_id = m.survivor_id
    FROM members m WHERE e.finding_id = m.id AND m.id <> m.survivor_id
    RETURNING e.id
), removed AS (
    DELETE FROM findings f USING members m WHERE f.id = m.id AND m.id <> m.survivor_id
    RETURNING f.id
), repaired AS (
    UPDATE findings f SET first_seen_at = t.first_seen_at, last_seen_at = t.last_seen_at,
        times_seen = t.times_seen, status = t.status, resolved_at = t.resolved_at,
        acknowledged_at = t.acknowledged_at, incident_id = t.incident_id, updated_at = now()
    FROM target t WHERE f.id = t.id AND {_DIFFERS}
    RETURNING f.id
)
SELECT (SELECT count(*) FROM members) AS scanned, (SELECT count(*) FROM removed) AS removed,
       (SELECT count(*) FROM repaired) AS repaired, (SELECT count(*) FROM moved) AS moved,
       (SELECT last_fingerprint FROM bounds) AS last_fingerprint
""")


@dataclass(frozen=True)
class Survey:
    total: int  # findings scanned
    duplicates: int  # findings that would be folded into another
    stale: int  # findings whose lifecycle fields would change
    tenants: int

    @property
    def affected(self) -> int:
        return self.duplicates + self.stale


@dataclass(frozen=True)
class RepairedChunk:
    scanned: int
    changed: int  # duplicates removed + findings repaired
    last_fingerprint: str | None


def survey(*, workspace_id: int, tenant_id: int | None = None) -> Survey:
    """What a repair would change, without changing anything."""
    for setting in _SURVEY_SETTINGS:
        db.session.execute(text(setting))
    row = db.session.execute(_PREFLIGHT, {"workspace_id": workspace_id, "tenant_id": tenant_id}).one()
    return Survey(total=row.total, duplicates=row.duplicates, stale=row.stale, tenants=row.tenants)


def repair_chunk(*, workspace_id: int, tenant_id: int, after: str = "", chunk: int = 5000) -> RepairedChunk:
    """Consolidate and repair the next `chunk` or so findings in fingerprint order after `after`, in
    the caller's transaction. Run again from last_fingerprint until it is None."""
    row = db.session.execute(_REPAIR_CHUNK, {"workspace_id": workspace_id, "tenant_id": tenant_id,
                                             "after": after, "chunk": chunk}).one()
    return RepairedChunk(scanned=row.scanned, changed=row.removed + row.repaired, last_fingerprint=row.last_fingerprint)


def repair_all(*, workspace_id: int, tenant_id: int, chunk: int = 5000) -> tuple[int, int]:
    """Every fingerprint of a tenant, each chunk committed: (scanned, changed)."""
    scanned = changed = 0
    after = ""
    while True:
        result = repair_chunk(workspace_id=workspace_id, tenant_id=tenant_id, after=after, chunk=chunk)
        db.session.commit()
        scanned, changed = scanned + result.scanned, changed + result.changed
        if result.last_fingerprint is None:
            return scanned, changed
        after = result.last_fingerprint


# every finding of a workspace (or tenant) in one statement, duplicates left alone: how the data
# generator makes its findings agree with their events, and the benchmark's set-based baseline
_RECOMPUTE_ALL = text("""
WITH truth AS (
    SELECT e.finding_id AS id, min(e.occurred_at) AS first_seen, max(e.occurred_at) AS last_seen,
           count(*) FILTER (WHERE e.status = 'firing') AS times_seen,
           max(e.occurred_at) FILTER (WHERE e.status = 'resolved') AS last_resolved,
           max(e.occurred_at) FILTER (WHERE e.status = 'firing') AS last_firing
    FROM monitoring_events e
    WHERE e.workspace_id = :workspace_id AND (CAST(:tenant_id AS integer) IS NULL OR e.tenant_id = :tenant_id)
      AND e.finding_id IS NOT NULL
    GROUP BY e.finding_id
), target AS (
    SELECT f.id, t.first_seen AS first_seen_at, t.last_seen AS last_seen_at, t.times_seen,
           CASE WHEN t.last_resolved >= coalesce(t.last_firing, '-infinity') THEN 'resolved'
                WHEN f.acknowledged_at >= coalesce(t.last_resolved, '-infinity') THEN 'acknowledged'
                WHEN t.last_resolved IS NOT NULL THEN 'reopened'
                ELSE 'new' END AS status,
           CASE WHEN t.last_resolved >= coalesce(t.last_firing, '-infinity') THEN t.last_resolved END AS resolved_at
    FROM truth t JOIN findings f ON f.id = t.id
)
UPDATE findings f SET first_seen_at = t.first_seen_at, last_seen_at = t.last_seen_at, times_seen = t.times_seen,
    status = t.status, resolved_at = t.resolved_at, updated_at = now()
FROM target t
WHERE f.id = t.id AND (f.first_seen_at, f.last_seen_at, f.times_seen, f.status, f.resolved_at)
      IS DISTINCT FROM (t.first_seen_at, t.last_seen_at, t.times_seen, t.status, t.resolved_at)
""")


def recompute_all(*, workspace_id: int, tenant_id: int | None = None) -> int:
    """Bring every finding's lifecycle in line with its own events in one UPDATE; rows changed."""
    return db.session.execute(_RECOMPUTE_ALL, {"workspace_id": workspace_id, "tenant_id": tenant_id}).rowcount
