"""Loading the price table from YAML, and the `tertulia prices` command."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tertulia.dashboard.models import Price
from tertulia.dashboard.price_table import (
    EXAMPLE_PERU,
    PriceBook,
    PriceTableError,
    prices_load,
    prices_parse,
)

GOOD = """
currency: USD
effective_from: 2026-01-01
prices:
  - {channel: whatsapp, country: PE, category: marketing, amount: "0.07"}
  - {channel: whatsapp, country: PE, category: marketing, amount: 0.05, effective_from: 2026-04-01}
  - {channel: twilio, country: PE, category: sms, amount: "0.30", currency: PEN, source: contrato}
"""


@pytest.mark.django_db
def test_a_file_loads_once_and_a_changed_amount_updates_its_row(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(GOOD)
    first = prices_load(path)
    again = prices_load(path)
    path.write_text(GOOD.replace('"0.07"', '"0.08"'))
    changed = prices_load(path)
    assert (first.created, again.unchanged, changed.updated, changed.unchanged) == (3, 3, 1, 2)
    sms = Price.objects.get(channel_kind="twilio")
    assert (sms.currency, sms.amount, sms.source) == ("PEN", Decimal("0.3"), "contrato")
    book = PriceBook()
    march, april = dt.date(2026, 3, 31), dt.date(2026, 4, 1)
    assert book.price_on("whatsapp", "marketing", "PE", march).amount == Decimal("0.08")
    assert book.price_on("whatsapp", "marketing", "PE", april).amount == Decimal("0.05")
    assert book.price_on("whatsapp", "marketing", "PE", dt.date(2025, 12, 31)) is None


@pytest.mark.django_db
def test_a_bad_file_says_what_to_fix_and_loads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        GOOD + '  - {channel: sms, country: Peru, category: sms, amount: "-1"}\n'
        "  - {channel: whatsapp, country: PE, category: marketing, amount: 1}\n"
    )
    with pytest.raises(PriceTableError) as error:
        prices_load(path)
    message = str(error.value)
    assert "prices[3]: channel must be one of whatsapp, twilio, not 'sms'" in message
    assert "prices[3]: country must be two capital letters (PE), not 'Peru'" in message
    assert "prices[3]: amount must be a number ≥ 0 with at most 6 decimals, not '-1'" in message
    assert "prices[4]: whatsapp marketing PE from 2026-01-01 appears twice" in message
    assert not Price.objects.exists()


def test_files_that_are_not_price_tables_are_refused() -> None:
    with pytest.raises(PriceTableError, match="not valid YAML"):
        prices_parse("prices: [")
    with pytest.raises(PriceTableError, match="a 'prices:' list"):
        prices_parse("- just a list")


def test_the_example_table_for_peru_is_valid_and_labelled_as_an_example() -> None:
    text = EXAMPLE_PERU.read_text()
    rows = prices_parse(text)
    assert {r.country for r in rows} == {"PE"}
    assert {r.category for r in rows} >= {"marketing", "utility", "authentication", "service"}
    assert all("EXAMPLE" in r.source for r in rows)
    assert "They are NOT Meta's or Twilio's" in text


@pytest.mark.django_db(transaction=True)
def test_the_cli_loads_the_example_and_shows_it(tmp_path: Path) -> None:
    from tertulia.cli import main

    runner = CliRunner()
    loaded = runner.invoke(main, ["prices", "load", "--example-peru"])
    assert loaded.exit_code == 0, loaded.output
    assert "6 new" in loaded.output and "EXAMPLE figures" in loaded.output
    shown = runner.invoke(main, ["prices", "show"])
    assert "whatsapp  PE  marketing" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("prices:\n  - {channel: whatsapp}\n")
    refused = runner.invoke(main, ["prices", "load", str(bad)])
    assert refused.exit_code == 1
    assert "category must be a lower-case name" in refused.output
    assert "Nothing was loaded." in refused.output
