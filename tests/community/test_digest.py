"""The digest: posts owed to men outside their 24-hour window come later, after a template
inviting them back; a cohort may run in digest mode; never a post twice to a man, even when
the tick runs twice or crashes midway."""

from __future__ import annotations

import datetime as dt

import pytest

from tertulia.cohorts.models import Cohort
from tertulia.community.digest import (
    DIGEST_HEAD,
    INVITE_TEMPLATE,
    community_digest_due,
)
from tertulia.community.models import CommunityPost, PostDelivery
from tertulia.community.services import post_retract
from tertulia.community.tasks import community_digest_task
from tertulia.messaging.models import Outbox
from tests.community.test_relay import PHONES, START, participant, write, wrote_earlier
from tests.conftest import lima

POST_AT = lima(START, 20)


@pytest.fixture
def cohort(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    for phone in PHONES:
        enroll(cohort, phone=phone)
    return cohort


def to(phone: str) -> list[Outbox]:
    return list(
        Outbox.objects.filter(participant=participant(phone), step__isnull=True).order_by("id")
    )


def pairs_sent() -> list[tuple[int, int]]:
    """(enrollment, post) of every delivery that has an Outbox row."""
    return sorted(
        PostDelivery.objects.filter(outbox__isnull=False).values_list("enrollment_id", "post_id")
    )


@pytest.fixture
def pata3_away(cohort):  # type: ignore[no-untyped-def]
    """Pata 1 and 2 wrote an hour ago; Pata 3 last wrote two days ago. Pata 1 posts twice."""
    wrote_earlier(PHONES[0], PHONES[1])
    wrote_earlier(PHONES[2], at=POST_AT - dt.timedelta(days=2))
    write(PHONES[0], "Primero: hoy hablé con calma", at=POST_AT)
    write(PHONES[0], "Segundo: y ella también", at=POST_AT + dt.timedelta(minutes=5))
    return cohort


@pytest.mark.django_db
def test_a_man_away_is_invited_back_once_by_template(pata3_away) -> None:  # type: ignore[no-untyped-def]
    assert to(PHONES[2]) == []
    report = community_digest_due(POST_AT + dt.timedelta(minutes=10))
    assert (report.invited, report.men) == (1, 0)
    [invite] = to(PHONES[2])
    assert invite.template == INVITE_TEMPLATE
    assert "2 mensajes" in invite.body
    again = community_digest_due(POST_AT + dt.timedelta(minutes=11))
    assert (again.invited, again.men) == (0, 0)
    assert len(to(PHONES[2])) == 1, "one invitation, not one per tick"
    later = community_digest_due(POST_AT + dt.timedelta(days=8))
    assert later.invited == 1, "invited again after a week without an answer"


@pytest.mark.django_db
def test_his_answer_brings_the_grouped_posts_at_once(pata3_away) -> None:  # type: ignore[no-untyped-def]
    community_digest_due(POST_AT + dt.timedelta(minutes=10))
    write(PHONES[2], "Hola, aquí estoy", at=POST_AT + dt.timedelta(hours=3))
    invite, digest = to(PHONES[2])
    assert digest.template == ""
    assert digest.body == (
        f"{DIGEST_HEAD}\n\n*Pata 1:* Primero: hoy hablé con calma\n\n"
        "*Pata 1:* Segundo: y ella también"
    )
    assert set(PostDelivery.objects.filter(outbox=digest).values_list("via", flat=True)) == {
        PostDelivery.Via.DIGEST
    }
    # His own words are a post like any other, relayed live to the two inside their window.
    assert CommunityPost.objects.filter(author__pseudonym="Pata 3").count() == 1
    before = Outbox.objects.count()
    report = community_digest_due(POST_AT + dt.timedelta(hours=4))
    assert (report.invited, report.men) == (0, 0)
    assert Outbox.objects.count() == before, "nothing sent twice"


@pytest.mark.django_db
def test_the_tick_sends_them_once_his_window_is_open(pata3_away) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(PHONES[2], at=POST_AT + dt.timedelta(minutes=30))
    report = community_digest_due(POST_AT + dt.timedelta(hours=1))
    assert (report.invited, report.men, report.posts, report.messages) == (0, 1, 2, 1)
    assert community_digest_due(POST_AT + dt.timedelta(hours=1)).men == 0


@pytest.mark.django_db
def test_a_retracted_post_is_left_out_of_the_digest(pata3_away, django_user_model) -> None:  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user("f", password="x-123456789")
    first = CommunityPost.objects.order_by("id").first()
    assert first is not None
    post_retract(post=first, user=user, now=POST_AT + dt.timedelta(minutes=20))
    assert all("retiró" not in row.body for row in to(PHONES[2])), "he never saw it"
    wrote_earlier(PHONES[2], at=POST_AT + dt.timedelta(minutes=30))
    community_digest_due(POST_AT + dt.timedelta(hours=1))
    [digest] = to(PHONES[2])
    assert "Segundo" in digest.body and "Primero" not in digest.body


@pytest.mark.django_db
def test_a_crash_midway_and_a_second_run_send_each_post_once(cohort, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(PHONES[0])
    write(PHONES[0], "Uno", at=POST_AT)
    write(PHONES[0], "Dos", at=POST_AT + dt.timedelta(minutes=1))
    wrote_earlier(PHONES[1], PHONES[2], at=POST_AT + dt.timedelta(minutes=30))
    owed = PostDelivery.objects.filter(outbox__isnull=True).count()
    assert owed == 4

    real = Outbox.objects.bulk_create
    calls = {"n": 0}

    def dies_on_the_second_man(objs, *args, **kwargs):  # type: ignore[no-untyped-def]
        created = real(objs, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("the worker was killed")  # not an Exception: nothing catches it
        return created

    monkeypatch.setattr(Outbox.objects, "bulk_create", dies_on_the_second_man)
    with pytest.raises(SystemExit):
        community_digest_due(POST_AT + dt.timedelta(hours=1))
    monkeypatch.undo()
    assert len(pairs_sent()) == 2, "the first man's digest committed, the second's rolled back"
    assert len(to(PHONES[2])) == 0

    community_digest_due(POST_AT + dt.timedelta(hours=1, minutes=1))
    community_digest_due(POST_AT + dt.timedelta(hours=1, minutes=2))
    assert len(pairs_sent()) == 4 == len(set(pairs_sent()))
    assert len(to(PHONES[1])) == 1 and len(to(PHONES[2])) == 1
    assert "Uno" in to(PHONES[2])[0].body and "Dos" in to(PHONES[2])[0].body


@pytest.mark.django_db
def test_a_cohort_in_digest_mode_groups_posts_every_n_hours(cohort) -> None:  # type: ignore[no-untyped-def]
    Cohort.objects.filter(pk=cohort.pk).update(digest_every_hours=6)
    wrote_earlier(*PHONES, at=POST_AT - dt.timedelta(minutes=30))
    write(PHONES[0], "Post de la tarde", at=POST_AT)
    assert to(PHONES[1]) == [], "nothing at once in digest mode"
    assert community_digest_due(POST_AT + dt.timedelta(hours=1)).men == 0
    # His own message does not break the cohort's rhythm.
    write(PHONES[1], "Yo también comparto algo", at=POST_AT + dt.timedelta(hours=2))
    assert to(PHONES[1]) == []
    report = community_digest_due(POST_AT + dt.timedelta(hours=6))
    assert report.men == 2  # Pata 2 (window open) and Pata 3 (window open)
    assert [len(to(p)) for p in PHONES] == [0, 1, 1]
    write(PHONES[2], "Otra cosa", at=POST_AT + dt.timedelta(hours=7))
    # Pata 1's first owed post (Pata 2's, at +2 h) is 6 hours old; the others had a digest at
    # +6 h, so Pata 3's post waits for them.
    community_digest_due(POST_AT + dt.timedelta(hours=8))
    assert [len(to(p)) for p in PHONES] == [1, 1, 1]
    community_digest_due(POST_AT + dt.timedelta(hours=12, minutes=1))
    assert [len(to(p)) for p in PHONES] == [1, 2, 1]
    assert "Otra cosa" in to(PHONES[1])[-1].body
    assert len(pairs_sent()) == len(set(pairs_sent())) == 6  # 3 posts, 2 others each


@pytest.mark.django_db(transaction=True)
def test_the_digest_task_runs_on_the_queue(pata3_away, run_tasks) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(PHONES[2], at=POST_AT + dt.timedelta(minutes=30))
    community_digest_task.enqueue((POST_AT + dt.timedelta(hours=1)).isoformat())
    run_tasks()
    assert len(to(PHONES[2])) == 1
