from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    name = "tertulia.randomization"
    label = "randomization"
    verbose_name = "randomization"
