"""Participants: numbers validated, normalised, encrypted; one running enrolment at a time."""

from __future__ import annotations

import pytest
from django.db import connection

from tertulia.cohorts.models import Participant
from tertulia.cohorts.services import (
    AlreadyEnrolled,
    CohortFull,
    InvalidPhoneNumber,
    participant_find,
    participant_get_or_create,
    phone_normalize,
)


def test_numbers_are_normalised_to_e164() -> None:
    assert phone_normalize("987 654 321") == "+51987654321"
    assert phone_normalize("+51 (987) 654-321") == "+51987654321"
    assert phone_normalize("0034 612 345 678") == "+34612345678"


def test_an_invalid_number_is_refused_naming_it() -> None:
    with pytest.raises(InvalidPhoneNumber, match="'12345' is not a valid phone number"):
        phone_normalize("12345")
    with pytest.raises(InvalidPhoneNumber, match="'hola' is not a phone number"):
        phone_normalize("hola")


@pytest.mark.django_db
def test_the_number_is_stored_encrypted_and_found_by_hash() -> None:
    participant, created = participant_get_or_create(phone="987 654 321", display_name="Juan")
    assert created
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT phone, display_name, phone_hash FROM cohorts_participant WHERE id = %s",
            [participant.pk],
        )
        phone, name, phone_hash = cursor.fetchone()
    assert "987654321" not in phone and "Juan" not in name
    assert "987654321" not in phone_hash
    assert participant_find(phone="+51987654321") == participant
    assert Participant.objects.get(pk=participant.pk).phone == "+51987654321"
    again, created = participant_get_or_create(phone="+51 987 654 321")
    assert again == participant and not created


@pytest.mark.django_db
def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Lima'"):
        participant_get_or_create(phone="987654321", timezone="Lima")


@pytest.mark.django_db
def test_a_second_enrolment_in_a_running_cohort_is_refused(make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    first, second = make_cohort("A"), make_cohort("B")
    enroll(first, phone="+51987000001")
    with pytest.raises(AlreadyEnrolled, match="already enrolled in the running cohort 'A'"):
        enroll(second, phone="987000001")


@pytest.mark.django_db
def test_a_full_cohort_refuses_more(make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    cohort = make_cohort(capacity=2)
    enroll(cohort)
    enroll(cohort)
    with pytest.raises(CohortFull, match="is full \\(2 places\\)"):
        enroll(cohort)
