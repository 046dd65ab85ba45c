"""The inbox in a real browser (headless Chromium through Playwright), on a phone-sized and a
laptop-sized window: an alert raised by a simulated inbound message appears without a reload
and is resolved; a held post is approved and relayed; a private reply is sent. Screenshots go
to var/test-artifacts/browser/ to be looked at."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tertulia.cohorts.models import Cohort
from tertulia.community.models import CommunityPost, PrivateReply, QuickReply
from tertulia.core import clock
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.safety.models import Alert, AuditLog
from tests.conftest import require_service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("TERTULIA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "browser"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
MEN = ["+51987000001", "+51987000002", "+51987000003"]
PASSWORD = "x-123456789"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_service("Chromium", shutil.which(CHROMIUM) is not None)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while the browser is open; the
    # tests' ORM calls (and pytest-django's flush after each) are plain synchronous code, so
    # Django's guard against async contexts is lifted until the browser is closed.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    if saved is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page(chromium, live_server, cohort):  # type: ignore[no-untyped-def]
    """A facilitator logged in through the login form, on a phone-sized window, in Spanish."""
    context = chromium.new_context(viewport=PHONE, locale="es-PE")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "facilitador")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button")
    page.wait_for_url(f"{live_server.url}/")
    yield page
    context.close()


@pytest.fixture
def cohort(make_cohort, enroll):  # type: ignore[no-untyped-def]
    facilitator = get_user_model().objects.create_user("facilitador", password=PASSWORD)
    cohort = make_cohort(name="Cohorte Lima")
    Cohort.objects.filter(pk=cohort.pk).update(facilitator=facilitator)
    for phone in MEN:
        enroll(cohort, phone=phone)
    return Cohort.objects.get(pk=cohort.pk)


def write(phone: str, text: str) -> Message:
    """A message as it arrives from his phone: stored, then routed (triage, relay or hold)."""
    now = clock.now()
    message, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=f"browser-{next(_ids)}",
            received_at=now,
            text=text,
        )
    )
    message_route(message_id=message.pk, now=now)
    return message


def wrote_recently(phone: str) -> None:
    """He wrote a moment ago (not routed): inside his 24-hour window, relays reach him at once."""
    message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=f"browser-{next(_ids)}",
            received_at=clock.now(),
            text="hola",
        )
    )


def shoot(page: Any, name: str) -> None:
    """Save the page at the phone and the laptop size."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("390", PHONE), ("1366", LAPTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(PHONE)


def test_an_alert_appears_without_reload_and_is_resolved(page, live_server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/inbox/")
    page.wait_for_selector("text=No hay alertas abiertas.")
    raised = time.monotonic()
    write(MEN[0], "si me vuelve a dejar la voy a matar")
    alert_card = page.locator("article.alert", has_text="la voy a matar")
    alert_card.wait_for()
    seconds = time.monotonic() - raised
    assert seconds < 12, f"the alert took {seconds:.1f} s to appear"
    assert "Pata 1" in alert_card.inner_text() and "987000001" not in page.content()
    shoot(page, "1-alert")
    alert_card.locator("input[name=note]").fill("Lo llamé y derivé a la Línea 100")
    alert_card.get_by_role("button", name="Marcar como resuelta").click()
    page.wait_for_selector("text=No hay alertas abiertas.")
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.HANDLED and alert.note.startswith("Lo llamé")
    assert AuditLog.objects.filter(action="alert.resolve", actor__username="facilitador").exists()
    shoot(page, "2-alert-resolved")


def test_a_held_post_is_approved_and_relayed(page, live_server, cohort) -> None:  # type: ignore[no-untyped-def]
    Cohort.objects.filter(pk=cohort.pk).update(moderation=Cohort.Moderation.PRE)
    wrote_recently(MEN[0])
    wrote_recently(MEN[2])
    write(MEN[1], "Hoy conversé con mi jerma sin gritar, bravazo")
    page.goto(f"{live_server.url}/inbox/")
    held = page.locator("article", has_text="sin gritar")
    held.wait_for()
    shoot(page, "3-held")
    held.get_by_role("button", name="Aprobar y reenviar").click()
    page.wait_for_selector("text=No hay publicaciones retenidas.")
    post = CommunityPost.objects.get()
    assert post.status == CommunityPost.Status.RELAYED
    relayed = [o.participant.phone for o in Outbox.objects.filter(step__isnull=True)]
    assert sorted(relayed) == [MEN[0], MEN[2]]  # everyone but the author
    assert {o.body for o in Outbox.objects.filter(step__isnull=True)} == {
        "*Pata 2:* Hoy conversé con mi jerma sin gritar, bravazo"
    }
    page.goto(f"{live_server.url}/inbox/cohorts/{cohort.pk}/")
    page.locator("article", has_text="sin gritar").wait_for()
    shoot(page, "4-cohort-feed")


def test_a_private_reply_is_sent_from_his_thread(page, live_server) -> None:  # type: ignore[no-untyped-def]
    QuickReply.objects.create(title="Te leo", text="Te leo, hermano. Cuéntame con calma.")
    write(MEN[2], "PRIVADO no sé cómo hablarle a mi pareja sin que acabemos peleando")
    page.goto(f"{live_server.url}/inbox/")
    waiting = page.locator("article", has_text="sin que acabemos peleando")
    waiting.get_by_role("link", name="Responder").click()
    page.wait_for_selector("h1:has-text('Pata 3')")
    page.get_by_role("button", name="Te leo").click()
    assert page.locator("textarea[name=text]").input_value().startswith("Te leo, hermano")
    page.get_by_role("button", name="Enviar solo a él").click()
    page.locator(".bubble.reply", has_text="Cuéntame con calma").wait_for()
    assert page.locator("textarea[name=text]").input_value() == ""
    reply = PrivateReply.objects.get()
    assert reply.outbox is not None
    assert reply.outbox.body == "*Facilitador (solo para ti):* Te leo, hermano. Cuéntame con calma."
    assert AuditLog.objects.filter(action="reply.private").count() == 1
    assert AuditLog.objects.filter(action="thread.open").count() == 1
    shoot(page, "5-thread")
    page.goto(f"{live_server.url}/inbox/")
    page.wait_for_selector("text=No hay nada pendiente.")


def test_new_items_are_marked_for_him_until_he_has_seen_them(page, live_server) -> None:  # type: ignore[no-untyped-def]
    write(MEN[0], "PRIVADO una duda sobre el reto de hoy")
    write(MEN[1], "PRIVADO ¿mañana hay cápsula?")
    page.goto(f"{live_server.url}/inbox/")
    page.wait_for_selector("text=2 nuevos para ti")
    assert page.locator("article.unseen .new").count() == 2
    shoot(page, "6-unread")
    page.get_by_role("button", name="Marcar todo como visto").click()
    page.wait_for_selector("text=0 nuevos para ti")
    assert page.locator("article.unseen").count() == 0
    write(MEN[2], "PRIVADO llegó después")
    page.locator("article.unseen", has_text="llegó después").wait_for()  # the 5 s refresh
    assert page.locator("#unread").inner_text().startswith("1 nuevo para ti")


def test_the_supervisor_chooses_the_window_of_his_figures(chromium, live_server, cohort) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    supervisor = get_user_model().objects.create_user("supervisora", password=PASSWORD)
    supervisor.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    write(MEN[0], "si me vuelve a dejar la voy a matar")
    context = chromium.new_context(viewport=PHONE, locale="es-PE")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "supervisora")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/supervisor/")
    row = page.locator("tr", has_text="facilitador")
    assert row.locator("td[data-label='Alertas generadas']").inner_text() == "1"
    shoot(page, "7-supervisor")
    page.fill("input[name=start]", "2026-01-01")
    page.fill("input[name=end]", "2026-01-31")
    page.get_by_role("button", name="Mostrar").click()
    page.wait_for_url("**end=2026-01-31**")
    assert row.locator("td[data-label='Alertas generadas']").inner_text() == "0"
    assert "del 1 de enero de 2026 al 31 de enero de 2026" in page.content()
    context.close()
