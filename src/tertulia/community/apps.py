from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "tertulia.community"
    label = "community"
