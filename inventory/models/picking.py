"""Picking (拣货), dispatch (配送) and department receipt (科室验收) — the warehouse's side of a requisition.

A pick list gathers requisition lines to be picked at one source location; its lines hold their
FEFO proposal as `StockReservation`s (holder PICK_LIST_LINE), so two pick lists never propose the
same stock. The picker confirms each unit or lot by scanning it (`PickedItem`). Dispatch turns what
was picked into one `Delivery` (配送单) per receiving location: one TRANSFER stock order from the
source into the department's IN_TRANSIT location. The department receives it (another TRANSFER, in
transit → its store), recording what arrived short or damaged and whether that went back to the
warehouse or was written off. Quantities are in the product's base unit.
"""
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PickList(models.Model):
    """A pick list (拣货单): requisition lines to pick at one source location."""

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Picking")
        DISPATCHED = "DISPATCHED", _("Dispatched")
        CANCELLED = "CANCELLED", _("Cancelled")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="pick_lists")
    number = models.CharField(_("number"), max_length=32)
    source_location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="pick_lists", verbose_name=_("pick from"),
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    dispatched_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)

    class Meta:
        verbose_name = _("pick list (拣货单)")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["hospital", "number"], name="pick_list_number_per_hospital")]
        indexes = [models.Index(fields=["hospital", "status"])]

    def __str__(self) -> str:
        return self.number


class PickListLine(models.Model):
    """One requisition line to pick: `quantity` base units for `destination`; `picked_quantity` so far.

    A requisition line is on at most one open pick list line (partial UNIQUE index), so two pick
    lists cannot both pick it; what was not picked by dispatch stays open on the requisition.
    """

    pick_list = models.ForeignKey(PickList, on_delete=models.CASCADE, related_name="lines")
    requisition_line = models.ForeignKey(
        "inventory.RequisitionLine", on_delete=models.PROTECT, related_name="pick_list_lines"
    )
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("deliver to"),
    )
    quantity = models.PositiveIntegerField(_("to pick"))
    picked_quantity = models.PositiveIntegerField(_("picked"), default=0)
    is_open = models.BooleanField(_("open"), default=True)

    class Meta:
        verbose_name = _("pick list line")
        ordering = ["pick_list", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="pick_line_quantity_positive"),
            models.CheckConstraint(condition=Q(picked_quantity__lte=F("quantity")), name="pick_line_picked_within_quantity"),
            models.UniqueConstraint(
                fields=["requisition_line"], condition=Q(is_open=True), name="requisition_line_on_one_open_pick_list",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pick_list} · {self.product} × {self.quantity}"

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.picked_quantity


class PickedItem(models.Model):
    """A unit or lot quantity the picker confirmed by scanning, with what FEFO had proposed in its place."""

    line = models.ForeignKey(PickListLine, on_delete=models.CASCADE, related_name="picked_items")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot_balance = models.ForeignKey(
        "inventory.LotBalance", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    # Another lot (or unit) than the proposed one: what was proposed, for the record.
    deviates = models.BooleanField(_("not the proposed stock"), default=False)
    proposed_lot = models.CharField(_("proposed lot"), max_length=64, blank=True)
    proposed_expiry = models.DateField(_("proposed expiry"), null=True, blank=True)
    code = models.CharField(_("code as scanned"), max_length=300, blank=True)
    picked_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    picked_at = models.DateTimeField(_("picked at"), default=timezone.now)

    class Meta:
        verbose_name = _("picked item")
        ordering = ["line", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="picked_item_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit__isnull=False, lot_balance__isnull=True, quantity=1)
                | Q(unit__isnull=True, lot_balance__isnull=False),
                name="picked_item_unit_or_lot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line} ← {self.unit_id or self.lot} × {self.quantity}"


class Delivery(models.Model):
    """A delivery slip (配送单): what one pick list dispatched to one receiving location."""

    class Status(models.TextChoices):
        IN_TRANSIT = "IN_TRANSIT", _("In transit")
        RECEIVED = "RECEIVED", _("Received")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="deliveries")
    number = models.CharField(_("number"), max_length=32)
    pick_list = models.ForeignKey(PickList, on_delete=models.PROTECT, related_name="deliveries")
    department = models.ForeignKey("inventory.Department", on_delete=models.PROTECT, related_name="deliveries")
    destination = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    in_transit_location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.IN_TRANSIT)
    dispatch_order = models.ForeignKey("inventory.StockOrder", on_delete=models.PROTECT, related_name="+")
    receipt_order = models.ForeignKey(
        "inventory.StockOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    return_order = models.ForeignKey(
        "inventory.StockOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("What arrived short or damaged and went back to the warehouse"),
    )
    write_off_order = models.ForeignKey(
        "inventory.StockOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("What arrived short or damaged and was written off"),
    )
    dispatched_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    dispatched_at = models.DateTimeField(_("dispatched at"))
    received_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)
    zero_stock = models.BooleanField(_("zero-stock (零库存): received on dispatch"), default=False)

    class Meta:
        verbose_name = _("delivery (配送单)")
        verbose_name_plural = _("deliveries")
        ordering = ["-dispatched_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["hospital", "number"], name="delivery_number_per_hospital")]
        indexes = [models.Index(fields=["hospital", "status"]), models.Index(fields=["department", "status"])]

    def __str__(self) -> str:
        return self.number


class DeliveryItem(models.Model):
    """A unit or lot quantity on a delivery, and what the department did with it."""

    class Discrepancy(models.TextChoices):
        SHORT = "SHORT", _("Short (missing)")
        DAMAGED = "DAMAGED", _("Damaged")

    class Action(models.TextChoices):
        RETURNED = "RETURNED", _("Sent back to the warehouse")
        WRITTEN_OFF = "WRITTEN_OFF", _("Written off")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="items")
    pick_list_line = models.ForeignKey(PickListLine, on_delete=models.PROTECT, related_name="delivery_items")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("dispatched"))
    received_quantity = models.PositiveIntegerField(_("received"), default=0)
    discrepancy_quantity = models.PositiveIntegerField(_("short or damaged"), default=0)
    discrepancy = models.CharField(_("discrepancy"), max_length=8, choices=Discrepancy.choices, blank=True)
    action = models.CharField(_("done with it"), max_length=12, choices=Action.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("delivery item")
        ordering = ["delivery", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="delivery_item_quantity_positive"),
            models.CheckConstraint(
                condition=Q(received_quantity__lte=F("quantity") - F("discrepancy_quantity")),
                name="delivery_item_received_within_dispatched",
            ),
            models.CheckConstraint(
                condition=Q(discrepancy_quantity=0) | (~Q(discrepancy="") & ~Q(action="") & ~Q(reason="")),
                name="delivery_item_discrepancy_explained",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delivery} · {self.unit_id or self.lot} × {self.quantity}"
