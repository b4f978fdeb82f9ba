from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = _("SPD inventory")

    def ready(self) -> None:
        # Register the Celery tasks, so that services can queue them by name (inventory.task_queue).
        from inventory import tasks  # noqa: F401
