"""WhatsApp's customer-service window: for 24 hours after a man's last message to us, free-form
messages may be sent to him; outside it only approved templates may. One place answers "is his
window open?", for the channel's sender, the community relay and the digests alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Max

from tertulia.core import clock
from tertulia.messaging.models import Message

SERVICE_WINDOW = dt.timedelta(hours=24)


def window_closes_at(participant_id: int) -> dt.datetime | None:
    """When his window closes (or closed); None when he has never written to us."""
    last = (
        Message.objects.filter(participant_id=participant_id, direction=Message.Direction.IN)
        .aggregate(last=Max("created_at"))
        .get("last")
    )
    return last + SERVICE_WINDOW if last else None


def window_open(participant_id: int, *, at: dt.datetime | None = None) -> bool:
    return participant_id in participants_in_window([participant_id], at=at)


def participants_in_window(
    participant_ids: Iterable[int], *, at: dt.datetime | None = None
) -> set[int]:
    """Of these participants, those whose window is open at `at`: one query for the whole set."""
    ids = list(participant_ids)
    if not ids:
        return set()
    at = at or clock.now()
    return set(
        Message.objects.filter(
            participant_id__in=ids,
            direction=Message.Direction.IN,
            created_at__gt=at - SERVICE_WINDOW,
            created_at__lte=at,
        )
        .values_list("participant_id", flat=True)
        .distinct()
    )
