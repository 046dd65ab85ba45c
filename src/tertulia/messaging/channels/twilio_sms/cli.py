"""`tertulia channel add-twilio`: set up a Twilio SMS channel from the command line, as
`tertulia channel add-whatsapp` does for WhatsApp. The auth token is read from a hidden prompt
or the environment, stored encrypted, and never printed."""

from __future__ import annotations

import click


@click.command("add-twilio")
@click.argument("name")
@click.option("--account-sid", required=True, help="The Twilio account (AC...).")
@click.option(
    "--auth-token",
    envvar="TERTULIA_TWILIO_AUTH_TOKEN",
    prompt=True,
    hide_input=True,
    help="Auth token, which also signs Twilio's webhooks (or TERTULIA_TWILIO_AUTH_TOKEN).",
)
@click.option("--from-number", default="", help="The sender number, E.164 (+15550001111).")
@click.option(
    "--messaging-service-sid", default="", help="Instead of a number: a messaging service (MG...)."
)
@click.option("--base-url", default="https://api.twilio.com", show_default=True)
@click.option(
    "--public-url",
    default="",
    help="Where Twilio reaches this server (https://tertulia.example.org), for statuses.",
)
@click.option(
    "--messages-per-second",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="The sender's rate at Twilio (1 for a long code; more for short codes and services).",
)
def add_twilio(
    name: str,
    account_sid: str,
    auth_token: str,
    from_number: str,
    messaging_service_sid: str,
    base_url: str,
    public_url: str,
    messages_per_second: int,
) -> None:
    """Add (or update) the Twilio SMS channel NAME; cohorts use it as twilio:NAME."""
    from tertulia.cli import config_save, setup_django

    setup_django(migrate=True)

    from tertulia.messaging.models import TwilioConfig

    if not from_number and not messaging_service_sid:
        raise click.UsageError("give --from-number or --messaging-service-sid")
    config = TwilioConfig.objects.filter(name=name).first() or TwilioConfig(name=name)
    created = config.pk is None
    config.account_sid = account_sid
    config.auth_token = auth_token
    config.from_number = from_number
    config.messaging_service_sid = messaging_service_sid
    config.base_url = base_url
    config.public_url = public_url
    config.messages_per_second = messages_per_second
    config_save(config)
    sender = messaging_service_sid or from_number
    click.echo(f"{'added' if created else 'updated'} channel twilio:{name} (sender {sender})")
    click.echo(f"webhooks: /webhooks/twilio/{name}/sms/ and /webhooks/twilio/{name}/status/")
    if not public_url:
        click.echo("no --public-url: Twilio will not be asked for delivery statuses")
