from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Price(models.Model):
    """What one message (one segment, for SMS) is estimated to cost, for a channel kind, a
    pricing category and the recipient's country, from a date on. Staff keep it from their
    provider contracts; the dashboard's cost figures are only as good as this table."""

    class ChannelKind(models.TextChoices):
        WHATSAPP = "whatsapp", _("WhatsApp")  # billed per message, by pricing category
        TWILIO = "twilio", _("Twilio SMS")  # billed per segment; category "sms"

    channel_kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    category = models.SlugField(
        max_length=40,
        help_text=_("marketing, utility, authentication, service, referral_conversion, sms..."),
    )
    country = models.CharField(
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$", _("Two capital letters, e.g. PE."))],
        help_text=_("ISO 3166 country of the recipient's number, e.g. PE."),
    )
    currency = models.CharField(
        max_length=3,
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Three capital letters, e.g. USD."))],
    )
    amount = models.DecimalField(max_digits=12, decimal_places=6, validators=[MinValueValidator(0)])
    effective_from = models.DateField(help_text=_("Applies to messages from this date on."))
    source = models.CharField(
        max_length=200, blank=True, help_text=_("Where the figure comes from (a contract, ...).")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        constraints = [
            models.UniqueConstraint(
                fields=["channel_kind", "category", "country", "effective_from"],
                name="price_unique_key_date",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.channel_kind} {self.category} {self.country} from {self.effective_from}: "
            f"{self.currency} {self.amount}"
        )
