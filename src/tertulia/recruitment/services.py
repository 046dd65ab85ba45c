"""Writes for recruitment: campaigns and ad variants, attributing a first message to an ad,
running each man's screening conversation (screening → consent → partner contact → baseline),
his withdrawal, the partner-contact store and its access gate, and what randomization needs.

The conversation runs inside the router's transaction (see receivers.py): each inbound message
is one step of the state machine in flow.py, and every answer is a row before he gets a reply.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, translation
from django.utils.text import slugify

from tertulia.cohorts.models import Participant
from tertulia.cohorts.services import InvalidPhoneNumber, participant_get_or_create
from tertulia.core.crypto import lookup_hash
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.services import Inbound, service_message_queue
from tertulia.programs.models import Program
from tertulia.recruitment import answers, flow
from tertulia.recruitment.config import Question, RecruitmentConfig, recruitment_config
from tertulia.recruitment.links import qr_png, qr_svg, utm_link, whatsapp_link
from tertulia.recruitment.models import (
    AdVariant,
    Campaign,
    Consent,
    PartnerContact,
    Response,
    Screening,
    ScreeningAnswer,
)
from tertulia.recruitment.signals import baseline_completed
from tertulia.safety.classifier import configured_classifier
from tertulia.safety.models import Category, Referral

log = logging.getLogger(__name__)

PARTNER_SURVEY_GROUP = "partner_survey"
MAX_REASKS = 2  # an answer not understood is asked again twice, then a person takes over
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read off posters
CODE_PATTERN = re.compile(r"\b([A-Z0-9]{1,6}-[A-Z0-9]{2,8})\b")
REDACTED = "[contacto de la pareja: guardado aparte]"
# An answer at her name or number that was not understood: not stored, and not kept either.
REDACTED_UNCLEAR = "[contacto de la pareja: no entendido, no se guarda]"


class RecruitmentError(ValueError):
    pass


class NotReady(Exception):
    """He has not consented and finished the baseline (or was withdrawn)."""


class AlreadyRandomized(Exception):
    pass


# --- campaigns and variants ----------------------------------------------------------------


def campaign_create(
    *,
    program: Program,
    name: str,
    channel: str,
    whatsapp_number: str,
    landing_url: str = "",
    currency: str = "PEN",
) -> Campaign:
    digits = re.sub(r"\D", "", whatsapp_number)
    if not 8 <= len(digits) <= 15:
        raise RecruitmentError(
            f"'{whatsapp_number}' is not a WhatsApp number; give it with its country code, "
            "e.g. +51900000001"
        )
    if not name.strip() or not channel.strip():
        raise RecruitmentError("a campaign needs a name and an ad channel (e.g. facebook)")
    if Campaign.objects.filter(program=program, name=name.strip()).exists():
        raise RecruitmentError(f"program '{program.slug}' already has a campaign '{name}'")
    return Campaign.objects.create(
        program=program,
        name=name.strip(),
        channel=channel.strip().lower(),
        whatsapp_number=f"+{digits}",
        landing_url=landing_url,
        currency=currency.upper(),
    )


def variant_create(
    *,
    campaign: Campaign,
    name: str,
    creative: str = "",
    cost: Decimal | str | int = 0,
    ad_id: str = "",
    code: str = "",
) -> AdVariant:
    try:
        amount = Decimal(str(cost))
    except InvalidOperation as exc:
        raise RecruitmentError(f"cost '{cost}' is not an amount; write e.g. 350.00") from exc
    if amount < 0:
        raise RecruitmentError(f"cost {amount} is negative")
    if AdVariant.objects.filter(campaign=campaign, name=name).exists():
        raise RecruitmentError(f"campaign '{campaign}' already has a variant '{name}'")
    code = code.strip().upper() or _new_code(campaign.program)
    if not CODE_PATTERN.fullmatch(code):
        raise RecruitmentError(
            f"code '{code}' must look like HEP-7K3Q: letters or digits, a dash, 2-8 more"
        )
    if AdVariant.objects.filter(code=code).exists():
        raise RecruitmentError(f"code '{code}' is already used by another variant")
    return AdVariant.objects.create(
        campaign=campaign, name=name, creative=creative, cost=amount, ad_id=ad_id, code=code
    )


def _new_code(program: Program) -> str:
    words = unicodedata.normalize("NFKD", program.name).encode("ascii", "ignore").decode().split()
    prefix = "".join(w[0] for w in words if w[:1].isalpha())[:3].upper() or "AD"
    while True:
        code = f"{prefix}-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(4))
        if not AdVariant.objects.filter(code=code).exists():
            return code


def variant_prefilled_text(variant: AdVariant) -> str:
    """What the click-to-WhatsApp link types for him: a greeting and the variant's code."""
    return f"Hola, quiero saber más de {variant.campaign.program.name} ({variant.code})"


@dataclass(frozen=True)
class VariantLinks:
    whatsapp: str
    landing: str  # blank when the campaign has no landing page
    qr_png: bytes
    qr_svg: str


def variant_links(variant: AdVariant) -> VariantLinks:
    """The variant's click-to-WhatsApp link (its QR codes encode it) and UTM landing link."""
    campaign = variant.campaign
    whatsapp = whatsapp_link(campaign.whatsapp_number, variant_prefilled_text(variant))
    landing = (
        utm_link(
            campaign.landing_url,
            source=campaign.channel,
            medium="paid_social",
            campaign=slugify(campaign.name),
            content=variant.code,
        )
        if campaign.landing_url
        else ""
    )
    return VariantLinks(whatsapp, landing, qr_png(whatsapp), qr_svg(whatsapp))


# --- attribution ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    variant: AdVariant | None = None
    by: str = ""  # code | referral | ""
    referral: dict[str, Any] = field(default_factory=dict)

    @property
    def from_ad(self) -> bool:
        return self.variant is not None or bool(self.referral)


def attribution_for(text: str, payload: dict[str, Any] | None) -> Attribution:
    """Which ad variant a first message came from: its code in the text wins; else the
    click-to-WhatsApp referral's ad id (source_id), then its source_url."""
    referral = dict((payload or {}).get("referral") or {})
    codes = CODE_PATTERN.findall((text or "").upper())
    if codes:
        variant = (
            AdVariant.objects.filter(code__in=codes).select_related("campaign__program").first()
        )
        if variant is not None:
            return Attribution(variant, "code", referral)
    if referral:
        found = None
        if referral.get("source_id"):
            found = AdVariant.objects.filter(ad_id=str(referral["source_id"])).first()
        if found is None and referral.get("source_url"):
            found = AdVariant.objects.filter(ad_id=str(referral["source_url"])[:64]).first()
        if found is not None:
            return Attribution(found, "referral", referral)
    return Attribution(referral=referral)


def _default_program() -> Program | None:
    slug = getattr(settings, "TERTULIA_RECRUITMENT_PROGRAM", "")
    return Program.objects.filter(slug=slug).first() if slug else None


def participant_for_unknown(*, address: str, inbound: Inbound) -> Participant | None:
    """A Participant for a new number that answers an ad (or writes while the program recruits
    everyone who writes: TERTULIA_RECRUITMENT_PROGRAM). Never for a partner contact's number."""
    attribution = attribution_for(inbound.text, inbound.payload)
    program = attribution.variant.campaign.program if attribution.variant else _default_program()
    if program is None or recruitment_config(program.slug) is None:
        return None
    if PartnerContact.objects.filter(phone_hash=lookup_hash(address)).exists():
        return None
    try:
        participant, _ = participant_get_or_create(phone=address)
    except InvalidPhoneNumber:
        return None
    return participant


# --- the conversation ----------------------------------------------------------------------


def recruitment_inbound(message: Message, now: dt.datetime) -> None:
    """One inbound message, seen after the router and safety triage. BAJA always wins; a man
    in a cohort belongs to his community; anyone else is in his screening conversation."""
    participant = message.participant
    if message.direction != Message.Direction.IN or participant is None:
        return
    if message.keyword == "stop":
        screening_withdraw(participant=participant, now=now)
        return
    if message.keyword == "start":
        screening_return(message=message, now=now)
        return
    if message.route != Message.Route.FACILITATOR:
        return  # another keyword, answered by the router
    attribution = attribution_for(message.body, message.payload)
    from_program = attribution.variant.campaign.program if attribution.variant else None
    if message.enrollment is not None:
        if attribution.from_ad:
            cohort_program = message.enrollment.cohort.program
            _refuse(message, "already_enrolled", now, from_program, cohort_program)
        return
    screening = Screening.objects.select_for_update().filter(participant=participant).first()
    if _for_triage(message, screening.step if screening else ""):
        return  # safety triage, next, holds it; a person answers him
    if screening is None:
        screening_start(message=message, attribution=attribution, now=now)
        return
    if screening.state in Screening.OPEN:
        screening_answer(screening, message, now)
    elif attribution.from_ad and screening.state != Screening.State.WITHDRAWN:
        ready = screening.state in (Screening.State.READY, Screening.State.RANDOMIZED)
        key = "already_enrolled" if ready else "already_screened"
        _refuse(message, key, now, screening.program, from_program)


def _for_triage(message: Message, step: str) -> bool:
    """Whether safety triage will flag this message: then it is not an answer. Her number at
    the partner step looks like doxxing to the classifier, and is expected there."""
    triage = configured_classifier().classify(message.body or "")
    if not triage.flagged:
        return False
    expected = step in (flow.PARTNER_NAME, flow.PARTNER_PHONE) and triage.error is None
    return not (expected and set(triage.categories) <= {Category.HARASSMENT})


def _refuse(message: Message, key: str, now: dt.datetime, *programs: Program | None) -> None:
    """A number already in the program or already screened is told so kindly, never screened
    again. The text is the first of `programs` that has a recruitment conversation."""
    assert message.participant is not None
    for program in programs:
        config = recruitment_config(program.slug) if program else None
        if config is not None:
            _send(message.participant, message.channel, config.texts[key], now)
            message.route = Message.Route.RECRUITMENT
            return


def screening_start(*, message: Message, attribution: Attribution, now: dt.datetime) -> None:
    participant = message.participant
    assert participant is not None
    variant = attribution.variant
    program = variant.campaign.program if variant else _default_program()
    config = recruitment_config(program.slug, participant.language) if program else None
    if program is None or config is None:
        return
    try:
        with transaction.atomic():
            screening = _screening_create(participant, program, config, attribution, message, now)
    except IntegrityError:
        # Two first messages raced: the other one started his screening; this is an answer.
        screening = Screening.objects.select_for_update().get(participant=participant)
        screening_answer(screening, message, now)
        return
    message.route = Message.Route.RECRUITMENT
    _send(participant, screening.channel, config.texts["welcome"], now)
    _ask(screening, config, now)


def _screening_create(
    participant: Participant,
    program: Program,
    config: RecruitmentConfig,
    attribution: Attribution,
    message: Message,
    now: dt.datetime,
) -> Screening:
    referral = attribution.referral
    return Screening.objects.create(
        participant=participant,
        program=program,
        variant=attribution.variant,
        attributed_by=attribution.by,
        channel=message.channel,
        locale=participant.language,
        step=flow.first_step(config),
        referral_source_url=str(referral.get("source_url", ""))[:500],
        referral_source_id=str(referral.get("source_id", ""))[:64],
        referral_source_type=str(referral.get("source_type", ""))[:20],
        referral_headline=str(referral.get("headline", ""))[:300],
        ctwa_clid=str(referral.get("ctwa_clid", ""))[:300],
        first_message=message,
        started_at=now,
    )


def _config(screening: Screening) -> RecruitmentConfig:
    config = recruitment_config(screening.program.slug, screening.locale)
    if config is None:
        raise RecruitmentError(f"program '{screening.program.slug}' has no recruitment config")
    return config


def screening_answer(screening: Screening, message: Message, now: dt.datetime) -> None:
    """Take his answer to the question he was last asked and move the conversation on."""
    config = _config(screening)
    step = screening.step
    message.route = Message.Route.RECRUITMENT
    tapped = answers.button_parse(str(message.payload.get("button_id", "")))
    if tapped and tapped[0] != step:
        if _answered(screening, tapped[0]):
            return  # an old button tapped again (a second "Acepto"): nothing changes
        tapped = None
    if step == flow.PARTNER_NAME:
        _partner_name(screening, config, message, now)
        return
    if step == flow.PARTNER_PHONE:
        _partner_phone(screening, config, message, now)
        return
    question = config.question(step)
    assert question is not None
    value: str | None
    if question.kind == "number":
        number = answers.number_parse(message.body, question, language=screening.locale)
        value = None if number is None else str(number)
    else:
        option = (
            answers.option_by_key(question, tapped[1])
            if tapped
            else answers.choice_parse(message.body, question)
        )
        value = option.key if option else None
    if value is None:
        _not_understood(screening, config, message, now, question.invalid)
        return
    _record(screening, step, message, value, now)
    _apply(screening, config, question, value, message, now)


def _answered(screening: Screening, question: str) -> bool:
    return screening.answers.filter(question=question, valid=True).exists()


def _record(
    screening: Screening, question: str, message: Message, value: str, now: dt.datetime
) -> None:
    ScreeningAnswer.objects.create(
        screening=screening,
        question=question,
        raw=message.body,
        value=value,
        valid=True,
        message=message,
        answered_at=now,
    )
    screening.invalid_count = 0
    screening.needs_person = False


def _not_understood(
    screening: Screening, config: RecruitmentConfig, message: Message, now: dt.datetime, hint: str
) -> None:
    """Ask again, at most twice; then a person takes over (the message waits in the inbox)."""
    ScreeningAnswer.objects.create(
        screening=screening,
        question=screening.step,
        raw=message.body,
        valid=False,
        message=message,
        answered_at=now,
    )
    screening.invalid_count += 1
    if screening.invalid_count > MAX_REASKS:
        message.route = Message.Route.FACILITATOR
        if not screening.needs_person:
            screening.needs_person = True
            _send(screening.participant, screening.channel, config.texts["needs_person"], now)
        screening.save(update_fields=["invalid_count", "needs_person"])
        return
    screening.save(update_fields=["invalid_count"])
    _send(screening.participant, screening.channel, hint or config.texts["invalid"], now)
    _ask(screening, config, now, again=True)


def _apply(
    screening: Screening,
    config: RecruitmentConfig,
    question: Question,
    value: str,
    message: Message,
    now: dt.datetime,
) -> None:
    part = flow.section(config, question.key)
    participant = screening.participant
    if part == "screening":
        if not _eligible(question, value):
            _ineligible(screening, config, question.key, now)
            return
    elif part == "consent":
        accepted = value == question.options[0].key
        _consent(participant, Consent.Kind.STUDY, config.consent_version, accepted, message, now)
        if not accepted:
            screening.state = Screening.State.DECLINED
            screening.step = flow.DONE
            screening.save()
            _send(participant, screening.channel, config.texts["declined"], now)
            return
        screening.consented_at = now
    elif part == "partner":
        accepted = value == question.options[0].key
        _consent(
            participant,
            Consent.Kind.PARTNER_CONTACT,
            config.partner_version,
            accepted,
            message,
            now,
        )
        if not accepted:
            _send(participant, screening.channel, config.texts["partner_skipped"], now)
        _advance(screening, config, now, partner_declined=not accepted)
        return
    elif part == "baseline":
        Response.objects.get_or_create(
            participant=participant,
            instrument=config.baseline_instrument,
            question=question.key,
            defaults={"value": value, "message": message, "answered_at": now},
        )
    _advance(screening, config, now)


def _ready(screening: Screening, config: RecruitmentConfig, now: dt.datetime) -> None:
    """Tell randomization he is ready. When he is randomized at once he is told his arm
    (screening_notify_arm); when he waits for a trial he is told he is registered."""
    baseline_completed.send(
        sender=Screening, participant=screening.participant, screening=screening, now=now
    )
    state = Screening.objects.filter(pk=screening.pk).values_list("state", flat=True).first()
    if state == Screening.State.READY:
        _send(screening.participant, screening.channel, config.texts["ready"], now)


def _eligible(question: Question, value: str) -> bool:
    if question.kind == "number":
        return question.eligible_min is None or int(value) >= question.eligible_min
    option = answers.option_by_key(question, value)
    return option is not None and option.eligible


def _advance(
    screening: Screening, config: RecruitmentConfig, now: dt.datetime, **branch: bool
) -> None:
    was = screening.step
    screening.step = flow.next_step(config, was, **branch)
    if screening.step == flow.DONE:
        screening.state = Screening.State.READY
        screening.baseline_completed_at = now
        screening.save()
        _ready(screening, config, now)
        return
    part = flow.section(config, screening.step)
    if part != "screening" and flow.section(config, was) == "screening":
        screening.screened_at = now
    screening.state = {
        "screening": Screening.State.SCREENING,
        "consent": Screening.State.CONSENT,
        "partner": Screening.State.PARTNER,
        "baseline": Screening.State.BASELINE,
    }[part]
    screening.save()
    if flow.is_first_baseline(config, screening.step):
        _send(screening.participant, screening.channel, config.texts["baseline_intro"], now)
    _ask(screening, config, now)


def _ineligible(
    screening: Screening, config: RecruitmentConfig, reason: str, now: dt.datetime
) -> None:
    screening.state = Screening.State.INELIGIBLE
    screening.ineligible_reason = reason
    screening.screened_at = now
    screening.step = flow.DONE
    screening.save()
    referrals = Referral.objects.filter(country=config.country, active=True)
    # The violence hotline first: it also helps a man who wants to stop using violence.
    ordered = sorted(referrals, key=lambda r: r.kind != Referral.Kind.HOTLINE)
    lines = [f"• {r.text_for(screening.locale)}" for r in ordered]
    text = "\n\n".join(
        [config.texts["ineligible"], "\n".join(lines), config.texts["ineligible_closing"]]
    )
    _send(screening.participant, screening.channel, text.replace("\n\n\n\n", "\n\n"), now)


def _consent(
    participant: Participant,
    kind: str,
    version: str,
    accepted: bool,
    message: Message,
    now: dt.datetime,
) -> Consent:
    """Record his decision once; a duplicate (a second tap) keeps the first."""
    consent, _ = Consent.objects.get_or_create(
        participant=participant,
        kind=kind,
        version=version,
        defaults={"accepted": accepted, "channel": message.channel, "message": message, "at": now},
    )
    return consent


def _ask(
    screening: Screening, config: RecruitmentConfig, now: dt.datetime, *, again: bool = False
) -> None:
    """Send the question of his current step (the consent text first, in parts)."""
    step = screening.step
    participant, channel = screening.participant, screening.channel
    if step == flow.PARTNER_NAME:
        _send(participant, channel, config.partner_name_prompt, now)
        return
    if step == flow.PARTNER_PHONE:
        _send(participant, channel, config.partner_phone_prompt, now)
        return
    question = config.question(step)
    assert question is not None
    if step == flow.CONSENT and not again:
        for part in config.consent_parts:
            _send(participant, channel, part, now)
    if question.uses_buttons:
        buttons = [
            {"id": answers.button_id(step, o.key), "title": o.title} for o in question.options
        ]
        _send(participant, channel, question.prompt, now, buttons=buttons)
    elif question.kind == "choice":
        listed = "\n".join(f"{i}. {o.title}" for i, o in enumerate(question.options, 1))
        _send(participant, channel, f"{question.prompt}\n\n{listed}", now)
    else:
        _send(participant, channel, question.prompt, now)


def _send(
    participant: Participant,
    channel: str,
    text: str,
    now: dt.datetime,
    *,
    buttons: list[dict[str, str]] | None = None,
) -> Outbox:
    return service_message_queue(
        participant=participant,
        enrollment=None,
        channel=channel,
        text=text,
        now=now,
        buttons=buttons,
    )


# --- partner contact -----------------------------------------------------------------------


def _redact(message: Message, text: str = REDACTED) -> None:
    """Her name and number live only in the partner-contact store: not in his messages, nor
    in the raw webhook bodies that brought them (retention.py)."""
    from tertulia.recruitment.retention import webhook_bodies_redact

    message.body = text
    Message.objects.filter(pk=message.pk).update(body=text)
    webhook_bodies_redact(message=message, replacement=text)


def _declines(text: str) -> bool:
    return answers.fold(text) in {"no", "prefiero que no", "mejor no", "no gracias"}


def _partner_skip(
    screening: Screening, config: RecruitmentConfig, message: Message, now: dt.datetime
) -> None:
    PartnerContact.objects.filter(participant=screening.participant).delete()
    _record(screening, screening.step, message, "declined", now)
    _send(screening.participant, screening.channel, config.texts["partner_skipped"], now)
    screening.step = flow.PARTNER_PHONE
    _advance(screening, config, now)


def _partner_name(
    screening: Screening, config: RecruitmentConfig, message: Message, now: dt.datetime
) -> None:
    name = " ".join((message.body or "").split())
    if _declines(name):
        _partner_skip(screening, config, message, now)
        return
    if not 1 < len(name) <= 80 or any(ch.isdigit() for ch in name):
        _redact(message, REDACTED_UNCLEAR)  # it may be her number, or part of it
        _not_understood(screening, config, message, now, "")
        return
    consent = Consent.objects.get(
        participant=screening.participant,
        kind=Consent.Kind.PARTNER_CONTACT,
        version=config.partner_version,
    )
    PartnerContact.objects.update_or_create(
        participant=screening.participant,
        defaults={
            "consent": consent,
            "name": name,
            "phone": "",
            "phone_hash": "",
            "created_at": now,
        },
    )
    _redact(message)
    _record(screening, flow.PARTNER_NAME, message, "stored", now)
    _advance(screening, config, now)


def partner_phone_normalize(raw: str, *, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _partner_phone(
    screening: Screening, config: RecruitmentConfig, message: Message, now: dt.datetime
) -> None:
    raw = message.body or ""
    if _declines(raw):
        _partner_skip(screening, config, message, now)
        return
    e164 = partner_phone_normalize(raw, region=config.country)
    if e164 is None:
        _redact(message, REDACTED_UNCLEAR)  # most of her number may be in it
        _not_understood(screening, config, message, now, config.texts["partner_invalid_phone"])
        return
    phone_hash = lookup_hash(e164)
    if phone_hash == screening.participant.phone_hash:
        _not_understood(screening, config, message, now, config.texts["partner_own_phone"])
        return
    if Participant.objects.filter(phone_hash=phone_hash).exists():
        # A number that is itself a participant cannot be a partner contact: the guard would
        # silence him. A person sorts it out with him.
        _redact(message, REDACTED_UNCLEAR)
        _not_understood(screening, config, message, now, config.texts["partner_invalid_phone"])
        return
    PartnerContact.objects.filter(participant=screening.participant).update(
        phone=e164, phone_hash=phone_hash
    )
    _redact(message)
    _record(screening, flow.PARTNER_PHONE, message, "stored", now)
    _send(screening.participant, screening.channel, config.texts["partner_thanks"], now)
    _advance(screening, config, now)


def partner_numbers_blocked(phone_hashes: Collection[str]) -> set[str]:
    """The recipient guard messaging calls: which of these numbers are partner contacts."""
    return set(
        PartnerContact.objects.filter(phone_hash__any=list(phone_hashes)).values_list(
            "phone_hash", flat=True
        )
    )


def access_partner_contacts(user: Any) -> bool:
    """Only members of the partner-survey group see partner contacts, superusers included:
    who may call a man's partner is a decision, not a side effect of being an administrator."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.groups.filter(name=PARTNER_SURVEY_GROUP).exists()
    )


# --- withdrawal and randomization ----------------------------------------------------------


def screening_withdraw(*, participant: Participant, now: dt.datetime) -> Screening | None:
    """BAJA: nothing more of the conversation is sent, and he is not randomized. Recorded."""
    screening = Screening.objects.select_for_update().filter(participant=participant).first()
    if screening is None or screening.is_withdrawn:
        return screening
    screening.withdrawn_at = now
    if screening.state in (*Screening.OPEN, Screening.State.READY):
        screening.state = Screening.State.WITHDRAWN
        # Questions still queued are not sent; the router's confirmation (queued now) goes.
        Outbox.objects.filter(
            participant=participant,
            enrollment__isnull=True,
            step__isnull=True,
            status=Outbox.Status.QUEUED,
            created_at__lt=now,
        ).update(status=Outbox.Status.CANCELLED)
    screening.save(update_fields=["withdrawn_at", "state"])
    return screening


def screening_return(*, message: Message, now: dt.datetime) -> Screening | None:
    """VOLVER after BAJA. When his program's config allows it, a man who withdrew during
    recruitment picks up at the question he had reached (his answers are kept), and a man
    withdrawn after randomization keeps his arm: nobody is randomized twice. Otherwise the
    router's answer ("you are not in a group") stands. Recorded as `returned_at`."""
    participant = message.participant
    assert participant is not None
    screening = Screening.objects.select_for_update().filter(participant=participant).first()
    if screening is None or message.enrollment is not None and not screening.is_withdrawn:
        return screening
    if not screening.is_withdrawn:
        if screening.state in Screening.OPEN and not screening.needs_person:
            # VOLVER in the middle of his screening: the question he is at, again.
            _cancel_router_answer(participant, now)
            message.route = Message.Route.RECRUITMENT
            _ask(screening, _config(screening), now, again=True)
        return screening
    config = _config(screening)
    if not config.allow_return:
        return screening
    screening.returned_at = now
    message.route = Message.Route.RECRUITMENT
    if message.enrollment is not None:
        # In a cohort: the router took him back into his program; nothing more to say here.
        screening.save(update_fields=["returned_at"])
        return screening
    _cancel_router_answer(participant, now)
    _send(participant, screening.channel, config.texts["returned"], now)
    if screening.state != Screening.State.WITHDRAWN:
        screening.save(update_fields=["returned_at"])  # randomized: his arm stands
        return screening
    if screening.step == flow.DONE:
        screening.state = Screening.State.READY
        screening.save(update_fields=["returned_at", "state"])
        _ready(screening, config, now)
        return screening
    screening.state = {
        "screening": Screening.State.SCREENING,
        "consent": Screening.State.CONSENT,
        "partner": Screening.State.PARTNER,
        "baseline": Screening.State.BASELINE,
    }[flow.section(config, screening.step)]
    screening.invalid_count = 0
    screening.save(update_fields=["returned_at", "state", "invalid_count"])
    _ask(screening, config, now)
    return screening


def _cancel_router_answer(participant: Participant, now: dt.datetime) -> None:
    """The router answered VOLVER with "you are not in a group" (queued now); recruitment
    answers it instead."""
    Outbox.objects.filter(
        participant=participant,
        enrollment__isnull=True,
        step__isnull=True,
        status=Outbox.Status.QUEUED,
        created_at__gte=now,
    ).update(status=Outbox.Status.CANCELLED)


def randomization_inputs(participant: Participant) -> dict[str, str]:
    """His strata for randomization: age band, region, cohabiting, preferred send time.
    Raises NotReady unless he consented and finished the baseline."""
    screening = Screening.objects.filter(participant=participant).first()
    if screening is None or screening.state not in (
        Screening.State.READY,
        Screening.State.RANDOMIZED,
    ):
        raise NotReady(f"{participant} has not consented and finished the baseline")
    config = _config(screening)
    given = {
        a.question: a.value for a in screening.answers.filter(valid=True).order_by("answered_at")
    }
    relationship = config.question("relationship")
    option = answers.option_by_key(relationship, given["relationship"]) if relationship else None
    send_time = config.question("send_time")
    chosen = answers.option_by_key(send_time, given["send_time"]) if send_time else None
    return {
        "age_band": answers.age_band(int(given["age"]), config.age_bands),
        "region": given["region"],
        "cohabiting": (option.cohabiting if option else "") or "unknown",
        # The clock time cohorts are formed by; the option's key when the config gives none.
        "send_time": (chosen.time if chosen else "") or given["send_time"],
    }


def screening_mark_randomized(*, participant: Participant, arm: str, now: dt.datetime) -> Screening:
    """Record his arm once. A man already randomized is never randomized again."""
    with transaction.atomic():
        screening = Screening.objects.select_for_update().get(participant=participant)
        if screening.state == Screening.State.RANDOMIZED:
            raise AlreadyRandomized(f"{participant} is already in the '{screening.arm}' arm")
        if screening.state != Screening.State.READY:
            raise NotReady(f"{participant} is not ready for randomization ({screening.state})")
        screening.state = Screening.State.RANDOMIZED
        screening.arm = arm
        screening.randomized_at = now
        screening.save(update_fields=["state", "arm", "randomized_at"])
    return screening


def _fill(text: str, **values: str) -> str:
    """The text with its {placeholders} filled (config.PLACEHOLDERS; checked when read)."""
    return text.format_map(values)


def _long_date(day: dt.date, locale: str) -> str:
    """'martes 22 de diciembre', in his language."""
    with translation.override(locale.split("-")[0]):
        return formats.date_format(day, r"l j \d\e F")


def _his_time_of_day(screening: Screening, config: RecruitmentConfig) -> tuple[str, str]:
    """His preferred send time: the clock time ('19:00') and in his words ('en la noche')."""
    question = config.question("send_time")
    answer = screening.answers.filter(question="send_time", valid=True).last()
    option = answers.option_by_key(question, answer.value) if question and answer else None
    if option is None:
        return "", ""
    words = option.title[:1].lower() + option.title[1:]
    return option.time, words


def screening_notify_arm(
    *,
    participant: Participant,
    arm: str,
    waitlist: bool,
    starts_by: dt.date | None,
    now: dt.datetime,
) -> Outbox | None:
    """Tell him his arm, once it is final (never before: the caller checks). The program arm
    is told he is in and by when his group starts; the control arm, when it is a waitlist, that
    he will be asked a few questions again in some months and then offered the program. Texts
    from his program's recruitment config; an arm it has no text for gets `ready`."""
    screening = Screening.objects.filter(participant=participant).select_related("program").first()
    if screening is None:
        return None
    config = _config(screening)
    key = f"randomized_{arm}"
    if arm == "control" and not waitlist:
        key = "randomized_control_no_waitlist"
    text = config.texts.get(key) or config.texts["ready"]
    clock_time, words = _his_time_of_day(screening, config)
    filled = _fill(
        text,
        fecha=_long_date(starts_by, screening.locale) if starts_by else "",
        hora=clock_time,
        horario=words,
    )
    return _send(participant, screening.channel, filled, now)


def screening_notify_cohort(
    *, participant: Participant, start: dt.date, send_time: dt.time, now: dt.datetime
) -> Outbox | None:
    """Tell a program-arm man recruited here that his cohort opened, and when it starts."""
    screening = Screening.objects.filter(participant=participant).select_related("program").first()
    if screening is None or screening.is_withdrawn:
        return None
    config = _config(screening)
    _clock, words = _his_time_of_day(screening, config)
    text = _fill(
        config.texts["cohort_opened"],
        fecha=_long_date(start, screening.locale),
        hora=f"{send_time:%H:%M}",
        horario=words,
    )
    return _send(participant, screening.channel, text, now)
