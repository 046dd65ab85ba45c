"""The price table: loading it from a YAML file, and finding the price of a message.

Prices are estimates that staff keep from their provider contracts; a file is checked whole
before anything is written, so a mistake never leaves the table half-loaded."""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from tertulia.dashboard.models import Price

EXAMPLE_PERU = Path(__file__).parent / "price_tables" / "pe-example.yaml"

_SLUG = re.compile(r"^[a-z0-9_-]{1,40}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
KINDS = tuple(Price.ChannelKind.values)


class PriceTableError(ValueError):
    """A price file that cannot be loaded; the message lists every problem found."""


@dataclass(frozen=True)
class LoadReport:
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class PriceRow:
    channel_kind: str
    category: str
    country: str
    currency: str
    amount: Decimal
    effective_from: dt.date
    source: str


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -6:  # type: ignore[operator]
        return None
    return amount


def prices_parse(text: str) -> list[PriceRow]:
    """The rows of a price file, or PriceTableError naming each bad entry and what to fix."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PriceTableError(f"not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("prices"), list):
        raise PriceTableError("the file must be a mapping with a 'prices:' list of entries")
    defaults = {k: document.get(k) for k in ("currency", "effective_from", "source")}
    problems: list[str] = []
    rows: list[PriceRow] = []
    seen: set[tuple[str, str, str, dt.date]] = set()
    for index, entry in enumerate(document["prices"]):
        where = f"prices[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping like {{channel: whatsapp, ...}}")
            continue
        merged = {**defaults, **entry}
        unknown = set(entry) - {"channel", "category", "country", "amount", *defaults}
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        kind = merged.get("channel")
        category = merged.get("category")
        country = merged.get("country")
        currency = merged.get("currency")
        amount = _amount(merged.get("amount"))
        effective = _date(merged.get("effective_from"))
        source = merged.get("source") or ""
        if kind not in KINDS:
            problems.append(f"{where}: channel must be one of {', '.join(KINDS)}, not {kind!r}")
        if not isinstance(category, str) or not _SLUG.match(category):
            problems.append(
                f"{where}: category must be a lower-case name such as marketing, not {category!r}"
            )
        if not isinstance(country, str) or not _COUNTRY.match(country):
            problems.append(f"{where}: country must be two capital letters (PE), not {country!r}")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            problems.append(
                f"{where}: currency must be three capital letters (USD), not {currency!r}"
            )
        if amount is None:
            problems.append(
                f"{where}: amount must be a number ≥ 0 with at most 6 decimals, "
                f"not {merged.get('amount')!r}"
            )
        if effective is None:
            problems.append(
                f"{where}: effective_from must be a date like 2026-01-01, "
                f"not {merged.get('effective_from')!r}"
            )
        if not isinstance(source, str) or len(source) > 200:
            problems.append(f"{where}: source must be a text of at most 200 characters")
        if problems and problems[-1].startswith(where):
            continue
        assert isinstance(kind, str) and isinstance(category, str)
        assert isinstance(country, str) and isinstance(currency, str)
        assert amount is not None and effective is not None and isinstance(source, str)
        key = (kind, category, country, effective)
        if key in seen:
            problems.append(f"{where}: {kind} {category} {country} from {effective} appears twice")
            continue
        seen.add(key)
        rows.append(PriceRow(kind, category, country, currency, amount, effective, source))
    if problems:
        raise PriceTableError("; ".join(problems))
    return rows


def prices_load(path: Path) -> LoadReport:
    """Load a price file into the table: new keys are added, known ones updated; nothing is
    written unless the whole file is valid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceTableError(f"cannot read the file ({exc.strerror or exc})") from None
    rows = prices_parse(text)
    created = updated = unchanged = 0
    with transaction.atomic():
        for row in rows:
            values = {"currency": row.currency, "amount": row.amount, "source": row.source}
            price, was_created = Price.objects.get_or_create(
                channel_kind=row.channel_kind,
                category=row.category,
                country=row.country,
                effective_from=row.effective_from,
                defaults=values,
            )
            if was_created:
                created += 1
            elif (price.currency, price.amount, price.source) != tuple(values.values()):
                Price.objects.filter(pk=price.pk).update(**values)
                updated += 1
            else:
                unchanged += 1
    return LoadReport(created=created, updated=updated, unchanged=unchanged)


class PriceBook:
    """All prices in memory (a table of tens of rows), to price many message groups: the price
    of (kind, category, country) on a day is the row with the latest effective date ≤ it."""

    def __init__(self, prices: list[Price] | None = None) -> None:
        if prices is None:
            prices = list(Price.objects.all())
        table: dict[tuple[str, str, str], list[Price]] = defaultdict(list)
        for price in prices:
            table[(price.channel_kind, price.category, price.country)].append(price)
        self._table = {
            key: sorted(rows, key=lambda p: p.effective_from) for key, rows in table.items()
        }
        self._dates = {key: [p.effective_from for p in rows] for key, rows in self._table.items()}

    def __bool__(self) -> bool:
        return bool(self._table)

    def price_on(self, kind: str, category: str, country: str, day: dt.date) -> Price | None:
        key = (kind, category, country)
        dates = self._dates.get(key)
        if not dates:
            return None
        index = bisect.bisect_right(dates, day) - 1
        return self._table[key][index] if index >= 0 else None
