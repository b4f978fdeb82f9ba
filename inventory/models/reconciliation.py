from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ReconciliationRun(models.Model):
    """One 进销存 reconciliation of a hospital over a period (a day by default), with its reports.

    Stored once per (hospital, period): the current run is unique; a re-run asked for explicitly
    creates a new current run and keeps the earlier one (is_current=False) for the audit trail.
    """

    class Status(models.TextChoices):
        RUNNING = "RUNNING", _("Running")
        DONE = "DONE", _("Done")
        FAILED = "FAILED", _("Failed")

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="reconciliation_runs")
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end (inclusive)"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.RUNNING)
    is_current = models.BooleanField(_("current run of this period"), default=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    requested_by = models.ForeignKey(
        "inventory.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("Empty for the scheduled nightly run"),
    )
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    report_csv = models.FileField(_("report (CSV)"), upload_to="reconciliation/", blank=True)
    report_xlsx = models.FileField(_("report (XLSX)"), upload_to="reconciliation/", blank=True)
    report_pdf = models.FileField(_("report (PDF)"), upload_to="reconciliation/", blank=True)
    csv_sha256 = models.CharField(_("CSV SHA-256"), max_length=64, blank=True)
    xlsx_sha256 = models.CharField(_("XLSX SHA-256"), max_length=64, blank=True)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        ordering = ["-period_start", "-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["hospital", "period_start", "period_end"], condition=Q(is_current=True),
                name="one_current_run_per_period",
            ),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="run_period"),
        ]

    def __str__(self) -> str:
        return f"{self.hospital} {self.period_start}–{self.period_end} {self.get_status_display()}"

    @property
    def has_reports(self) -> bool:
        """Its three report files are stored (a DONE run gets them from a task of their own)."""
        return all((self.csv_sha256, self.xlsx_sha256, self.pdf_sha256))


class StockFlowRow(models.Model):
    """One line of a run's 进销存 table: opening + in − out = closing, for one product at one location.

    A run's table is stored here, row by row in the table's order (`position`: by location code,
    then product code), written in bulk when the run is computed (COPY on PostgreSQL;
    inventory.services.flow_table) and read by the run's pages, the API and the reports
    (inventory.selectors.flow_table). Runs made before this table existed kept their table in the
    summary's "inventory" list, which is still read for them.

    Final with its run: on PostgreSQL a trigger refuses any UPDATE, and the DELETE of a row of a
    finished (DONE) run — current or superseded — whose reports may be signed. The product and
    location are foreign keys without a database constraint: the rows come from the ledger, whose
    own constraints (and PROTECT) already guarantee both exist, and a constraint would check and
    lock a catalog row for each of a large hospital's ~90,000 rows. The run's row is checked once
    per statement instead of once per row (migration 0046's triggers: every run named by the rows
    inserted exists and is held until commit; a run with rows cannot be deleted under them).
    """

    pk = models.CompositePrimaryKey("run", "position")
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="flow_rows", db_index=False,
                            db_constraint=False)
    position = models.PositiveIntegerField(_("position in the table"))
    product = models.ForeignKey("inventory.Product", on_delete=models.DO_NOTHING, related_name="+",
                                db_constraint=False, db_index=False)
    location = models.ForeignKey("inventory.Location", on_delete=models.DO_NOTHING, related_name="+",
                                 db_constraint=False, db_index=False)
    opening = models.IntegerField(_("opening"))
    received = models.IntegerField(_("received"))
    transferred_in = models.IntegerField(_("transferred in"))
    transferred_out = models.IntegerField(_("transferred out"))
    consumed = models.IntegerField(_("consumed"))
    refunded = models.IntegerField(_("refunded"))
    returned = models.IntegerField(_("returned"))
    scrapped = models.IntegerField(_("scrapped"))
    adjusted = models.IntegerField(_("adjusted"))
    other = models.IntegerField(_("other"))
    expensed = models.IntegerField(_("expensed"))
    processed = models.IntegerField(_("processed"))
    closing = models.IntegerField(_("closing"))

    class Meta:
        verbose_name = _("stock flow row")
        ordering = ["run", "position"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closing=models.F("opening") + models.F("received") + models.F("transferred_in")
                            - models.F("transferred_out") - models.F("consumed") + models.F("refunded")
                            - models.F("returned") - models.F("scrapped") + models.F("adjusted") + models.F("other")
                            - models.F("expensed") + models.F("processed")),
                name="stock_flow_row_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.position}: {self.product_id}@{self.location_id} {self.opening} → {self.closing}"


class Finding(models.Model):
    """One discrepancy a reconciliation found, with the evidence rows that show it."""

    class Kind(models.TextChoices):
        INVENTORY_MISMATCH = "INVENTORY_MISMATCH", _("Ledger and stock disagree")
        USED_NOT_BILLED = "USED_NOT_BILLED", _("Used but not billed (漏收)")
        BILLED_NOT_USED = "BILLED_NOT_USED", _("Billed but never used (虚记)")
        BILLED_QTY_EXCEEDS_USED = "BILLED_QTY_EXCEEDS_USED", _("Billed more than used (多记)")
        PRICE_ABOVE_PURCHASE = "PRICE_ABOVE_PURCHASE", _("Billed above the purchase price")
        PRICE_NOT_ADJUSTED = "PRICE_NOT_ADJUSTED", _("Billed at an old price after a price change")
        MULTI_SUPPLIER_HIGHEST_PRICE = "MULTI_SUPPLIER_HIGHEST_PRICE", _("Billed at the highest of several suppliers")
        ZERO_COST_BILLED = "ZERO_COST_BILLED", _("Gifted / zero-cost unit billed")
        SUBSTITUTION = "SUBSTITUTION", _("Billed code differs from the item used (串换)")
        CONSIGNMENT_UNSETTLED = "CONSIGNMENT_UNSETTLED", _("Consignment used but not settled")
        EXPIRED_IN_STOCK = "EXPIRED_IN_STOCK", _("Expired unit still in stock")
        SET_PARTNER_MISSING = "SET_PARTNER_MISSING", _("Set component used without its partner (配套组件缺用)")

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    product = models.ForeignKey("inventory.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey("inventory.Unit", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    location = models.ForeignKey(
        "inventory.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    encounter = models.CharField(_("encounter"), max_length=64, blank=True)
    his_charge_code = models.CharField(_("HIS charge code"), max_length=32, blank=True)
    expected = models.DecimalField(_("expected (quantity or amount)"), max_digits=14, decimal_places=2, null=True)
    actual = models.DecimalField(_("actual (quantity or amount)"), max_digits=14, decimal_places=2, null=True)
    amount = models.DecimalField(_("amount at stake"), max_digits=14, decimal_places=2, default=0)
    message = models.CharField(_("message"), max_length=500)
    evidence = models.JSONField(_("evidence rows"), default=dict, blank=True)

    class Meta:
        verbose_name = _("reconciliation finding")
        ordering = ["run", "kind", "id"]
        indexes = [models.Index(fields=["run", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"


class FindingDisposition(models.Model):
    """What an auditor made of a finding (处理意见): confirmed, explained, corrected or a false alarm,
    with a note, who and when.

    Append-only: a finding's dispositions form one chain, each new one superseding the one before
    (`supersedes`, unique), so the history of a finding is kept whole. The model refuses updates and
    deletes; `inventory.services.findings.record_disposition` is the only writer.
    """

    class Outcome(models.TextChoices):
        CONFIRMED = "CONFIRMED", _("Confirmed")
        EXPLAINED = "EXPLAINED", _("Explained")
        CORRECTED = "CORRECTED", _("Corrected")
        FALSE_ALARM = "FALSE_ALARM", _("False alarm")

    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="dispositions")
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    note = models.TextField(_("note"))
    recorded_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by",
        help_text=_("The finding's disposition before this one"),
    )

    class Meta:
        verbose_name = _("finding disposition")
        ordering = ["finding", "recorded_at", "id"]
        constraints = [
            # One first disposition per finding; with `supersedes` unique, the history is one chain.
            models.UniqueConstraint(fields=["finding"], condition=Q(supersedes__isnull=True),
                                    name="one_first_disposition_per_finding"),
            models.CheckConstraint(condition=~Q(note=""), name="disposition_note_required"),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.note[:60]}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise TypeError("Dispositions are append-only: record a new one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object):
        raise TypeError("Dispositions are append-only: they cannot be deleted.")
