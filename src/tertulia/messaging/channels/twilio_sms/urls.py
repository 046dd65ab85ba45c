from django.urls import path

from .views import twilio_sms_webhook, twilio_status_webhook

urlpatterns = [
    path("webhooks/twilio/<slug:name>/sms/", twilio_sms_webhook, name="twilio-sms"),
    path("webhooks/twilio/<slug:name>/status/", twilio_status_webhook, name="twilio-status"),
]
