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
