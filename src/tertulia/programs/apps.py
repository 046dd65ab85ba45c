from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "tertulia.programs"
    label = "programs"
