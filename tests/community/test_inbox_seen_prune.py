"""The inbox's per-facilitator "seen" marks are pruned daily: those older than the cut-off, those
about an item that no longer exists, and those of a person who no longer sees the item. The
rest stay, so what a facilitator has seen stays seen."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tertulia.cli import main
from tertulia.cohorts.models import Cohort
from tertulia.community.models import CommunityPost, InboxSeen
from tertulia.community.services import inbox_mark_seen, inbox_seen_prune
from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.safety.models import Alert, Category

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 9, 1, 12, 0, tzinfo=dt.UTC)
SEEN = InboxSeen.Kind


@pytest.fixture
def inbox(make_cohort: Any, enroll: Any) -> dict[str, Any]:
    """Two facilitators with a cohort each, a supervisor, and in the first cohort one alert,
    one held post and one private message."""
    users = get_user_model().objects
    ana = users.create_user("ana", password="x-123456789")
    beto = users.create_user("beto", password="x-123456789")
    supervisor = users.create_user("sofia", password="x-123456789")
    supervisor.groups.add(Group.objects.create(name="supervisor"))
    lima = make_cohort(name="Lima")
    Cohort.objects.filter(pk=lima.pk).update(facilitator=ana)
    piura = make_cohort(name="Piura")
    Cohort.objects.filter(pk=piura.pk).update(facilitator=beto)
    man = enroll(lima, phone="+51987000001")
    message = Message.objects.create(
        direction=Message.Direction.IN,
        participant=man.participant,
        enrollment=man,
        channel="simulated",
        provider_id="in-1",
        status=Message.Status.ROUTED,
        route=Message.Route.FACILITATOR,
        body="PRIVADO una duda",
        created_at=NOW,
    )
    alert = Alert.objects.create(
        message=message,
        participant=man.participant,
        enrollment=man,
        cohort=lima,
        category=Category.SELF_HARM,
        created_at=NOW,
    )
    post = CommunityPost.objects.create(
        cohort=lima, body="¿Alguien más?", status=CommunityPost.Status.HELD, created_at=NOW
    )
    return {
        "ana": ana,
        "beto": beto,
        "supervisor": supervisor,
        "lima": lima,
        "piura": piura,
        "items": [(SEEN.ALERT, alert.pk), (SEEN.POST, post.pk), (SEEN.MESSAGE, message.pk)],
        "alert": alert,
        "post": post,
        "message": message,
    }


def marks(user: Any) -> set[tuple[str, int]]:
    return set(InboxSeen.objects.filter(user=user).values_list("kind", "object_id"))


def test_recent_marks_of_people_who_still_see_the_items_are_kept(inbox: dict[str, Any]) -> None:
    for who in ("ana", "supervisor"):
        inbox_mark_seen(user=inbox[who], items=inbox["items"], now=NOW - dt.timedelta(days=89))
    pruned = inbox_seen_prune(now=NOW)
    assert pruned.total == 0
    assert marks(inbox["ana"]) == marks(inbox["supervisor"]) == set(inbox["items"])


def test_marks_older_than_the_cut_off_go(inbox: dict[str, Any]) -> None:
    ana, items = inbox["ana"], inbox["items"]
    inbox_mark_seen(user=ana, items=items[:1], now=NOW - dt.timedelta(days=91))
    inbox_mark_seen(user=ana, items=items[1:], now=NOW - dt.timedelta(days=10))
    pruned = inbox_seen_prune(now=NOW)
    assert (pruned.old, pruned.gone, pruned.no_access) == (1, 0, 0)
    assert marks(ana) == set(items[1:])
    assert inbox_seen_prune(days=7, now=NOW).old == 2
    assert not InboxSeen.objects.exists()


def test_marks_about_items_that_no_longer_exist_go(inbox: dict[str, Any]) -> None:
    ana = inbox["ana"]
    inbox_mark_seen(user=ana, items=inbox["items"], now=NOW)
    inbox["post"].delete()
    Alert.objects.filter(pk=inbox["alert"].pk).delete()
    pruned = inbox_seen_prune(now=NOW)
    assert (pruned.old, pruned.gone, pruned.no_access) == (0, 2, 0)
    assert marks(ana) == {(SEEN.MESSAGE, inbox["message"].pk)}
    # An outbound message with the id of a seen private message is not that message.
    inbox["message"].delete()
    Message.objects.create(
        pk=inbox["message"].pk,
        direction=Message.Direction.OUT,
        channel="simulated",
        status=Message.Status.SENT,
        created_at=NOW,
    )
    assert inbox_seen_prune(now=NOW).gone == 1


def test_marks_of_people_who_lost_access_go(inbox: dict[str, Any]) -> None:
    ana, beto, supervisor = inbox["ana"], inbox["beto"], inbox["supervisor"]
    for user in (ana, beto, supervisor):
        InboxSeen.objects.bulk_create(
            [InboxSeen(user=user, kind=k, object_id=i, seen_at=NOW) for k, i in inbox["items"]]
        )
    pruned = inbox_seen_prune(now=NOW)
    # Beto never facilitated Lima (the marks came from an earlier assignment).
    assert (pruned.old, pruned.gone, pruned.no_access) == (0, 0, 3)
    assert marks(beto) == set()
    # Lima is handed to Beto: Ana's marks go, the supervisor's stay.
    Cohort.objects.filter(pk=inbox["lima"].pk).update(facilitator=beto)
    assert inbox_seen_prune(now=NOW).no_access == 3
    assert marks(ana) == set()
    assert marks(supervisor) == set(inbox["items"])
    # A supervisor who leaves the group keeps only what her own cohorts hold (none); an
    # inactive account keeps nothing.
    supervisor.groups.clear()
    inbox_mark_seen(user=beto, items=inbox["items"], now=NOW)
    get_user_model().objects.filter(pk=beto.pk).update(is_active=False)
    assert inbox_seen_prune(now=NOW).no_access == 6
    assert not InboxSeen.objects.exists()


def test_the_daily_command_prunes_and_says_how_many(inbox: dict[str, Any]) -> None:
    inbox_mark_seen(user=inbox["ana"], items=inbox["items"], now=clock.now())
    InboxSeen.objects.filter(kind=SEEN.ALERT).update(seen_at=clock.now() - dt.timedelta(days=40))
    inbox["post"].delete()
    result = CliRunner().invoke(main, ["community", "prune-seen"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 seen marks: 0 older than 90 days, 1 about items" in result.output
    result = CliRunner().invoke(main, ["community", "prune-seen", "--days", "30"])
    assert "Removed 1 seen marks: 1 older than 30 days" in result.output
    assert marks(inbox["ana"]) == {(SEEN.MESSAGE, inbox["message"].pk)}
    bad = CliRunner().invoke(main, ["community", "prune-seen", "--days", "0"])
    assert bad.exit_code != 0 and "--days" in bad.output
    with pytest.raises(ValueError, match="at least 1"):
        inbox_seen_prune(days=0)
