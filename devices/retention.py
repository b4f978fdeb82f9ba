"""How long device events are kept.

Heartbeats and temperature readings are telemetry: thousands a day per cabinet, worth keeping for
a while (offline and cold-chain questions), not for good. They are deleted once older than
SPD_DEVICE_TELEMETRY_RETENTION_DAYS (by when they were received). Every other kind — scans, door
sessions, tag inventories — is a business record that stock movements and cabinet sessions point
to, and is never deleted here.
"""
import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.models import DeviceEvent

TELEMETRY_KINDS = (DeviceEvent.Kind.HEARTBEAT, DeviceEvent.Kind.TEMPERATURE)
_CHUNK = 5000


def purge_telemetry(*, now: datetime.datetime | None = None, days: int | None = None) -> dict:
    """Delete heartbeat and temperature events received more than `days` days before `now`, in
    chunks of a few thousand rows (short transactions, no long lock on the table). Returns the count."""
    now = now or timezone.now()
    days = settings.SPD_DEVICE_TELEMETRY_RETENTION_DAYS if days is None else days
    if days < 1:
        raise ValueError("SPD_DEVICE_TELEMETRY_RETENTION_DAYS must be at least 1")
    old = DeviceEvent.objects.filter(kind__in=TELEMETRY_KINDS, received_at__lt=now - datetime.timedelta(days=days))
    deleted = 0
    while ids := list(old.order_by("pk").values_list("pk", flat=True)[:_CHUNK]):
        with transaction.atomic():
            deleted += DeviceEvent.objects.filter(pk__in=ids).delete()[0]
    return {"deleted": deleted, "kept_days": days}
