from django.db import models
from django.utils.translation import gettext_lazy as _


class CabinetSession(models.Model):
    """One door-open … door-close of a smart cabinet, and what it changed.

    The close carries every tag the cabinet sees; the difference with the expected contents gives
    the units taken (by the user who opened the door) and returned. Unknown and misplaced tags are
    kept here for people to look at, never absorbed into stock.
    """

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Door open")
        CLOSED = "CLOSED", _("Closed and applied")
        CLOSED_WITHOUT_OPEN = "CLOSED_WITHOUT_OPEN", _("Closed with no open seen: inventory applied, no user")
        ABANDONED = "ABANDONED", _("Superseded by a later door open")
        STALE = "STALE", _("Close older than the last applied one: recorded, not applied")
        SUSPECT = "SUSPECT", _("Read suspect (reader fault?): not applied, waiting for a new read")

    cabinet = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="cabinet_sessions")
    device = models.ForeignKey("devices.Device", on_delete=models.PROTECT, related_name="cabinet_sessions")
    user = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    badge = models.CharField(_("badge"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=24, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    open_event = models.ForeignKey(
        "devices.DeviceEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    close_event = models.ForeignKey(
        "devices.DeviceEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tags_seen = models.PositiveIntegerField(_("distinct tags seen"), default=0)
    taken = models.JSONField(_("units taken"), default=list, blank=True)
    returned = models.JSONField(_("units returned"), default=list, blank=True)
    unknown_tags = models.JSONField(_("tags bound to no unit"), default=list, blank=True)
    misplaced = models.JSONField(_("tags of units that belong elsewhere"), default=list, blank=True)
    device_clock_ahead_seconds = models.IntegerField(
        _("device clock ahead by (s)"), null=True, blank=True,
        help_text=_("Set when the device's time was beyond the accepted skew: the session uses the server's time"),
    )
    read_check = models.JSONField(
        _("reader check"), default=dict, db_default={}, blank=True,
        help_text=_("The decision on the close's read: expected and missing tags, the threshold, OK or SUSPECT"),
    )
    suspect_reads = models.JSONField(
        _("suspect reads"), default=list, db_default=[], blank=True, help_text=_("Each read held as suspect, with its raw tags"),
    )

    class Meta:
        verbose_name = _("cabinet session")
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["cabinet", "status", "closed_at"])]

    def __str__(self) -> str:
        return f"{self.cabinet} {self.opened_at or self.closed_at} {self.get_status_display()}"
