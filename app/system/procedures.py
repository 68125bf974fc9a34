"""/system common procedures: service health, and the queue backlog with its failed jobs."""

from __future__ import annotations

from flask import flash, request, url_for

from app.audit.display import link_builder
from app.auth.guards import current_actor, system_required
from app.filters import FilterBar, FilterField
from app.htmx import redirect_to, render, safe_next
from app.system import bp
from app.system import queues as queue_service
from app.system.health import gather_health
from jobs.queues import QUEUES

FAILED_JOB_FILTERS = FilterBar(
    FilterField("queue", "Queue", kind="select", choices={"": "All queues", **{name: name for name in QUEUES}}),
    FilterField("function", "Function contains", max_length=200, placeholder="e.g. deliver", search=True),
    FilterField("since", "Failed since (UTC)", kind="datetime"),
)


@link_builder("job")
def _job_link(event) -> str:
    queue = (event.context or {}).get("queue")
    return url_for("system.queues", queue=queue) if queue in QUEUES else url_for("system.queues")


@bp.get("/health")
@system_required("system.use")
def health():
    return render("system/health.html", block="health", health=gather_health(), area="system")


def _offset_arg() -> int:
    raw = request.args.get("offset", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


@bp.get("/queues")
@system_required("system.use")
def queues():
    parsed = FAILED_JOB_FILTERS.parse(request.args)
    offset = _offset_arg()
    page, status = None, 200
    if parsed.ok:
        values = parsed.values
        page = queue_service.list_failed_jobs(
            filters=queue_service.FailedJobFilters(queue=values["queue"], function=values["function"],
                                                   since=values["since"]), offset=offset)
    else:
        status = 400
    args = parsed.query_args()
    here = url_for("system.queues", **args, **({"offset": offset} if offset else {}))
    return render("system/queues.html", block="results", status=status, push_url=here, here=here,
                  bar=FAILED_JOB_FILTERS, parsed=parsed, page=page, depths=queue_service.queue_depths(), args=args,
                  page_size=queue_service.PAGE_SIZE, retry_all_limit=queue_service.RETRY_ALL_LIMIT, area="system")


def _back():
    return redirect_to(safe_next(request.form.get("next"), url_for("system.queues")))


@bp.post("/queues/<queue>/failed/<job_id>/retry")
@system_required("system.jobs.manage")
def retry_failed_job(queue: str, job_id: str):
    function = queue_service.retry_failed_job(actor=current_actor(), queue=queue, job_id=job_id)
    flash(f"Job {job_id} ({function}) is back on the {queue} queue.", "success")
    return _back()


@bp.post("/queues/<queue>/failed/retry-all")
@system_required("system.jobs.manage")
def retry_all_failed_jobs(queue: str):
    outcome = queue_service.retry_all_failed_jobs(actor=current_actor(), queue=queue)
    message = f"Requeued {outcome.requeued} failed job{'' if outcome.requeued == 1 else 's'} of the {queue} queue."
    if not (outcome.requeued or outcome.skipped or outcome.remaining):
        message = f"The {queue} queue has no failed jobs."
    if outcome.skipped:
        message += f" {outcome.skipped} had already gone."
    if outcome.remaining:
        message += f" {outcome.remaining} still failed (at most {queue_service.RETRY_ALL_LIMIT} per click)."
    flash(message, "success" if outcome.requeued or not outcome.remaining else "warning")
    return _back()


@bp.post("/queues/<queue>/failed/<job_id>/delete")
@system_required("system.jobs.manage")
def delete_failed_job(queue: str, job_id: str):
    function = queue_service.delete_failed_job(actor=current_actor(), queue=queue, job_id=job_id)
    flash(f"Failed job {job_id} ({function}) was deleted.", "success")
    return _back()
