"""Admin for Twilio SMS channels. The auth token is write-only: the form never shows it, and a
blank field on an existing channel keeps the stored value."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from tertulia.messaging.models import TwilioConfig


class TwilioConfigForm(forms.ModelForm):
    base_url = forms.URLField(initial="https://api.twilio.com", assume_scheme="https")
    public_url = forms.URLField(required=False, assume_scheme="https")
    auth_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), strip=True
    )

    class Meta:
        model = TwilioConfig
        fields = (
            "name",
            "account_sid",
            "auth_token",
            "from_number",
            "messaging_service_sid",
            "base_url",
            "public_url",
            "messages_per_second",
            "paused",
            "paused_reason",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Never send the stored token to the browser, not even as a hidden initial value.
        self.initial["auth_token"] = ""
        if self.instance.pk:
            self.fields["auth_token"].help_text = "Set. Leave blank to keep it."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("auth_token"):
            if self.instance.pk:
                cleaned["auth_token"] = TwilioConfig.objects.get(pk=self.instance.pk).auth_token
            else:
                self.add_error("auth_token", "Required.")
        if not cleaned.get("from_number") and not cleaned.get("messaging_service_sid"):
            self.add_error(
                "from_number", "Give the sender number (E.164) or a messaging service SID."
            )
        return cleaned


@admin.register(TwilioConfig)
class TwilioConfigAdmin(admin.ModelAdmin):
    form = TwilioConfigForm
    list_display = ("name", "account_sid", "from_number", "messaging_service_sid", "paused")
    readonly_fields = ("paused_at", "created_at", "updated_at")
