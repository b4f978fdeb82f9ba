"""The county alliance (医共体) as one supply chain while each member keeps its own books.

- `AllianceTransfer` (调拨单): stock sent from one member hospital to another. It is a pair of
  documents created together — the issue (调出单, `issue_number`, in the sender's books) and the
  receipt (调入单, `receipt_number`, in the receiver's books) — one row read from either side.
  While in transit the stock stays in the sender's books (at its alliance in-transit location);
  at receipt the sender's ledger records it out and the receiver's in, at the same moment and the
  same cost. State changes go through `inventory.services.transfers` only.
- `CentralOrder` (集中采购单): a purchase order the centre (the lead hospital) places for several
  members, with each line's quantity allocated per destination member (`CentralOrderAllocation`).
  It is received and accepted at the regional warehouse, then distributed by alliance transfers.
- `AllocationStatement` (医共体结算分摊单): what one member received from the centre in one month, at
  cost — the centre pays the suppliers and allocates the cost by it; stored as CSV, XLSX and PDF
  with the SHA-256 of each.
"""
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AllianceTransfer(models.Model):
    """One transfer between two member hospitals of an alliance (调拨单: 调出 + 调入)."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "PENDING_APPROVAL", _("Awaiting the receiver's approval")
        APPROVED = "APPROVED", _("Approved, not yet dispatched")
        IN_TRANSIT = "IN_TRANSIT", _("In transit")
        RECEIVED = "RECEIVED", _("Received")
        REJECTED = "REJECTED", _("Rejected by the receiver")
        CANCELLED = "CANCELLED", _("Cancelled")

    class Kind(models.TextChoices):
        ORDINARY = "ORDINARY", _("Transfer between members (调拨)")
        EMERGENCY = "EMERGENCY", _("Emergency allocation (应急调拨)")
        DISTRIBUTION = "DISTRIBUTION", _("Distribution from the regional warehouse (集中配送)")

    OPEN_STATUSES = (Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_TRANSIT)

    alliance = models.CharField(_("county alliance (医共体)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.ORDINARY)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    from_hospital = models.ForeignKey(
        "inventory.Hospital", on_delete=models.PROTECT, related_name="transfers_out", verbose_name=_("sending hospital")
    )
    to_hospital = models.ForeignKey(
        "inventory.Hospital", on_delete=models.PROTECT, related_name="transfers_in", verbose_name=_("receiving hospital")
    )
    issue_number = models.CharField(_("issue number (调出单号)"), max_length=40, unique=True)
    receipt_number = models.CharField(_("receipt number (调入单号)"), max_length=40, unique=True)
    source_location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("sent from")
    )
    in_transit_location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("in transit at (sender's books)"),
    )
    destination = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("deliver to")
    )
    central_order = models.ForeignKey(
        "inventory.CentralOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="transfers"
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    decision_reason = models.CharField(_("reason for rejecting or cancelling"), max_length=500, blank=True)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    decided_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(_("approved or rejected at"), null=True, blank=True)
    dispatched_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    dispatch_order = models.ForeignKey(
        "inventory.StockOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    received_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alliance transfer (调拨单)")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(from_hospital=F("to_hospital")), name="transfer_between_two_hospitals"),
            models.CheckConstraint(
                condition=~Q(status__in=["REJECTED", "CANCELLED"]) | ~Q(decision_reason=""),
                name="transfer_reason_when_rejected_or_cancelled",
            ),
            models.CheckConstraint(condition=~Q(kind="EMERGENCY") | ~Q(reason=""), name="emergency_transfer_has_reason"),
        ]
        indexes = [
            models.Index(fields=["from_hospital", "status"]),
            models.Index(fields=["to_hospital", "status"]),
            models.Index(fields=["alliance", "status"]),
        ]

    def __str__(self) -> str:
        return self.issue_number

    @property
    def is_emergency(self) -> bool:
        return self.kind == self.Kind.EMERGENCY


class AllianceTransferLine(models.Model):
    """One unit, or a quantity of one lot, of a transfer — the sender's product and the receiver's.

    quantity = received + discrepancy once received; `scanned_quantity` is what the receiver has
    counted by scanning so far (received ≤ scanned). `value` is the cost that travels: the unit's
    cost, or the cost layers the dispatch drew (kept exact in the ledger's layer rows).
    """

    class Discrepancy(models.TextChoices):
        SHORT = "SHORT", _("Short (missing)")
        DAMAGED = "DAMAGED", _("Damaged")

    class Action(models.TextChoices):
        RETURNED = "RETURNED", _("Sent back to the sender's store")
        WRITTEN_OFF = "WRITTEN_OFF", _("Written off in the sender's books")

    transfer = models.ForeignKey(AllianceTransfer, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("sender's product"))
    receiving_product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+",
                                          verbose_name=_("receiver's product"))
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    value = models.DecimalField(_("value at cost"), max_digits=14, decimal_places=2, null=True, blank=True)
    scanned_quantity = models.PositiveIntegerField(_("counted by scan"), default=0)
    received_quantity = models.PositiveIntegerField(_("received"), default=0)
    discrepancy_quantity = models.PositiveIntegerField(_("short or damaged"), default=0)
    discrepancy = models.CharField(_("discrepancy"), max_length=8, choices=Discrepancy.choices, blank=True)
    action = models.CharField(_("what was done with it"), max_length=12, choices=Action.choices, blank=True)
    discrepancy_reason = models.CharField(_("discrepancy reason"), max_length=200, blank=True)
    allocation = models.ForeignKey(
        "inventory.CentralOrderAllocation", null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )

    class Meta:
        verbose_name = _("alliance transfer line")
        ordering = ["transfer", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="transfer_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit__isnull=True) | Q(quantity=1), name="transfer_line_unit_is_one"),
            models.CheckConstraint(condition=Q(unit__isnull=False) | ~Q(lot=""), name="transfer_line_unit_or_lot"),
            models.CheckConstraint(
                condition=Q(quantity__gte=F("received_quantity") + F("discrepancy_quantity")),
                name="transfer_line_received_within_quantity",
            ),
            models.CheckConstraint(condition=Q(scanned_quantity__lte=F("quantity")), name="transfer_line_scan_within"),
        ]

    def __str__(self) -> str:
        return f"{self.transfer} · {self.product} × {self.quantity}"


class CentralOrder(models.Model):
    """A purchase order placed by the alliance centre for several members (集中采购).

    The order itself is an ordinary `PurchaseOrder` in the lead hospital's books (per supplier,
    with the agreement and platform rules of `services.purchasing`); this row adds where it is
    received (the regional warehouse) and who it is for (`allocations`).
    """

    alliance = models.CharField(_("county alliance (医共体)"), max_length=200)
    purchase_order = models.OneToOneField(
        "inventory.PurchaseOrder", on_delete=models.PROTECT, related_name="central_order"
    )
    regional_warehouse = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("regional warehouse")
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("central purchase order (集中采购单)")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.purchase_order.number


class CentralOrderAllocation(models.Model):
    """How much of one order line is for one member hospital, and how much has been sent to it."""

    central_order = models.ForeignKey(CentralOrder, on_delete=models.CASCADE, related_name="allocations")
    order_line = models.ForeignKey("inventory.PurchaseOrderLine", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+")
    member_product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity for the member"))
    distributed_quantity = models.PositiveIntegerField(_("distributed"), default=0)

    class Meta:
        verbose_name = _("central order allocation")
        ordering = ["central_order", "order_line", "member"]
        constraints = [
            models.UniqueConstraint(fields=["order_line", "member"], name="one_allocation_per_line_and_member"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="allocation_quantity_positive"),
            models.CheckConstraint(condition=Q(distributed_quantity__lte=F("quantity")), name="allocation_within"),
        ]

    def __str__(self) -> str:
        return f"{self.order_line} → {self.member}: {self.quantity}"

    @property
    def open_quantity(self) -> int:
        return self.quantity - self.distributed_quantity


class AllocationStatement(models.Model):
    """One member's monthly cost allocation from the alliance centre (医共体结算分摊单), final once issued."""

    alliance = models.CharField(_("county alliance (医共体)"), max_length=200)
    centre = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("alliance centre (lead hospital)"))
    member = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="allocation_statements")
    month = models.DateField(_("month"))
    total = models.DecimalField(_("amount allocated"), max_digits=16, decimal_places=2)
    lines = models.PositiveIntegerField(_("lines"))
    report_csv = models.FileField(_("statement (CSV)"), upload_to="alliance/", blank=True)
    report_xlsx = models.FileField(_("statement (XLSX)"), upload_to="alliance/", blank=True)
    report_pdf = models.FileField(_("statement (PDF)"), upload_to="alliance/", blank=True)
    csv_sha256 = models.CharField(max_length=64, blank=True)
    xlsx_sha256 = models.CharField(max_length=64, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("alliance allocation statement (结算分摊单)")
        ordering = ["-month", "member"]
        constraints = [models.UniqueConstraint(fields=["member", "month"], name="one_allocation_statement_per_month")]

    def __str__(self) -> str:
        return f"{self.member} {self.month:%Y-%m}"
