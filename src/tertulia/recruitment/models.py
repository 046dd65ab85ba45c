"""Recruitment records: campaigns and their ad variants, each man's screening (the state of his
conversation, where he came from and every answer), his consents, his baseline responses, and
the partner-contact store, kept apart from his record and readable only by the partner-survey
role."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from tertulia.cohorts.models import Participant
from tertulia.core.fields import EncryptedTextField
from tertulia.messaging.models import Message
from tertulia.programs.models import Program


class Campaign(models.Model):
    """A recruitment push for one program: ads on one channel that open a WhatsApp chat."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(_("name"), max_length=120)
    channel = models.CharField(
        _("ad channel"), max_length=40, help_text=_("Where the ads run: facebook, instagram, ...")
    )
    whatsapp_number = models.CharField(
        _("WhatsApp number"), max_length=20, help_text=_("The number men write to, e.g. +519...")
    )
    landing_url = models.URLField(_("landing page"), blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="PEN")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.UniqueConstraint(fields=["program", "name"], name="campaign_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class AdVariant(models.Model):
    """One ad of a campaign. Its `code` is typed into his first message by the link; `ad_id`
    is the ad's id at the provider, which a click-to-WhatsApp referral names as source_id."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="variants")
    name = models.CharField(_("name"), max_length=120)
    code = models.CharField(_("code"), max_length=16, unique=True)
    creative = models.TextField(_("creative"), blank=True, help_text=_("What the ad shows."))
    cost = models.DecimalField(
        _("cost"),
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    ad_id = models.CharField(_("ad id"), max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ad variant")
        verbose_name_plural = _("ad variants")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="advariant_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.name}"


class Screening(models.Model):
    """One man's way from his first message to randomization. `step` is the question he was
    last asked; `invalid_count` how many answers to it were not understood."""

    class State(models.TextChoices):
        SCREENING = "screening", _("screening")  # answering the eligibility questions
        INELIGIBLE = "ineligible", _("ineligible")  # thanked and pointed to other help
        CONSENT = "consent", _("consent")  # consent text sent; waiting for his answer
        DECLINED = "declined", _("declined")  # did not consent: nothing more is sent
        PARTNER = "partner", _("partner contact")  # optional consent to contact his partner
        BASELINE = "baseline", _("baseline")  # answering the baseline questions
        READY = "ready", _("ready for randomization")  # consented and baseline done
        RANDOMIZED = "randomized", _("randomized")  # assigned to an arm
        WITHDRAWN = "withdrawn", _("withdrawn")  # wrote BAJA before randomization (VOLVER may undo)

    # States in which the conversation still expects an answer from him.
    OPEN = (State.SCREENING, State.CONSENT, State.PARTNER, State.BASELINE)

    participant = models.OneToOneField(
        Participant, on_delete=models.CASCADE, related_name="screening"
    )
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="screenings")
    variant = models.ForeignKey(
        AdVariant, on_delete=models.PROTECT, related_name="screenings", null=True, blank=True
    )
    attributed_by = models.CharField(
        max_length=10, blank=True, help_text=_("code, referral, or blank (unattributed).")
    )
    channel = models.CharField(max_length=60)
    locale = models.CharField(max_length=20, default="es-PE")
    state = models.CharField(max_length=12, choices=State.choices, default=State.SCREENING)
    step = models.CharField(max_length=40, blank=True)
    invalid_count = models.PositiveSmallIntegerField(default=0)
    needs_person = models.BooleanField(
        default=False, help_text=_("His answers were not understood: a person must write to him.")
    )
    ineligible_reason = models.CharField(max_length=40, blank=True)
    arm = models.CharField(max_length=40, blank=True)
    # The click-to-WhatsApp ad he came from, as WhatsApp reported it.
    referral_source_url = models.CharField(max_length=500, blank=True)
    referral_source_id = models.CharField(max_length=64, blank=True)
    referral_source_type = models.CharField(max_length=20, blank=True)
    referral_headline = models.CharField(max_length=300, blank=True)
    ctwa_clid = models.CharField(max_length=300, blank=True)
    first_message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField()
    screened_at = models.DateTimeField(null=True, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    baseline_completed_at = models.DateTimeField(null=True, blank=True)
    randomized_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # VOLVER after his last BAJA, when the program allows it; he is withdrawn while
    # withdrawn_at is later than this.
    returned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("screening")
        verbose_name_plural = _("screenings")
        indexes = [models.Index(fields=["state", "variant"])]

    def __str__(self) -> str:
        return f"screening {self.pk} ({self.state})"

    @property
    def is_withdrawn(self) -> bool:
        """He wrote BAJA and has not come back since."""
        if self.withdrawn_at is None:
            return False
        return self.returned_at is None or self.returned_at < self.withdrawn_at


class ScreeningAnswer(models.Model):
    """Every answer he gave, understood or not, in order. Append-only in practice."""

    screening = models.ForeignKey(Screening, on_delete=models.CASCADE, related_name="answers")
    question = models.CharField(max_length=40)
    raw = EncryptedTextField(blank=True)
    value = EncryptedTextField(blank=True)
    valid = models.BooleanField()
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField()

    class Meta:
        verbose_name = _("screening answer")
        verbose_name_plural = _("screening answers")
        ordering = ["answered_at", "id"]

    def __str__(self) -> str:
        return f"answer to {self.question} ({'valid' if self.valid else 'not understood'})"


class Consent(models.Model):
    """His decision on one consent text version. One per (man, kind, version): a second tap
    on the same button changes nothing."""

    class Kind(models.TextChoices):
        STUDY = "study", _("program and study")
        PARTNER_CONTACT = "partner_contact", _("contact his partner for a survey")

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    version = models.CharField(max_length=40)
    accepted = models.BooleanField()
    channel = models.CharField(max_length=60)
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "kind", "version"], name="consent_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.version}: {'yes' if self.accepted else 'no'}"


class Response(models.Model):
    """His answer to one question of a survey instrument (the baseline) given over chat."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="responses")
    instrument = models.CharField(max_length=40)
    question = models.CharField(max_length=40)
    value = EncryptedTextField()
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField()

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "instrument", "question"], name="response_unique_answer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument}.{self.question}"


class PartnerContact(models.Model):
    """How a survey team may reach his partner, given with his consent. Kept apart from his
    record (nothing on Participant points here), encrypted, and readable only by members of
    the partner-survey group (`services.access_partner_contacts`). Her number is never
    messaged through his channel: messaging's recipient guard blocks `phone_hash`."""

    participant = models.OneToOneField(
        Participant, on_delete=models.CASCADE, related_name="+", db_constraint=True
    )
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="+")
    name = EncryptedTextField()
    phone = EncryptedTextField()
    phone_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("partner contact")
        verbose_name_plural = _("partner contacts")

    def __str__(self) -> str:
        return f"partner contact {self.pk}"
