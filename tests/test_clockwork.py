"""Each tick queues the scheduler, the escalation of unhandled alerts and the community digest."""

from __future__ import annotations

import pytest

from tertulia import clockwork


def queued_task_paths(settings) -> set[str]:  # type: ignore[no-untyped-def]
    if settings.TASKS["default"]["BACKEND"].startswith("django_tasks_rq"):
        import django_rq

        queue = django_rq.get_queue("default")
        return {job.kwargs.get("task_path", job.func_name) for job in queue.get_jobs()} | {
            job.args[0] if job.args and isinstance(job.args[0], str) else job.func_name
            for job in queue.get_jobs()
        }
    from django_tasks_db.models import DBTaskResult

    return set(DBTaskResult.objects.values_list("task_path", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_tick_queues_the_scheduler_and_the_escalation(settings) -> None:  # type: ignore[no-untyped-def]
    clockwork.tick()
    paths = " ".join(queued_task_paths(settings))
    assert "schedule_due_task" in paths
    assert "escalate_alerts_task" in paths
    assert "community_digest_task" in paths
    from tertulia.messaging.worker import run_until_idle

    run_until_idle()
