from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from tertulia.cohorts.models import Enrollment, Participant
from tertulia.core.fields import EncryptedTextField
from tertulia.programs.models import Step


class Outbox(models.Model):
    """One step of one day owed to one enrollment. The unique key (enrollment, day, step) is
    what makes scheduling idempotent: running the scheduler again writes nothing new."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")  # waiting for a sender
        SENDING = "sending", _("sending")  # claimed by a sender; its Message row exists
        SENT = "sent", _("sent")  # the channel accepted it
        FAILED = "failed", _("failed")  # the channel refused it for good
        CANCELLED = "cancelled", _("cancelled")  # not sent: he opted out before it went

    # Few indexes on purpose: a day's send inserts hundreds of thousands of rows at once.
    # The unique key below leads with the enrollment, so it serves look-ups by enrollment too.
    # No database-level constraint for participant and step: PostgreSQL checks each with a
    # per-row trigger, which doubled a day's scheduling time. Participants are deleted through
    # the ORM (which cascades), and steps never are: curriculum versions are immutable.
    participant = models.ForeignKey(
        Participant,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    enrollment = models.ForeignKey(
        Enrollment,
        on_delete=models.CASCADE,
        related_name="outbox",
        null=True,
        blank=True,
        db_index=False,
    )
    # A program step has a day and a step; a service message (a keyword's answer) has a body.
    day = models.SmallIntegerField(null=True, blank=True)
    step = models.ForeignKey(
        Step,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        db_index=False,
        db_constraint=False,
    )
    body = EncryptedTextField(blank=True)
    # The template that stands in for a service message when his 24-hour window is closed
    # (a name in the channel's template registry); blank: free-form only.
    template = models.CharField(max_length=60, blank=True, db_default="")
    # Reply buttons of a service message ([{"id": ..., "title": ...}], at most three); null
    # for program steps, whose buttons come from the step, so set-based inserts need not name it.
    buttons = models.JSONField(null=True, blank=True)
    # A service message that is not plain text (a relayed voice note or image):
    # {"kind": "image"|"audio"|..., "media_id": provider media id, "mime": ..., "caption": ...}.
    # Null for text; nullable, so the scheduler's set-based inserts need not name it.
    content = models.JSONField(null=True, blank=True)
    channel = models.CharField(max_length=60)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    due_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=40, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("outbox item")
        verbose_name_plural = _("outbox")
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "day", "step"], name="outbox_unique_enrollment_day_step"
            )
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="outbox_status_due"),
        ]

    def __str__(self) -> str:
        return f"outbox {self.pk} (day {self.day}, {self.status})"


class Message(models.Model):
    """Every message in and out, written before anything else happens with it."""

    class Direction(models.TextChoices):
        IN = "in", _("inbound")
        OUT = "out", _("outbound")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")  # outbound row written; not yet handed to the channel
        SENT = "sent", _("sent")  # accepted by the channel
        DELIVERED = "delivered", _("delivered")  # reached his phone
        READ = "read", _("read")  # he opened it
        FAILED = "failed", _("failed")  # the channel gave up
        RECEIVED = "received", _("received")  # inbound, stored and not yet routed
        ROUTED = "routed", _("routed")  # inbound, routed

    class Route(models.TextChoices):
        NONE = "", _("not routed")
        KEYWORD = "keyword", _("keyword")
        CHECKIN = "checkin", _("check-in answer")
        FACILITATOR = "facilitator", _("waiting for a facilitator")
        RECRUITMENT = "recruitment", _("recruitment conversation")  # screening, consent, baseline

    direction = models.CharField(max_length=3, choices=Direction.choices)
    # No index of its own: the (participant, direction, created_at) index below serves every
    # look-up by participant, and each index is one more write per message sent.
    participant = models.ForeignKey(
        Participant,
        on_delete=models.CASCADE,
        related_name="messages",
        null=True,
        blank=True,
        db_index=False,
    )
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.SET_NULL, related_name="messages", null=True, blank=True
    )
    channel = models.CharField(max_length=60)
    provider_id = models.CharField(max_length=200, blank=True)
    outbox = models.OneToOneField(
        Outbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="message"
    )
    kind = models.CharField(max_length=20, default="text")
    body = EncryptedTextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    route = models.CharField(max_length=12, choices=Route.choices, blank=True, default="")
    keyword = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    # What the provider bills it as: WhatsApp's pricing category from the status webhooks
    # (marketing, utility, authentication, service, referral_conversion, ...) or "sms".
    # `billable` stays None until the provider has said; estimated costs come from these.
    pricing_category = models.CharField(max_length=40, blank=True, default="")
    billable = models.BooleanField(null=True, blank=True)
    # SMS segments it took (Twilio bills each); None for channels that bill per message.
    segments = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            # Providers retry webhooks for days: an inbound message is stored once.
            models.UniqueConstraint(
                fields=["channel", "direction", "provider_id"],
                condition=~models.Q(provider_id=""),
                name="message_unique_provider_id",
            )
        ]
        indexes = [
            models.Index(fields=["participant", "direction", "created_at"]),
            models.Index(fields=["route", "handled_at"]),
            # A man's messages not yet routed: a handful at any moment, looked at on every
            # webhook claim (delivery statuses wait while one is being routed).
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="received"),
                name="message_awaiting_route",
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.direction}, {self.status})"


class CheckInResponse(models.Model):
    """A participant's answer to a day's check-in question."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="checkins")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="+")
    day = models.SmallIntegerField()
    answer_key = models.CharField(max_length=60)
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True)
    answered_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="checkin_unique_answer")
        ]

    def __str__(self) -> str:
        return f"check-in day {self.day}: {self.answer_key}"


class ChannelConfig(models.Model):
    """One WhatsApp Business number a program sends through. A cohort names it as
    `whatsapp:<name>`. The three secrets are encrypted at rest and never shown or logged."""

    name = models.SlugField(max_length=40, unique=True)
    phone_number_id = models.CharField(max_length=64)
    business_account_id = models.CharField(max_length=64, blank=True)
    access_token = EncryptedTextField()
    app_secret = EncryptedTextField()
    verify_token = EncryptedTextField()
    base_url = models.URLField(default="https://graph.facebook.com")
    api_version = models.CharField(max_length=10, default="v23.0")
    messages_per_second = models.PositiveIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    # WhatsApp's 24-hour customer-service window: free-form inside it, templates outside it
    # (see channels/whatsapp/reengagement.py). Off only for load tests against a fake that
    # does not enforce it.
    service_window = models.BooleanField(
        default=True,
        help_text=_(
            "Send free-form only within 24 hours of his last message, templates otherwise."
        ),
    )
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("WhatsApp channel")
        verbose_name_plural = _("WhatsApp channels")

    def __str__(self) -> str:
        return f"whatsapp:{self.name}"

    @property
    def channel(self) -> str:
        return f"whatsapp:{self.name}"


class MessageTemplate(models.Model):
    """A template Meta approved for a WhatsApp channel, in the channel's registry. Outside a
    man's 24-hour window only templates may be sent: a day-opening template stands in for the
    first step of a program day, a service template for a service message that names it.

    Meta keeps the template's text; we keep what fills its {{1}}, {{2}}... placeholders, as
    names of program values (see `TEMPLATE_VALUES`). Never a name, pseudonym or number: a
    template is read by Meta and lands outside the conversation he chose to have."""

    class Category(models.TextChoices):
        MARKETING = "marketing", _("marketing")
        UTILITY = "utility", _("utility")
        AUTHENTICATION = "authentication", _("authentication")

    class Role(models.TextChoices):
        DAY_OPENING = "day_opening", _("opens a program day")  # stands in for its first step
        SERVICE = "service", _("service message")  # named by a service message (Outbox.template)

    channel = models.ForeignKey(ChannelConfig, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(
        max_length=60,
        validators=[RegexValidator(r"^[a-z0-9_]+$", _("Use lowercase letters, digits and _."))],
        help_text=_("The template's name as approved by Meta; also its name in the registry."),
    )
    language = models.CharField(
        max_length=15, default="es", help_text=_("Meta's language code, e.g. es or es_MX.")
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.DAY_OPENING)
    day = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text=_("For a day-opening template: the day it opens; blank for every other day."),
    )
    parameters = models.JSONField(
        default=list,
        blank=True,
        help_text=_('What fills {{1}}, {{2}}...: a list of program values, e.g. ["day", "topic"].'),
    )
    body = models.TextField(
        blank=True, help_text=_("The approved text, for reference; its placeholders are checked.")
    )
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("WhatsApp template")
        verbose_name_plural = _("WhatsApp templates")
        constraints = [
            models.UniqueConstraint(fields=["channel", "name"], name="template_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    def clean(self) -> None:
        from tertulia.messaging.channels.whatsapp.templates import template_problems

        problems = template_problems(self)
        if problems:
            raise ValidationError(problems)


class TwilioConfig(models.Model):
    """One Twilio account and sender (a number or a messaging service) that a program sends SMS
    through. A cohort names it as `twilio:<name>`. The auth token, which also signs Twilio's
    webhooks, is encrypted at rest and never shown or logged."""

    name = models.SlugField(max_length=40, unique=True)
    account_sid = models.CharField(max_length=64)
    auth_token = EncryptedTextField()
    from_number = models.CharField(
        max_length=20, blank=True, help_text=_("E.164 sender number, e.g. +15550001111.")
    )
    messaging_service_sid = models.CharField(
        max_length=64, blank=True, help_text=_("Instead of a number: a messaging service (MG...).")
    )
    base_url = models.URLField(default="https://api.twilio.com")
    public_url = models.URLField(
        blank=True,
        help_text=_(
            "Where Twilio reaches this server (https://tertulia.example.org); without it, "
            "no delivery statuses are asked for."
        ),
    )
    # Twilio queues what a sender gets faster than it may send (1 SMS/s for a long code, more
    # for toll-free numbers, short codes and messaging services) and fails what waited too
    # long: the senders pace it through the same shared limiter as WhatsApp numbers.
    messages_per_second = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("How many SMS per second this sender may send (Twilio's limit for it)."),
    )
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("Twilio SMS channel")
        verbose_name_plural = _("Twilio SMS channels")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(from_number="", messaging_service_sid=""),
                name="twilioconfig_has_a_sender",
            )
        ]

    def __str__(self) -> str:
        return f"twilio:{self.name}"

    @property
    def channel(self) -> str:
        return f"twilio:{self.name}"


class WebhookEvent(models.Model):
    """The raw body of one signed webhook POST, stored before it is answered and processed
    later. It holds phone numbers and texts, so it is encrypted."""

    channel = models.CharField(max_length=60)
    body = EncryptedTextField()
    received_at = models.DateTimeField()
    signature_ok = models.BooleanField(default=False)
    # The body carries a man's message (not only delivery statuses): processed first. A
    # database default, so that a web process of the version before this column still stores.
    has_messages = models.BooleanField(db_default=False)
    # When a worker took it (channels/whatsapp/handoff.py); a claim older than the lease is
    # taken again, so a worker that dies between claim and done loses nothing.
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        indexes = [
            # Only the unprocessed rows, in the order workers claim them: the index stays as
            # small as the backlog however many events are kept.
            models.Index(
                fields=["-has_messages", "id"],
                condition=models.Q(processed_at__isnull=True),
                name="webhookevent_unprocessed",
            ),
        ]

    def __str__(self) -> str:
        return f"webhook event {self.pk} ({self.channel})"


class MediaUpload(models.Model):
    """A media file uploaded once to a channel, reused by its media id until it expires."""

    channel = models.CharField(max_length=60)
    sha256 = models.CharField(max_length=64)
    media_id = models.CharField(max_length=200)
    mime = models.CharField(max_length=100)
    uploaded_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "sha256"], name="mediaupload_unique_file")
        ]

    def __str__(self) -> str:
        return f"media {self.sha256[:12]} on {self.channel}"
