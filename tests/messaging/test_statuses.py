"""A webhook's delivery statuses applied together give what applying them one by one gives:
never backwards, a read marks his earlier messages read and counts as engagement."""

from __future__ import annotations

import datetime as dt

import pytest

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.models import Message
from tertulia.messaging.services import StatusUpdate, message_statuses_update

AT = dt.datetime(2026, 3, 2, 19, 0, tzinfo=dt.UTC)


@pytest.fixture
def men(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort()
    return [enroll(cohort, phone=f"+5198700000{i}") for i in range(1, 4)]


def sent(enrollment: Enrollment, provider_id: str, minutes: int) -> Message:
    return Message.objects.create(
        direction=Message.Direction.OUT,
        participant=enrollment.participant,
        enrollment=enrollment,
        channel="whatsapp:x",
        provider_id=provider_id,
        status=Message.Status.SENT,
        created_at=AT + dt.timedelta(minutes=minutes),
    )


@pytest.mark.django_db
def test_a_batch_of_statuses_for_several_men(men) -> None:  # type: ignore[no-untyped-def]
    first, second, third = men
    a1, a2, a3 = (sent(first, f"a{i}", i) for i in range(3))
    b1 = sent(second, "b1", 0)
    c1 = sent(third, "c1", 0)
    later = AT + dt.timedelta(hours=1)
    changed = message_statuses_update(
        channel="whatsapp:x",
        updates=[
            StatusUpdate("a1", "read", later),  # marks a0 and a1, not a2
            StatusUpdate("a0", "delivered", later),  # after its read: stays read
            StatusUpdate("b1", "delivered", later),
            StatusUpdate("c1", "failed", later, error_code="131026"),
            StatusUpdate("c1", "read", later),  # a failed message is not read
            StatusUpdate("unknown", "read", later),
        ],
    )
    for message in (a1, a2, a3, b1, c1):
        message.refresh_from_db()
    assert [a1.status, a2.status, a3.status] == ["read", "read", "sent"]
    assert a1.delivered_at == later and a1.read_at == later and a3.read_at is None
    assert b1.status == "delivered"
    assert (c1.status, c1.error_code) == ("failed", "131026")
    assert changed == 2 + 2 + 1  # two read, two delivered_at, one failed
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.messages_read, first.last_engaged_at) == (2, later)
    assert second.messages_read == 0


@pytest.mark.django_db
def test_running_the_same_batch_again_changes_nothing(men) -> None:  # type: ignore[no-untyped-def]
    sent(men[0], "x1", 0)
    updates = [StatusUpdate("x1", "delivered", AT), StatusUpdate("x1", "read", AT)]
    assert message_statuses_update(channel="whatsapp:x", updates=updates) == 2
    assert message_statuses_update(channel="whatsapp:x", updates=updates) == 0
    men[0].refresh_from_db()
    assert men[0].messages_read == 1


@pytest.mark.django_db
def test_a_backlog_of_his_reads_keeps_each_read_s_time(men) -> None:  # type: ignore[no-untyped-def]
    """Applied together (a worker catching up after an outage), his reads on two days leave
    the read times that applying them one by one leaves: retention counts days."""
    first, _, _ = men
    a0, a1, b = sent(first, "a0", 0), sent(first, "a1", 1), sent(first, "b", 2)
    day5, day6 = AT + dt.timedelta(days=5), AT + dt.timedelta(days=6)
    message_statuses_update(
        channel="whatsapp:x",
        updates=[StatusUpdate("b", "read", day6), StatusUpdate("a1", "read", day5)],
    )
    for message in (a0, a1, b):
        message.refresh_from_db()
    assert [a0.read_at, a1.read_at, b.read_at] == [day5, day5, day6]
    first.refresh_from_db()
    assert first.messages_read == 3
