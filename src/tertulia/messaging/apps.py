from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "tertulia.messaging"
    label = "messaging"
