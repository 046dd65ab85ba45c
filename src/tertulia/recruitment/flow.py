"""The order of the conversation, as a small state machine over question keys:

    screening questions → consent → [partner → partner_name → partner_phone] → baseline → ready

`step` is the key of the question he was last asked ("" once nothing more is asked). The
partner questions are there only when the program enables them, and a "no" to the partner
question skips her name and number. Pure functions of the program's config."""

from __future__ import annotations

from tertulia.recruitment.config import RecruitmentConfig

CONSENT = "consent"
PARTNER = "partner"
PARTNER_NAME = "partner_name"
PARTNER_PHONE = "partner_phone"
PARTNER_STEPS = (PARTNER, PARTNER_NAME, PARTNER_PHONE)
DONE = ""


def steps(config: RecruitmentConfig) -> list[str]:
    order = [q.key for q in config.screening] + [CONSENT]
    if config.partner_enabled:
        order += list(PARTNER_STEPS)
    return order + [q.key for q in config.baseline]


def first_step(config: RecruitmentConfig) -> str:
    return config.screening[0].key


def next_step(config: RecruitmentConfig, step: str, *, partner_declined: bool = False) -> str:
    order = steps(config)
    if step not in order:
        raise ValueError(f"'{step}' is not a step of this conversation")
    if step == PARTNER and partner_declined:
        step = PARTNER_PHONE
    index = order.index(step) + 1
    return order[index] if index < len(order) else DONE


def section(config: RecruitmentConfig, step: str) -> str:
    """screening | consent | partner | baseline, the part of the conversation `step` is in."""
    if step in {q.key for q in config.screening}:
        return "screening"
    if step == CONSENT:
        return "consent"
    if step in PARTNER_STEPS:
        return "partner"
    if step in {q.key for q in config.baseline}:
        return "baseline"
    raise ValueError(f"'{step}' is not a step of this conversation")


def is_first_baseline(config: RecruitmentConfig, step: str) -> bool:
    return bool(config.baseline) and step == config.baseline[0].key
