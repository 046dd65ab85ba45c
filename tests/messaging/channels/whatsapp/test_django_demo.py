"""The WhatsApp demo: program days through the fake Cloud API and our own webhook view, with
simulated men replying; every message reaches the fake once."""

from __future__ import annotations

import pytest
from django.db import connection

from tertulia.messaging.channels.whatsapp.demo import demo_whatsapp
from tertulia.messaging.models import CheckInResponse, Message, WebhookEvent
from tests.conftest import MINI


@pytest.mark.django_db(transaction=True)
def test_the_demo_runs_days_end_to_end_through_the_fake() -> None:
    if connection.vendor == "sqlite":
        # The in-memory SQLite test database cannot take writes from the in-process web server
        # and this thread at once.
        pytest.skip("needs a database that takes concurrent writers")
    report = demo_whatsapp(content=MINI, men=3, days=2, reply_probability=1.0, seed=7)
    assert [d.sent for d in report.days] == [3 * 3, 3 * 5]
    assert report.accepted == 3 * 3 + 3 * 5
    assert report.duplicates == 0
    assert report.read == report.accepted
    # Every man answered every message by signed webhook; his check-ins were recorded.
    assert Message.objects.filter(direction=Message.Direction.IN).count() == report.accepted
    assert CheckInResponse.objects.count() == 3 * 2
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0
