"""`tertulia channel add-twilio`: set up a Twilio SMS channel from the command line, as
`tertulia channel add-whatsapp` does for WhatsApp. The auth token is read from a hidden prompt
or the environment, stored encrypted, and never printed.

On an existing channel an option that is not given leaves its stored value as it is: changing
the sender to a messaging service keeps the number, and an empty value (`--from-number ''`)
clears one."""

from __future__ import annotations

from typing import Any

import click

DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_RATE = 10


@click.command("add-twilio")
@click.argument("name")
@click.option(
    "--account-sid", default=None, help="The Twilio account (AC...); needed for a new one."
)
@click.option(
    "--auth-token",
    envvar="TERTULIA_TWILIO_AUTH_TOKEN",
    default=None,
    help="Auth token, which also signs Twilio's webhooks (or TERTULIA_TWILIO_AUTH_TOKEN; asked "
    "for, hidden, for a new channel).",
)
@click.option("--from-number", default=None, help="The sender number, E.164 (+15550001111).")
@click.option(
    "--messaging-service-sid",
    default=None,
    help="Instead of a number: a messaging service (MG...).",
)
@click.option("--base-url", default=None, help=f"Twilio's API [default: {DEFAULT_BASE_URL}].")
@click.option(
    "--public-url",
    default=None,
    help="Where Twilio reaches this server (https://tertulia.example.org), for statuses.",
)
@click.option(
    "--messages-per-second",
    default=None,
    type=click.IntRange(1, 1000),
    help="The sender's rate at Twilio (1 for a long code; more for short codes and services) "
    f"[default: {DEFAULT_RATE}].",
)
def add_twilio(
    name: str,
    account_sid: str | None,
    auth_token: str | None,
    from_number: str | None,
    messaging_service_sid: str | None,
    base_url: str | None,
    public_url: str | None,
    messages_per_second: int | None,
) -> None:
    """Add (or update) the Twilio SMS channel NAME; cohorts use it as twilio:NAME. On an
    existing channel, what is not given stays as it is."""
    from tertulia.cli import config_save, setup_django

    setup_django(migrate=True)

    from tertulia.messaging.models import TwilioConfig

    config = TwilioConfig.objects.filter(name=name).first()
    created = config is None
    if config is None:
        if not account_sid:
            raise click.UsageError("a new channel needs --account-sid")
        config = TwilioConfig(
            name=name, base_url=DEFAULT_BASE_URL, messages_per_second=DEFAULT_RATE
        )
    given: dict[str, Any] = {
        "account_sid": account_sid,
        "from_number": from_number,
        "messaging_service_sid": messaging_service_sid,
        "base_url": base_url,
        "public_url": public_url,
        "messages_per_second": messages_per_second,
    }
    for field, value in given.items():
        if value is not None:
            setattr(config, field, value)
    if not config.from_number and not config.messaging_service_sid:
        raise click.UsageError("give --from-number or --messaging-service-sid")
    if auth_token is None and created:
        auth_token = click.prompt("Auth token", hide_input=True)
    if auth_token is not None:
        config.auth_token = auth_token
    config_save(config)
    sender = config.messaging_service_sid or config.from_number
    click.echo(f"{'added' if created else 'updated'} channel twilio:{name} (sender {sender})")
    click.echo(f"webhooks: /webhooks/twilio/{name}/sms/ and /webhooks/twilio/{name}/status/")
    if not config.public_url:
        click.echo("no --public-url: Twilio will not be asked for delivery statuses")
