from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RandomizationConfig(AppConfig):
    name = "tertulia.randomization"
    label = "randomization"
    verbose_name = _("randomization")

    def ready(self) -> None:
        from tertulia.randomization import receivers  # noqa: F401
