from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecruitmentConfig(AppConfig):
    name = "tertulia.recruitment"
    label = "recruitment"
    verbose_name = _("Recruitment")

    def ready(self) -> None:
        from tertulia.messaging.guards import recipient_guard_register
        from tertulia.recruitment import receivers  # noqa: F401  (connects the signals)
        from tertulia.recruitment.services import partner_numbers_blocked

        recipient_guard_register("recruitment.partner_contacts", partner_numbers_blocked)
