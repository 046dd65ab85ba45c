"""Estimated messaging cost per cohort, per day, per participant and per completer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tertulia.cohorts.models import Enrollment
from tertulia.cohorts.services import phone_country
from tertulia.dashboard.costs import cohort_costs, money_format
from tertulia.dashboard.models import Price
from tertulia.messaging.models import Message

UTC = dt.UTC
WA, SMS = "whatsapp:test", "twilio:test"


def price(
    kind: str,
    category: str,
    amount: str,
    since: dt.date,
    country: str = "PE",
    currency: str = "USD",
) -> Price:
    return Price.objects.create(
        channel_kind=kind,
        category=category,
        country=country,
        currency=currency,
        amount=Decimal(amount),
        effective_from=since,
    )


def out(enrollment, at: dt.datetime, n: int = 1, channel: str = WA, **fields) -> None:  # type: ignore[no-untyped-def]
    fields.setdefault("status", Message.Status.DELIVERED)
    Message.objects.bulk_create(
        Message(
            direction=Message.Direction.OUT,
            participant_id=enrollment.participant_id,
            enrollment=enrollment,
            channel=channel,
            created_at=at,
            **fields,
        )
        for _ in range(n)
    )


def inbound(enrollment, at: dt.datetime, n: int = 1) -> None:  # type: ignore[no-untyped-def]
    Message.objects.bulk_create(
        Message(
            direction=Message.Direction.IN,
            participant_id=enrollment.participant_id,
            enrollment=enrollment,
            channel=WA,
            status=Message.Status.ROUTED,
            created_at=at,
        )
        for _ in range(n)
    )


@pytest.fixture
def two_cohorts(make_cohort, enroll):  # type: ignore[no-untyped-def]
    """Cohort A on WhatsApp (two Peruvian numbers, one Colombian), cohort B on SMS."""
    a, b = make_cohort("A"), make_cohort("B")
    man1, man2 = enroll(a, phone="+51987000001"), enroll(a, phone="+51987000002")
    colombian = enroll(a, phone="+573001234567")
    man4 = enroll(b, phone="+51987000004")
    Enrollment.objects.filter(pk=man1.pk).update(state=Enrollment.State.COMPLETED)

    price("whatsapp", "marketing", "0.07", dt.date(2026, 1, 1))
    price("whatsapp", "marketing", "0.05", dt.date(2026, 3, 3))  # cheaper from the 3rd
    price("whatsapp", "utility", "0.02", dt.date(2026, 1, 1))
    price("whatsapp", "service", "0", dt.date(2026, 1, 1))
    price("twilio", "sms", "0.30", dt.date(2026, 1, 1), currency="PEN")

    mar2 = dt.datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    mar3 = dt.datetime(2026, 3, 3, 20, 0, tzinfo=UTC)
    late_mar2 = dt.datetime(2026, 3, 3, 4, 30, tzinfo=UTC)  # 23:30 on the 2nd in Lima
    marketing = {"pricing_category": "marketing", "billable": True}
    out(man1, mar2, 2, **marketing)
    out(man1, late_mar2, 1, **marketing)
    out(man2, mar2, 2, pricing_category="service", billable=False)
    out(man1, mar3, 2, **marketing)
    out(man2, mar3, 1, pricing_category="utility", billable=True)
    out(colombian, mar3, 1, **marketing)  # no price for Colombia: unpriced, not guessed
    out(man1, mar3, 1, status=Message.Status.SENT)  # Meta has not priced it yet
    out(man2, mar3, 1, status=Message.Status.FAILED)  # never billed, never awaited
    inbound(man2, mar2, 2)
    out(man2, mar2, 1, channel="simulated")  # the demo's channel: counted, never awaited

    sms = {"pricing_category": "sms", "billable": True, "channel": SMS}
    out(man4, mar2, 1, segments=3, **sms)
    out(man4, mar2, 1, segments=1, **sms)
    out(man4, mar3, 1, segments=2, status=Message.Status.FAILED, channel=SMS,
        pricing_category="sms", billable=False)  # fmt: skip
    return a, b


@pytest.mark.django_db
def test_costs_per_cohort_day_participant_and_completer(two_cohorts) -> None:  # type: ignore[no-untyped-def]
    a, b = two_cohorts
    report = cohort_costs([a, b], zone="America/Lima")
    cost_a, cost_b = report.cohorts

    # 3 x 0.07 on the 2nd (one sent at 23:30 Lima time) + 2 x 0.05 + 1 x 0.02 on the 3rd.
    assert cost_a.cost == {"USD": Decimal("0.33")}
    assert (cost_a.sent, cost_a.received, cost_a.billable) == (12, 2, 7)
    assert (cost_a.unpriced, cost_a.awaiting) == (1, 1)
    assert (cost_a.enrolled, cost_a.completed) == (3, 1)
    assert cost_a.per_participant == {"USD": Decimal("0.11")}
    assert cost_a.per_completer == {"USD": Decimal("0.33")}
    assert [(d.day, d.sent, d.received, d.cost) for d in cost_a.days] == [
        (dt.date(2026, 3, 2), 6, 2, {"USD": Decimal("0.21")}),
        (dt.date(2026, 3, 3), 6, 0, {"USD": Decimal("0.12")}),
    ]
    # SMS: per segment, 3 + 1 segments x PEN 0.30; the failed one is not billable.
    assert cost_b.cost == {"PEN": Decimal("1.20")}
    assert cost_b.per_completer is None
    assert report.cost == {"USD": Decimal("0.33"), "PEN": Decimal("1.20")}
    assert report.missing_prices == {("whatsapp", "marketing", "CO")}
    assert (report.unpriced, report.awaiting) == (1, 1)


@pytest.mark.django_db
def test_costs_are_counted_in_a_fixed_number_of_queries(make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    """Set-based: ten times the messages, the same three queries."""
    cohort = make_cohort()
    man = enroll(cohort)
    price("whatsapp", "utility", "0.02", dt.date(2026, 1, 1))
    at = dt.datetime(2026, 3, 2, 20, tzinfo=UTC)
    counts = []
    for n in (5, 50):
        out(man, at, n, pricing_category="utility", billable=True)
        with CaptureQueriesContext(connection) as queries:
            report = cohort_costs([cohort])
        counts.append(len(queries))
    assert report.cohorts[0].cost == {"USD": Decimal("1.10")}
    assert counts == [3, 3]


@pytest.mark.django_db
def test_no_messages_and_no_prices_cost_nothing(make_cohort) -> None:  # type: ignore[no-untyped-def]
    report = cohort_costs([make_cohort()])
    assert (report.has_prices, report.cost, report.cohorts[0].per_participant) == (False, {}, None)
    assert money_format(report.cohorts[0].per_participant) == "—"


def test_the_country_comes_from_the_number() -> None:
    assert phone_country("+51987654321") == "PE"
    assert phone_country("+573001234567") == "CO"
    assert phone_country("not a number") == ""


@pytest.mark.django_db
def test_a_new_participant_records_his_country(make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    enrollment = enroll(make_cohort(), phone="+573001234567")
    assert enrollment.participant.country == "CO"


@pytest.fixture
def staff(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("supervisora", password="clave-larga-123")


@pytest.mark.django_db
def test_the_program_page_shows_costs_in_spanish(client, staff, two_cohorts) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    program = two_cohorts[0].program
    html = client.get(f"/programs/{program.slug}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Mensajes y costo estimado" in html
    assert 'data-label="Costo estimado">USD 0,33<' in html
    assert 'data-label="Por participante"><span>USD 0,110 ' in html
    assert 'data-label="Costo estimado">PEN 1,20<' in html
    assert "PEN 1,20 + USD 0,33" in html  # all cohorts
    assert "1 mensaje facturable no tiene precio" in html
    assert "whatsapp · marketing · CO" in html
    day = '<td><time datetime="2026-03-02">2 Mar</time></td><td>6</td><td>2</td><td>USD 0,21</td>'
    assert day in html


@pytest.mark.django_db
def test_the_program_page_shows_costs_in_english(client, staff, two_cohorts) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    program = two_cohorts[0].program
    html = client.get(f"/programs/{program.slug}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Messages and estimated cost" in html
    assert 'data-label="Per completer"><span>USD 0.330 ' in html
    assert "1 billable message has no price in the table" in html


@pytest.mark.django_db
def test_the_program_page_says_how_to_load_prices_when_there_are_none(
    client, staff, make_cohort
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    program = make_cohort().program
    html = client.get(f"/programs/{program.slug}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "tertulia prices load --example-peru" in html


def test_counts_are_grouped_as_the_reader_s_language_groups_them() -> None:
    from django.utils import translation

    from tertulia.dashboard.costs import count_format

    with translation.override("es"):
        assert count_format(15460) == "15\xa0460"  # never "15,460", which reads as 15.46
    with translation.override("en"):
        assert count_format(15460) == "15,460"
