"""The community's background work: the digest pass, run on the clock tick."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db import transaction
from django_tasks import task

from tertulia.core import clock


@task()
def community_digest_task(now_iso: str | None = None) -> dict[str, int]:
    """Invite back the men who are owed posts outside their window; send the grouped posts to
    those whose window is open. Idempotent: safe on every tick and on several machines."""
    from tertulia.community.digest import community_digest_due
    from tertulia.messaging.tasks import send_outbox_task

    now = dt.datetime.fromisoformat(now_iso) if now_iso else clock.now()
    report = community_digest_due(now)
    if report.invited or report.messages:
        transaction.on_commit(lambda: send_outbox_task.enqueue(now.isoformat()))
    return dataclasses.asdict(report)
