"""Registers the WhatsApp channel kind and its admin; called from the messaging app's ready()."""

from __future__ import annotations


def register_whatsapp() -> None:
    from tertulia.messaging.channel import register

    from . import admin  # noqa: F401 - registers the admin classes
    from .channel import WhatsAppChannel

    register("whatsapp", WhatsAppChannel)
