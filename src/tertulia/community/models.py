from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.core.fields import EncryptedTextField
from tertulia.messaging.models import Message, Outbox


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
    # The digest (see services.community_digest_due): when he was last invited back by template
    # (cleared once the waiting posts went out) and when he last received a digest.
    digest_invited_at = models.DateTimeField(null=True, blank=True)
    last_digest_at = models.DateTimeField(null=True, blank=True)

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
    body = EncryptedTextField()  # the text, or a voice note's or image's caption
    # text | image | voice | audio | video; media posts are relayed by the provider's media id.
    kind = models.CharField(max_length=10, default="text")
    media = models.JSONField(default=dict, blank=True)  # {"media_id": ..., "mime": ...}
    # The post he answered (WhatsApp's quoted reply); relayed with its author and an excerpt.
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
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


class PostDelivery(models.Model):
    """One post owed to one member: written for every recipient when the post is relayed. The
    Outbox row that carries it is set when it is queued: at once for a man inside his 24-hour
    window, later in his digest otherwise. The unique key is what makes the relay and the digest
    idempotent: a post is never sent twice to a man. It also maps a quoted reply (the Message he
    answered, through its Outbox row) back to the post."""

    class Via(models.TextChoices):
        LIVE = "live", _("relayed at once")
        DIGEST = "digest", _("in a digest")

    post = models.ForeignKey(CommunityPost, on_delete=models.CASCADE, related_name="deliveries")
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="post_deliveries", db_index=False
    )
    outbox = models.ForeignKey(
        Outbox, on_delete=models.CASCADE, null=True, blank=True, related_name="post_deliveries"
    )
    via = models.CharField(max_length=6, choices=Via.choices, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("post delivery")
        verbose_name_plural = _("post deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "post"], name="postdelivery_unique_enrollment_post"
            )
        ]
        indexes = [
            # The digest's scan: posts still owed, by man.
            models.Index(
                fields=["enrollment"],
                condition=models.Q(outbox__isnull=True),
                name="postdelivery_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"post {self.post_id} to enrollment {self.enrollment_id}"


class InboxSeen(models.Model):
    """One facilitator has seen one inbox item (an alert, a held post, a private message): what
    is unread is counted for each of them, not for everyone at once. Written when he opens the
    man's thread or marks what his inbox shows as seen."""

    class Kind(models.TextChoices):
        ALERT = "alert", _("safety alert")
        POST = "post", _("held post")
        MESSAGE = "message", _("private message")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_seen"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    object_id = models.PositiveBigIntegerField()
    seen_at = models.DateTimeField()

    class Meta:
        verbose_name = _("inbox item seen")
        verbose_name_plural = _("inbox items seen")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "object_id"], name="inboxseen_unique_user_item"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} seen by {self.user_id}"
