"""Recalls (召回) and the items they affect.

A recall names what is recalled — a lot, a UDI-DI, a set of serials or a whole product — and,
while it is OPEN, locks every affected unit and lot balance still in the hospital (the ledger
refuses to move them except into quarantine, back to the supplier or to scrap). Opening it lists
every affected item once (`RecallItem`): stock still here, and each use on a patient.
"""
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Recall(models.Model):
    class Scope(models.TextChoices):
        LOT = "LOT", _("A lot")
        UDI_DI = "UDI_DI", _("A UDI-DI")
        SERIALS = "SERIALS", _("A set of serials")
        PRODUCT = "PRODUCT", _("A whole product")

    class Source(models.TextChoices):
        MANUFACTURER = "MANUFACTURER", _("Manufacturer notice")
        NMPA = "NMPA", _("NMPA (药监局)")
        SUPPLIER = "SUPPLIER", _("Supplier notice")
        HOSPITAL = "HOSPITAL", _("Hospital decision")

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Open")
        CLOSED = "CLOSED", _("Closed")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="recalls")
    scope = models.CharField(_("what is recalled"), max_length=8, choices=Scope.choices)
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="recalls")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    serials = models.JSONField(_("serials"), default=list, blank=True)
    reason = models.TextField(_("reason"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    notice_reference = models.CharField(_("notice reference"), max_length=100, blank=True)
    notice_date = models.DateField(_("notice date"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    # Who opened it. A recall followed from another member (`origin`) is opened by the person who
    # opened that one, acting for the alliance — not by one of this hospital's staff
    # (`opened_for_alliance`).
    opened_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    closing_note = models.TextField(_("closing note"), blank=True)
    # A recall opened in another member of the alliance that this one follows: stock of the recalled
    # item was transferred here (services/recall.py, `follow_into_members`).
    origin = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="followed_in",
        verbose_name=_("followed from"),
    )

    class Meta:
        verbose_name = _("recall")
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["product", "status"])]

    def __str__(self) -> str:
        return f"R{self.pk} {self.product} {self.get_scope_display()}"

    @property
    def opened_for_alliance(self) -> str:
        """The alliance on whose behalf another member's staff opened this recall here (empty for a
        hospital's own recall)."""
        return self.hospital.alliance if self.origin_id else ""

    @property
    def label(self) -> str:
        what = {self.Scope.LOT: f" lot {self.lot}", self.Scope.SERIALS: f" SN {', '.join(self.serials)}"}
        return f"R{self.pk} ({self.product.name}{what.get(self.scope, '')})"


class RecallItem(models.Model):
    """One affected thing: a unit, a lot balance at a location, or a use on a patient (consumption)."""

    class Kind(models.TextChoices):
        STOCK = "STOCK", _("In stock")
        USED = "USED", _("Used on a patient")

    class Handling(models.TextChoices):
        PENDING = "PENDING", _("To handle")
        QUARANTINED = "QUARANTINED", _("Quarantined")
        RETURNED = "RETURNED", _("Returned to supplier")
        GONE = "GONE", _("No longer in the hospital")

    class FollowUp(models.TextChoices):
        PENDING = "PENDING", _("To follow up")
        NOTIFIED = "NOTIFIED", _("Patient notified")
        NOT_NEEDED = "NOT_NEEDED", _("Not needed")

    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    consumption = models.ForeignKey(
        "inventory.Consumption", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    handling = models.CharField(_("handling"), max_length=12, choices=Handling.choices, default=Handling.PENDING)
    follow_up = models.CharField(_("patient follow-up"), max_length=12, choices=FollowUp.choices, blank=True)
    note = models.TextField(_("note"), blank=True)
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    handled_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("recall item")
        ordering = ["recall", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.recall_id}: {self.kind} {self.unit_id or self.lot}"
