"""The 24-hour customer-service window opens with each message he writes and closes a day later."""

from __future__ import annotations

import datetime as dt

from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.messaging.window import participants_in_window, window_closes_at, window_open
from tests.conftest import lima

DAY = dt.date(2026, 3, 2)


def _write(phone: str, at: dt.datetime, provider_id: str) -> None:
    message_record_inbound(
        Inbound(channel="simulated", address=phone, provider_id=provider_id, received_at=at,
                text="hola")
    )  # fmt: skip


def test_the_window_follows_his_last_inbound_message(make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=DAY)
    writer = enroll(cohort, phone="+51987000001").participant
    silent = enroll(cohort, phone="+51987000002").participant
    _write("+51987000001", lima(DAY, 9), "m1")
    _write("+51987000001", lima(DAY, 20), "m2")

    assert window_closes_at(writer.pk) == lima(DAY, 20) + dt.timedelta(hours=24)
    assert window_closes_at(silent.pk) is None
    assert window_open(writer.pk, at=lima(DAY + dt.timedelta(days=1), 19, 59))
    assert not window_open(writer.pk, at=lima(DAY + dt.timedelta(days=1), 20, 1))
    assert not window_open(silent.pk, at=lima(DAY, 21))
    # Before his first message, the window was not open yet.
    assert not window_open(writer.pk, at=lima(DAY, 8))
    ids = [writer.pk, silent.pk]
    assert participants_in_window(ids, at=lima(DAY, 21)) == {writer.pk}
    assert participants_in_window([], at=lima(DAY, 21)) == set()
