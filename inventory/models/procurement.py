"""Purchasing (采购): purchase plans by hand or from demand, and purchase orders to one supplier each.

An order line names the supply agreement it buys under and the procurement platform's order
reference (阳光采购 / 网采); the rules on what may be ordered live in `inventory.services.purchasing`.
What was delivered against a line is counted at acceptance (`delivered_quantity`, kept with the
acceptance in one transaction), so the order's state follows the deliveries and never a typed value.
"""
from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PurchasePlan(models.Model):
    """A purchase plan (采购计划): products and quantities to buy, before they are split by supplier."""

    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("Draft")
        ORDERED = "ORDERED", _("Ordered")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="purchase_plans")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    source = models.CharField(
        _("source"), max_length=100, blank=True,
        help_text=_("Where the demand came from: by hand, replenishment suggestions, requisitions."),
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    ordered_at = models.DateTimeField(_("ordered at"), null=True, blank=True)
    # Demand that was selected but could not be planned, each with its reason (plan_from_demand):
    # kept so the plan's page still lists it; those sources stay open for a later plan.
    unplanned = models.JSONField(_("lines not planned"), default=list, blank=True)

    class Meta:
        verbose_name = _("purchase plan (采购计划)")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"PP-{self.pk:06d}" if self.pk else "PP-new"


class PurchasePlanLine(models.Model):
    """One product and quantity of a plan, with what ordering it needs (agreement, platform reference)."""

    plan = models.ForeignKey(PurchasePlan, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    agreement = models.ForeignKey(
        "inventory.SupplyAgreement", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("supply agreement"),
    )
    platform_reference = models.CharField(_("platform order reference"), max_length=64, blank=True)
    emergency_reason = models.CharField(_("emergency reason (off-platform)"), max_length=500, blank=True)
    nhsa_exemption_reason = models.CharField(_("医保 code exemption reason"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("purchase plan line")
        ordering = ["plan", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "line_no"], name="purchase_plan_line_no_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="purchase_plan_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} #{self.line_no}"


class PlanDemandSource(models.Model):
    """A replenishment suggestion or a requisition line's shortfall taken into a purchase plan, or
    into a member's share of a central order (集中采购, services.central_planning).

    One row per source, and at most one per suggestion and per requisition line (UNIQUE): a source
    is planned once, whoever plans it at the same moment, by its hospital or by the alliance centre
    (services.purchasing.plan_from_demand, services.central_planning.place_central_plan).
    """

    plan = models.ForeignKey(PurchasePlan, on_delete=models.CASCADE, related_name="sources", null=True, blank=True)
    plan_line = models.ForeignKey(PurchasePlanLine, on_delete=models.CASCADE, related_name="sources", null=True,
                                  blank=True)
    allocation = models.ForeignKey(
        "inventory.CentralOrderAllocation", on_delete=models.CASCADE, related_name="demand_sources", null=True,
        blank=True, verbose_name=_("central order allocation"),
    )
    suggestion = models.OneToOneField(
        "inventory.ReplenishmentSuggestion", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="purchase_source",
    )
    requisition_line = models.OneToOneField(
        "inventory.RequisitionLine", null=True, blank=True, on_delete=models.SET_NULL, related_name="purchase_source",
    )
    description = models.CharField(_("source"), max_length=200, help_text=_("Where the need came from, as shown"))
    quantity = models.PositiveIntegerField(_("quantity needed"))

    class Meta:
        verbose_name = _("purchase plan source")
        ordering = ["plan", "plan_line", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(suggestion__isnull=True) | Q(requisition_line__isnull=True), name="plan_source_one_kind"
            ),
            models.CheckConstraint(
                condition=Q(plan__isnull=False, plan_line__isnull=False, allocation__isnull=True)
                | Q(plan__isnull=True, plan_line__isnull=True, allocation__isnull=False),
                name="plan_source_in_a_plan_or_a_central_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.planned_in}: {self.description}"

    @property
    def planned_in(self) -> str:
        """Where the source was planned: its purchase plan, or the central order of its allocation."""
        if self.plan_id is not None:
            return f"PP-{self.plan_id:06d}"
        return self.allocation.central_order.purchase_order.number


class PurchaseOrder(models.Model):
    """A purchase order (采购订单) to one supplier; its state follows what acceptance takes in."""

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Open")
        PARTLY_DELIVERED = "PARTLY_DELIVERED", _("Partly delivered")
        DELIVERED = "DELIVERED", _("Delivered")
        CLOSED = "CLOSED", _("Closed")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="purchase_orders")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="purchase_orders")
    number = models.CharField(_("order number"), max_length=32)
    plan = models.ForeignKey(
        PurchasePlan, null=True, blank=True, on_delete=models.PROTECT, related_name="orders",
        verbose_name=_("purchase plan"),
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OPEN)
    ordered_at = models.DateTimeField(_("ordered at"), default=timezone.now)
    promised_date = models.DateField(_("promised delivery date"))
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    closed_reason = models.CharField(_("reason for closing"), max_length=500, blank=True)
    closed_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("purchase order (采购订单)")
        ordering = ["-ordered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "number"], name="purchase_order_number_unique"),
            models.CheckConstraint(
                condition=~Q(status="CLOSED") | ~Q(closed_reason=""), name="closed_order_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open_for_delivery(self) -> bool:
        return self.status in (self.Status.OPEN, self.Status.PARTLY_DELIVERED)


class PurchaseOrderLine(models.Model):
    """One line of an order: a product bought under one supply agreement, with its platform reference."""

    order = models.ForeignKey(PurchaseOrder, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="order_lines")
    agreement = models.ForeignKey(
        "inventory.SupplyAgreement", on_delete=models.PROTECT, related_name="order_lines",
        verbose_name=_("supply agreement"),
    )
    quantity = models.PositiveIntegerField(_("quantity ordered"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    platform_reference = models.CharField(_("platform order reference"), max_length=64, blank=True)
    # Ordered off the platform although the product is high-value or VBP: who decided, and why.
    emergency_reason = models.CharField(_("emergency reason (off-platform)"), max_length=500, blank=True)
    emergency_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    nhsa_exemption_reason = models.CharField(_("医保 code exemption reason"), max_length=500, blank=True)
    delivered_quantity = models.PositiveIntegerField(_("quantity accepted"), default=0)

    class Meta:
        verbose_name = _("purchase order line")
        ordering = ["order", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="purchase_order_line_no_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="purchase_order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(delivered_quantity__lte=F("quantity")), name="purchase_order_not_over_delivered"
            ),
            models.CheckConstraint(
                condition=Q(emergency_reason="") | Q(emergency_by__isnull=False), name="emergency_order_has_decider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} #{self.line_no}"

    @property
    def outstanding(self) -> int:
        return self.quantity - self.delivered_quantity

    @property
    def value(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def through_platform(self) -> bool:
        return bool(self.platform_reference)


class PriceChange(models.Model):
    """A change of a purchase price (调价): a new dated supply agreement replacing the one in force.

    The price of an agreement is never edited in place (the API and the admin refuse it): the old
    agreement ends the day before `effective_from`, the new one starts then, and this row keeps why
    and who approved it. Both agreements stay, so the price a delivery was checked against is known.
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="price_changes")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="price_changes")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="price_changes")
    previous = models.ForeignKey(
        "inventory.SupplyAgreement", on_delete=models.PROTECT, related_name="replaced_by",
        verbose_name=_("previous agreement"),
    )
    agreement = models.OneToOneField(
        "inventory.SupplyAgreement", on_delete=models.PROTECT, related_name="price_change",
        verbose_name=_("new agreement"),
    )
    old_price = models.DecimalField(_("old price"), max_digits=12, decimal_places=2)
    new_price = models.DecimalField(_("new price"), max_digits=12, decimal_places=2)
    effective_from = models.DateField(_("effective from"))
    reason = models.CharField(_("reason"), max_length=500)
    approved_by = models.ForeignKey(
        "inventory.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("approved by")
    )
    recorded_by = models.ForeignKey(
        "inventory.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("price change (调价)")
        ordering = ["product", "effective_from", "pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="price_change_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.product}: {self.old_price} → {self.new_price} ({self.effective_from})"
