"""Safety's background work: escalate alerts nobody handled in time. Called on the ticker."""

from __future__ import annotations

import datetime as dt

from django_tasks import task

from tertulia.core import clock
from tertulia.safety.services import alerts_escalate_due


@task()
def escalate_alerts_task(now_iso: str | None = None) -> int:
    """Notify supervisors of alerts still open after TERTULIA_ALERT_ESCALATE_MINUTES."""
    now = dt.datetime.fromisoformat(now_iso) if now_iso else clock.now()
    return alerts_escalate_due(now=now)
