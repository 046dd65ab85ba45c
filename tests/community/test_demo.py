"""The demo's community: a facilitator for the simulated cohorts, and writing as a simulated
man so a new user can watch the inbox react."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tertulia.cohorts.models import Cohort
from tertulia.community.cli import community
from tertulia.community.demo import DemoRefused, demo_facilitator_setup, demo_message_write
from tertulia.community.models import CommunityPost
from tertulia.safety.models import Alert


@pytest.fixture
def demo_cohorts(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohorts = [make_cohort(name="Demo 1"), make_cohort(name="Demo 2")]
    Cohort.objects.filter(pk__in=[c.pk for c in cohorts]).update(simulated=True)
    for cohort in cohorts:
        for _ in range(3):
            enroll(cohort)
    return list(Cohort.objects.filter(pk__in=[c.pk for c in cohorts]).order_by("pk"))


@pytest.mark.django_db
def test_the_demo_cohorts_get_a_facilitator_and_the_last_one_pre_moderation(demo_cohorts) -> None:  # type: ignore[no-untyped-def]
    user, password = demo_facilitator_setup(demo_cohorts)
    assert password and user.check_password(password)
    moderation = dict(Cohort.objects.values_list("name", "moderation"))
    assert moderation == {"Demo 1": "post", "Demo 2": "pre"}
    assert set(Cohort.objects.values_list("facilitator", flat=True)) == {user.pk}
    again, second = demo_facilitator_setup(demo_cohorts)
    assert again == user and second is None and again.check_password(password)


@pytest.mark.django_db
def test_writing_as_a_simulated_man_raises_an_alert_or_holds_his_post(demo_cohorts) -> None:  # type: ignore[no-untyped-def]
    demo_facilitator_setup(demo_cohorts)
    threat = demo_message_write(
        cohort_name="Demo 1", pseudonym="pata 2", text="si me deja la voy a matar"
    )
    assert threat.pseudonym == "Pata 2" and threat.alerts == ["threat_to_partner"]
    assert Alert.objects.get().cohort == demo_cohorts[0]
    post = demo_message_write(cohort_name="Demo 2", pseudonym=None, text="Buenazo el reto")
    assert post.post_status == "held" and post.pseudonym == "Pata 1"
    assert CommunityPost.objects.get(message=post.message).cohort == demo_cohorts[1]


@pytest.mark.django_db
def test_real_cohorts_and_unknown_names_are_refused(make_cohort, demo_cohorts) -> None:  # type: ignore[no-untyped-def]
    make_cohort(name="Lima real")
    with pytest.raises(DemoRefused, match="'Lima real' is a real cohort"):
        demo_message_write(cohort_name="Lima real", pseudonym=None, text="hola")
    with pytest.raises(DemoRefused, match="try 'Pata 1' to 'Pata 3'"):
        demo_message_write(cohort_name="Demo 1", pseudonym="Pata 9", text="hola")
    result = CliRunner().invoke(community, ["say", "--cohort", "Demo 7", "hola"])
    assert result.exit_code == 1
    assert "no cohort named 'Demo 7'; the demo's cohorts are: Demo 1, Demo 2" in result.output


@pytest.mark.django_db
def test_a_relayed_post_is_sent_at_once_to_the_men_inside_their_window(demo_cohorts) -> None:  # type: ignore[no-untyped-def]
    from tertulia.community.models import PostDelivery
    from tertulia.messaging.models import Outbox

    demo_facilitator_setup(demo_cohorts)
    demo_message_write(cohort_name="Demo 1", pseudonym="Pata 2", text="Hoy me tocó escuchar")
    # Pata 2 just wrote, so his window is open; Pata 3 has not written: a digest for him.
    written = demo_message_write(cohort_name="Demo 1", pseudonym="Pata 1", text="Buena, causa")
    assert written.post_status == "relayed"
    assert written.reach is not None and (written.reach.live, written.reach.digest) == (1, 1)
    live = PostDelivery.objects.get(post__message=written.message, via=PostDelivery.Via.LIVE)
    assert live.outbox is not None
    assert Outbox.objects.get(pk=live.outbox_id).status == Outbox.Status.SENT, "sent, not queued"

    result = CliRunner().invoke(community, ["say", "--member", "Pata 3", "Gracias, patas"])
    assert result.exit_code == 0, result.output
    assert "relayed to the community: sent now to 2, 0 wait for a digest" in result.output
