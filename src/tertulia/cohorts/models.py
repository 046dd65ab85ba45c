from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tertulia.core import clock
from tertulia.core.fields import EncryptedTextField
from tertulia.programs.models import Curriculum, Program

DEFAULT_TIMEZONE = "America/Lima"


class Participant(models.Model):
    """A man taking part. His phone number and name are encrypted; `phone_hash` is a keyed hash
    of the E.164 number, so he can be found by number without storing it in clear."""

    phone = EncryptedTextField(help_text=_("E.164 phone number (encrypted)."))
    phone_hash = models.CharField(max_length=64, unique=True)
    # ISO 3166 region of his number (from its country code): providers price by it, and it
    # lets costs be computed in the database without decrypting every number.
    country = models.CharField(max_length=2, blank=True, default="")
    display_name = EncryptedTextField(blank=True)
    language = models.CharField(max_length=20, default="es-PE")
    timezone = models.CharField(max_length=60, default=DEFAULT_TIMEZONE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")

    def __str__(self) -> str:
        return f"participant {self.pk}"


class Cohort(models.Model):
    """About 50 men who go through one curriculum version together, with one facilitator."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="cohorts")
    curriculum = models.ForeignKey(Curriculum, on_delete=models.PROTECT, related_name="cohorts")
    name = models.CharField(max_length=120)
    start_date = models.DateField(help_text=_("Day 0 is sent on this date."))
    send_time = models.TimeField(default=dt.time(19, 0), help_text=_("In the participant's time."))
    capacity = models.PositiveSmallIntegerField(default=50)
    channel = models.CharField(
        max_length=60, default="simulated", help_text=_("Channel kind that delivers to it.")
    )
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cohorts",
    )

    class Moderation(models.TextChoices):
        POST = "post", _("post-moderation")  # relayed at once; the facilitator may retract
        PRE = "pre", _("pre-moderation")  # held until the facilitator approves

    moderation = models.CharField(max_length=4, choices=Moderation.choices, default=Moderation.POST)
    digest_every_hours = models.PositiveSmallIntegerField(
        default=0,
        help_text=_(
            "0: relay posts at once to the men inside their 24-hour window. N: send the "
            "community's posts grouped in a digest every N hours instead."
        ),
    )
    simulated = models.BooleanField(
        default=False, help_text=_("Made of simulated men (the demo); replaced on each demo run.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("cohort")
        verbose_name_plural = _("cohorts")

    def __str__(self) -> str:
        return self.name


class Enrollment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", _("active")  # receiving the daily content
        COMPLETED = "completed", _("completed")  # received the last day and was still engaged
        DROPPED = "dropped", _("dropped")  # silent for a week; content continues, he may return
        OPTED_OUT = "opted_out", _("opted out")  # asked to stop: nothing more is sent

    # States in which the day's content is still sent.
    RECEIVING = (State.ACTIVE, State.DROPPED)

    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="enrollments"
    )
    cohort = models.ForeignKey(Cohort, on_delete=models.PROTECT, related_name="enrollments")
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE)
    current_day = models.SmallIntegerField(
        default=-1, help_text=_("Last day whose content was scheduled (-1: none yet).")
    )
    enrolled_at = models.DateTimeField(default=clock.now)
    last_scheduled_on = models.DateField(
        null=True, blank=True, help_text=_("His local date when a day was last scheduled.")
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    # Engagement counters, updated by the sender and the router.
    messages_sent = models.PositiveIntegerField(default=0)
    messages_read = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)
    checkins_answered = models.PositiveIntegerField(default=0)
    last_engaged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = [
            # A man takes part in one running cohort at a time.
            models.UniqueConstraint(
                fields=["participant"],
                condition=models.Q(state__in=["active", "dropped"]),
                name="enrollment_one_running_per_participant",
            )
        ]
        indexes = [models.Index(fields=["cohort", "state", "current_day"])]

    def __str__(self) -> str:
        return f"{self.participant} in {self.cohort}"
