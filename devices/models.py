import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Device(models.Model):
    """A scanner, RFID reader or smart cabinet. Stock moved by a device is attributed to it.

    `config` holds what the adapters need: `port_url`, `baudrate`, `frame_suffix` (serial
    scanners), `gs_substitute` (the character a scanner sends in place of GS), `scan_mode`.
    """

    class Kind(models.TextChoices):
        SERIAL_SCANNER = "SERIAL_SCANNER", _("Serial barcode scanner")
        WEDGE_SCANNER = "WEDGE_SCANNER", _("Keyboard-wedge scanner station")
        RFID_READER = "RFID_READER", _("RFID reader")
        CABINET_HTTP = "CABINET_HTTP", _("Smart cabinet (HTTP)")
        CABINET_MQTT = "CABINET_MQTT", _("Smart cabinet (MQTT)")

    class ScanMode(models.TextChoices):
        LOOKUP = "LOOKUP", _("Look up only")
        RECEIVE_INTO_LOCATION = "RECEIVE_INTO_LOCATION", _("Move each scanned unit into the device's location")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="devices")
    location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="devices"
    )
    code = models.CharField(_("device code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    token_hash = models.CharField(_("token hash (SHA-256)"), max_length=64, blank=True, db_index=True)
    # The broker password of an MQTT cabinet, as the Mosquitto password file holds it (PBKDF2-SHA512,
    # "$7$…"); its user name is the device code. Issued with the token, written out by sync_mqtt_auth.
    mqtt_password_hash = models.CharField(_("MQTT password hash"), max_length=200, blank=True)
    config = models.JSONField(_("configuration"), default=dict, blank=True)
    scan_mode = models.CharField(_("scan mode"), max_length=32, choices=ScanMode.choices, default=ScanMode.LOOKUP)
    offline_after_seconds = models.PositiveIntegerField(_("offline after silence of (s)"), default=300)
    is_active = models.BooleanField(_("active"), default=True)
    last_seen = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("device")
        ordering = ["hospital", "code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def issue_token(self) -> str:
        """A new secret for this device; only its hash is kept, so it can be shown once only."""
        token = secrets.token_urlsafe(32)
        self.token_hash = self.hash_token(token)
        return token

    @property
    def is_online(self) -> bool:
        if self.last_seen is None:
            return False
        return timezone.now() - self.last_seen <= timedelta(seconds=self.offline_after_seconds)

    @property
    def gs_substitute(self) -> str | None:
        return self.config.get("gs_substitute") or None

    def clean(self) -> None:
        from devices.identification import gs_substitute_problem

        if not isinstance(self.config, dict):
            raise ValidationError({"config": _("The configuration must be a JSON object.")})
        if self.config.get("gs_substitute") is not None and (problem := gs_substitute_problem(self.gs_substitute)):
            raise ValidationError({"config": problem})


class DeviceEvent(models.Model):
    """One raw event as a device sent it, stored before it is processed (DESIGN.md §5).

    Unique per (device, event_id): a replay finds the first row and returns its outcome.
    """

    class Kind(models.TextChoices):
        SCAN = "scan", _("Scan")
        DOOR_OPEN = "door_open", _("Door opened")
        DOOR_CLOSE = "door_close", _("Door closed")
        INVENTORY = "inventory", _("Tag inventory")
        HEARTBEAT = "heartbeat", _("Heartbeat")
        TEMPERATURE = "temperature", _("Temperature")

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Stored, not processed yet")
        PROCESSED = "PROCESSED", _("Processed")
        REFUSED = "REFUSED", _("Refused by a business rule")
        FAILED = "FAILED", _("Failed (error)")

    # No index of its own: the unique (device, event_id) index and (device, kind, occurred_at) lead
    # with it. A fifth index on every event stored, which also led the planner to read every event of
    # a device to find the few ids a batch asks for.
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="events", db_index=False)
    event_id = models.CharField(_("device event id"), max_length=128)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("occurred at (device clock)"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    payload = models.JSONField(_("payload"), default=dict)
    body_sha256 = models.CharField(_("body hash"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(_("result"), default=dict, blank=True)
    error_code = models.CharField(_("error code"), max_length=48, blank=True)
    error_detail = models.TextField(_("error detail"), blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    # Set by `manage.py repair_dates` on an event stored, before dates were checked, with a time
    # outside the accepted window: occurred_at is then the receipt time, the device's value is kept here.
    occurred_at_as_sent = models.CharField(
        _("occurred at as the device sent it"), max_length=64, blank=True, default="", db_default=""
    )
    date_repaired_at = models.DateTimeField(_("date repaired at"), null=True, blank=True)

    class Meta:
        verbose_name = _("device event")
        ordering = ["occurred_at", "id"]
        constraints = [models.UniqueConstraint(fields=["device", "event_id"], name="event_id_unique_per_device")]
        indexes = [
            models.Index(fields=["device", "kind", "occurred_at"]),
            models.Index(fields=["received_at"], condition=Q(status="PENDING"), name="device_event_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.device.code}:{self.event_id} {self.kind}"


class RejectedMessage(models.Model):
    """死信: an MQTT message, or part of one, that the bridge could not store (dead letter).

    Unparseable bodies, unknown devices, wrong topics, events refused before they were stored: the
    device is told on its results topic, and operators find them here, since nothing of them is in
    DeviceEvent. `hospital` is the device's, or the one the topic names; empty when neither is known
    (then only alliance administrators see it).
    """

    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    hospital = models.ForeignKey(
        "inventory.Hospital", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    topic = models.CharField(_("topic"), max_length=512)
    payload = models.TextField(_("payload (UTF-8, undecodable bytes escaped, truncated)"), blank=True)
    payload_bytes = models.PositiveIntegerField(_("payload size (bytes)"), default=0)
    error_code = models.CharField(_("error code"), max_length=48)
    error_detail = models.TextField(_("error detail"), blank=True)
    results = models.JSONField(_("results sent to the device"), default=list, blank=True)

    class Meta:
        verbose_name = _("rejected MQTT message")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.topic} {self.error_code}"


class BridgeHeartbeat(models.Model):
    """The MQTT bridge's own sign of life, one row per client id, written every few seconds.

    `beat_at` says the process runs; `connected` whether it holds its broker connection. The
    mqtt_bridge_scan job raises MQTT_BRIDGE_DOWN when no bridge has beaten while connected lately.
    """

    client_id = models.CharField(_("MQTT client id"), max_length=128, unique=True)
    hostname = models.CharField(_("host"), max_length=255, blank=True)
    pid = models.PositiveIntegerField(_("process id"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"))
    beat_at = models.DateTimeField(_("last heartbeat"))
    connected = models.BooleanField(_("connected to the broker"), default=False)
    messages = models.PositiveBigIntegerField(_("messages handled"), default=0)
    rejected = models.PositiveBigIntegerField(_("messages rejected"), default=0)
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True)

    class Meta:
        verbose_name = _("MQTT bridge heartbeat")
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"{self.client_id} {self.beat_at:%Y-%m-%d %H:%M:%S}"
