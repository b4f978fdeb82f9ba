from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from devices import broker_auth
from devices.models import BridgeHeartbeat, Device, DeviceEvent, RejectedMessage
from devices.services import readable_events
from inventory.admin import ReadOnlyAdmin


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Tokens (and MQTT cabinets' broker passwords) are issued through the API (issue-token), which
    shows the secrets once."""

    list_display = ("code", "name", "kind", "hospital", "location", "scan_mode", "is_active", "last_seen")
    list_filter = ("hospital", "kind", "is_active")
    exclude = ("token_hash", "mqtt_password_hash")

    # A cabinet deactivated or deleted here loses its broker login too.
    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        broker_auth.sync_after_commit()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        broker_auth.sync_after_commit()


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

@admin.register(RejectedMessage)
class RejectedMessageAdmin(ReadOnlyAdmin):
    """Dead letters of the MQTT bridge (devices/dead_letters.py)."""

    list_display = ("received_at", "hospital", "device", "topic", "error_code", "payload_bytes")
    list_filter = ("error_code", "hospital")
    search_fields = ("topic", "error_detail")


@admin.register(BridgeHeartbeat)
class BridgeHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("client_id", "hostname", "pid", "connected", "beat_at", "messages", "rejected", "last_message_at")
