"""`flask --app wsgi worker`: an RQ worker on every Opsdesk queue, with the scheduler."""

from __future__ import annotations

import logging
import os

from flask import Flask
from rq import SimpleWorker, Worker

from app.extensions import db, get_redis
from jobs.context import set_app
from jobs.queues import all_queues, get_queue
from jobs.schedule import book_all

log = logging.getLogger(__name__)


class OpsdeskWorker(Worker):
    """A forking worker whose work horse never reuses the parent's database connections."""

    def main_work_horse(self, job, queue):
        # connections inherited across fork() must not be used by two processes
        db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)


class OpsdeskSimpleWorker(SimpleWorker):
    """Runs each job in the worker process itself, in its own application context and database
    session: connections and compiled statements stay warm from job to job (a runbook's
    hundred tenant jobs start in milliseconds instead of paying a fork and two fresh
    connections each), and no job sees another's session."""

    flask_app: Flask | None = None

    def execute_job(self, job, queue):
        with self.flask_app.app_context():
            try:
                return super().execute_job(job, queue)
            finally:
                db.session.remove()


def run_worker(app: Flask, *, burst: bool = False, simple: bool = False, with_scheduler: bool = True,
               name: str | None = None, queue_names: list[str] | None = None) -> bool:
    set_app(app)
    worker_class = OpsdeskSimpleWorker if simple else OpsdeskWorker
    with app.app_context():
        queues = [get_queue(q) for q in queue_names] if queue_names else all_queues()
        worker = worker_class(queues, connection=get_redis(), name=name)
        worker.flask_app = app
        log.info("worker %s on %s (pid %s)", worker.name, ", ".join(q.name for q in queues), os.getpid())
        if with_scheduler:
            book_all()
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
