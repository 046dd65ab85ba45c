"""Admin for WhatsApp channels. Secrets are write-only: the form never shows them, and a blank
field on an existing channel keeps the stored value."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from tertulia.messaging.models import ChannelConfig, MessageTemplate, WebhookEvent

SECRETS = ("access_token", "app_secret", "verify_token")


class ChannelConfigForm(forms.ModelForm):
    base_url = forms.URLField(initial="https://graph.facebook.com", assume_scheme="https")
    access_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), strip=True
    )
    app_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), strip=True
    )
    verify_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), strip=True
    )

    class Meta:
        model = ChannelConfig
        fields = (
            "name",
            "phone_number_id",
            "business_account_id",
            "access_token",
            "app_secret",
            "verify_token",
            "base_url",
            "api_version",
            "messages_per_second",
            "service_window",
            "paused",
            "paused_reason",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SECRETS:
            # Never send a stored secret to the browser, not even as a hidden initial value.
            self.initial[name] = ""
            if self.instance.pk:
                self.fields[name].help_text = "Set. Leave blank to keep it."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in SECRETS:
            value = cleaned.get(name)
            if value:
                continue
            if self.instance.pk:
                cleaned[name] = getattr(ChannelConfig.objects.get(pk=self.instance.pk), name)
            else:
                self.add_error(name, "Required.")
        return cleaned


@admin.register(ChannelConfig)
class ChannelConfigAdmin(admin.ModelAdmin):
    form = ChannelConfigForm
    list_display = ("name", "phone_number_id", "messages_per_second", "paused", "updated_at")
    readonly_fields = ("paused_at", "created_at", "updated_at")


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    """The registry: edit here, or load a YAML file with `tertulia channel templates load`."""

    list_display = ("name", "channel", "language", "category", "role", "day", "active")
    list_filter = ("channel", "category", "role", "active")
    search_fields = ("name",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    # The body holds numbers and texts: it is not shown here.
    list_display = ("id", "channel", "received_at", "signature_ok", "processed_at")
    list_filter = ("channel",)
    fields = ("channel", "received_at", "signature_ok", "processed_at", "problems")
    readonly_fields = fields

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
