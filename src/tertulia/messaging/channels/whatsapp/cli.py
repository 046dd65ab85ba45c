"""`tertulia fake-whatsapp`: run the fake Cloud API server in the foreground.

Point a channel's base URL at the printed address (and its token / app secret at the same
values) to run the demo or the benchmarks without Meta."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import click

from ..twilio_sms.cli import add_twilio
from .fake_server import FakeConfig, FakeWhatsApp


@click.command("fake-whatsapp")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--webhook-url", default=None, help="Where to post signed webhooks.")
@click.option("--app-secret", default=FakeConfig.app_secret, show_default=True)
@click.option("--token", default=FakeConfig.token, show_default=True, help="Bearer token.")
@click.option(
    "--phone-number-id",
    "phone_number_ids",
    multiple=True,
    default=[FakeConfig.phone_number_id],
    show_default=True,
    help="A business number's id; repeat it for a fake with several numbers.",
)
@click.option("--display-phone-number", default=FakeConfig.display_phone_number)
@click.option("--waba-id", default=FakeConfig.waba_id)
@click.option("--latency-ms", default=0.0, type=float, show_default=True)
@click.option("--latency-jitter-ms", default=0.0, type=float, show_default=True)
@click.option("--fault-429", default=0.0, type=float, help="Rate of 429 / 130429 answers.")
@click.option("--fault-5xx", default=0.0, type=float, help="Rate of 503 answers.")
@click.option("--fault-timeout", default=0.0, type=float, help="Rate of hangs, not accepted.")
@click.option(
    "--fault-timeout-accepted", default=0.0, type=float, help="Rate of hangs after accepting."
)
@click.option("--fault-131047-sync", default=0.0, type=float)
@click.option("--fault-131047-async", default=0.0, type=float)
@click.option("--hang-seconds", default=30.0, type=float, show_default=True)
@click.option(
    "--enforce-window/--no-enforce-window",
    default=False,
    show_default=True,
    help="Refuse free-form messages outside 24 h of the recipient's last message (131047).",
)
@click.option(
    "--window-sync/--window-async",
    default=False,
    show_default=True,
    help="Refuse them at once (HTTP 400) instead of accepting, then failing by status webhook.",
)
@click.option("--mps-limit", default=None, type=float, help="Answer 130429 above this rate.")
@click.option("--status-delay-ms", default=0.0, type=float, show_default=True)
@click.option("--status-batch", default=50, type=int, show_default=True)
@click.option("--read-probability", default=1.0, type=float, show_default=True)
@click.option("--duplicate-webhooks", default=0.0, type=float, help="Rate of re-deliveries.")
@click.option("--reply-probability", default=0.0, type=float, show_default=True)
@click.option("--reply-delay-ms", default=0.0, type=float, show_default=True)
@click.option("--log-path", default=None, help="Append accepted messages to this JSONL file.")
@click.option("--seed", default=None, type=int)
def fake_whatsapp(
    host: str,
    port: int,
    webhook_url: str | None,
    app_secret: str,
    token: str,
    phone_number_ids: tuple[str, ...],
    display_phone_number: str,
    waba_id: str,
    latency_ms: float,
    latency_jitter_ms: float,
    fault_429: float,
    fault_5xx: float,
    fault_timeout: float,
    fault_timeout_accepted: float,
    fault_131047_sync: float,
    fault_131047_async: float,
    hang_seconds: float,
    enforce_window: bool,
    window_sync: bool,
    mps_limit: float | None,
    status_delay_ms: float,
    status_batch: int,
    read_probability: float,
    duplicate_webhooks: float,
    reply_probability: float,
    reply_delay_ms: float,
    log_path: str | None,
    seed: int | None,
) -> None:
    """Run a fake WhatsApp Business Cloud API server (messages, media, signed webhooks)."""
    config = FakeConfig(
        token=token,
        app_secret=app_secret,
        phone_number_id=phone_number_ids[0],
        other_phone_number_ids=tuple(phone_number_ids[1:]),
        display_phone_number=display_phone_number,
        waba_id=waba_id,
        webhook_url=webhook_url,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        fault_429=fault_429,
        fault_5xx=fault_5xx,
        fault_timeout=fault_timeout,
        fault_timeout_accepted=fault_timeout_accepted,
        fault_131047_sync=fault_131047_sync,
        fault_131047_async=fault_131047_async,
        hang_seconds=hang_seconds,
        enforce_window=enforce_window,
        window_sync=window_sync,
        mps_limit=mps_limit,
        status_delay_ms=status_delay_ms,
        status_batch=status_batch,
        read_probability=read_probability,
        duplicate_webhook_probability=duplicate_webhooks,
        reply_probability=reply_probability,
        reply_delay_ms=reply_delay_ms,
        log_path=log_path,
        seed=seed,
    )
    asyncio.run(_serve(FakeWhatsApp(config), host, port))


async def _serve(fake: FakeWhatsApp, host: str, port: int) -> None:
    await fake.start_async(host, port)
    click.echo(f"fake WhatsApp Cloud API on {fake.base_url}")
    click.echo(f"  send to  {fake.messages_url}")
    if fake.config.webhook_url:
        click.echo(f"  webhooks {fake.config.webhook_url}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop_async()
        click.echo(f"accepted {len(fake.log)} messages; webhooks: {fake.webhook_stats}")


@click.group("channel")
def channel() -> None:
    """Configure the channels programs send through."""


@channel.command("add-whatsapp")
@click.argument("name")
@click.option("--phone-number-id", required=True)
@click.option("--business-account-id", default="")
@click.option(
    "--token",
    envvar="TERTULIA_WHATSAPP_TOKEN",
    prompt=True,
    hide_input=True,
    help="Access token (or TERTULIA_WHATSAPP_TOKEN).",
)
@click.option(
    "--app-secret",
    envvar="TERTULIA_WHATSAPP_APP_SECRET",
    prompt=True,
    hide_input=True,
    help="App secret that signs webhooks (or TERTULIA_WHATSAPP_APP_SECRET).",
)
@click.option(
    "--verify-token",
    envvar="TERTULIA_WHATSAPP_VERIFY_TOKEN",
    prompt=True,
    hide_input=True,
    help="Webhook verify token (or TERTULIA_WHATSAPP_VERIFY_TOKEN).",
)
@click.option("--base-url", default="https://graph.facebook.com", show_default=True)
@click.option("--api-version", default="v23.0", show_default=True)
@click.option("--messages-per-second", default=80, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--service-window/--no-service-window",
    default=True,
    show_default=True,
    help="Free-form only within 24 h of his last message, templates otherwise "
    "(off only for load tests against a fake).",
)
def add_whatsapp(
    name: str,
    phone_number_id: str,
    business_account_id: str,
    token: str,
    app_secret: str,
    verify_token: str,
    base_url: str,
    api_version: str,
    messages_per_second: int,
    service_window: bool,
) -> None:
    """Add (or update) the WhatsApp channel NAME; cohorts use it as whatsapp:NAME."""
    from tertulia.cli import config_save, setup_django

    setup_django(migrate=True)

    from tertulia.messaging.models import ChannelConfig

    config = ChannelConfig.objects.filter(name=name).first() or ChannelConfig(name=name)
    created = config.pk is None
    config.phone_number_id = phone_number_id
    config.business_account_id = business_account_id
    config.access_token = token
    config.app_secret = app_secret
    config.verify_token = verify_token
    config.base_url = base_url
    config.api_version = api_version
    config.messages_per_second = messages_per_second
    config.service_window = service_window
    config_save(config)
    verb = "added" if created else "updated"
    click.echo(f"{verb} channel whatsapp:{name} (phone number id {phone_number_id})")
    click.echo(f"webhook: /webhooks/whatsapp/{name}/")


channel.add_command(add_twilio)


@channel.command("list")
def list_channels() -> None:
    """List the configured WhatsApp and Twilio SMS channels (never their secrets)."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.messaging.models import ChannelConfig, TwilioConfig

    for config in ChannelConfig.objects.order_by("name"):
        state = f"paused: {config.paused_reason}" if config.paused else "active"
        click.echo(
            f"whatsapp:{config.name}  phone_number_id={config.phone_number_id}  "
            f"{config.messages_per_second} msg/s  {state}"
        )
    for sms in TwilioConfig.objects.order_by("name"):
        state = f"paused: {sms.paused_reason}" if sms.paused else "active"
        sender = sms.messaging_service_sid or sms.from_number
        click.echo(
            f"twilio:{sms.name}  account={sms.account_sid}  sender={sender}  "
            f"{sms.messages_per_second} msg/s  {state}"
        )


@channel.group("templates")
def templates() -> None:
    """The registry of a WhatsApp channel's approved templates."""


@templates.command("load")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--deactivate-missing",
    is_flag=True,
    help="Deactivate the channel's templates that the file does not list.",
)
def templates_load_command(name: str, file: Path, deactivate_missing: bool) -> None:
    """Load the templates in FILE (YAML) into the registry of channel whatsapp:NAME."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from .templates import TemplatesInvalid, templates_load

    try:
        report = templates_load(channel=name, path=file, deactivate_missing=deactivate_missing)
    except TemplatesInvalid as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException("the templates have problems; nothing was changed") from exc
    click.echo(
        f"whatsapp:{name}: {len(report.created)} template(s) added, "
        f"{len(report.updated)} updated, {len(report.deactivated)} deactivated"
    )


@templates.command("list")
@click.argument("name")
def templates_list_command(name: str) -> None:
    """List the templates of channel whatsapp:NAME."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.messaging.models import MessageTemplate

    from .templates import templates_describe

    found = MessageTemplate.objects.filter(channel__name=name).order_by("role", "day", "name")
    lines = templates_describe(found)
    for line in lines or [f"whatsapp:{name} has no templates"]:
        click.echo(line)


@channel.command("demo-whatsapp")
@click.option("--men", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--days", default=3, show_default=True, type=click.IntRange(1, 60))
@click.option("--reply-probability", default=0.7, show_default=True, type=float)
@click.option("--seed", default=2022, show_default=True, type=int)
@click.option(
    "--content",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Curriculum folder [default: content/guy-talk/es-PE].",
)
def demo_whatsapp_command(
    men: int, days: int, reply_probability: float, seed: int, content: Path | None
) -> None:
    """Run program days end to end through the WhatsApp channel and the fake Cloud API, with
    simulated men replying by signed webhook."""
    demo_whatsapp_run(
        men=men, days=days, reply_probability=reply_probability, seed=seed, content=content
    )


def demo_whatsapp_run(
    *, men: int, days: int, reply_probability: float, seed: int, content: Path | None
) -> None:
    """The WhatsApp demo for the command line (`tertulia demo --channel whatsapp` too)."""
    import time

    from tertulia.cli import setup_django

    started = time.perf_counter()
    setup_django(migrate=True)
    from django.conf import settings

    from .demo import demo_whatsapp

    content = content or Path(settings.TERTULIA_CONTENT_DIR) / "guy-talk" / "es-PE"
    if not content.is_dir():
        raise click.ClickException(
            f"curriculum folder '{content}' not found; run from the repository root or pass "
            "--content PATH"
        )
    click.echo(f"WhatsApp demo: {men} men, {days} days, through the fake Cloud API")
    report = demo_whatsapp(
        content=content,
        men=men,
        days=days,
        reply_probability=reply_probability,
        seed=seed,
        on_day=lambda d: click.echo(
            f"  day {d.day}: sent {d.sent} ({d.templates} as templates), failed {d.failed} "
            f"({d.expired} waited a day in vain), waiting {d.held}; "
            f"replies so far {d.replies}, check-ins {d.checkins}"
        ),
    )
    click.echo(
        f"fake accepted {report.accepted} messages, {report.duplicates} duplicates; "
        f"{report.read} read; {report.webhook_posts} webhooks posted"
    )
    if report.duplicates:
        raise click.ClickException("a message reached the fake twice")
    click.echo(
        "Outside a man's 24-hour window a day opens with a template and the rest waits for his "
        "answer; what waits a day in vain fails (see docs/whatsapp-errors.md)."
    )
    click.echo(f"Done in {time.perf_counter() - started:.1f} s.")
