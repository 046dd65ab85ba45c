from __future__ import annotations

from django.contrib import admin

from tertulia.community.models import QuickReply


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    list_display = ("title", "language", "order", "active")
    list_editable = ("order", "active")
    list_filter = ("language", "active")
    search_fields = ("title", "text")
