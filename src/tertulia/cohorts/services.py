"""Writes for participants, cohorts and enrollments."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING

import phonenumbers
from django.db import IntegrityError, transaction

from tertulia.cohorts.models import DEFAULT_TIMEZONE, Cohort, Enrollment, Participant
from tertulia.core.crypto import lookup_hash
from tertulia.programs.models import Curriculum

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class InvalidPhoneNumber(ValueError):
    pass


class AlreadyEnrolled(Exception):
    pass


class CohortFull(Exception):
    pass


def phone_normalize(raw: str, *, region: str = "PE") -> str:
    """Return `raw` as an E.164 number, or raise InvalidPhoneNumber naming it."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"'{raw}' is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(
            f"'{raw}' is not a valid phone number; write it with its country code, "
            "e.g. +51 987 654 321"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_country(e164: str) -> str:
    """The ISO 3166 region of an E.164 number ('+51987654321' -> 'PE'); '' when unknown."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(number) or ""
    return "" if region == "ZZ" else region


def participant_find(*, phone: str, region: str = "PE") -> Participant | None:
    e164 = phone_normalize(phone, region=region)
    return Participant.objects.filter(phone_hash=lookup_hash(e164)).first()


def participant_get_or_create(
    *,
    phone: str,
    display_name: str = "",
    language: str = "es-PE",
    timezone: str = DEFAULT_TIMEZONE,
    region: str = "PE",
) -> tuple[Participant, bool]:
    e164 = phone_normalize(phone, region=region)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{timezone}' (e.g. America/Lima)") from exc
    return Participant.objects.get_or_create(
        phone_hash=lookup_hash(e164),
        defaults={
            "phone": e164,
            "country": phone_country(e164),
            "display_name": display_name,
            "language": language,
            "timezone": timezone,
        },
    )


def cohort_create(
    *,
    curriculum: Curriculum,
    name: str,
    start_date: dt.date,
    send_time: dt.time = dt.time(19, 0),
    capacity: int = 50,
    channel: str = "simulated",
    facilitator: User | None = None,
) -> Cohort:
    return Cohort.objects.create(
        program=curriculum.program,
        curriculum=curriculum,
        name=name,
        start_date=start_date,
        send_time=send_time,
        capacity=capacity,
        channel=channel,
        facilitator=facilitator,
    )


def enrollment_create(*, participant: Participant, cohort: Cohort) -> Enrollment:
    """Enrol a participant; refuse a second running enrolment and a full cohort."""
    with transaction.atomic():
        # Lock the cohort row so that two enrolments never both take its last place.
        locked = Cohort.objects.select_for_update().get(pk=cohort.pk)
        running = Enrollment.objects.filter(
            participant=participant, state__in=Enrollment.RECEIVING
        ).select_related("cohort")
        if current := running.first():
            raise AlreadyEnrolled(
                f"this number is already enrolled in the running cohort '{current.cohort}'"
            )
        taken = Enrollment.objects.filter(cohort=locked).count()
        if taken >= locked.capacity:
            raise CohortFull(f"cohort '{locked}' is full ({locked.capacity} places)")
        try:
            with transaction.atomic():
                return Enrollment.objects.create(participant=participant, cohort=locked)
        except IntegrityError as exc:
            raise AlreadyEnrolled("this number is already enrolled in a running cohort") from exc
