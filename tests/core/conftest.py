"""Shared helpers for the core tests."""

from __future__ import annotations

from tertulia.cohorts.models import Participant


def make_people(count: int) -> list[Participant]:
    """`count` participants with numbers and look-up hashes of their own."""
    return [
        Participant.objects.create(phone=f"+5198000{n:04d}", phone_hash=f"core-{n}")
        for n in range(count)
    ]
