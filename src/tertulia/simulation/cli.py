"""`tertulia demo`: a whole program, from nothing, in simulated time."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command()
@click.option(
    "--channel",
    type=click.Choice(["simulated", "whatsapp"]),
    default="simulated",
    show_default=True,
    help="simulated: the whole program in simulated time, in seconds. whatsapp: one cohort "
    "through the WhatsApp channel, a local fake Cloud API and signed webhooks (about half a "
    "minute at the defaults: 10 men, 3 days).",
)
@click.option(
    "--recruit",
    is_flag=True,
    help="Instead: a recruitment campaign of three ad variants through the WhatsApp channel "
    "(screening, consent, baseline, randomization, cohorts), then its funnel per variant.",
)
@click.option(
    "--men",
    default=200,
    show_default=True,
    type=click.IntRange(3, 5000),
    help="About how many men answer the ads, with --recruit (200: about a minute).",
)
@click.option("--cohorts", default=2, show_default=True, help="Cohorts to simulate.")
@click.option("--size", default=None, type=int, help="Men per cohort [default: 50; whatsapp: 10].")
@click.option(
    "--days",
    default=None,
    type=click.IntRange(1, 60),
    help="Program days to run with --channel whatsapp [default: 3].",
)
@click.option("--seed", default=2022, show_default=True, help="Same seed, same run.")
@click.option(
    "--content",
    type=click.Path(path_type=Path),
    default=None,
    help="Curriculum folder [default: content/guy-talk/es-PE].",
)
@click.option("--reply-probability", default=0.6, show_default=True)
@click.option("--dropout-hazard", default=0.012, show_default=True, help="Per man per day.")
@click.option("--optout-rate", default=0.08, show_default=True, help="Over the program.")
@click.option("--reply-delay", default=90.0, show_default=True, help="Mean minutes.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder.")
@click.option(
    "--language",
    type=click.Choice(["en", "es"]),
    default="en",
    show_default=True,
    help="Language of the printed funnel and the report.",
)
def demo(
    recruit: bool,
    men: int,
    channel: str,
    cohorts: int,
    size: int | None,
    days: int | None,
    seed: int,
    content: Path | None,
    reply_probability: float,
    dropout_hazard: float,
    optout_rate: float,
    reply_delay: float,
    out: Path | None,
    language: str,
) -> None:
    """Import the bundled curriculum, run cohorts of simulated men through the 30 days, print
    the funnel and write an HTML report with its plots."""
    from tertulia.cli import setup_django

    if recruit:
        from tertulia.recruitment.cli import demo_recruit_run

        demo_recruit_run(men=men, seed=seed, content=content)
        return
    if channel == "whatsapp":
        from tertulia.messaging.channels.whatsapp.cli import demo_whatsapp_run

        demo_whatsapp_run(
            men=size or 10,
            days=days or 3,
            reply_probability=reply_probability,
            seed=seed,
            content=content,
        )
        return
    if days is not None:
        raise click.UsageError("--days is for --channel whatsapp; the simulated demo runs them all")
    size = size or 50

    started = time.perf_counter()
    setup_django(migrate=True)
    from django.conf import settings
    from django.utils import translation

    translation.activate(language)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tertulia.dashboard.report import report_write
    from tertulia.dashboard.selectors import funnel_lines, program_funnel, today_in
    from tertulia.programs.services import CurriculumInvalid
    from tertulia.simulation.population import Behaviour
    from tertulia.simulation.services import demo_reset, demo_run, demo_setup

    console = Console()
    content = content or Path(settings.TERTULIA_CONTENT_DIR) / "guy-talk" / "es-PE"
    if not content.is_dir():
        raise click.ClickException(
            f"curriculum folder '{content}' not found; run from the repository root or pass "
            "--content PATH"
        )
    behaviour = Behaviour(
        reply_probability=reply_probability,
        daily_dropout_hazard=dropout_hazard,
        optout_rate=optout_rate,
        reply_delay_minutes=reply_delay,
    )
    demo_reset()
    try:
        run, simulation = demo_setup(
            content=content,
            cohorts=cohorts,
            size=size,
            seed=seed,
            behaviour=behaviour,
            today=today_in(settings.TIME_ZONE),
        )
    except CurriculumInvalid as exc:
        for problem in exc.problems:
            console.print(str(problem))
        raise click.ClickException("the curriculum has problems; nothing was run") from exc
    total_days = run.curriculum.last_day - run.curriculum.first_day + 2
    console.print(
        f"[bold]tertulia demo[/bold]: {cohorts} cohorts × {size} simulated men, curriculum "
        f"{run.curriculum}, seed {seed}"
    )
    with Progress(
        TextColumn("Simulating day {task.completed}/{task.total}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("days", total=total_days)
        demo_run(simulation, on_day=lambda _day: progress.advance(bar))

    funnel = program_funnel(run.cohorts)
    table = Table(title="Funnel", show_header=False)
    for label, value in funnel_lines(funnel):
        table.add_row(label, value)
    console.print(table)
    topics = Table(title="Check-in response rate by topic")
    for column in ("Topic", "Sent", "Answered", "Rate"):
        topics.add_column(column)
    for row in funnel.checkins_by_topic.sort_values("rate", ascending=False).itertuples():
        topics.add_row(row.label, f"{row.sent:,}", f"{row.answered:,}", f"{row.rate:.0%}")
    console.print(topics)
    out = out or Path(settings.TERTULIA_REPORTS_DIR) / "demo"
    path = report_write(
        cohorts=run.cohorts, funnel=funnel, out_dir=out, title="Hablemos Entre Patas — demo"
    )
    console.print(f"Report: {path}")
    from tertulia.community.demo import demo_facilitator_setup

    facilitator, password = demo_facilitator_setup(run.cohorts)
    credentials = "password unchanged"
    if password:
        # Kept where the operator's admin password is kept, so a new user can find it again.
        password_file = settings.VAR_DIR / "facilitador-password.txt"
        password_file.write_text(password + "\n")
        credentials = f"password {password}, also in {password_file}"
    me = _invoked_as()
    held = f' --cohort "{run.cohorts[-1].name}"' if len(run.cohorts) > 1 else ""
    console.print(
        f"Facilitator of the demo cohorts: '{facilitator.get_username()}' ({credentials}). "
        f'Write as a simulated man: {me} community say "text"'
        + (f" (add{held} to see a post held for approval)" if held else "")
    )
    console.print(f"Done in {time.perf_counter() - started:.1f} s. See it live: {me} serve")


def _invoked_as() -> str:
    """How the operator ran tertulia (".venv/bin/tertulia" after `make demo`), so that the
    commands printed for him work when pasted."""
    import os
    import sys

    program = sys.argv[0] if sys.argv else ""
    if os.path.basename(program) != "tertulia":
        return "tertulia"
    relative = os.path.relpath(program)
    return relative if not relative.startswith("..") else program
