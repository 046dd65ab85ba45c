"""Safety records: an Alert per category a message raised, the referral directory, the
notifications the inbox shows, and the append-only audit log.

A message is *held* while any Alert points at it: the router cannot carry a "held" route (the
messaging models are not safety's to change), so triage routes a flagged message to the
facilitator and the Alert row is what holds it. Anything that relays a message to a community
must call `tertulia.safety.services.message_is_held()` first and never relay a held message.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext_lazy as _

from tertulia.cohorts.models import Cohort, Enrollment, Participant
from tertulia.core import crypto
from tertulia.core.fields import EncryptedTextField
from tertulia.messaging.models import Message


class EncryptedJSONField(EncryptedTextField):
    """JSON kept encrypted: evidence quotes his own words, which are as private as the body."""

    # What django-stubs checks a model's keyword arguments and attributes against: lists, where
    # the text field it derives from would say str.
    _pyi_private_set_type: list[dict[str, Any]] | str  # type: ignore[assignment]
    _pyi_private_get_type: list[dict[str, Any]]  # type: ignore[assignment]

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        text = super().from_db_value(value, expression, connection)
        return json.loads(text) if text else []

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return crypto.encrypt(json.dumps(value, ensure_ascii=False))

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)


class Category(models.TextChoices):
    """In order of urgency. The ids are the classifier's (`classifier.CATEGORIES`)."""

    THREAT_TO_PARTNER = "threat_to_partner", _("threat to his partner")
    VIOLENCE_DISCLOSURE = "violence_disclosure", _("disclosure of violence")
    SELF_HARM = "self_harm", _("self-harm or suicidal thoughts")
    CHILD_AT_RISK = "child_at_risk", _("child at risk")
    HARASSMENT = "harassment", _("harassment of other members")
    # The classifier failed on this message (it never raises): a person must read it.
    TRIAGE_ERROR = "triage_error", _("triage failed: read it yourself")


URGENCY = [choice.value for choice in Category]


class Alert(models.Model):
    """One category raised by one inbound message. While it exists the message is held."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        HANDLED = "handled", _("handled")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="alerts")
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="alerts", null=True, blank=True
    )
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.SET_NULL, related_name="alerts", null=True, blank=True
    )
    cohort = models.ForeignKey(
        Cohort, on_delete=models.SET_NULL, related_name="alerts", null=True, blank=True
    )
    category = models.CharField(_("category"), max_length=24, choices=Category.choices)
    evidence = EncryptedJSONField(
        _("evidence"), blank=True, default=list, help_text=_("The words that raised it.")
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("raised at"))
    notified_facilitator_at = models.DateTimeField(
        _("facilitator notified at"), null=True, blank=True
    )
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("handled by"),
    )
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    note = EncryptedTextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            # A redelivered or re-routed message raises each category once.
            models.UniqueConstraint(fields=["message", "category"], name="alert_unique_category")
        ]
        indexes = [models.Index(fields=["status", "escalated_at", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_category_display()} · {self.get_status_display()} (#{self.pk})"


class Referral(models.Model):
    """A service a man can be pointed to, per country. Seeded for Peru; edited in the admin."""

    class Kind(models.TextChoices):
        HOTLINE = "hotline", _("hotline")
        CHAT = "chat", _("chat")
        CENTRE = "centre", _("centre")
        MENTAL_HEALTH = "mental_health", _("mental-health line")

    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 code, e.g. PE."))
    slug = models.SlugField(max_length=60)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    url = models.URLField(_("web address"), blank=True)
    hours = models.CharField(_("hours"), max_length=120, blank=True)
    categories = models.JSONField(
        _("categories served"), default=list, help_text=_("Alert categories it fits.")
    )
    text_es = models.TextField(_("text (Spanish)"), help_text=_("One line sent to him."))
    text_en = models.TextField(_("text (English)"), blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["country", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["country", "slug"], name="referral_unique_slug")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"

    def text_for(self, language: str) -> str:
        base = (language or "es").split("-")[0].lower()
        return (self.text_en if base == "en" else "") or self.text_es


class Notification(models.Model):
    """Something a staff member must see: a new alert for his cohort, or an escalation."""

    class Kind(models.TextChoices):
        ALERT = "alert", _("new alert")
        ESCALATION = "escalation", _("alert not handled in time")

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="safety_notifications"
    )
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    created_at = models.DateTimeField(_("created at"))
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "alert", "kind"], name="notification_unique"
            )
        ]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return f"notification {self.pk} ({self.kind})"


class AuditQuerySet(models.QuerySet["AuditLog"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionDenied("the audit log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionDenied("the audit log is append-only")


class AuditLog(models.Model):
    """Who did what to which object, and when. Append-only: rows are never changed or deleted
    through the application (save, delete, queryset update/delete and the admin all refuse).
    Users with audit rows cannot be deleted (PROTECT); deactivate them instead."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
        help_text=_("Empty for the system."),
    )
    action = models.CharField(_("action"), max_length=60)
    object_type = models.CharField(_("object type"), max_length=60)
    object_id = models.CharField(_("object id"), max_length=40)
    at = models.DateTimeField(_("when"), db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionDenied("the audit log is append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionDenied("the audit log is append-only")
