from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "tertulia.community"
    label = "community"

    def ready(self) -> None:
        from tertulia.community import receivers  # noqa: F401  (connects the signal)
