from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tertulia.core"
    label = "core"

    def ready(self) -> None:
        from tertulia.core import lookups

        lookups.register()
