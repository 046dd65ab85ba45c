"""Registers the Twilio SMS channel kind and its admin; called from the messaging app's ready()."""

from __future__ import annotations


def register_twilio() -> None:
    from tertulia.messaging.channel import register

    from . import admin  # noqa: F401 - registers the admin class
    from .channel import TwilioSMSChannel

    register("twilio", TwilioSMSChannel)
