from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Program(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")

    def __str__(self) -> str:
        return self.name


class Curriculum(models.Model):
    """One imported version of a program's content in one locale. Never changed after import:
    new files give a new version, so that a cohort keeps the content it started with."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="curricula")
    locale = models.CharField(max_length=20)
    version = models.CharField(max_length=12, help_text=_("Short hash of the curriculum files."))
    content_hash = models.CharField(max_length=64)
    source_path = models.CharField(max_length=500, blank=True)
    first_day = models.PositiveSmallIntegerField(default=0)
    last_day = models.PositiveSmallIntegerField(default=30)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("curriculum")
        verbose_name_plural = _("curricula")
        constraints = [
            models.UniqueConstraint(
                fields=["program", "locale", "content_hash"], name="curriculum_unique_content"
            )
        ]

    def __str__(self) -> str:
        return f"{self.program.slug}/{self.locale}@{self.version}"


class Topic(models.Model):
    curriculum = models.ForeignKey(Curriculum, on_delete=models.CASCADE, related_name="topics")
    slug = models.SlugField()
    label = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["curriculum", "slug"], name="topic_unique_slug")
        ]

    def __str__(self) -> str:
        return self.label


class Day(models.Model):
    curriculum = models.ForeignKey(Curriculum, on_delete=models.CASCADE, related_name="days")
    number = models.PositiveSmallIntegerField()
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="days")
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["curriculum", "number"], name="day_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.title}"


class Step(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", _("text")
        AUDIO = "audio", _("audio")
        VIDEO = "video", _("video")
        IMAGE = "image", _("image")
        CHALLENGE = "challenge", _("challenge")  # an exercise to do with his partner
        CHECKIN = "checkin", _("check-in")  # a question with quick-reply answers
        DISCUSSION = "discussion", _("discussion prompt")  # posted to the community

    day = models.ForeignKey(Day, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    key = models.CharField(max_length=60, blank=True, help_text=_("Check-in question id."))
    text = models.TextField(blank=True)
    caption = models.TextField(blank=True)
    buttons = models.JSONField(default=list, blank=True)
    media_path = models.CharField(max_length=300, blank=True)
    media_sha256 = models.CharField(max_length=64, blank=True)
    media_mime = models.CharField(max_length=60, blank=True)
    media_size = models.PositiveIntegerField(null=True, blank=True)
    script = models.TextField(blank=True)
    expert_name = models.CharField(max_length=120, blank=True)
    expert_role = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["day__number", "position"]
        constraints = [
            models.UniqueConstraint(fields=["day", "position"], name="step_unique_position")
        ]

    def __str__(self) -> str:
        return f"day {self.day.number} step {self.position} ({self.kind})"
