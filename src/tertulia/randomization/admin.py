"""Read-only admin for trials and the assignment log, with the arm concealed until final.

What is left out on purpose (decision 0077): the seed (it predicts every allocation), the
Stratum cursors (a block's position hints at the next arm), and for a non-final assignment its
arm, slot and block, in the list, the detail page, filters and search alike.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from tertulia.randomization.models import Assignment, Trial

CONCEALED = _("concealed until final")
# Fields that would tell a concealed arm if shown, sorted or filtered on.
CONCEALED_FIELDS = frozenset({"arm", "slot", "block_index"})


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Trial)
class TrialAdmin(ReadOnly):
    list_display = ("name", "title", "arms", "strata_count", "seed_fingerprint", "created_at")
    fields = ("name", "title", "config", "seed_fingerprint", "algorithm", "created_at")
    readonly_fields = fields

    @admin.display(description=_("arms"))
    def arms(self, trial: Trial) -> str:
        return ", ".join(f"{arm.name} ({arm.ratio})" for arm in trial.design.arms)

    @admin.display(description=_("strata"))
    def strata_count(self, trial: Trial) -> int:
        return trial.design.strata_count()

    @admin.display(description=_("seed fingerprint"))
    def seed_fingerprint(self, trial: Trial) -> str:
        return trial.seed_fingerprint


class FinalFilter(admin.SimpleListFilter):
    title = _("final")
    parameter_name = "final"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("final")), ("no", _("not final yet"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in ("yes", "no"):
            return queryset.filter(release__isnull=self.value() == "no")
        return queryset


@admin.register(Assignment)
class AssignmentAdmin(ReadOnly):
    list_display = (
        "id",
        "trial",
        "participant",
        "stratum_values",
        "assigned_at",
        "shown_arm",
        "final",
    )
    list_filter = ("trial", FinalFilter)
    list_select_related = ("trial", "release")
    date_hierarchy = "assigned_at"
    # `arm`, `slot` and `block_index` are never fields here: only `shown_arm`.
    fields = ("trial", "participant", "stratum", "strata", "assigned_at", "shown_arm", "final")
    readonly_fields = fields
    ordering = ("-assigned_at",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("release")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The admin allows any lookup on a model's own fields in the URL (?arm=program), which
        # would tell a concealed arm by the rows that remain.
        if lookup.split("__")[0] in CONCEALED_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[arg-type]

    @admin.display(description=_("stratum"), ordering="stratum")
    def stratum_values(self, assignment: Assignment) -> str:
        return " · ".join(str(v) for v in assignment.strata.values()) or "—"

    @admin.display(description=_("arm"))
    def shown_arm(self, assignment: Assignment) -> str:
        return assignment.arm if assignment.is_final else str(CONCEALED)

    @admin.display(description=_("final since"))
    def final(self, assignment: Assignment) -> Any:
        return assignment.release.released_at if assignment.is_final else "—"
