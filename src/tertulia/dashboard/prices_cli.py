"""`tertulia prices`: load and show the price table behind the dashboard's estimated costs."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def prices() -> None:
    """The price table that turns messages into estimated costs."""


@prices.command("load")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option(
    "--example-peru",
    is_flag=True,
    help="Load the shipped EXAMPLE table for Peru (illustrative figures, not official rates).",
)
def load(file: Path | None, example_peru: bool) -> None:
    """Load prices from a YAML FILE (see the example table for its format)."""
    from tertulia.cli import setup_django

    if (file is None) == (not example_peru):
        raise click.UsageError("give a FILE or --example-peru (one of them)")
    setup_django(migrate=True)
    from tertulia.dashboard.price_table import EXAMPLE_PERU, PriceTableError, prices_load

    path = EXAMPLE_PERU if example_peru else file
    assert path is not None
    try:
        report = prices_load(path)
    except PriceTableError as exc:
        raise click.ClickException(f"{path}: {exc}. Nothing was loaded.") from exc
    click.echo(
        f"Loaded {path.name}: {report.created} new, {report.updated} updated, "
        f"{report.unchanged} unchanged."
    )
    if example_peru:
        click.echo(
            "These are EXAMPLE figures, not Meta's or Twilio's rates: replace them with your "
            "providers' current prices before budgeting."
        )


@prices.command("show")
def show() -> None:
    """List the price table."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.dashboard.models import Price

    rows = Price.objects.order_by("channel_kind", "country", "category", "effective_from")
    if not rows:
        click.echo("No prices. Load some with: tertulia prices load FILE (or --example-peru)")
        return
    for p in rows:
        click.echo(
            f"{p.channel_kind:9} {p.country}  {p.category:22} from {p.effective_from}  "
            f"{p.currency} {p.amount.normalize():f}  {p.source}"
        )
