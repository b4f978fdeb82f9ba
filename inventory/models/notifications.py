"""Who hears of an alert outside the SPD pages, and the outbox of what was (or will be) sent them.

A NotificationRule says: alerts of this hospital (and kind, or every kind) at or above this severity
go at once to these e-mail recipients or to this group robot (企业微信 / 钉钉 webhook); the ones
below it, if `digest` is on, go in one message a day. Quiet hours hold everything but CRITICAL until
they end. A Notification is one message to one rule's channel, written in the same transaction as
the alert it tells of and sent afterwards, outside it (inventory/services/notifications.py).
"""
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.models.alerts import Alert

_SEPARATORS = re.compile(r"[\s,;，；]+")


class NotificationRule(models.Model):
    """Where one hospital's alerts of one kind (or every kind) are sent, from which severity."""

    class Channel(models.TextChoices):
        EMAIL = "EMAIL", _("E-mail")
        WECOM = "WECOM", _("WeCom group robot (企业微信群机器人)")
        DINGTALK = "DINGTALK", _("DingTalk group robot (钉钉群机器人)")

    hospital = models.ForeignKey(
        "inventory.Hospital", on_delete=models.CASCADE, related_name="notification_rules", verbose_name=_("hospital")
    )
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(
        _("alert kind"), max_length=32, choices=Alert.Kind.choices, blank=True,
        help_text=_("Empty: every kind of alert"),
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    recipients = models.TextField(
        _("e-mail recipients"), blank=True, help_text=_("E-mail addresses, separated by commas or new lines")
    )
    webhook_url = models.URLField(
        _("webhook URL"), max_length=500, blank=True, help_text=_("The group robot's address, with its key")
    )
    secret = models.CharField(
        _("signing secret"), max_length=200, blank=True,
        help_text=_("DingTalk robots with 加签 security: the SEC… secret; empty otherwise"),
    )
    min_severity = models.CharField(
        _("minimum severity"), max_length=8, choices=Alert.Severity.choices, default=Alert.Severity.CRITICAL,
        help_text=_("Alerts at or above this severity are sent at once; the others go in the daily digest"),
    )
    quiet_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_end = models.TimeField(
        _("quiet hours until"), null=True, blank=True,
        help_text=_("Between these times (hospital time) only CRITICAL alerts are sent; the rest wait until the end"),
    )
    digest = models.BooleanField(_("daily digest"), default=True, help_text=_("Send the alerts below the minimum "
                                                                             "severity once a day, in one message"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("alert notification rule")
        ordering = ["hospital", "name", "pk"]
        indexes = [models.Index(fields=["hospital", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"

    def recipient_list(self) -> list[str]:
        return [address for address in _SEPARATORS.split(self.recipients or "") if address]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.channel == self.Channel.EMAIL:
            addresses = self.recipient_list()
            if not addresses:
                errors["recipients"] = _("Give at least one e-mail address.")
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    errors["recipients"] = _("“%(value)s” is not an e-mail address.") % {"value": address}
                    break
        elif self.channel in (self.Channel.WECOM, self.Channel.DINGTALK) and not self.webhook_url:
            errors["webhook_url"] = _("A group robot needs its webhook URL.")
        if (self.quiet_start is None) != (self.quiet_end is None):
            errors["quiet_end"] = _("Give both ends of the quiet hours, or neither.")
        if errors:
            raise ValidationError(errors)


class Notification(models.Model):
    """One message to one rule's channel: an alert (once per severity it reaches) or a daily digest.

    The outbox row is written with the alert and sent after it commits; `dedup_key` is unique, so
    a scan that raises the same alert again, or a digest job run twice, writes nothing new.
    """

    class Kind(models.TextChoices):
        ALERT = "ALERT", _("Alert")
        DIGEST = "DIGEST", _("Daily digest")

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Pending")
        SENT = "SENT", _("Sent")
        FAILED = "FAILED", _("Failed, will retry")
        GAVE_UP = "GAVE_UP", _("Gave up")
        CANCELLED = "CANCELLED", _("Cancelled")

    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="notifications",
                             verbose_name=_("rule"))
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("hospital"))
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications",
                              verbose_name=_("alert"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    severity = models.CharField(_("severity"), max_length=8, choices=Alert.Severity.choices, blank=True)
    dedup_key = models.CharField(_("de-duplication key"), max_length=120, unique=True)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), default=timezone.now, help_text=_("Held until the end of quiet hours, or retried after")
    )
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("alert notification")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notification_due",
                         condition=Q(status__in=["PENDING", "FAILED"])),
            models.Index(fields=["hospital", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.rule}: {self.subject}"
