"""Twilio SMS on the outbound path: set up from the command line like a WhatsApp channel
(the auth token encrypted and never printed), and paced through the shared rate limiter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner
from django.db import connection

from tertulia.cli import main
from tertulia.messaging import ratelimit
from tertulia.messaging.channels.twilio_sms.channel import rate_bucket
from tertulia.messaging.models import TwilioConfig
from tertulia.messaging.sender import outbox_send_batch
from tertulia.messaging.services import service_message_queue
from tests.conftest import lima

from .conftest import CHANNEL, FROM, SID, TOKEN

T = lima(dt.date(2026, 3, 2), 19, 1)


@pytest.mark.django_db
def test_the_cli_sets_up_a_twilio_channel_without_echoing_its_token(monkeypatch: Any) -> None:
    monkeypatch.setenv("TERTULIA_TWILIO_AUTH_TOKEN", TOKEN)
    args = ["channel", "add-twilio", "peru", "--account-sid", SID, "--from-number", FROM]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "added channel twilio:peru (sender +15550001111)" in first.output
    assert "/webhooks/twilio/peru/sms/" in first.output
    config = TwilioConfig.objects.get(name="peru")
    assert (config.auth_token, config.from_number, config.messages_per_second) == (TOKEN, FROM, 10)
    with connection.cursor() as cursor:
        cursor.execute("SELECT auth_token FROM messaging_twilioconfig WHERE name = 'peru'")
        [(stored,)] = cursor.fetchall()
    assert TOKEN not in stored, "encrypted at rest"

    service = ["--messaging-service-sid", "MG" + "1" * 32, "--messages-per-second", "50"]
    second = CliRunner().invoke(
        main, ["channel", "add-twilio", "peru", "--account-sid", SID, *service]
    )
    assert second.exit_code == 0, second.output
    assert "updated channel twilio:peru" in second.output
    assert TwilioConfig.objects.get(name="peru").messages_per_second == 50
    listed = CliRunner().invoke(main, ["channel", "list"])
    assert "twilio:peru" in listed.output and "50 msg/s" in listed.output
    for output in (first.output, second.output, listed.output):
        assert TOKEN not in output

    no_sender = CliRunner().invoke(main, ["channel", "add-twilio", "lima", "--account-sid", SID])
    assert no_sender.exit_code != 0
    assert "--from-number or --messaging-service-sid" in no_sender.output
    too_fast = CliRunner().invoke(main, [*args, "--messages-per-second", "5000"])
    assert too_fast.exit_code != 0
    assert not TwilioConfig.objects.filter(name="lima").exists()


@pytest.mark.django_db
def test_updating_a_channel_from_the_cli_keeps_what_is_not_given(monkeypatch: Any) -> None:
    """`add-twilio` on an existing channel changes only the options given: moving to a
    messaging service keeps the stored number, the token is neither asked for nor changed,
    and an empty value clears a field (never the last sender)."""
    monkeypatch.setenv("TERTULIA_TWILIO_AUTH_TOKEN", TOKEN)
    add = ["channel", "add-twilio", "peru"]
    first = CliRunner().invoke(
        main,
        [*add, "--account-sid", SID, "--from-number", FROM, "--public-url",
         "https://tertulia.example.org", "--messages-per-second", "5"],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    monkeypatch.delenv("TERTULIA_TWILIO_AUTH_TOKEN")
    service = "MG" + "3" * 32

    def stored() -> tuple[str, ...]:
        c = TwilioConfig.objects.get(name="peru")
        return (c.account_sid, c.auth_token, c.from_number, c.messaging_service_sid,
                c.base_url, c.public_url, str(c.messages_per_second))  # fmt: skip

    moved = CliRunner().invoke(main, [*add, "--messaging-service-sid", service], input="")
    assert moved.exit_code == 0, moved.output
    assert "updated channel twilio:peru (sender MG" in moved.output
    assert "Auth token" not in moved.output  # not asked for again
    assert stored() == (SID, TOKEN, FROM, service, "https://api.twilio.com",
                        "https://tertulia.example.org", "5")  # fmt: skip

    cleared = CliRunner().invoke(main, [*add, "--from-number", ""])
    assert cleared.exit_code == 0, cleared.output
    assert stored()[2:4] == ("", service)
    no_sender = CliRunner().invoke(main, [*add, "--messaging-service-sid", ""])
    assert no_sender.exit_code != 0
    assert "--from-number or --messaging-service-sid" in no_sender.output
    assert stored()[2:4] == ("", service)  # nothing saved

    new_token = "another-token-value"
    rotated = CliRunner().invoke(
        main, [*add, "--auth-token", new_token, "--messages-per-second", "7"]
    )
    assert rotated.exit_code == 0, rotated.output
    assert stored()[1] == new_token and stored()[6] == "7"
    assert stored()[0] == SID and stored()[3] == service
    for output in (first.output, moved.output, cleared.output, rotated.output):
        assert TOKEN not in output and new_token not in output


@pytest.mark.django_db
def test_a_new_channel_needs_its_account_and_asks_for_its_token(monkeypatch: Any) -> None:
    monkeypatch.delenv("TERTULIA_TWILIO_AUTH_TOKEN", raising=False)
    add = ["channel", "add-twilio", "lima", "--from-number", FROM]
    no_account = CliRunner().invoke(main, add)
    assert no_account.exit_code != 0
    assert "a new channel needs --account-sid" in no_account.output
    asked = CliRunner().invoke(main, [*add, "--account-sid", SID], input=f"{TOKEN}\n")
    assert asked.exit_code == 0, asked.output
    assert "Auth token" in asked.output and TOKEN not in asked.output
    config = TwilioConfig.objects.get(name="lima")
    assert (config.auth_token, config.messages_per_second) == (TOKEN, 10)
    assert config.base_url == "https://api.twilio.com"


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.django_db(transaction=True)
def test_sms_sends_keep_to_the_senders_rate(sms_config, fake, make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    """Seven SMS queued at once on a sender allowed 4 per second leave paced by the shared
    bucket: on the fake's own log no second holds more than 4, where unpaced they all
    arrive within a fraction of one."""
    ratelimit.limiter().reset()
    TwilioConfig.objects.filter(pk=sms_config.pk).update(messages_per_second=4)
    cohort = make_cohort()
    for n in range(7):
        man = enroll(cohort, phone=f"+5198700{n:04d}")
        service_message_queue(
            participant=man.participant, enrollment=man, channel=CHANNEL, text="Hola", now=T
        )
    report = outbox_send_batch(now=T)
    assert report.sent == 7
    entries = fake.log.entries()
    assert len(entries) == 7
    assert busiest_second([e.received_at for e in entries]) <= 4
    # The bucket is the shared one, keyed by the sender (never by a recipient).
    config = TwilioConfig.objects.get(pk=sms_config.pk)
    assert rate_bucket(config) == f"twilio:{SID}:{FROM}"
