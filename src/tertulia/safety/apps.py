from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SafetyConfig(AppConfig):
    name = "tertulia.safety"
    label = "safety"
    verbose_name = _("Safety")

    def ready(self) -> None:
        # Connect triage to the router's signal.
        from tertulia.safety import receivers  # noqa: F401
