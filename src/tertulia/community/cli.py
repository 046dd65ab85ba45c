"""`tertulia community`: try the community on the demo's simulated men, and keep the
facilitators' unread state small (`prune-seen`, daily)."""

from __future__ import annotations

import click


@click.group()
def community() -> None:
    """The communities: the demo's, and their upkeep."""


@community.command("prune-seen")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=90,
    show_default=True,
    help="Keep what a facilitator saw in the last DAYS days.",
)
def prune_seen(days: int) -> None:
    """Delete the inbox's per-facilitator "seen" marks that no one needs: older than DAYS
    days, about an alert, post or message that no longer exists, or of a person who no longer
    has access to it (run it daily)."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.community.services import inbox_seen_prune

    pruned = inbox_seen_prune(days=days)
    click.echo(
        f"Removed {pruned.total} seen marks: {pruned.old} older than {days} days, "
        f"{pruned.gone} about items that no longer exist, {pruned.no_access} of people "
        "without access."
    )


@community.command("say")
@click.option(
    "--cohort",
    "cohort_name",
    default="Demo 1",
    show_default=True,
    help="'Demo 1' relays posts at once; 'Demo 2' holds them for the facilitator's approval.",
)
@click.option(
    "--member", "pseudonym", default=None, help="e.g. 'Pata 3' [default: the first man still in]"
)
@click.argument("text")
def say(cohort_name: str, pseudonym: str | None, text: str) -> None:
    """Write TEXT as one of the demo's simulated men, as if from his phone: safety triage runs,
    and the post is relayed or held. Watch it arrive in the facilitator's inbox."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.community.demo import DemoRefused, demo_message_write

    try:
        written = demo_message_write(cohort_name=cohort_name, pseudonym=pseudonym, text=text)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from exc
    if written.alerts:
        outcome = f"safety alert raised ({', '.join(written.alerts)}), message held"
    elif written.post_status == "relayed" and written.reach is not None:
        outcome = (
            f"relayed to the community: sent now to {written.reach.live}, "
            f"{written.reach.digest} wait for a digest"
        )
    elif written.post_status == "held":
        outcome = "held for the facilitator's approval"
    elif not written.in_program:
        outcome = (
            f"his program is over, so it is a private message to the facilitator, not a post "
            f"(leave out --member to write as a man still in {cohort_name})"
        )
    else:
        outcome = "a private message for the facilitator (not relayed)"
    click.echo(f"{written.pseudonym} in {cohort_name} wrote: {text}")
    click.echo(f"→ {outcome}. See /inbox/ on tertulia serve.")
