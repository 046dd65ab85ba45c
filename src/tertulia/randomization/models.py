from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from tertulia.cohorts.models import Participant
from tertulia.randomization.blocks import ALGORITHM
from tertulia.randomization.config import TrialConfig, config_from_dict


class Trial(models.Model):
    """A randomized trial: its arms, strata and block sizes (`config`) and the seed that
    reproduces every allocation. The seed is concealed: whoever knows it can compute who comes
    next, so no staff screen shows it (decision 0077)."""

    name = models.SlugField(_("name"), max_length=40, unique=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    config = models.JSONField(_("config"), help_text=_("Arms, strata and block sizes."))
    seed = models.BigIntegerField()
    algorithm = models.CharField(max_length=40, default=ALGORITHM)
    # A database default too: code from before this column can still record a trial.
    simulated = models.BooleanField(
        _("simulated"),
        default=False,
        db_default=False,
        help_text=_("A demo's trial: real men are never randomized into it."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("trial")
        verbose_name_plural = _("trials")

    def __str__(self) -> str:
        return self.name

    @cached_property
    def design(self) -> TrialConfig:
        return config_from_dict(self.config)

    @property
    def seed_fingerprint(self) -> str:
        """Shows two people that they hold the same seed without showing it."""
        return hashlib.sha256(f"{self.name}:{self.seed}".encode()).hexdigest()[:12]


class Stratum(models.Model):
    """Where a stratum's allocation sequence has got to. Each draw locks this row, so two
    enrolments in the same stratum are serialized and never take the same slot (decision 0076).
    It can be rebuilt from the log; it is not shown on any screen, since the position within the
    current block hints at the next arm."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="strata")
    key = models.CharField(max_length=255)
    next_slot = models.PositiveIntegerField(default=0)
    block_index = models.IntegerField(default=-1)
    block_start = models.PositiveIntegerField(default=0)
    block_size = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "key"], name="stratum_unique_per_trial")
        ]

    def __str__(self) -> str:
        return f"{self.trial}: {self.key}"


class AppendOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionDenied(f"{self.model._meta.verbose_name_plural} are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionDenied(f"{self.model._meta.verbose_name_plural} are append-only")


class AppendOnly(models.Model):
    """Rows are written once and never changed or deleted through the application; on
    PostgreSQL a trigger refuses raw UPDATE and DELETE as well (migration 0002)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionDenied(f"{self._meta.verbose_name_plural} are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionDenied(f"{self._meta.verbose_name_plural} are append-only")


class Assignment(AppendOnly):
    """One man's allocation to an arm: the append-only assignment log. The arm is concealed
    until an AssignmentRelease makes the assignment final (decision 0077)."""

    trial = models.ForeignKey(
        Trial, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("trial")
    )
    participant = models.ForeignKey(
        Participant,
        on_delete=models.PROTECT,
        related_name="assignments",
        verbose_name=_("participant"),
    )
    stratum = models.CharField(_("stratum"), max_length=255)
    strata = models.JSONField(_("strata"), help_text=_("The stratification fields' values."))
    details = models.JSONField(
        default=dict, blank=True, help_text=_("Other inputs given, e.g. preferred send time.")
    )
    slot = models.PositiveIntegerField(help_text=_("Position in the stratum's sequence."))
    block_index = models.PositiveIntegerField()
    arm = models.CharField(_("arm"), max_length=40)
    assigned_at = models.DateTimeField(_("assigned"), db_index=True)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "participant"], name="assignment_once_per_participant"
            ),
            models.UniqueConstraint(
                fields=["trial", "stratum", "slot"], name="assignment_one_per_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trial}: {self.participant}"

    @property
    def is_final(self) -> bool:
        try:
            return self.release is not None
        except AssignmentRelease.DoesNotExist:
            return False


class AssignmentRelease(AppendOnly):
    """Makes an assignment final, so its arm may be seen and acted on."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="release")
    released_at = models.DateTimeField(_("final since"))
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty when the system released it."),
    )

    class Meta:
        verbose_name = _("assignment release")
        verbose_name_plural = _("assignment releases")

    def __str__(self) -> str:
        return f"release of {self.assignment}"
