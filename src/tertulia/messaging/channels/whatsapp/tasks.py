"""Background work for WhatsApp webhooks, through Django's Tasks API.

The webhook view no longer enqueues a task per POST: workers claim stored events (handoff.py).
The task stays so that jobs queued by an earlier version still run after an upgrade."""

from __future__ import annotations

from django_tasks import task

from .processing import webhook_event_process


@task()
def process_webhook_task(event_id: int) -> dict[str, int]:
    """Parse one stored webhook body; record its messages once, route them, apply statuses."""
    return webhook_event_process(event_id)
