from django.apps import AppConfig


class CohortsConfig(AppConfig):
    name = "tertulia.cohorts"
    label = "cohorts"
