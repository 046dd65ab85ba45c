from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from tertulia.recruitment.links import whatsapp_link
from tertulia.recruitment.models import (
    AdVariant,
    Campaign,
    Consent,
    PartnerContact,
    Screening,
)
from tertulia.recruitment.services import access_partner_contacts, variant_prefilled_text


class AdVariantInline(admin.TabularInline):
    model = AdVariant
    extra = 0
    fields = ("name", "code", "creative", "cost", "ad_id")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "channel", "whatsapp_number", "created_at")
    list_filter = ("program", "channel")
    inlines = [AdVariantInline]


@admin.register(AdVariant)
class AdVariantAdmin(admin.ModelAdmin):
    list_display = ("name", "campaign", "code", "cost", "link")
    list_filter = ("campaign",)
    search_fields = ("name", "code", "ad_id")

    @admin.display(description=_("click-to-WhatsApp link"))
    def link(self, obj: AdVariant) -> str:
        url = whatsapp_link(obj.campaign.whatsapp_number, variant_prefilled_text(obj))
        return format_html('<a href="{}">{}</a>', url, url[:60])


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the conversation only: staff look, nobody edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Screening)
class ScreeningAdmin(ReadOnlyAdmin):
    list_display = ("id", "program", "variant", "state", "step", "needs_person", "started_at")
    list_filter = ("state", "needs_person", "program", "variant")
    # The arm is left out: it is the randomization app's to show, once final.
    exclude = ("arm",)


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ("id", "participant", "kind", "version", "accepted", "channel", "at")
    list_filter = ("kind", "version", "accepted")


@admin.register(PartnerContact)
class PartnerContactAdmin(ReadOnlyAdmin):
    """Only the partner-survey group, superusers included, ever sees this store."""

    list_display = ("id", "name", "phone", "created_at")
    fields = ("name", "phone", "consent", "created_at")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access_partner_contacts(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_partner_contacts(request.user)
