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
