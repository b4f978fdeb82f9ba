from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Alert(models.Model):
    """A typed warning for people to act on, de-duplicated by its subject.

    At most one unresolved alert exists per (hospital, kind, subject_key): raising it again only
    bumps `last_seen_at` and `occurrences` (and may escalate severity). People acknowledge and
    resolve it with a note; a condition that goes away is resolved automatically by the scan.
    """

    class Kind(models.TextChoices):
        NEAR_EXPIRY = "NEAR_EXPIRY", _("Near expiry (近效期)")
        EXPIRED = "EXPIRED", _("Expired and locked (过期)")
        CERTIFICATE_EXPIRING = "CERTIFICATE_EXPIRING", _("Certificate expiring (证照将到期)")
        CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED", _("Certificate expired (证照过期)")
        RETURN_OVERDUE = "RETURN_OVERDUE", _("Taken and overdue for return (定时回库预警)")
        DEVICE_OFFLINE = "DEVICE_OFFLINE", _("Device offline (设备离线)")
        UNKNOWN_TAG = "UNKNOWN_TAG", _("Unknown tag in a cabinet")
        MISPLACED_TAG = "MISPLACED_TAG", _("Misplaced unit in a cabinet")
        BELOW_PAR = "BELOW_PAR", _("Stock below par level (低于基数)")
        HIS_DELIVERY_FAILING = "HIS_DELIVERY_FAILING", _("HIS charge delivery failing")
        # MQTT cabinets (trust at the edges)
        MQTT_BRIDGE_DOWN = "MQTT_BRIDGE_DOWN", _("MQTT cabinet bridge down")
        DEVICE_CLOCK_SKEW = "DEVICE_CLOCK_SKEW", _("Device clock wrong (设备时钟偏差)")
        CABINET_READ_SUSPECT = "CABINET_READ_SUSPECT", _("Cabinet read suspect: reader fault? (读取异常)")
        CABINET_STALE_CLOSE = "CABINET_STALE_CLOSE", _("Cabinet door close arrived out of date (过期关门事件)")
        # Distribution
        URGENT_REQUISITION = "URGENT_REQUISITION", _("Urgent requisition (紧急申领)")
        SET_PARTNER_MISSING = "SET_PARTNER_MISSING", _("Set component used without its partner (配套组件缺用)")
        # Purchasing (services.prices)
        PRICE_CHANGED = "PRICE_CHANGED", _("Purchase price changed (调价)")
        VBP_LAGGING = "VBP_LAGGING", _("VBP use lags the time elapsed (带量采购进度滞后)")
        VBP_SUBSTITUTE_USED = "VBP_SUBSTITUTE_USED", _("Non-VBP substitute used (非集采替代品使用)")
        VBP_RENEWAL = "VBP_RENEWAL", _("VBP contract ending: renew (带量采购合同即将到期)")
        # Consumable review (services.review)
        USE_ANOMALY = "USE_ANOMALY", _("Watched item: unusual use (重点监控耗材异常)")
        RATIO_RED_LINE = "RATIO_RED_LINE", _("耗占比 above the red line")
        SETTLEMENT_DISPUTED = "SETTLEMENT_DISPUTED", _("Consignment statement disputed by the supplier")
        # Recall (services.recall): another member's recall reached stock transferred here
        RECALL_FOLLOWED = "RECALL_FOLLOWED", _("Recall opened here for the alliance (医共体召回)")

    class Severity(models.TextChoices):
        INFO = "INFO", _("Info")
        WARNING = "WARNING", _("Warning")
        CRITICAL = "CRITICAL", _("Critical")

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Open")
        ACKNOWLEDGED = "ACKNOWLEDGED", _("Acknowledged")
        RESOLVED = "RESOLVED", _("Resolved")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    subject_key = models.CharField(
        _("subject"), max_length=128, help_text=_("What the alert is about, e.g. unit:42, certificate:7, device:3")
    )
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    message = models.CharField(_("message"), max_length=500)
    details = models.JSONField(_("details"), default=dict, blank=True)
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    product = models.ForeignKey(
        "inventory.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    certificate = models.ForeignKey(
        "inventory.Certificate", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    device = models.ForeignKey("devices.Device", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    first_raised_at = models.DateTimeField(_("first raised at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledge_note = models.CharField(_("acknowledge note"), max_length=500, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("Empty when resolved automatically because the condition went away"),
    )
    resolve_note = models.CharField(_("resolve note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("alert")
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hospital", "kind", "subject_key"], condition=~Q(status="RESOLVED"),
                name="one_unresolved_alert_per_subject",
            )
        ]
        indexes = [models.Index(fields=["hospital", "status", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject_key}"
