"""Running queued tasks: as a long-lived worker (`tertulia worker`) or, for the demo and the
tests, until the queue is empty. Works with whichever backend settings.TASKS configures."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)


def _backend_path() -> str:
    return str(settings.TASKS["default"]["BACKEND"])


def run_until_idle(max_rounds: int = 10_000) -> int:
    """Process stored webhook events and run queued tasks in this process until neither is
    left; return how many events and tasks ran."""
    from tertulia.messaging.channels.whatsapp.handoff import webhook_events_drain

    ran = 0
    for _ in range(max_rounds):
        events = webhook_events_drain()
        tasks = _run_queued()
        ran += events + tasks
        if events == 0 and tasks == 0:
            return ran
    return ran


def _run_queued(max_rounds: int = 10_000) -> int:
    """Run queued tasks in this process until none is left; return how many ran."""
    backend = _backend_path()
    if backend.startswith("django_tasks_db"):
        from django_tasks_db.models import DBTaskResult

        ran = 0
        for _ in range(max_rounds):
            pending = DBTaskResult.objects.ready().count()
            if pending == 0:
                return ran
            _db_worker(batch=True).run()
            ran += pending
        return ran
    if backend.startswith("django_tasks_rq"):
        worker = _rq_worker()
        ran = 0
        for _ in range(max_rounds):
            waiting = sum(queue.count for queue in worker.queues)
            if waiting == 0:
                return ran
            ran += waiting
            worker.work(burst=True, logging_level="WARNING")
        return ran
    return 0  # the immediate backend ran everything at enqueue time


# Seconds an idle database-queue worker sleeps before it looks for work again: each hop
# between tasks (a man's post, then its relay) can wait this long.
DB_POLL_INTERVAL = 0.05


def _db_worker(*, batch: bool, worker_id: str = "tertulia"):  # type: ignore[no-untyped-def]
    from django_tasks_db.management.commands.db_worker import Worker

    return Worker(
        queue_names=["default"],
        interval=DB_POLL_INTERVAL if not batch else 0,
        batch=batch,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )


def _rq_worker(*, long_lived: bool = False):  # type: ignore[no-untyped-def]
    """An RQ worker that runs every job in its own process (RQ's default forks one per job:
    a new database connection and new connections to the provider for each of the few
    short jobs a community post makes; decision 0057). It takes the queue of work a person
    waits for first (messaging.tasks)."""
    import django_rq
    from django.db import close_old_connections
    from django_tasks_rq.backend import Job
    from rq import SimpleWorker

    from tertulia.messaging.tasks import INTERACTIVE_QUEUE

    class Worker(SimpleWorker):
        def _install_signal_handlers(self) -> None:
            # `tertulia serve` runs the worker in a thread, where signals cannot be handled.
            if threading.current_thread() is threading.main_thread():
                super()._install_signal_handlers()

        def execute_job(self, job, queue):  # type: ignore[no-untyped-def]
            if not long_lived:  # run_until_idle: the caller owns the connection (a test's)
                return super().execute_job(job, queue)
            # What Django does around a request: a connection that broke or aged is
            # replaced, not reused by every later job.
            close_old_connections()
            try:
                return super().execute_job(job, queue)
            finally:
                close_old_connections()

    configured = settings.TASKS["default"].get("QUEUES") or ["default"]
    names = sorted(configured, key=lambda name: name != INTERACTIVE_QUEUE)
    queues = [django_rq.get_queue(name, job_class=Job) for name in names]
    return Worker(queues, connection=queues[0].connection, job_class=Job)


def run_forever(*, webhooks: bool = True) -> None:
    """A long-lived worker on the configured backend. With `webhooks`, a thread of the same
    process claims and processes stored webhook events (channels/whatsapp/handoff.py)."""
    from tertulia.messaging import pipeline
    from tertulia.messaging.signals import worker_starting

    # A receiver that fails must not stop the worker (in `tertulia serve` it is a thread whose
    # death nobody would see): what it prepares is then built when first needed.
    for receiver, outcome in worker_starting.send_robust(sender=None):
        if isinstance(outcome, Exception):
            logger.error("worker start: %s failed", receiver, exc_info=outcome)
    # A routed post's copies are recorded on a thread of their own while the next post is
    # routed (messaging.pipeline); what was started is recorded before the worker exits.
    pipeline.pipeline_start()
    try:
        if webhooks:
            from tertulia.messaging.channels.whatsapp import handoff

            handoff.start()
        backend = _backend_path()
        if backend.startswith("django_tasks_rq"):
            _rq_worker(long_lived=True).work()
        else:
            _db_worker(batch=False).run()
    finally:
        pipeline.pipeline_stop()


def start_ticker(tick: Callable[[], None], every_seconds: float) -> threading.Thread:
    """Call `tick` every `every_seconds` in a daemon thread (the scheduler's clock). Several
    tickers on several machines are harmless: scheduling is idempotent."""

    def loop() -> None:
        while True:
            try:
                tick()
            except Exception:  # a failed tick must not stop the next one
                logger.exception("scheduler tick failed")
            time.sleep(every_seconds)

    thread = threading.Thread(target=loop, name="tertulia-ticker", daemon=True)
    thread.start()
    return thread
