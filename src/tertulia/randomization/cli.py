"""`tertulia randomization`: check and record a trial's config, read the assignment log (arms of
non-final assignments concealed), verify it against the seed, form cohorts, see the waitlist."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

CONCEALED = "(concealed)"


def _trial(name: str) -> Any:
    from tertulia.randomization.models import Trial

    trial = Trial.objects.filter(name=name).first()
    if trial is None:
        names = ", ".join(Trial.objects.values_list("name", flat=True)) or "none yet"
        raise click.ClickException(
            f"no trial named '{name}' (recorded trials: {names}); record one with "
            "'tertulia randomization load FILE'"
        )
    return trial


@click.group()
def randomization() -> None:
    """Randomized assignment: trial configs, the assignment log, cohorts and the waitlist."""


@randomization.command("check-config")
@click.argument("path", type=click.Path(path_type=Path))
def check_config(path: Path) -> None:
    """Check the trial config in PATH (YAML) and say what it will do. No database needed."""
    from tertulia.randomization.config import ConfigError, config_load

    try:
        config = config_load(path)
    except ConfigError as exc:
        click.secho(f"{path}: {len(exc.problems)} problem(s) to fix:", fg="red", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from exc
    ratio = ":".join(str(arm.ratio) for arm in config.arms)
    click.echo(f"Trial '{config.name}' {config.title and f'({config.title})'}".rstrip())
    for arm in config.arms:
        extra = " — waitlist: offered the program after the endline" if arm.waitlist else ""
        click.echo(f"  arm {arm.name}: ratio {arm.ratio}{extra}")
    click.echo(f"  allocation {ratio} in blocks of {', '.join(map(str, config.block_sizes))}")
    if config.strata:
        fields = ", ".join(f"{k} ({len(v)})" for k, v in config.strata.items())
        click.echo(f"  strata: {fields} = {config.strata_count()} strata")
    else:
        click.echo("  strata: none (one sequence for everyone)")
    rules = config.cohorts
    click.echo(
        f"  cohorts of up to {rules.capacity} by {rules.send_time_field} and "
        f"{rules.region_field}; a group that has not filled opens after "
        f"{rules.open_after_days} days"
    )
    if config.seed is None:
        click.echo("  seed: drawn when the trial is recorded, then kept concealed")
    else:
        click.secho(
            "  seed: given in the file — whoever reads it can compute every allocation; "
            "keep the file private, or leave the seed out",
            fg="yellow",
        )
    click.echo("OK")


@randomization.command()
@click.argument("path", type=click.Path(path_type=Path))
def load(path: Path) -> None:
    """Record the trial config in PATH (again: no change; changed: refused once men are
    assigned)."""
    from tertulia.randomization.config import ConfigError, config_load

    try:
        config = config_load(path)
    except ConfigError as exc:
        raise click.ClickException(
            f"{path}: run 'tertulia randomization check-config {path}': {exc}"
        ) from exc
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.randomization.services import TrialLocked, trial_create

    try:
        trial = trial_create(config=config)
    except TrialLocked as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Trial '{trial.name}' recorded (id {trial.pk}); seed fingerprint {trial.seed_fingerprint}."
    )


@randomization.command()
@click.option("--trial", "trial_name", help="Only this trial.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
def log(trial_name: str | None, limit: int) -> None:
    """Print the assignment log, newest last. The arm of an assignment that is not final is
    not printed."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.randomization.models import Assignment

    rows = Assignment.objects.select_related("trial", "release").order_by("-assigned_at", "-pk")
    if trial_name:
        rows = rows.filter(trial=_trial(trial_name))
    shown = list(rows[:limit])[::-1]
    if not shown:
        click.echo("No assignments yet.")
        return
    click.echo(
        f"{'id':>6}  {'assigned (UTC)':16}  {'trial':16}  {'participant':>11}  "
        f"{'final since (UTC)':17}  {'arm':12}  stratum"
    )
    for row in shown:
        final = row.is_final
        since = f"{row.release.released_at:%Y-%m-%d %H:%M}" if final else "not final"
        click.echo(
            f"{row.pk:>6}  {row.assigned_at.astimezone(dt.UTC):%Y-%m-%d %H:%M}  "
            f"{row.trial.name[:16]:16}  {row.participant_id:>11}  {since:17}  "
            f"{row.arm if final else CONCEALED:12}  {row.stratum}"
        )
    total = rows.count()
    if total > len(shown):
        click.echo(f"({len(shown)} of {total} shown; use --limit)")


@randomization.command()
@click.argument("trial_name")
def verify(trial_name: str) -> None:
    """Recompute every logged arm of TRIAL_NAME from its seed and compare."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.randomization.services import assignments_verify

    trial = _trial(trial_name)
    problems = assignments_verify(trial=trial)
    count = trial.assignments.count()
    if problems:
        for problem in problems:
            click.secho(problem, fg="red", err=True)
        raise SystemExit(1)
    click.echo(f"All {count} assignments of '{trial.name}' match the sequence of its seed.")


@randomization.command()
@click.argument("trial_name")
def waitlist(trial_name: str) -> None:
    """Who is waiting in TRIAL_NAME, for which group."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.randomization.selectors import assignment_counts
    from tertulia.randomization.selectors import waitlist as waiting

    trial = _trial(trial_name)
    counts = assignment_counts(trial=trial)
    arms = ", ".join(f"{arm} {n}" for arm, n in counts.by_arm.items())
    click.echo(f"Final assignments: {arms}; not final yet: {counts.concealed}.")
    rows = waiting(trial=trial)
    if not rows:
        click.echo("Nobody is waiting.")
    for row in rows:
        when = f"opens by {row.opens_on:%Y-%m-%d}" if row.opens_on else "after the endline"
        click.echo(
            f"  {row.arm:8} {row.region:12} {row.send_time:%H:%M}  {row.count:>4} "
            f"{'man' if row.count == 1 else 'men'}, "
            f"waiting since {row.waiting_since:%Y-%m-%d}, {when}"
        )


@randomization.command("form-cohorts")
@click.argument("trial_name")
@click.option("--curriculum", "curriculum_id", type=int, required=True, help="Curriculum id.")
@click.option("--channel", default="simulated", show_default=True, help="Channel kind.")
@click.option(
    "--open-on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Open every waiting group on this date, full or not (YYYY-MM-DD).",
)
def form_cohorts(
    trial_name: str, curriculum_id: int, channel: str, open_on: dt.datetime | None
) -> None:
    """Open the cohorts that are due: full groups, and groups whose date has come."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.programs.models import Curriculum
    from tertulia.randomization.services import cohorts_form

    trial = _trial(trial_name)
    curriculum = Curriculum.objects.filter(pk=curriculum_id).first()
    if curriculum is None:
        raise click.ClickException(f"no curriculum with id {curriculum_id}")
    result = cohorts_form(
        trial=trial,
        curriculum=curriculum,
        open_on=open_on.date() if open_on else None,
        channel=channel,
    )
    for cohort in result.created:
        click.echo(
            f"Opened '{cohort}' (id {cohort.pk}): {cohort.enrollments.count()} men, "
            f"starts {cohort.start_date:%Y-%m-%d}."
        )
    waiting = sum(g.size for g in result.waiting)
    click.echo(f"{len(result.created)} cohort(s) opened; {waiting} men still waiting.")
    for problem in result.problems:
        click.secho(f"warning: {problem}", fg="yellow", err=True)
