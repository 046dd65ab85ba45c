"""`tertulia worker` and `tertulia schedule`."""

from __future__ import annotations

import click


@click.command()
@click.option("--tick", default=60.0, show_default=True, help="Seconds between scheduler runs.")
@click.option("--no-scheduler", is_flag=True, help="Only run tasks; another worker schedules.")
@click.option(
    "--no-webhooks",
    is_flag=True,
    help="Do not process stored webhook events here; another worker does.",
)
def worker(tick: float, no_scheduler: bool, no_webhooks: bool) -> None:
    """Run background tasks on the configured queue (database, or Redis when REDIS_URL is set),
    process stored webhook events, and run the scheduler's clock."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from django.conf import settings

    from tertulia import clockwork
    from tertulia.messaging.worker import run_forever, start_ticker

    if not no_scheduler:
        start_ticker(clockwork.tick, tick)
    click.echo(f"tertulia worker on {settings.TASKS['default']['BACKEND']} (Ctrl+C to stop)")
    run_forever(webhooks=not no_webhooks)


@click.command()
def schedule() -> None:
    """Run the scheduler once now and send what is due."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.core import clock
    from tertulia.messaging.scheduler import outbox_enqueue_due
    from tertulia.messaging.sender import outbox_send_batch

    now = clock.now()
    report = outbox_enqueue_due(now=now)
    sent = 0
    while (batch := outbox_send_batch(now=now)).claimed:
        sent += batch.sent
    click.echo(
        f"Scheduled {report.outbox_written} messages for {report.enrollments_advanced} "
        f"enrollments; sent {sent}; {report.completed} completed."
    )
