from __future__ import annotations

from django.db import models


class SimulatedDelivery(models.Model):
    """The simulated provider's own log: one row per message it accepted. Tests check
    exactly-once delivery against this log, not against our own Message rows."""

    message_id = models.BigIntegerField(unique=True, help_text="Our Message id (client ref).")
    provider_id = models.CharField(max_length=64, unique=True)
    to = models.CharField(max_length=32)
    kind = models.CharField(max_length=20)
    buttons = models.JSONField(default=list, blank=True)
    accepted_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.provider_id
