from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DeliveryNote(models.Model):
    """A supplier's delivery note (送货单). Its lines are accepted or rejected one by one (验收)."""

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED", _("Received, awaiting acceptance")
        # Some lines decided; unit lines nobody scanned are still open (see services.receiving).
        PARTLY_ACCEPTED = "PARTLY_ACCEPTED", _("Partly accepted, lines open")
        ACCEPTED = "ACCEPTED", _("Acceptance done")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="delivery_notes")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="delivery_notes")
    number = models.CharField(_("delivery note number"), max_length=64)
    receiving_location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="delivery_notes"
    )
    delivered_at = models.DateTimeField(_("delivered at"), default=timezone.now)
    temperature_c = models.DecimalField(
        _("temperature on arrival °C"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    received_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    accepted_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    # The order this delivery is against (services.purchasing): acceptance then takes in no more than
    # is still outstanding on it.
    purchase_order = models.ForeignKey(
        "inventory.PurchaseOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="delivery_notes",
        verbose_name=_("purchase order"),
    )

    class Meta:
        verbose_name = _("delivery note")
        ordering = ["-delivered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "supplier", "number"], name="delivery_note_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.supplier} {self.number}"


class DeliveryLine(models.Model):
    """One line of a delivery note: one scanned unit, or a quantity of one lot."""

    note = models.ForeignKey(DeliveryNote, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    raw_udi = models.CharField(_("UDI as scanned"), max_length=300, blank=True)
    product = models.ForeignKey(
        "inventory.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="delivery_lines"
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    serial = models.CharField(_("serial"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    production_date = models.DateField(_("production date"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    # The packaging unit the supplier delivered in ("" = the base unit); `quantity` and `unit_price`
    # are always per base unit, the factor is kept as it was on the day so "3 盒" can be shown later.
    received_unit = models.CharField(_("delivered in unit"), max_length=16, blank=True, default="")
    received_unit_factor = models.PositiveIntegerField(_("base units per delivered unit"), default=1)
    # Physically verified: the unit (or lot label) was scanned against this line, by whom and when.
    scanned_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("scanned by"),
    )
    scanned_at = models.DateTimeField(_("scanned at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery line")
        ordering = ["note", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["note", "line_no"], name="delivery_line_no_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="delivery_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.note} #{self.line_no}"


class AcceptanceRecord(models.Model):
    """The acceptance decision (验收记录) on one delivery line, with every reason when rejected."""

    class Decision(models.TextChoices):
        ACCEPTED = "ACCEPTED", _("Accepted")
        REJECTED = "REJECTED", _("Rejected")

    line = models.OneToOneField(DeliveryLine, on_delete=models.PROTECT, related_name="acceptance")
    decision = models.CharField(_("decision"), max_length=16, choices=Decision.choices)
    reason_code = models.CharField(_("reason code"), max_length=48, blank=True)
    reasons = models.JSONField(_("all reasons"), default=list, blank=True)
    is_gift = models.BooleanField(_("gift (赠送)"), default=False)
    decided_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(_("decided at"), default=timezone.now)
    # A unit line accepted although nobody scanned it: an operator's or administrator's decision
    # (`decided_by`) with its reason. db_default: bulk loaders that name their columns still work.
    accepted_without_scan = models.BooleanField(_("accepted without scanning"), default=False, db_default=False)
    without_scan_reason = models.CharField(
        _("reason for accepting without scanning"), max_length=500, blank=True, default="", db_default=""
    )

    class Meta:
        verbose_name = _("acceptance record")
        constraints = [
            models.CheckConstraint(
                condition=Q(decision="ACCEPTED", reason_code="") | (Q(decision="REJECTED") & ~Q(reason_code="")),
                name="rejection_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(accepted_without_scan=False, without_scan_reason="")
                | (Q(accepted_without_scan=True, decision="ACCEPTED") & ~Q(without_scan_reason="")),
                name="unscanned_acceptance_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line}: {self.get_decision_display()} {self.reason_code}".strip()


class ReceivingDraft(models.Model):
    """A delivery being scanned in at the warehouse before its note is recorded (收货草稿).

    Kept in the database, per hospital, so that a long delivery survives a closed browser and a
    colleague can resume it. `lines` holds what was scanned or typed, in order: each a dict with
    udi, product, lot, expiry, quantity, price, scanned_by, scanned_at. Once recorded, `note` is set.
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.CASCADE, related_name="receiving_drafts")
    key = models.CharField(_("key"), max_length=32, unique=True)
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="+")
    number = models.CharField(_("delivery note number"), max_length=64)
    receiving_location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    temperature_c = models.DecimalField(
        _("temperature on arrival °C"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    lines = models.JSONField(_("lines"), default=list, blank=True)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("started at"), default=timezone.now)
    updated_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(_("last change"), default=timezone.now)
    note = models.OneToOneField(
        DeliveryNote, null=True, blank=True, on_delete=models.SET_NULL, related_name="draft"
    )

    class Meta:
        verbose_name = _("receiving draft")
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.supplier} {self.number} ({len(self.lines)})"


class StockOrder(models.Model):
    """The document behind a transfer, a return to the supplier or a scrap (移库单/退货单/报损单)."""

    class Kind(models.TextChoices):
        PUTAWAY = "PUTAWAY", _("Put away")
        TRANSFER = "TRANSFER", _("Transfer")
        RETURN_TO_SUPPLIER = "RETURN_TO_SUPPLIER", _("Return to supplier")
        SCRAP = "SCRAP", _("Scrap")
        TAKE = "TAKE", _("Taken by scan")
        PUT_BACK = "PUT_BACK", _("Put back by scan")
        QUARANTINE_RELEASE = "QUARANTINE_RELEASE", _("Release from quarantine")
        DEPARTMENT_EXPENSE = "DEPARTMENT_EXPENSE", _("Department expense at a count (科室盘点消耗)")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="stock_orders")
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    to_location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    supplier = models.ForeignKey(
        "inventory.Supplier", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason_code = models.CharField(_("reason code"), max_length=32, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    # When it was entered: later than occurred_at for a paper record entered after an outage.
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("stock order")
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"
