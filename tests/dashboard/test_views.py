"""The program dashboard: behind a login, in Spanish or English, with the funnel and plots."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from tertulia.messaging.scheduler import outbox_enqueue_due
from tests.conftest import lima


@pytest.fixture
def staff(db):  # type: ignore[no-untyped-def]
    return get_user_model().objects.create_user("supervisora", password="clave-larga-123")


@pytest.fixture
def program_with_men(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=dt.date(2026, 3, 2))
    for _ in range(3):
        enroll(cohort)
    outbox_enqueue_due(now=lima(dt.date(2026, 3, 2), 19))
    return cohort.program


@pytest.mark.django_db
def test_the_dashboard_needs_a_login(client, program_with_men) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/programs/{program_with_men.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_program_page_shows_the_funnel_in_spanish(client, staff, program_with_men) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    response = client.get(f"/programs/{program_with_men.slug}/", HTTP_ACCEPT_LANGUAGE="es")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Embudo del programa" in html
    assert "Inscritos" in html and ">3<" in html
    assert f"/programs/{program_with_men.slug}/retention.png" in html


@pytest.mark.django_db
def test_the_program_page_speaks_english_too(client, staff, program_with_men) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    response = client.get(f"/programs/{program_with_men.slug}/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Program funnel" in response.content.decode()


@pytest.mark.django_db
def test_the_plots_are_png(client, staff, program_with_men) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    for name in ("retention.png", "topics.png"):
        response = client.get(f"/programs/{program_with_men.slug}/{name}")
        assert response["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")


@pytest.fixture
def campaigns(db):  # type: ignore[no-untyped-def]
    """Two campaigns of one program; the newer has men at several stages."""
    import itertools

    from tertulia.cohorts.models import Participant
    from tertulia.programs.models import Program
    from tertulia.recruitment.models import AdVariant, Screening
    from tertulia.recruitment.services import campaign_create, variant_create

    program = Program.objects.create(slug="guy-talk", name="Hablemos Entre Patas")
    old = campaign_create(
        program=program, name="Piloto", channel="facebook", whatsapp_number="+51900000001"
    )
    variant_create(campaign=old, name="Viejo", cost="100", code="HEP-OLD1")
    new = campaign_create(
        program=program, name="Lanzamiento", channel="instagram", whatsapp_number="+51900000001"
    )
    variant_create(campaign=new, name="A humor", cost="300", code="HEP-AAAA")
    variant_create(campaign=new, name="B testimonio", cost="450", code="HEP-BBBB")
    at = dt.datetime(2026, 3, 1, 15, tzinfo=dt.UTC)
    numbers = itertools.count()
    for code, reached in (("HEP-AAAA", 0), ("HEP-AAAA", 4), ("HEP-BBBB", 4), ("HEP-BBBB", 1)):
        stamps = dict.fromkeys(
            ("screened_at", "consented_at", "baseline_completed_at", "randomized_at")[:reached], at
        )
        Screening.objects.create(
            participant=Participant.objects.create(phone_hash=f"h{next(numbers)}"),
            program=program,
            variant=AdVariant.objects.get(code=code),
            channel="simulated",
            started_at=at,
            **stamps,
        )
    return program, old, new


@pytest.mark.django_db
def test_the_program_page_shows_the_newest_campaigns_funnel_by_variant(
    client, staff, campaigns
) -> None:  # type: ignore[no-untyped-def]
    program, old, new = campaigns
    client.force_login(staff)
    html = client.get(f"/programs/{program.slug}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Embudo de reclutamiento" in html
    assert "Embudo por variante de anuncio: Lanzamiento" in html
    assert "A humor" in html and "B testimonio" in html and "Viejo" not in html
    assert f"/programs/guy-talk/campaigns/{new.pk}/funnel-HEP-AAAA.png" in html
    assert f"/programs/guy-talk/campaigns/{new.pk}/funnel-overall.png" in html
    assert "450.00" in html and "225.00" not in html  # B: 450 for 1 randomized man
    assert "Todas las variantes" in html
    older = client.get(f"/programs/{program.slug}/?campaign={old.pk}").content.decode()
    assert "Viejo" in older and "A humor" not in older


@pytest.mark.django_db
def test_the_funnel_plots_are_png_and_only_for_the_campaigns_variants(
    client, staff, campaigns
) -> None:  # type: ignore[no-untyped-def]
    program, old, new = campaigns
    client.force_login(staff)
    base = f"/programs/{program.slug}/campaigns/{new.pk}"
    for code in ("HEP-AAAA", "overall"):
        response = client.get(f"{base}/funnel-{code}.png")
        assert response["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG")
    assert client.get(f"{base}/funnel-HEP-OLD1.png").status_code == 404
    assert client.get(f"/programs/otro/campaigns/{new.pk}/funnel-overall.png").status_code == 404
    client.logout()
    assert client.get(f"{base}/funnel-overall.png").status_code == 302


@pytest.mark.django_db
def test_a_program_without_campaigns_says_how_to_start(client, staff, program_with_men) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    html = client.get(f"/programs/{program_with_men.slug}/", HTTP_ACCEPT_LANGUAGE="en").content
    assert b"No recruitment campaign yet" in html and b"tertulia demo --recruit" in html
