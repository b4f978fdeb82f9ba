from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from devices.models import Device, DeviceEvent
from devices.services import readable_events
from inventory.admin import ReadOnlyAdmin


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Tokens are issued through the API (issue-token), which shows the secret once."""

    list_display = ("code", "name", "kind", "hospital", "location", "scan_mode", "is_active", "last_seen")
    list_filter = ("hospital", "kind", "is_active")
    exclude = ("token_hash",)


@admin.register(DeviceEvent)
class DeviceEventAdmin(ReadOnlyAdmin):
    list_display = ("device", "event_id", "kind", "status", "occurred", "received_at")
    list_filter = ("kind", "status")
    search_fields = ("event_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return readable_events(super().get_queryset(request))

    @admin.display(description=_("occurred at (device clock)"), ordering="occurred_at")
    def occurred(self, event: DeviceEvent) -> object:
        return event.occurred_at_readable
