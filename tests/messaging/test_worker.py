"""The long-lived worker: on RQ it runs jobs in its own process (no fork per job), takes the
queue of work a person waits for first, and can run in a thread (`tertulia serve`)."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def rq_backend(settings):  # type: ignore[no-untyped-def]
    if not settings.TASKS["default"]["BACKEND"].startswith("django_tasks_rq"):
        pytest.skip("the database queue is configured (no REDIS_URL)")


def test_routing_and_sending_go_first_on_rq(rq_backend) -> None:  # type: ignore[no-untyped-def]
    from rq import SimpleWorker

    from tertulia.messaging.tasks import route_inbound_task, send_outbox_task
    from tertulia.messaging.worker import _rq_worker

    worker = _rq_worker()
    assert isinstance(worker, SimpleWorker), "no fork per job"
    assert [q.name for q in worker.queues] == ["interactive", "default"]
    assert route_inbound_task.queue_name == send_outbox_task.queue_name == "interactive"


@pytest.mark.django_db(transaction=True)
def test_the_rq_worker_runs_in_a_thread(rq_backend) -> None:  # type: ignore[no-untyped-def]
    from tertulia.messaging.tasks import send_outbox_task
    from tertulia.messaging.worker import _rq_worker

    send_outbox_task.enqueue()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            _rq_worker().work(burst=True, logging_level="WARNING")
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not failures
    worker_queues = _rq_worker().queues
    assert sum(q.count for q in worker_queues) == 0, "the job ran"


def test_the_database_queue_keeps_priorities(settings) -> None:  # type: ignore[no-untyped-def]
    if not settings.TASKS["default"]["BACKEND"].startswith("django_tasks_db"):
        pytest.skip("RQ is configured")
    from tertulia.messaging.tasks import PERSON_WAITING, route_inbound_task

    assert route_inbound_task.priority == PERSON_WAITING
    assert route_inbound_task.queue_name == "default"


def test_a_starting_worker_builds_the_safety_classifier_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The first message after a start must not wait while the lexicon is compiled."""
    from tertulia.messaging import pipeline, worker
    from tertulia.safety import classifier

    monkeypatch.setattr(classifier, "_INSTANCES", {})
    order: list[str] = []

    class Queue:
        def run(self) -> None:
            order.append("ready" if "lexicon" in classifier._INSTANCES else "not ready")

    monkeypatch.setattr(worker, "_db_worker", lambda **kwargs: Queue())
    monkeypatch.setattr(worker, "_backend_path", lambda: "django_tasks_db.DatabaseBackend")
    monkeypatch.setattr(pipeline, "pipeline_start", lambda: None)
    monkeypatch.setattr(pipeline, "pipeline_stop", lambda: None)
    worker.run_forever(webhooks=False)
    assert order == ["ready"]


def test_a_receiver_that_fails_at_start_does_not_stop_the_worker(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from tertulia.messaging import pipeline, worker
    from tertulia.messaging.signals import worker_starting

    def broken(sender, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("lexicon unreadable")

    worker_starting.connect(broken, dispatch_uid="test.broken")
    ran: list[str] = []

    class Queue:
        def run(self) -> None:
            ran.append("ran")

    monkeypatch.setattr(worker, "_db_worker", lambda **kwargs: Queue())
    monkeypatch.setattr(worker, "_backend_path", lambda: "django_tasks_db.DatabaseBackend")
    monkeypatch.setattr(pipeline, "pipeline_start", lambda: None)
    monkeypatch.setattr(pipeline, "pipeline_stop", lambda: None)
    try:
        worker.run_forever(webhooks=False)
    finally:
        worker_starting.disconnect(dispatch_uid="test.broken")
    assert ran == ["ran"]
    assert "worker start:" in caplog.text and "lexicon unreadable" in caplog.text
