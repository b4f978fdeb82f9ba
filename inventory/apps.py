from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = _("SPD inventory")

    def ready(self) -> None:
        # Register the Celery tasks, so that services can queue them by name (inventory.task_queue).
        # Date-times in the API with a whole-minute offset, never Shanghai's pre-1901 +08:05:43.
        from django.db import models
        from rest_framework import serializers

        from inventory import tasks  # noqa: F401
        from inventory.api.fields import RFC3339DateTimeField

        serializers.ModelSerializer.serializer_field_mapping[models.DateTimeField] = RFC3339DateTimeField
