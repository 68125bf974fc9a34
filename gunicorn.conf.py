"""gunicorn settings for Opsdesk (`gunicorn wsgi:app` reads this file from the working directory).

Metrics from several worker processes are merged through PROMETHEUS_MULTIPROC_DIR, which must
be set before any worker imports prometheus_client; it is emptied when the master starts.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("OPSDESK_BIND", "0.0.0.0:" + os.environ.get("PORT", "8000"))
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("OPSDESK_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("OPSDESK_WEB_TIMEOUT", "30"))
keepalive = 5
accesslog = os.environ.get("OPSDESK_ACCESS_LOG") or None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(tempfile.gettempdir(),
                                                                         f"opsdesk-metrics-{os.getpid()}")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # The application's modules, templates and compiled SQL are loaded now and live as long as
    # the worker: move them out of the collector's way so each request's collections stay small.
    import gc

    gc.collect()
    gc.freeze()
