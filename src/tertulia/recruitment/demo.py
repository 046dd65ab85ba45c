"""`tertulia demo --recruit`: a recruitment campaign end to end through the WhatsApp channel.

Three ad variants, each with its own cost and seeded response rate, bring simulated men who
write to the program's number through the local fake Cloud API (by the variant's code in the
click-to-WhatsApp text, or by the ad's referral object). They go through the real screening,
consent, partner-contact and baseline conversation (signed webhooks into our webhook view, the
router, recruitment's services, the sender), are randomized into the recorded trial, and the
program arm is formed into cohorts by send time and region; the control arm waits.

Each man follows a seeded plan that the fake's responder plays: he answers what he is asked
(a tap on a button, or a typed answer), sometimes not understood at first (re-asked), sometimes
in words ("treinta y dos"); some are ineligible, some decline, some stop with BAJA or go silent;
some give their partner's contact, some do not; one taps "Sí, acepto" twice; a few write the ad
code again once randomized (told kindly they are already registered, never randomized again).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tertulia.messaging.channels.whatsapp.fake_server import AcceptedMessage

LIMA = ZoneInfo("America/Lima")
CHANNEL = "recruit-demo"
DEMO_SECRET = "recruit-demo-secret"  # noqa: S105 - shared only with the in-process fake
DEMO_TOKEN = "recruit-demo-token"  # noqa: S105
AD_NUMBER = "+51900000001"
DUMMY_TASKS = (
    "django_tasks.backends.dummy.DummyBackend"  # the fake's display number: the one men write to
)
REGIONS = {"lima": 0.45, "north": 0.2, "south": 0.1, "andes": 0.15, "amazon": 0.1}
SEND_TIMES = {"morning": 0.2, "midday": 0.2, "evening": 0.6}
BASELINE = {
    "talk_frequency": ("never", "some", "often"),
    "chores_share": ("her", "both", "me"),
    "anger_control": ("rarely", "sometimes", "often"),
}
NAMES = ("Rosa", "María", "Carmen", "Lucía", "Ana", "Milagros", "Diana", "Juana", "Sofía")


@dataclass(frozen=True)
class VariantSpec:
    """An ad of the demo campaign and how the men it brings behave."""

    suffix: str  # its code is D<campaign id>-<suffix>
    name: str
    creative: str
    cost: Decimal
    response_rate: float  # of the people the ad reached, the share who write
    eligible: float  # of those who write, the share who are eligible
    consent: float  # of the eligible who finish screening, the share who consent
    referral_share: float  # the share who arrive by the ad's referral object, not its code


VARIANTS = (
    VariantSpec(
        "HUMOR",
        "A · Humor",
        "Video corto con humor: dos patas conversan en la combi",
        Decimal("300.00"),
        response_rate=0.030,
        eligible=0.70,
        consent=0.82,
        referral_share=0.0,
    ),
    VariantSpec(
        "PAPA",
        "B · Testimonio",
        "Un papá cuenta cómo cambió la conversación en su casa",
        Decimal("450.00"),
        response_rate=0.045,
        eligible=0.82,
        consent=0.90,
        referral_share=0.5,
    ),
    VariantSpec(
        "PREG",
        "C · Pregunta",
        "Foto con la pregunta: ¿discuten mucho en casa?",
        Decimal("250.00"),
        response_rate=0.018,
        eligible=0.60,
        consent=0.72,
        referral_share=0.0,
    ),
)


Reply = tuple[str, str]  # ("tap", option key) or ("text", what he types)


@dataclass
class SimulatedMan:
    phone: str
    variant: int  # index in VARIANTS
    plan: dict[str, list[Reply]] = field(default_factory=dict)  # question -> replies, in order
    writes_again: bool = False  # writes the ad code again once told his arm
    told_arm: bool = False
    finishes: bool = False  # his plan takes him to randomization

    @property
    def wa_id(self) -> str:
        return self.phone.lstrip("+")


@dataclass
class RecruitDemoReport:
    campaign_id: int
    trial: str
    men: int
    reach: int
    states: Counter[str] = field(default_factory=Counter)
    arms: Counter[str] = field(default_factory=Counter)
    cohorts: list[tuple[str, int]] = field(default_factory=list)  # (name, men)
    # (arm, region, send time, men, opens on: None for the control arm's waitlist)
    waiting: list[tuple[str, str, str, int, dt.date | None]] = field(default_factory=list)
    refused_again: int = 0
    reasked: int = 0
    needs_person: int = 0
    partner_contacts: int = 0
    accepted: int = 0
    duplicates: int = 0
    webhook_posts: int = 0


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def plan_men(*, count: int, seed: int, run: int) -> tuple[list[SimulatedMan], int]:
    """Who writes, from which ad, and how each answers: seeded. Returns the men and each ad's
    simulated reach (the same for the three, so their response rates show in who writes)."""
    rng = random.Random(seed)
    reach = round(count / sum(v.response_rate for v in VARIANTS))
    men: list[SimulatedMan] = []
    for index, spec in enumerate(VARIANTS):
        # Who writes is the ad's response rate of its reach; what each then does is drawn.
        writers = round(reach * spec.response_rate)
        for _ in range(writers):
            n = len(men)
            # 9RRRNNNNN, RRR < 900: never the partners' 99... numbers below.
            man = SimulatedMan(phone=f"+519{run:03d}{n:05d}", variant=index)
            _plan(man, spec, rng, partner_phone=f"+5199{run % 100:02d}{n:05d}")
            men.append(man)
    rng.shuffle(men)  # they write in no particular order
    _designate(men)
    return men, reach


def _designate(men: list[SimulatedMan]) -> None:
    """Make sure even a small run shows each case: among the men who will consent and finish,
    one taps "Sí, acepto" twice, one writes the ad code again once told his arm (more in a
    larger run), one writes BAJA in the middle of his screening, and one whose age is never
    understood is handed to a person."""
    finishing = [m for m in men if m.finishes]
    if len(finishing) < 5:
        return
    finishing[0].plan["consent"] = [("tap", "accept"), ("tap", "accept")]
    for man in finishing[1 : 2 + len(men) // 150]:
        man.writes_again = True
    quitter = finishing[-1]
    quitter.plan["own_phone"] = [("text", "BAJA")]
    quitter.finishes = False
    lost = finishing[-2]  # his age is never understood: a person takes over
    lost.plan["age"] = [("text", "mmm"), ("text", "no sé"), ("text", "?")]
    lost.finishes = False


def _plan(man: SimulatedMan, spec: VariantSpec, rng: random.Random, *, partner_phone: str) -> None:
    plan = man.plan
    age = rng.randint(18, 58)
    roll = rng.random()
    if roll < 0.12:
        plan["age"] = [("text", "treinta y pico"), ("text", str(age))]  # not understood, re-asked
    elif roll < 0.22:
        words = {19: "diecinueve", 23: "veintitrés", 28: "veintiocho", 32: "treinta y dos"}
        age = rng.choice(list(words))
        plan["age"] = [("text", f"tengo {words[age]}")]
    elif roll < 0.24:
        plan["age"] = [("text", "mmm"), ("text", "no sé"), ("text", "?")]  # a person takes over
    else:
        plan["age"] = [("text", f"Tengo {age} años" if rng.random() < 0.3 else str(age))]
    plan["relationship"] = [("tap", rng.choice(["cohabiting", "cohabiting", "not_cohabiting"]))]
    plan["lives_in_country"] = [("tap", "yes")]
    plan["own_phone"] = [("tap", "yes")]
    plan["region"] = [("text", str(list(REGIONS).index(_pick(rng, REGIONS)) + 1))]
    plan["send_time"] = [("tap", _pick(rng, SEND_TIMES))]
    eligible = rng.random() < spec.eligible
    if not eligible:
        reason = rng.choice(["age", "relationship", "lives_in_country", "own_phone"])
        plan[reason] = {
            "age": [("text", rng.choice(["16", "diecisiete"]))],
            "relationship": [("tap", "none")],
            "lives_in_country": [("tap", "no")],
            "own_phone": [("tap", "no")],
        }[reason]
    stop = rng.random()
    steps = ["relationship", "lives_in_country", "own_phone", "region", "send_time"]
    if stop < 0.03:
        plan[rng.choice(steps)] = [("text", "BAJA")]
    elif stop < 0.07:
        plan[rng.choice(steps + ["consent"])] = []  # goes silent
    accepted = rng.random() < spec.consent
    man.finishes = eligible and accepted and stop >= 0.07 and len(plan["age"]) < 3
    plan["consent"] = [("tap", "accept" if accepted else "decline")]
    if rng.random() < 0.4:
        plan["partner"] = [("tap", "yes")]
        plan["partner_name"] = [("text", rng.choice(NAMES))]
        typed = partner_phone.removeprefix("+51")
        plan["partner_phone"] = [("text", f"{typed[:3]} {typed[3:6]} {typed[6:]}")]
    else:
        plan["partner"] = [("tap", "no")]
    for question, options in BASELINE.items():
        plan[question] = [("tap", rng.choice(options))]


class Responder:
    """The fake's responder: each simulated man answers the question he was just sent, from his
    plan. Called from the fake's thread."""

    def __init__(
        self,
        men: list[SimulatedMan],
        *,
        prompts: dict[str, str],
        arm_texts: tuple[str, ...],
        codes: dict[int, str],
    ) -> None:
        self.men = {m.wa_id: m for m in men}
        self.prompts = prompts  # first line of a typed question's prompt -> its key
        self.arm_texts = arm_texts  # how the texts telling an arm begin
        self.codes = codes  # variant index -> its code
        self.lock = threading.Lock()

    def __call__(self, entry: AcceptedMessage) -> list[dict[str, object]]:
        with self.lock:
            man = self.men.get(entry.to)
            if man is None:
                return []
            question, body = self._question(entry)
            if question is None:
                if man.writes_again and not man.told_arm and body.startswith(self.arm_texts):
                    man.told_arm = True
                    return [_text(f"Hola, quiero saber más ({self.codes[man.variant]})")]
                return []
            replies = man.plan.get(question)
            if not replies:
                return []  # silent, or nothing planned
            if question == "consent" and len(replies) > 1:
                man.plan[question] = []  # both taps at once: the second comes after the first
                return [_reply(question, r, entry) for r in replies]
            return [_reply(question, replies.pop(0), entry)]

    def _question(self, entry: AcceptedMessage) -> tuple[str | None, str]:
        payload = entry.payload
        if entry.type == "interactive":
            interactive = payload["interactive"]
            buttons = interactive.get("action", {}).get("buttons") or []
            ids = [b["reply"]["id"] for b in buttons]
            if ids and ids[0].startswith("rc:"):
                return ids[0].split(":")[1], str(interactive.get("body", {}).get("text", ""))
            return None, ""
        if entry.type != "text":
            return None, ""
        body = str(payload["text"]["body"])
        first = body.split("\n", 1)[0]
        return self.prompts.get(first), body


def _text(body: str) -> dict[str, object]:
    return {"type": "text", "text": {"body": body}}


def _reply(question: str, reply: Reply, entry: AcceptedMessage) -> dict[str, object]:
    how, value = reply
    if how == "text":
        return _text(value)
    buttons = entry.payload["interactive"]["action"]["buttons"]
    wanted = f"rc:{question}:{value}"
    title = next(b["reply"]["title"] for b in buttons if b["reply"]["id"] == wanted)
    return {
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": wanted, "title": title}},
    }


def demo_recruit(
    *,
    men: int = 200,
    seed: int = 2022,
    content: Path | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> RecruitDemoReport:
    """Run the campaign with about `men` simulated men; returns what happened. The data stay
    in the database (the dashboard and `tertulia recruit report` show them)."""
    from tertulia.core import clock

    simulated = clock.SimulatedClock(dt.datetime.now(LIMA).replace(microsecond=0))
    previous = clock.use(simulated)
    try:
        return _run(simulated, men, seed, content, on_round)
    finally:
        clock.use(previous)


def _run(
    simulated: Any,
    count: int,
    seed: int,
    content: Path | None,
    on_round: Callable[[int, int], None] | None,
) -> RecruitDemoReport:
    from django.conf import settings
    from django.test import override_settings

    from tertulia.core import clock
    from tertulia.messaging.channels.whatsapp.channel import clients_close
    from tertulia.messaging.channels.whatsapp.demo import demo_channel_config, django_server
    from tertulia.messaging.channels.whatsapp.fake_server import run_fake_whatsapp
    from tertulia.messaging.models import ChannelConfig
    from tertulia.programs.services import curriculum_import
    from tertulia.randomization.config import config_load
    from tertulia.randomization.models import Trial
    from tertulia.randomization.selectors import waitlist
    from tertulia.randomization.services import cohorts_form, trial_create
    from tertulia.recruitment.config import recruitment_config
    from tertulia.recruitment.services import campaign_create, variant_create

    content_dir = Path(settings.TERTULIA_CONTENT_DIR)
    curriculum = curriculum_import(path=content or content_dir / "guy-talk" / "es-PE").curriculum
    program = curriculum.program
    config = recruitment_config(program.slug)
    if config is None:
        raise ValueError(f"program '{program.slug}' has no recruitment conversation")
    trial = trial_create(
        config=config_load(content_dir / program.slug / "recruitment" / "demo-trial.yaml")
    )
    # Never the trial real men are randomized into, even when it is the last recorded.
    Trial.objects.filter(pk=trial.pk).update(simulated=True)
    stamp = dt.datetime.now(LIMA)
    campaign = campaign_create(
        program=program,
        name=f"Demo {stamp:%Y-%m-%d %H:%M:%S}",
        channel="facebook",
        whatsapp_number=AD_NUMBER,
    )
    variants = [
        variant_create(
            campaign=campaign,
            name=spec.name,
            creative=spec.creative,
            cost=spec.cost,
            code=f"D{campaign.pk}-{spec.suffix}",
            ad_id=f"1202{campaign.pk:06d}{i:03d}",
        )
        for i, spec in enumerate(VARIANTS)
    ]
    planned, reach = plan_men(count=count, seed=seed, run=campaign.pk % 900)
    prompts = {
        q.prompt.split("\n", 1)[0]: q.key
        for q in (*config.screening, *config.baseline)
        if not q.uses_buttons
    }
    prompts[config.partner_name_prompt.split("\n", 1)[0]] = "partner_name"
    prompts[config.partner_phone_prompt.split("\n", 1)[0]] = "partner_phone"
    arm_texts = tuple(
        config.texts[k].split("\n", 1)[0] for k in ("randomized_program", "randomized_control")
    )
    responder = Responder(
        planned,
        prompts=prompts,
        arm_texts=arm_texts,
        codes={i: v.code for i, v in enumerate(variants)},
    )
    report = RecruitDemoReport(
        campaign_id=campaign.pk, trial=trial.name, men=len(planned), reach=reach
    )

    # This run's men go to the demo trial. The demo is the worker: it runs the webhook
    # processing, routing and sending services in rounds (_work_round) instead of one queued
    # task per webhook, message and send, which cost more than the work itself.
    with override_settings(TERTULIA_TRIAL=trial.name, TASKS={"default": {"BACKEND": DUMMY_TASKS}}):
        with django_server() as site:
            channel = demo_channel_config(CHANNEL, token=DEMO_TOKEN, app_secret=DEMO_SECRET)
            with run_fake_whatsapp(
                token=DEMO_TOKEN,
                app_secret=DEMO_SECRET,
                webhook_url=f"{site}/webhooks/whatsapp/{CHANNEL}/",
                display_phone_number=AD_NUMBER.lstrip("+"),
                enforce_window=True,
                clock=lambda: clock.now().timestamp(),
                # No delivery receipts: recruitment does not use them, and they were a third
                # of the demo's work (each a webhook to store and process).
                statuses=(),
                reply_probability=1.0,
                responder=responder,
                seed=seed * 100_003 + campaign.pk,
            ) as fake:
                ChannelConfig.objects.filter(pk=channel.pk).update(
                    phone_number_id=fake.phone_number_id, base_url=fake.base_url
                )
                rng = random.Random(seed + 1)
                for man in planned:
                    variant = variants[man.variant]
                    spec = VARIANTS[man.variant]
                    if rng.random() < spec.referral_share:
                        fake.send_inbound(
                            man.wa_id,
                            "Hola, quiero más información",
                            referral={
                                "source_url": "https://fb.me/demo",
                                "source_id": variant.ad_id,
                                "source_type": "ad",
                                "headline": "Hablemos entre patas",
                                "ctwa_clid": f"demo-{man.wa_id}",
                            },
                        )
                    else:
                        text = f"Hola, quiero saber más de {program.name} ({variant.code})"
                        fake.send_inbound(man.wa_id, text)
                # Rounds: store what the men wrote, route it, send what we answered, a
                # minute later; until nobody has anything left to say.
                for number in range(1, 500):
                    fake.wait_idle(30)
                    sent = _work_round(clock.now())
                    if on_round:
                        on_round(number, sent)
                    if sent == 0 and fake.wait_idle(0.3) and _work_round(clock.now()) == 0:
                        break
                    simulated.advance(dt.timedelta(minutes=1))
                report.accepted = len(fake.log)
                report.duplicates = len(fake.log.duplicate_references())
                report.webhook_posts = fake.webhook_stats.posts
                clients_close()
        # Full groups open a cohort now; the others wait for more men or for their date.
        formed = cohorts_form(trial=trial, curriculum=curriculum, channel=f"whatsapp:{CHANNEL}")
        report.cohorts = [(c.name, c.enrollments.count()) for c in formed.created]
        report.waiting = [
            (row.arm, row.region, f"{row.send_time:%H:%M}", row.count, row.opens_on)
            for row in waitlist(trial=trial)
        ]
    _count(report, campaign)
    return report


def _work_round(now: dt.datetime) -> int:
    """One round of a worker's work: process the stored webhooks (inbound messages and
    statuses), route each new inbound message in the order it came, send everything due.
    Returns how much was done."""
    from django_tasks import default_task_backend

    from tertulia.messaging.channels.whatsapp.handoff import webhook_events_process_pending
    from tertulia.messaging.models import Message
    from tertulia.messaging.router import message_route
    from tertulia.messaging.sender import outbox_send_batch

    done = webhook_events_process_pending(channel=f"whatsapp:{CHANNEL}")
    waiting = Message.objects.filter(
        direction=Message.Direction.IN, status=Message.Status.RECEIVED
    ).order_by("id")
    for message_id in waiting.values_list("id", flat=True):
        message_route(message_id=message_id, now=now)
        done += 1
    while (batch := outbox_send_batch(now=now)).claimed:
        done += batch.claimed
    clear = getattr(default_task_backend, "clear", None)
    if clear is not None:
        clear()  # the tasks these services enqueued: their work is done above
    return done


def _count(report: RecruitDemoReport, campaign: Any) -> None:
    from django.db.models import Count

    from tertulia.recruitment.models import PartnerContact, Screening, ScreeningAnswer

    screenings = Screening.objects.filter(variant__campaign=campaign)
    report.states = Counter(
        dict(screenings.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    )
    report.arms = Counter(
        dict(
            screenings.exclude(arm="")
            .values_list("arm")
            .annotate(n=Count("id"))
            .values_list("arm", "n")
        )
    )
    report.needs_person = screenings.filter(needs_person=True).count()
    answers = ScreeningAnswer.objects.filter(screening__in=screenings)
    report.reasked = answers.filter(valid=False).values("screening").distinct().count()
    report.partner_contacts = PartnerContact.objects.filter(
        participant__screening__in=screenings
    ).count()
    report.refused_again = _refused(screenings)


def _refused(screenings: Any) -> int:
    """Randomized men who wrote an ad code again (each was told he is already registered)."""
    from tertulia.messaging.models import Message

    count = 0
    for screening in screenings.filter(state="randomized").select_related("variant"):
        later = Message.objects.filter(
            participant_id=screening.participant_id,
            direction=Message.Direction.IN,
            created_at__gte=screening.randomized_at,
        )
        count += any(screening.variant.code in (m.body or "") for m in later)
    return count
