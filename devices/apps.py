from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = _("Devices")

    def ready(self) -> None:
        # Registers the event handlers with the ingest path.
        from devices import cabinet_events, scanning  # noqa: F401
