"""`tertulia community`: try the community on the demo's simulated men."""

from __future__ import annotations

import click


@click.group()
def community() -> None:
    """The demo's communities."""


@community.command("say")
@click.option("--cohort", "cohort_name", default="Demo 1", show_default=True)
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
    outcome = []
    if written.alerts:
        outcome.append(f"safety alert raised ({', '.join(written.alerts)}), message held")
    if written.alerts:
        pass  # a flagged message is never relayed; the alert says what to do
    elif written.post_status == "relayed":
        outcome.append("relayed to the community")
    elif written.post_status == "held":
        outcome.append("held for the facilitator's approval")
    elif not written.alerts and not written.in_program:
        outcome.append(
            f"his program is over, so it is a private message to the facilitator, not a post "
            f"(leave out --member to write as a man still in {cohort_name})"
        )
    elif not written.alerts:
        outcome.append("a private message for the facilitator (not relayed)")
    click.echo(f"{written.pseudonym} in {cohort_name} wrote: {text}")
    click.echo("→ " + "; ".join(outcome) + ". See /inbox/ on tertulia serve.")
