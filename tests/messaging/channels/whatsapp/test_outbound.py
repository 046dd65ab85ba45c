"""The outbound path against the fake Cloud API: Meta's rate-limit answers slow the buckets
down, and several numbers send in one batch, each through its own number."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from tertulia.cohorts.models import Cohort
from tertulia.messaging import ratelimit
from tertulia.messaging.models import ChannelConfig, Message, Outbox
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import outbox_send_batch
from tests.conftest import lima

from .conftest import CHANNEL, SECRET, TOKEN, VERIFY

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.date(2026, 3, 2)
T = lima(START, 19, 1)


def test_a_throughput_answer_holds_the_whole_number(day0: Any, wa_config: Any, fake: Any) -> None:
    """Meta said 130429: nothing more leaves that number for a second, in any process
    sharing the bucket; the refused message is retried with backoff."""
    day0()
    fake.force("429")
    report = outbox_send_batch(now=T)
    assert report.retried == 1
    limits = ratelimit.limits_for(wa_config)
    [moment] = ratelimit.limiter().reserve(wa_config.phone_number_id, 1, limits)
    assert moment - time.monotonic() > ratelimit.THROUGHPUT_HOLD / 2
    # Another number is not held.
    [other] = ratelimit.limiter().reserve("another-number", 1, limits)
    assert other - time.monotonic() < ratelimit.THROUGHPUT_HOLD / 2


def test_a_pair_limit_answer_holds_that_man_only(day0: Any, wa_config: Any, fake: Any) -> None:
    """Meta said 131056 for one man: his bucket is spent for a pair interval, so his next
    message is paced, while another man's still goes."""
    day0(men=2)
    fake.force(131056)
    report = outbox_send_batch(now=T)
    assert report.retried == 1
    refused = Outbox.objects.get(status=Outbox.Status.QUEUED)
    him = refused.participant.phone
    limits = ratelimit.limits_for(wa_config)
    number = wa_config.phone_number_id
    admission = ratelimit.limiter().admit(number, [(him, 1), ("+51987999999", 1)], limits)
    assert admission.pair_waits[0] > 0
    assert admission.pair_waits[1] == 0.0


def test_one_batch_sends_on_several_numbers_each_on_its_own(
    make_fake: Any, make_config: Any, make_cohort: Any, enroll: Any
) -> None:
    """A program spreads its cohorts over numbers: one sender batch holding two channels
    sends each message once, each through its own number."""
    fake = make_fake(other_phone_number_ids=("100000000000002",))
    make_config(base_url=fake.base_url, phone_number_id=fake.phone_number_id)
    ChannelConfig.objects.create(
        name="second",
        phone_number_id="100000000000002",
        access_token=TOKEN,
        app_secret=SECRET,
        verify_token=VERIFY,
        base_url=fake.base_url,
        service_window=False,
    )
    for name, channel, phones in (
        ("A", CHANNEL, ["+51987000001", "+51987000002"]),
        ("B", "whatsapp:second", ["+51987000003", "+51987000004"]),
    ):
        cohort = make_cohort(name=name, start=START)
        Cohort.objects.filter(pk=cohort.pk).update(channel=channel)
        for phone in phones:
            enroll(cohort, phone=phone)
    outbox_enqueue_due(now=lima(START, 19, 0))
    assert set(Outbox.objects.values_list("channel", flat=True)) == {CHANNEL, "whatsapp:second"}

    report = outbox_send_batch(now=T)
    assert report.sent == Outbox.objects.count() == len(fake.log)
    assert fake.log.duplicate_references() == {}
    numbers = {CHANNEL: "100000000000001", "whatsapp:second": "100000000000002"}
    channels = dict(Message.objects.values_list("id", "channel"))
    sent_through = {e.phone_number_id: e.to for e in fake.log.entries()}
    assert set(sent_through) == set(numbers.values())
    for entry in fake.log.entries():
        assert entry.phone_number_id == numbers[channels[int(entry.reference)]]
