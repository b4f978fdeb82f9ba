from django.contrib import admin

from devices.models import Device, DeviceEvent
from inventory.admin import ReadOnlyAdmin


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Tokens are issued through the API (issue-token), which shows the secret once."""

    list_display = ("code", "name", "kind", "hospital", "location", "scan_mode", "is_active", "last_seen")
    list_filter = ("hospital", "kind", "is_active")
    exclude = ("token_hash",)


@admin.register(DeviceEvent)
class DeviceEventAdmin(ReadOnlyAdmin):
    list_display = ("device", "event_id", "kind", "status", "occurred_at", "received_at")
    list_filter = ("kind", "status")
    search_fields = ("event_id",)
