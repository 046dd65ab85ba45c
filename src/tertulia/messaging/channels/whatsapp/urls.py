from django.urls import path

from .views import whatsapp_webhook

urlpatterns = [
    path("webhooks/whatsapp/<slug:name>/", whatsapp_webhook, name="whatsapp-webhook"),
]
