from django.contrib import admin

from tertulia.programs.models import Curriculum, Day, Program, Step, Topic


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]


class DayInline(admin.TabularInline):
    model = Day
    extra = 0
    fields = ("number", "topic", "title")
    readonly_fields = fields
    can_delete = False


@admin.register(Curriculum)
class CurriculumAdmin(admin.ModelAdmin):
    list_display = ["program", "locale", "version", "imported_at"]
    readonly_fields = ["program", "locale", "version", "content_hash", "source_path", "imported_at"]
    inlines = [DayInline]


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    list_display = ["day", "position", "kind", "key"]
    list_filter = ["kind", "day__curriculum"]


admin.site.register(Topic)
