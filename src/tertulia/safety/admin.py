from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from tertulia.safety.models import Alert, AuditLog, Notification, Referral


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("id", "category", "status", "cohort", "created_at", "escalated_at")
    list_filter = ("category", "status", "cohort")
    date_hierarchy = "created_at"
    raw_id_fields = ("message", "participant", "enrollment", "cohort", "handled_by")
    fields = readonly_fields = (
        "category",
        "status",
        "why",
        "man",
        "cohort",
        "enrollment",
        "message",
        "created_at",
        "notified_facilitator_at",
        "escalated_at",
        "handled_by",
        "handled_at",
        "note",
    )

    @admin.display(description=_("why"))
    def why(self, alert: Alert) -> str:
        """The words that raised it, quoted, rather than the stored list of dicts."""
        words = [
            f"“{e['text']}”" if e.get("text") else str(e.get("error", "")) for e in alert.evidence
        ]
        return ", ".join(w for w in words if w) or "—"

    @admin.display(description=_("man"))
    def man(self, alert: Alert) -> str:
        """His pseudonym in the cohort, as the facilitators know him; never his number."""
        from tertulia.community.selectors import pseudonym_of

        return pseudonym_of(alert.enrollment)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are raised by triage, resolved with alert_resolve (audited)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ("name", "country", "kind", "phone", "hours", "active", "order")
    list_filter = ("country", "kind", "active")
    search_fields = ("name",)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "kind", "alert", "created_at", "read_at")
    list_filter = ("kind",)
    raw_id_fields = ("recipient", "alert")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("object_id",)
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
