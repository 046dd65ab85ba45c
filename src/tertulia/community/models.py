from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.core.fields import EncryptedTextField
from tertulia.messaging.models import Message


class Membership(models.Model):
    """A man's place in his cohort's community, under a pseudonym: the others never see his
    number or his name."""

    enrollment = models.OneToOneField(
        Enrollment, on_delete=models.CASCADE, related_name="membership"
    )
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="memberships")
    pseudonym = models.CharField(max_length=40)
    in_community = models.BooleanField(default=True, help_text=_("False after SALIR."))
    joined_at = models.DateTimeField()

    class Meta:
        verbose_name = _("community member")
        verbose_name_plural = _("community members")
        constraints = [
            models.UniqueConstraint(fields=["cohort", "pseudonym"], name="member_unique_pseudonym")
        ]

    def __str__(self) -> str:
        return self.pseudonym


class CommunityPost(models.Model):
    class Status(models.TextChoices):
        RELAYED = "relayed", _("relayed")  # sent to the other members
        HELD = "held", _("held")  # waiting for the facilitator (pre-moderation or an alert)
        RETRACTED = "retracted", _("retracted")  # removed by the facilitator

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="posts"
    )
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="post"
    )
    body = EncryptedTextField()
    status = models.CharField(max_length=10, choices=Status.choices)
    created_at = models.DateTimeField()
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("community post")
        verbose_name_plural = _("community posts")
        indexes = [models.Index(fields=["cohort", "status", "created_at"])]

    def __str__(self) -> str:
        return f"post {self.pk} ({self.status})"


class QuickReply(models.Model):
    """A short, warm reply a facilitator can pick instead of typing it. Edited in the admin."""

    title = models.CharField(_("title"), max_length=60)
    text = models.TextField(_("text"), help_text=_("Sent as written, to the group or to one man."))
    language = models.CharField(_("language"), max_length=10, default="es")
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title


class PrivateReply(models.Model):
    """What a facilitator wrote to one man alone, queued on his own chat as a service message.
    Kept apart from the Outbox so his thread shows it and the supervisor can see how long the
    man waited (`in_reply_to` is the message it answered)."""

    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="private_replies"
    )
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    in_reply_to = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outbox = models.OneToOneField(
        "messaging.Outbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = EncryptedTextField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("private reply")
        verbose_name_plural = _("private replies")
        indexes = [models.Index(fields=["enrollment", "created_at"])]

    def __str__(self) -> str:
        return f"private reply {self.pk}"
