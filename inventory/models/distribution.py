"""Distribution (the D of SPD): department requisitions (科室申领) and par-level replenishment (主动配送).

All quantities here are in the product's base (stock) unit. A requisition line keeps every stage of
its fulfilment side by side — requested, approved, picked, dispatched, received — plus what was
cancelled (with a reason) and what arrived short or damaged at receipt, so partial fulfilment is
always explicit: `open_quantity` is what is still to be picked, nothing is lost in between.
State changes go through `inventory.services.requisitions` only.
"""
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Requisition(models.Model):
    """A department's request for stock from the warehouse (申领单)."""

    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("Draft")
        SUBMITTED = "SUBMITTED", _("Submitted")
        APPROVED = "APPROVED", _("Approved")
        PICKING = "PICKING", _("Picking")
        DISPATCHED = "DISPATCHED", _("Dispatched")
        RECEIVED = "RECEIVED", _("Received")
        REJECTED = "REJECTED", _("Rejected")
        CANCELLED = "CANCELLED", _("Cancelled")

    class Urgency(models.TextChoices):
        ROUTINE = "ROUTINE", _("Routine")
        URGENT = "URGENT", _("Urgent")

    class Source(models.TextChoices):
        DEPARTMENT = "DEPARTMENT", _("Department request (科室申领)")
        REPLENISHMENT = "REPLENISHMENT", _("Par-level replenishment (主动配送)")

    # Still to be worked on by the warehouse, in the order the work happens.
    OPEN_STATUSES = (Status.SUBMITTED, Status.APPROVED, Status.PICKING)
    FINAL_STATUSES = (Status.RECEIVED, Status.REJECTED, Status.CANCELLED)

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="requisitions")
    department = models.ForeignKey("inventory.Department", on_delete=models.PROTECT, related_name="requisitions")
    location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="requisitions",
        verbose_name=_("deliver to"), help_text=_("The department store or smart cabinet the stock goes to"),
    )
    number = models.CharField(_("number"), max_length=32)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.DEPARTMENT)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    urgency = models.CharField(_("urgency"), max_length=8, choices=Urgency.choices, default=Urgency.ROUTINE)
    note = models.CharField(_("note"), max_length=500, blank=True)
    status_reason = models.CharField(
        _("reason"), max_length=500, blank=True, help_text=_("Why it was rejected or cancelled")
    )
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("approved or rejected at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("requisition (申领单)")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "number"], name="requisition_number_per_hospital"),
            models.CheckConstraint(
                condition=~Q(status__in=["REJECTED", "CANCELLED"]) | ~Q(status_reason=""),
                name="requisition_reason_when_rejected_or_cancelled",
            ),
        ]
        indexes = [
            models.Index(fields=["hospital", "status", "urgency"]),
            models.Index(fields=["department", "status"]),
            models.Index(fields=["location", "status"]),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_urgent(self) -> bool:
        return self.urgency == self.Urgency.URGENT


class RequisitionLine(models.Model):
    """One product of a requisition, with each stage of its fulfilment in base units.

    approved ≤ requested; picked + cancelled ≤ approved (requested while not yet approved);
    dispatched ≤ picked; received + discrepancy ≤ dispatched. The database enforces each.
    """

    requisition = models.ForeignKey(Requisition, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="requisition_lines")
    requested_quantity = models.PositiveIntegerField(_("requested"))
    entered_quantity = models.PositiveIntegerField(
        _("quantity as entered"), null=True, blank=True, help_text=_("In the packaging unit the requester chose")
    )
    entered_unit = models.CharField(_("unit as entered"), max_length=16, blank=True)
    approved_quantity = models.PositiveIntegerField(_("approved"), null=True, blank=True)
    picked_quantity = models.PositiveIntegerField(_("picked"), default=0)
    dispatched_quantity = models.PositiveIntegerField(_("dispatched"), default=0)
    received_quantity = models.PositiveIntegerField(_("received"), default=0)
    discrepancy_quantity = models.PositiveIntegerField(
        _("short or damaged at receipt"), default=0,
        help_text=_("Dispatched but not accepted by the department"),
    )
    cancelled_quantity = models.PositiveIntegerField(_("cancelled"), default=0)
    cancel_reason = models.CharField(_("cancel reason"), max_length=500, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("requisition line")
        ordering = ["requisition", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(requested_quantity__gt=0), name="requisition_line_requested_positive"),
            models.CheckConstraint(
                condition=Q(approved_quantity__isnull=True) | Q(approved_quantity__lte=F("requested_quantity")),
                name="requisition_line_approved_within_requested",
            ),
            models.CheckConstraint(
                condition=(
                    Q(approved_quantity__isnull=True,
                      requested_quantity__gte=F("picked_quantity") + F("cancelled_quantity"))
                    | Q(approved_quantity__gte=F("picked_quantity") + F("cancelled_quantity"))
                ),
                name="requisition_line_picked_within_approved",
            ),
            models.CheckConstraint(
                condition=Q(dispatched_quantity__lte=F("picked_quantity")),
                name="requisition_line_dispatched_within_picked",
            ),
            models.CheckConstraint(
                condition=Q(dispatched_quantity__gte=F("received_quantity") + F("discrepancy_quantity")),
                name="requisition_line_received_within_dispatched",
            ),
            models.CheckConstraint(
                condition=Q(cancelled_quantity=0) | ~Q(cancel_reason=""),
                name="requisition_line_cancel_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.requisition} · {self.product} × {self.requested_quantity}"

    @property
    def allowed_quantity(self) -> int:
        """What may be delivered: the approved quantity once approved, else the requested one."""
        return self.requested_quantity if self.approved_quantity is None else self.approved_quantity

    @property
    def open_quantity(self) -> int:
        """Still to be picked (neither picked nor cancelled)."""
        return self.allowed_quantity - self.picked_quantity - self.cancelled_quantity

    @property
    def in_transit_quantity(self) -> int:
        """Dispatched and not yet received (nor written off as short or damaged)."""
        return self.dispatched_quantity - self.received_quantity - self.discrepancy_quantity


class ReplenishmentSuggestion(models.Model):
    """What a department store or smart cabinet should get to reach its par level (主动配送建议).

    quantity = target − (on hand + in transit + open requisitions), rounded up to the packaging
    unit; the figures it came from are kept so a person can see why. Recomputing replaces the
    open suggestions of the hospital; taken-up and dismissed ones stay as they were.

    On PostgreSQL one composite foreign key (par level, location, product) → the par level's
    (id, location, product) proves all three at once, and that the location and product are the
    par level's (migration 0044): a recompute inserts ~19,000 rows, and each single-column foreign
    key was one more lookup per row at commit. It cascades a par level's change of location or
    product to its suggestions. The ORM's relations stay, without their own constraints.
    """

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Open")
        REQUISITIONED = "REQUISITIONED", _("Turned into a requisition")
        DISMISSED = "DISMISSED", _("Dismissed")
        PURCHASE_PLANNED = "PURCHASE_PLANNED", _("Taken into a purchase plan")

    # (hospital, status) serves every read by hospital: no index of its own.
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+", db_index=False)
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="suggestions",
                                 db_constraint=False)
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="suggestions",
                                db_constraint=False)
    par_level = models.ForeignKey("inventory.ParLevel", on_delete=models.CASCADE, related_name="suggestions",
                                  db_constraint=False)
    minimum = models.PositiveIntegerField(_("minimum"))
    target = models.PositiveIntegerField(_("target"))
    on_hand = models.IntegerField(_("on hand"))
    in_transit = models.IntegerField(_("in transit"))
    on_order = models.IntegerField(_("open requisitions"))
    quantity = models.PositiveIntegerField(_("suggested quantity"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    # Empty on every OPEN suggestion: indexed only where set (partial indexes below).
    requisition_line = models.ForeignKey(
        RequisitionLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = _("replenishment suggestion")
        ordering = ["location", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "product"], condition=Q(status="OPEN"), name="one_open_suggestion_per_location_product"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="suggestion_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["hospital", "status"]),
            models.Index(fields=["requisition_line"], condition=Q(requisition_line__isnull=False),
                         name="suggestion_requisition_line"),
            models.Index(fields=["decided_by"], condition=Q(decided_by__isnull=False), name="suggestion_decided_by"),
        ]

    def __str__(self) -> str:
        return f"{self.product} → {self.location}: {self.quantity}"


class ParLevelProposal(models.Model):
    """A new par level proposed from recent use, for a person to accept or dismiss (never applied silently).

    proposed minimum = ⌈p95 daily use × lead days⌉, proposed target = ⌈p95 daily use × cover days⌉,
    over the last `weeks` weeks of use at the location.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", pgettext_lazy("decision", "Pending")
        ACCEPTED = "ACCEPTED", _("Accepted")
        DISMISSED = "DISMISSED", pgettext_lazy("decision", "Dismissed")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+")
    par_level = models.ForeignKey("inventory.ParLevel", on_delete=models.CASCADE, related_name="proposals")
    current_minimum = models.PositiveIntegerField(_("current minimum"))
    current_target = models.PositiveIntegerField(_("current target"), null=True, blank=True)
    proposed_minimum = models.PositiveIntegerField(_("proposed minimum"))
    proposed_target = models.PositiveIntegerField(_("proposed target"))
    p95_daily_use = models.DecimalField(_("p95 daily use"), max_digits=12, decimal_places=2)
    weeks = models.PositiveSmallIntegerField(_("weeks of use"))
    lead_days = models.PositiveSmallIntegerField(_("lead days"))
    cover_days = models.PositiveSmallIntegerField(_("cover days"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("proposed par level")
        ordering = ["par_level", "-computed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["par_level"], condition=Q(status="PENDING"), name="one_pending_proposal_per_par_level"
            ),
            models.CheckConstraint(
                condition=Q(proposed_target__gte=F("proposed_minimum")), name="proposal_target_not_below_minimum"
            ),
        ]
        indexes = [models.Index(fields=["hospital", "status"])]

    def __str__(self) -> str:
        return f"{self.par_level}: {self.proposed_minimum}/{self.proposed_target}"
