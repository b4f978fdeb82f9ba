from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class HisSettlementLine(models.Model):
    """One line of the HIS's settlement data (结算明细), imported in full for reconciliation."""

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="his_settlements")
    his_line_id = models.CharField(_("HIS line id"), max_length=64)
    encounter = models.CharField(_("HIS encounter number"), max_length=64)
    his_charge_code = models.CharField(_("HIS charge code"), max_length=32)
    nhsa_code = models.CharField(_("医保耗材编码"), max_length=32, blank=True)
    quantity = models.IntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    settled_at = models.DateTimeField(
        _("settled at"), null=True, blank=True,
        help_text=_("Empty only on a quarantined line, whose date was outside the accepted window"),
    )
    charge = models.ForeignKey(
        "inventory.Charge", null=True, blank=True, on_delete=models.PROTECT, related_name="his_settlements",
        help_text=_("Our charge this line answers, when the HIS echoes our idempotency key"),
    )
    # The use (Consumption) of `charge`, stored with it (services.his._link_charges): the reconciliation
    # joins a period's lines straight to the uses they bill (selectors.reconciliation.period_billing; a
    # year's ~300,000 of each), one hash join instead of two through the charge. Set exactly when `charge`
    # is (the CHECK below); PostgreSQL refuses a use that is not the charge's (trigger, migration 0052).
    # Not indexed: the reconciliation reads the lines by time and joins them to the uses by this column.
    use = models.ForeignKey(
        "inventory.Consumption", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        db_index=False, editable=False, help_text=_("The use our charge bills (the charge's consumption)"),
    )
    imported_at = models.DateTimeField(_("imported at"), default=timezone.now)
    import_batch = models.CharField(_("import batch"), max_length=64, blank=True)
    # Set by `manage.py repair_dates` on a line imported, before dates were checked, with a date outside
    # the accepted window: its settled_at is emptied (so no reconciliation period takes it in) and kept here.
    settled_at_as_sent = models.CharField(
        _("settled at as the HIS sent it"), max_length=64, blank=True, default="", db_default=""
    )
    quarantined_at = models.DateTimeField(_("quarantined at"), null=True, blank=True)

    class Meta:
        verbose_name = _("HIS settlement line")
        ordering = ["settled_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "his_line_id"], name="his_line_unique_per_hospital"),
            models.CheckConstraint(
                condition=Q(charge__isnull=True, use__isnull=True) | Q(charge__isnull=False, use__isnull=False),
                name="his_line_use_with_its_charge",
            ),
        ]
        indexes = [
            models.Index(fields=["hospital", "settled_at"]), models.Index(fields=["encounter"]),
            # The lines naming none of our charges, by time: the reconciliation matches a period's to uses
            # (inventory.selectors.reconciliation.period_billing); without it, every such line ever imported
            # was read through the index on charge (its NULLs) for a day's few thousand.
            models.Index(fields=["hospital", "settled_at"], condition=models.Q(charge__isnull=True),
                         name="his_line_unnamed_by_time"),
        ]

    def __str__(self) -> str:
        return f"{self.his_line_id} {self.encounter} {self.his_charge_code} × {self.quantity}"


class SupplierSettlement(models.Model):
    """A consignment settlement statement (寄售结算单): what the hospital owes a supplier for a period.

    先消耗、后结算: consignment units are paid for after use. Once confirmed its lines are locked.
    """

    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("Draft")
        CONFIRMED = "CONFIRMED", _("Confirmed (locked)")

    class Stage(models.TextChoices):
        """Where the statement is between the hospital and the supplier (services.settlement_workflow).

        DRAFT → ISSUED (the hospital confirmed it: locked, sent) → SUPPLIER_CONFIRMED → SETTLED, or
        ISSUED → DISPUTED (with the supplier's reason) → back to DRAFT when the hospital reopens it."""

        DRAFT = "DRAFT", _("Draft")
        ISSUED = "ISSUED", _("Issued, awaiting the supplier")
        SUPPLIER_CONFIRMED = "SUPPLIER_CONFIRMED", _("Confirmed by the supplier")
        DISPUTED = "DISPUTED", _("Disputed by the supplier")
        SETTLED = "SETTLED", _("Settled")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="supplier_settlements")
    supplier = models.ForeignKey("inventory.Supplier", on_delete=models.PROTECT, related_name="settlements")
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end (inclusive)"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.DRAFT)
    stage = models.CharField(
        _("stage"), max_length=20, choices=Stage.choices, default=Stage.DRAFT, db_default=Stage.DRAFT,
        help_text=_("The exchange with the supplier; who did each step and when is in the statement's events"),
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("supplier settlement")
        ordering = ["-period_start", "supplier"]
        constraints = [
            models.UniqueConstraint(
                fields=["hospital", "supplier", "period_start", "period_end"], name="one_settlement_per_period"
            ),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="settlement_period"),
            # A draft is the hospital's alone; every later stage is a confirmed (locked) statement.
            models.CheckConstraint(
                condition=Q(status="DRAFT", stage="DRAFT") | (Q(status="CONFIRMED") & ~Q(stage="DRAFT")),
                name="settlement_stage_follows_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} {self.period_start}–{self.period_end}"

    def save(self, *args, **kwargs) -> None:
        """Store the statement; one that becomes ISSUED here gets its ISSUED step, whoever saves it.

        `confirm_settlement` issues a statement this way, and so does any other save that stores it
        confirmed (a fixture, an import, a script): a statement confirmed without going through the
        service is at least issued (the CHECK keeps every confirmed statement out of DRAFT), and an
        issued statement always has its step — the supplier sees and answers only issued ones.
        Writes that skip `save` (a queryset update, a bulk insert, raw SQL) are refused at commit
        by the database instead (PostgreSQL, migration 0038)."""
        if self.status == self.Status.CONFIRMED and self.stage == self.Stage.DRAFT:
            self.stage = self.Stage.ISSUED
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "stage"}
        update_fields = kwargs.get("update_fields")
        issuing = self.stage == self.Stage.ISSUED and (update_fields is None or "stage" in update_fields) and (
            self.pk is None
            or not type(self).objects.filter(pk=self.pk, stage=self.Stage.ISSUED).exists()
        )
        with transaction.atomic():
            super().save(*args, **kwargs)
            if issuing:
                SupplierSettlementEvent.objects.create(
                    settlement=self, kind=SupplierSettlementEvent.Kind.ISSUED,
                    by_id=self.confirmed_by_id or self.created_by_id, at=self.confirmed_at or timezone.now(),
                )


class SupplierSettlementLine(models.Model):
    settlement = models.ForeignKey(SupplierSettlement, on_delete=models.PROTECT, related_name="lines")
    consumption = models.OneToOneField(
        "inventory.Consumption", on_delete=models.PROTECT, related_name="settlement_line",
        help_text=_("A consumption is settled at most once"),
    )
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(max_length=64, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("supplier settlement line")
        ordering = ["settlement", "id"]

    def __str__(self) -> str:
        return f"{self.settlement}: {self.product} × {self.quantity}"


class SupplierSettlementEvent(models.Model):
    """One step of a statement between the hospital and its supplier: who, when, and why (append-only).

    Rows are only ever added (`services.settlement_workflow`); `save` refuses to change one and
    `delete` refuses to remove one, so the exchange can be read back as it happened.
    """

    class Kind(models.TextChoices):
        ISSUED = "ISSUED", _("Issued to the supplier")
        SUPPLIER_CONFIRMED = "SUPPLIER_CONFIRMED", _("Confirmed by the supplier")
        DISPUTED = "DISPUTED", _("Disputed by the supplier")
        REOPENED = "REOPENED", _("Reopened by the hospital")
        SETTLED = "SETTLED", _("Settled by the hospital")

    settlement = models.ForeignKey(SupplierSettlement, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("step"), max_length=20, choices=Kind.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("by"))
    reason = models.CharField(_("reason"), max_length=1000, blank=True)

    class Meta:
        verbose_name = _("settlement statement event")
        ordering = ["settlement", "at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["DISPUTED", "REOPENED"]) | ~Q(reason=""), name="settlement_event_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.settlement}: {self.kind} {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("settlement events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("settlement events are append-only")
