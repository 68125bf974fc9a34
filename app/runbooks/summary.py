"""The one place that writes `operation_runs.summary_counts`.

Only the keys of SUMMARY_KEYS exist (the database refuses any other, see migration 0003); counts
are incremented in SQL, so concurrent tenant jobs never lose each other's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text

from app.extensions import db

SUMMARY_KEYS = ("total", "processed", "updated", "skipped", "failed", "tenants")


def checked(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts as a clean dict; an unknown key or a non-integer count is a programming error."""
    unknown = set(counts) - set(SUMMARY_KEYS)
    if unknown:
        raise ValueError(f"summary_counts keys must be among {SUMMARY_KEYS}, not {sorted(unknown)}")
    for key, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"summary count {key!r} must be an integer, not {value!r}")
    return {key: counts[key] for key in SUMMARY_KEYS if key in counts}


def increment(run_id: int, **counts: int) -> None:
    """Add to a run's counts in the caller's transaction (row-locked until it commits)."""
    deltas = {key: value for key, value in checked(counts).items() if value}
    if not deltas:
        return
    pairs = ", ".join(f"'{key}', coalesce((summary_counts->>'{key}')::bigint, 0) + :{key}" for key in deltas)
    db.session.execute(text(f"UPDATE operation_runs SET summary_counts = summary_counts || jsonb_build_object({pairs}),"
                            " updated_at = now() WHERE id = :run_id"), {"run_id": run_id, **deltas})


def initial(**counts: int) -> dict[str, int]:
    """Every key at zero, then the given ones: what a new run starts with."""
    return {**dict.fromkeys(SUMMARY_KEYS, 0), **checked(counts)}
