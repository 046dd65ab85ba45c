"""Configuring a WhatsApp channel: the CLI and the admin never show its secrets."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from django.contrib.auth import get_user_model

from tertulia.cli import main
from tertulia.messaging.models import ChannelConfig

pytestmark = pytest.mark.django_db(transaction=True)

SECRETS = ("tok-SECRET-1", "app-SECRET-2", "ver-SECRET-3")


def test_the_cli_adds_then_updates_a_channel_without_echoing_secrets() -> None:
    args = ["channel", "add-whatsapp", "peru", "--phone-number-id", "123"]
    secrets = ["--token", SECRETS[0], "--app-secret", SECRETS[1], "--verify-token", SECRETS[2]]
    first = CliRunner().invoke(main, args + secrets)
    assert first.exit_code == 0, first.output
    assert "added channel whatsapp:peru" in first.output
    config = ChannelConfig.objects.get(name="peru")
    assert (config.access_token, config.app_secret, config.verify_token) == SECRETS
    assert (config.messages_per_second, config.api_version) == (80, "v23.0")
    second = CliRunner().invoke(main, [*args, *secrets, "--messages-per-second", "200"])
    assert "updated" in second.output
    listed = CliRunner().invoke(main, ["channel", "list"])
    assert "whatsapp:peru" in listed.output
    for output in (first.output, second.output, listed.output):
        assert not any(secret in output for secret in SECRETS)
    too_fast = CliRunner().invoke(main, [*args, *secrets, "--messages-per-second", "5000"])
    assert too_fast.exit_code != 0
    assert ChannelConfig.objects.get(name="peru").messages_per_second == 200


def test_the_admin_never_renders_secrets_and_blank_keeps_them(client) -> None:  # type: ignore[no-untyped-def]
    admin = get_user_model().objects.create_superuser("root", "r@example.org", "pw-123456")
    client.force_login(admin)
    config = ChannelConfig.objects.create(
        name="peru",
        phone_number_id="123",
        access_token=SECRETS[0],
        app_secret=SECRETS[1],
        verify_token=SECRETS[2],
    )
    url = f"/admin/messaging/channelconfig/{config.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert not any(secret.encode() in page.content for secret in SECRETS)
    form = {
        "name": "peru",
        "phone_number_id": "456",
        "business_account_id": "",
        "access_token": "",
        "app_secret": "new-app-secret",
        "verify_token": "",
        "base_url": "https://graph.facebook.com",
        "api_version": "v23.0",
        "messages_per_second": "80",
        "paused_reason": "",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    config.refresh_from_db()
    assert config.phone_number_id == "456"
    assert (config.access_token, config.app_secret, config.verify_token) == (
        SECRETS[0],
        "new-app-secret",
        SECRETS[2],
    )
