"""Writes for the facilitator inbox; every action goes to the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.safety.services import audit_record


def message_mark_handled(*, message: Message, user: Any, now: dt.datetime | None = None) -> bool:
    """Mark a waiting message handled; False when it already was (nothing is logged twice)."""
    now = now or clock.now()
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, handled_at__isnull=True).update(
            handled_at=now
        )
        if changed:
            audit_record(actor=user, action="message.handled", obj=message, now=now)
    return bool(changed)
