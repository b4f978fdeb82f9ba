"""Stocktakes (盘点): the daily dynamic check (动态盘点) and the static count session (静态盘点).

A session lists what the ledger expects at its locations (one line per unit, one per lot balance),
people count, and an approval posts the differences as ADJUSTMENT movements (or a TRANSFER for a
unit found in the wrong place). Written only by `inventory.services.stocktake`.
"""
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StocktakeSession(models.Model):
    """One count (盘点单): a static count of one or more locations, or a department's daily check.

    `snapshot_at` is the moment the expected stock was read from the ledger; a line's expected
    quantity at the time it was counted is that snapshot plus the movements in between, so a move
    during an unfrozen count is accounted for, not lost. With `freeze_outgoing`, stock may not
    leave the session's locations while it is COUNTING (the stock services refuse with a 409).
    """

    class Kind(models.TextChoices):
        STATIC = "STATIC", _("Static count (静态盘点)")
        DYNAMIC = "DYNAMIC", _("Daily dynamic check (动态盘点)")

    class Status(models.TextChoices):
        COUNTING = "COUNTING", _("Counting")
        SUBMITTED = "SUBMITTED", _("Submitted for approval")
        APPROVED = "APPROVED", _("Approved and posted")
        CANCELLED = "CANCELLED", _("Cancelled")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="stocktakes")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.STATIC)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.COUNTING)
    locations = models.ManyToManyField("inventory.Location", related_name="stocktakes", verbose_name=_("locations"))
    department = models.ForeignKey(
        "inventory.Department", null=True, blank=True, on_delete=models.PROTECT, related_name="stocktakes",
        help_text=_("The department of a daily check"),
    )
    work_date = models.DateField(_("day checked"), null=True, blank=True)
    product = models.ForeignKey(
        "inventory.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("An ad hoc count of one product (or one lot of it)"),
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    blind = models.BooleanField(_("blind count (expected quantities hidden)"), default=True)
    freeze_outgoing = models.BooleanField(_("freeze outgoing movement while counting"), default=False)
    note = models.CharField(_("note"), max_length=500, blank=True)
    snapshot_at = models.DateTimeField(_("expected stock as of"), default=timezone.now)
    cabinet_readings = models.JSONField(
        _("smart cabinets' last door-close readings"), default=list, blank=True,
        help_text=_("Cabinets are counted by RFID: their last applied door close, as it was read"),
    )
    created_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("Empty for the scheduled daily check"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    submitted_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    approved_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    report_csv = models.FileField(_("variance report (CSV)"), upload_to="stocktake/", blank=True)
    report_xlsx = models.FileField(_("variance report (XLSX)"), upload_to="stocktake/", blank=True)
    report_pdf = models.FileField(_("variance report (PDF)"), upload_to="stocktake/", blank=True)
    csv_sha256 = models.CharField(_("CSV SHA-256"), max_length=64, blank=True)
    xlsx_sha256 = models.CharField(_("XLSX SHA-256"), max_length=64, blank=True)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("stocktake")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "work_date"], condition=Q(kind="DYNAMIC"), name="one_daily_check_per_department"
            ),
        ]
        indexes = [models.Index(fields=["hospital", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.COUNTING, self.Status.SUBMITTED)


class StocktakeLine(models.Model):
    """One thing to count: a unit (expected or found), or a lot at a location.

    `expected_quantity` is the snapshot's; `expected_at_count` is what the ledger expected when the
    line was counted (snapshot + the movements since). A unit found elsewhere than the ledger says
    keeps its ledger location in `location` and where it was found in `found_at`.
    """

    class Reason(models.TextChoices):
        """Why a line is on a daily check's worklist (a static count lists everything: SNAPSHOT)."""

        SNAPSHOT = "SNAPSHOT", _("Expected at the start of the count")
        FOUND = "FOUND", _("Found, not expected")
        MOVED_TODAY = "MOVED_TODAY", _("Moved today")
        ISSUED_NOT_USED = "ISSUED_NOT_USED", _("Issued, neither used nor returned")
        USE_ABOVE_USUAL = "USE_ABOVE_USUAL", _("Used more than usual")

    class Quality(models.TextChoices):
        NONE = "", _("No remark")
        DAMAGED = "DAMAGED", _("Damaged")
        NEAR_EXPIRY = "NEAR_EXPIRY", _("Near expiry")
        LABEL_UNREADABLE = "LABEL_UNREADABLE", _("Label unreadable")

    class Adjustment(models.TextChoices):
        """The reason code of the ADJUSTMENT a variance is posted with."""

        FOUND = "FOUND", _("Found (盘盈)")
        LOST = "LOST", _("Lost (盘亏)")
        DAMAGED = "DAMAGED", _("Damaged (损坏)")
        DATA_ERROR = "DATA_ERROR", _("Data error (数据错误)")

    session = models.ForeignKey(StocktakeSession, on_delete=models.CASCADE, related_name="lines")
    reason = models.CharField(_("why listed"), max_length=16, choices=Reason.choices, default=Reason.SNAPSHOT)
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    owner = models.CharField(_("owner"), max_length=16, default="HOSPITAL")
    unit_cost = models.DecimalField(_("unit cost"), max_digits=12, decimal_places=2, default=0)
    expected_quantity = models.IntegerField(_("expected at the snapshot"), default=0)
    expected_at_count = models.IntegerField(_("expected when counted"), null=True, blank=True)
    counted_quantity = models.IntegerField(_("counted"), null=True, blank=True)
    counted_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    found_at = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("Where a unit was found, when not where the ledger has it"),
    )
    recount_quantity = models.IntegerField(_("recounted"), null=True, blank=True)
    recounted_by = models.ForeignKey("inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recounted_at = models.DateTimeField(_("recounted at"), null=True, blank=True)
    quality = models.CharField(_("quality remark"), max_length=16, choices=Quality.choices, blank=True, default="")
    note = models.CharField(_("note"), max_length=500, blank=True)
    adjustment_reason = models.CharField(
        _("adjustment reason"), max_length=12, choices=Adjustment.choices, blank=True, default=""
    )
    movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("The ADJUSTMENT or TRANSFER its approval posted"),
    )

    class Meta:
        verbose_name = _("stocktake line")
        ordering = ["session", "location__code", "product__internal_code", "lot", "unit__serial", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "unit"], condition=Q(unit__isnull=False), name="one_line_per_unit"),
            models.UniqueConstraint(
                fields=["session", "product", "lot", "location"], condition=Q(unit__isnull=True),
                name="one_line_per_lot_and_location",
            ),
            models.CheckConstraint(condition=Q(counted_quantity__gte=0) | Q(counted_quantity__isnull=True),
                                   name="counted_not_negative"),
            models.CheckConstraint(condition=Q(recount_quantity__gte=0) | Q(recount_quantity__isnull=True),
                                   name="recounted_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.session} · {self.unit or self.lot}"

    @property
    def final_count(self) -> int | None:
        """The quantity that stands: the recount when there is one, else the count."""
        return self.recount_quantity if self.recount_quantity is not None else self.counted_quantity

    @property
    def variance(self) -> int | None:
        """Counted minus expected (when counted); positive: found more than the ledger has."""
        if self.final_count is None:
            return None
        expected = self.expected_at_count if self.expected_at_count is not None else self.expected_quantity
        return self.final_count - expected


class StocktakeFinding(models.Model):
    """A consigned (supplier-owned) item that a count found missing: the hospital owes the supplier
    for it, so it goes to the supplier settlement (寄售结算) rather than being written off silently."""

    class Status(models.TextChoices):
        OPEN = "OPEN", _("Open: to settle with the supplier")
        SETTLED = "SETTLED", _("Settled")

    session = models.ForeignKey(StocktakeSession, on_delete=models.PROTECT, related_name="findings")
    line = models.OneToOneField(StocktakeLine, on_delete=models.PROTECT, related_name="finding")
    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="+")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="stocktake_findings")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity missing"))
    amount = models.DecimalField(_("amount owed to the supplier"), max_digits=14, decimal_places=2)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("consignment stocktake finding")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["supplier", "status"])]

    def __str__(self) -> str:
        return f"{self.supplier}: {self.product} × {self.quantity}"
