"""`tertulia enroll`: put a man in a cohort from the command line."""

from __future__ import annotations

import click


@click.command()
@click.argument("phone")
@click.option("--cohort", "cohort_id", type=int, required=True, help="Cohort id.")
@click.option("--name", default="", help="Optional display name.")
@click.option("--timezone", default="America/Lima", show_default=True)
def enroll(phone: str, cohort_id: int, name: str, timezone: str) -> None:
    """Enrol the man with number PHONE (with country code, e.g. +51987654321) in a cohort."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.cohorts.models import Cohort
    from tertulia.cohorts.services import (
        AlreadyEnrolled,
        CohortFull,
        InvalidPhoneNumber,
        enrollment_create,
        participant_get_or_create,
    )

    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None:
        raise click.ClickException(f"no cohort with id {cohort_id}")
    try:
        participant, _ = participant_get_or_create(
            phone=phone, display_name=name, timezone=timezone
        )
        enrollment = enrollment_create(participant=participant, cohort=cohort)
    except (InvalidPhoneNumber, AlreadyEnrolled, CohortFull, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Enrolled participant {participant.pk} in '{cohort}' (enrollment {enrollment.pk}).")
