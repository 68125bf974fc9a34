"""What a run may say about a failure: a stable reason code and a short message with no secrets,
no personal data and no stack trace (it is shown to operators and sent in alerts)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

MESSAGE_LIMIT = 300
FAILURE_LIMIT = 50  # entries kept per run; the rest are counted, not stored

# stable reason codes: alerts, dashboards and operators' notes depend on them
REASON_CODES = {
    "database.unavailable": "The database could not be reached.",
    "database.timeout": "A statement took too long or waited too long for a lock.",
    "database.error": "The database refused the work.",
    "queue.unavailable": "Redis could not be reached.",
    "job.timeout": "The job ran longer than its time limit.",
    "worker.lost": "The worker running this part stopped without finishing it.",
    "audit.chain_broken": "The audit hash chain does not verify.",
    "tenant.missing": "The tenant no longer exists.",
    "runbook.error": "The runbook failed.",
}

# what the work found (a verification that fails), as opposed to errors that stopped it
FINDING_CODES = frozenset({"audit.chain_broken"})

_REDACTIONS = [
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@"), r"\1[redacted]@"),  # URL credentials
    (re.compile(r"(?i)\b(bearer|basic)\s+[a-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|authorization|cookie)(\s*[=:]\s*)"
                r"(\"[^\"]*\"|'[^']*'|\S+)"), r"\1\2[redacted]"),
    (re.compile(r"\beyJ[a-zA-Z0-9_-]+\.[a-zA-Z0-9_-]+\.[a-zA-Z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[redacted-email]"),
    (re.compile(r"\b[a-fA-F0-9]{32,}\b|\b[A-Za-z0-9+/_-]{40,}={0,2}"), "[redacted-key]"),
]


def sanitize_message(message: object) -> str:
    """One line of plain text, secrets and e-mail addresses redacted, at most MESSAGE_LIMIT chars."""
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    # a traceback's useful line is its last; "File ..." lines would leak paths and code
    lines = [line for line in lines if not line.startswith(("Traceback", "File ", "^", "~"))]
    line = lines[-1] if lines else ""
    for pattern, replacement in _REDACTIONS:
        line = pattern.sub(replacement, line)
    line = re.sub(r"(/[\w.-]+){2,}", "[path]", line)  # file system paths
    line = " ".join(line.split())
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def failure_entry(reason_code: str, message: object = None, *, tenant_id: int | None = None) -> dict:
    if reason_code not in REASON_CODES:
        raise ValueError(f"unknown reason code {reason_code!r}")
    text = sanitize_message(message) or REASON_CODES[reason_code]
    return {"reason_code": reason_code, "message": text, "tenant_id": tenant_id,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


def classify(error: BaseException) -> tuple[str, str]:
    """A reason code and a safe message for an exception a job raised."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from rq.timeouts import JobTimeoutException
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(error, JobTimeoutException):
        return "job.timeout", REASON_CODES["job.timeout"]
    if isinstance(error, (RedisConnectionError, RedisTimeoutError)):
        return "queue.unavailable", REASON_CODES["queue.unavailable"]
    if isinstance(error, DBAPIError):
        original = getattr(error, "orig", None)
        state = getattr(getattr(original, "diag", None), "sqlstate", None) or getattr(original, "sqlstate", None)
        if state in {"57014", "55P03", "40P01"}:  # query cancelled, lock not available, deadlock
            return "database.timeout", REASON_CODES["database.timeout"]
        if isinstance(error, OperationalError) or (state or "").startswith("08"):
            return "database.unavailable", REASON_CODES["database.unavailable"]
        # the driver's first line names the problem; the statement and parameters are left out
        return "database.error", sanitize_message(str(original or error).split("\n")[0])
    return "runbook.error", sanitize_message(f"{error.__class__.__name__}: {error}")
