import hashlib
import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _


class Device(models.Model):
    """A scanner, RFID reader or smart cabinet. Stock moved by a device is attributed to it."""

    class Kind(models.TextChoices):
        SERIAL_SCANNER = "SERIAL_SCANNER", _("Serial barcode scanner")
        WEDGE_SCANNER = "WEDGE_SCANNER", _("Keyboard-wedge scanner station")
        RFID_READER = "RFID_READER", _("RFID reader")
        CABINET_HTTP = "CABINET_HTTP", _("Smart cabinet (HTTP)")
        CABINET_MQTT = "CABINET_MQTT", _("Smart cabinet (MQTT)")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="devices")
    location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="devices"
    )
    code = models.CharField(_("device code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    token_hash = models.CharField(_("token hash (SHA-256)"), max_length=64, blank=True)
    config = models.JSONField(_("configuration"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    last_seen = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("device")
        ordering = ["hospital", "code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def issue_token(self) -> str:
        """A new secret for this device; only its hash is kept, so show it once."""
        token = secrets.token_urlsafe(32)
        self.token_hash = hashlib.sha256(token.encode()).hexdigest()
        return token
