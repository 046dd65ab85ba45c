"""What runs every minute, whatever else the deployment runs: the scheduler, and the escalation
of safety alerts nobody has handled. The worker and `tertulia serve` both call `tick`."""

from __future__ import annotations


def tick() -> None:
    from tertulia.messaging.tasks import schedule_due_task
    from tertulia.safety.tasks import escalate_alerts_task

    schedule_due_task.enqueue()
    escalate_alerts_task.enqueue()
