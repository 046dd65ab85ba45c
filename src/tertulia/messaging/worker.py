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
        import django_rq
        from django_tasks_rq.backend import Job
        from rq import SimpleWorker

        queue = django_rq.get_queue("default", job_class=Job)
        worker = SimpleWorker([queue], connection=queue.connection, job_class=Job)
        ran = 0
        for _ in range(max_rounds):
            if queue.count == 0:
                return ran
            ran += queue.count
            worker.work(burst=True, logging_level="WARNING")
        return ran
    return 0  # the immediate backend ran everything at enqueue time


def _db_worker(*, batch: bool, worker_id: str = "tertulia"):  # type: ignore[no-untyped-def]
    from django_tasks_db.management.commands.db_worker import Worker

    return Worker(
        queue_names=["default"],
        interval=0.2 if not batch else 0,
        batch=batch,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )


def run_forever(*, webhooks: bool = True) -> None:
    """A long-lived worker on the configured backend. With `webhooks`, a thread of the same
    process claims and processes stored webhook events (channels/whatsapp/handoff.py)."""
    if webhooks:
        from tertulia.messaging.channels.whatsapp import handoff

        handoff.start()
    backend = _backend_path()
    if backend.startswith("django_tasks_rq"):
        import django_rq
        from django_tasks_rq.backend import Job
        from rq import Worker

        queue = django_rq.get_queue("default", job_class=Job)
        Worker([queue], connection=queue.connection, job_class=Job).work()
    else:
        _db_worker(batch=False).run()


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
