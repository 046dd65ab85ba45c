from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "tertulia.messaging"
    label = "messaging"

    def ready(self) -> None:
        from tertulia.messaging.channels.twilio_sms.registry import register_twilio
        from tertulia.messaging.channels.whatsapp.registry import register_whatsapp

        register_whatsapp()
        register_twilio()
