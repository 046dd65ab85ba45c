"""Reads: messages and estimated messaging cost per cohort, per day, per participant and per
completer.

Everything is counted in the database: outbound messages are grouped by (cohort, local date,
channel, pricing category, billable, his country, status) with their units (SMS segments, else
one per message), and only those few groups are priced in Python from the price table. The
cost of a group is units × the price of its (channel kind, category, country) on that date.

- a message whose provider said it is not billable costs nothing;
- a billable message whose key has no price is counted as "unpriced", never guessed;
- a message the provider has not priced yet (no status with pricing) is counted as "awaiting".
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils.formats import number_format

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.dashboard.models import Price
from tertulia.dashboard.price_table import PriceBook
from tertulia.messaging.models import Message

PRICED_KINDS = frozenset(Price.ChannelKind.values)

# Amounts by currency: a table may price WhatsApp in USD and SMS in PEN.
Money = dict[str, Decimal]


def money_add(total: Money, currency: str, amount: Decimal) -> None:
    total[currency] = total.get(currency, Decimal(0)) + amount


def money_divide(money: Money, count: int) -> Money | None:
    if not count:
        return None
    return {currency: amount / count for currency, amount in money.items()}


def count_format(n: int) -> str:
    """A count grouped as the active language groups it: '15 460' in Spanish (a no-break
    space), '15,460' in English (the demo's printed report)."""
    return number_format(n, force_grouping=True)


def money_format(money: Money | None, decimals: int = 2) -> str:
    """'USD 1.50', 'USD 1.50 + PEN 3.00', '—' when there is nothing to show (localized)."""
    if money is None:
        return "—"
    if not money:
        return number_format(Decimal(0), decimal_pos=decimals)
    return " + ".join(
        f"{currency} {number_format(amount, decimal_pos=decimals, force_grouping=True)}"
        for currency, amount in sorted(money.items())
    )


@dataclass
class DayCost:
    day: dt.date
    sent: int = 0
    received: int = 0
    cost: Money = field(default_factory=dict)


@dataclass
class CohortCost:
    cohort: Cohort
    sent: int = 0
    received: int = 0
    billable: int = 0
    unpriced: int = 0
    awaiting: int = 0
    cost: Money = field(default_factory=dict)
    enrolled: int = 0
    completed: int = 0
    days: list[DayCost] = field(default_factory=list)

    @property
    def per_participant(self) -> Money | None:
        return money_divide(self.cost, self.enrolled)

    @property
    def per_completer(self) -> Money | None:
        return money_divide(self.cost, self.completed)


@dataclass
class CostReport:
    cohorts: list[CohortCost] = field(default_factory=list)
    cost: Money = field(default_factory=dict)
    # (channel kind, category, country) of billable messages the table has no price for
    missing_prices: set[tuple[str, str, str]] = field(default_factory=set)
    unpriced: int = 0
    awaiting: int = 0
    has_prices: bool = False


def _kind(channel: str) -> str:
    return channel.split(":", 1)[0]


def cohort_costs(
    cohorts: Iterable[Cohort], *, prices: PriceBook | None = None, zone: str | None = None
) -> CostReport:
    """Messages and estimated cost of each cohort, overall and per local day."""
    cohorts = list(cohorts)
    prices = PriceBook() if prices is None else prices
    tz = zoneinfo.ZoneInfo(zone or settings.TIME_ZONE)
    report = CostReport(has_prices=bool(prices))
    by_id = {c.pk: CohortCost(cohort=c) for c in cohorts}
    report.cohorts = list(by_id.values())
    if not by_id:
        return report

    for row in (
        Enrollment.objects.filter(cohort_id__in=by_id)
        .values("cohort_id")
        .annotate(
            enrolled=Count("id"),
            completed=Count("id", filter=Q(state=Enrollment.State.COMPLETED)),
        )
    ):
        by_id[row["cohort_id"]].enrolled = row["enrolled"]
        by_id[row["cohort_id"]].completed = row["completed"]

    groups = (
        Message.objects.filter(enrollment__cohort_id__in=by_id)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values(
            "enrollment__cohort_id",
            "day",
            "direction",
            "channel",
            "pricing_category",
            "billable",
            "participant__country",
            "status",
        )
        .annotate(n=Count("id"), units=Sum(Coalesce("segments", Value(1))))
        .order_by()
    )
    days: dict[int, dict[dt.date, DayCost]] = defaultdict(dict)
    for group in groups:
        entry = by_id[group["enrollment__cohort_id"]]
        day: dt.date = group["day"]
        daily = days[entry.cohort.pk].setdefault(day, DayCost(day=day))
        n = group["n"]
        if group["direction"] == Message.Direction.IN:
            entry.received += n
            daily.received += n
            continue
        entry.sent += n
        daily.sent += n
        kind = _kind(group["channel"])
        if kind not in PRICED_KINDS:
            continue  # the simulated channel of the demo: nothing is billed
        if group["billable"] is None:
            if group["status"] not in (Message.Status.FAILED, Message.Status.PENDING):
                entry.awaiting += n
            continue
        if not group["billable"]:
            continue
        entry.billable += n
        key = (kind, group["pricing_category"], group["participant__country"])
        price = prices.price_on(*key, day)
        if price is None:
            entry.unpriced += n
            report.missing_prices.add(key)
            continue
        amount = price.amount * group["units"]
        money_add(entry.cost, price.currency, amount)
        money_add(daily.cost, price.currency, amount)

    for entry in report.cohorts:
        entry.days = sorted(days[entry.cohort.pk].values(), key=lambda d: d.day)
        for currency, amount in entry.cost.items():
            money_add(report.cost, currency, amount)
        report.unpriced += entry.unpriced
        report.awaiting += entry.awaiting
    return report


def cost_rows(report: CostReport) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The report as display rows (amounts formatted in the active language) and a total."""
    rows: list[dict[str, object]] = [
        {
            "name": entry.cohort.name,
            "sent": count_format(entry.sent),
            "received": count_format(entry.received),
            "cost": money_format(entry.cost),
            "enrolled": count_format(entry.enrolled),
            "completed": count_format(entry.completed),
            "per_participant": money_format(entry.per_participant, 3),
            "per_completer": money_format(entry.per_completer, 3),
            "days": [
                {
                    "day": d.day,
                    "sent": count_format(d.sent),
                    "received": count_format(d.received),
                    "cost": money_format(d.cost),
                }
                for d in entry.days
            ],
        }
        for entry in report.cohorts
    ]
    total: dict[str, object] = {
        "sent": count_format(sum(e.sent for e in report.cohorts)),
        "received": count_format(sum(e.received for e in report.cohorts)),
        "cost": money_format(report.cost),
    }
    return rows, total
