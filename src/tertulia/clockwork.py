"""What runs every minute, whatever else the deployment runs: the scheduler, the escalation
of safety alerts nobody has handled, and the community digest. The worker and `tertulia serve`
both call `tick`."""

from __future__ import annotations


def tick() -> None:
    from tertulia.community.tasks import community_digest_task
    from tertulia.messaging.tasks import schedule_due_task
    from tertulia.safety.tasks import escalate_alerts_task

    schedule_due_task.enqueue()
    escalate_alerts_task.enqueue()
    community_digest_task.enqueue()
