from __future__ import annotations

from django.contrib import admin

from tertulia.dashboard.models import Price


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = (
        "channel_kind",
        "category",
        "country",
        "currency",
        "amount",
        "effective_from",
        "source",
    )
    list_filter = ("channel_kind", "country", "category")
    ordering = ("channel_kind", "country", "category", "-effective_from")
