from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ClosedPeriod(models.Model):
    """A month of one hospital closed by an SPD operator (月结): its books are final.

    A row exists only for a closed month (an open month is one without a row). Months close in
    order, so everything before the latest `ends_at` of a hospital is closed: no movement,
    consumption or HIS settlement line dated before it can be written (the services refuse with
    PERIOD_CLOSED; on PostgreSQL a trigger refuses too). Closing is final: there is no reopening;
    a correction is dated in the open period with a reason (docs/monthly-close.md).
    """

    hospital = models.ForeignKey("inventory.Hospital", on_delete=models.PROTECT, related_name="closed_periods")
    month = models.DateField(_("month (its first day)"))
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at (exclusive)"))
    closed_at = models.DateTimeField(_("closed at"), default=timezone.now)
    closed_by = models.ForeignKey("inventory.User", on_delete=models.PROTECT, related_name="+")
    note = models.CharField(_("note"), max_length=500, blank=True)
    acknowledged_his_backlog = models.PositiveIntegerField(
        _("HIS deliveries still pending, acknowledged at close"), default=0
    )
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    report_csv = models.FileField(_("monthly report (CSV)"), upload_to="periods/", blank=True)
    csv_sha256 = models.CharField(_("CSV SHA-256"), max_length=64, blank=True)
    # Months closed before PeriodFlow existed have no flows stored: a period's table reads their ledger.
    flows_stored = models.BooleanField(_("month's flows stored"), default=False, db_default=False)
    # Months closed before PeriodPlaceBalance existed, and snapshots stored without a close, have no place
    # rows: their lot rows are summed instead.
    places_stored = models.BooleanField(_("snapshot summed per place"), default=False, db_default=False)
    # The month's received and expensed totals as a run over the month computes them (exact cents), stored
    # at close: a longer period adds them up (inventory.selectors.reconciliation.period_totals). NULL for
    # months closed before they were stored: their movements are read.
    received_quantity = models.BigIntegerField(_("received quantity"), null=True, blank=True)
    received_amount = models.DecimalField(_("received amount"), max_digits=16, decimal_places=2, null=True, blank=True)
    expensed_quantity = models.BigIntegerField(_("expensed quantity"), null=True, blank=True)
    expensed_amount = models.DecimalField(_("expensed amount"), max_digits=16, decimal_places=2, null=True, blank=True)

    class Meta:
        verbose_name = _("closed month (月结)")
        ordering = ["hospital", "-month"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "month"], name="one_close_per_hospital_month"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="closed_period_bounds"),
        ]

    def __str__(self) -> str:
        return f"{self.hospital} {self.month:%Y-%m}"


class PeriodBalance(models.Model):
    """What the ledger held at the end of a closed month, per product × location × lot × owner:
    the closing quantity and its value (units at their unit cost, lots at their cost layers).
    The next month's opening; reconciliation reads it instead of the ledger's history."""

    period = models.ForeignKey(ClosedPeriod, on_delete=models.PROTECT, related_name="balances")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    owner = models.CharField(_("owner"), max_length=16, blank=True)
    quantity = models.IntegerField(_("closing quantity"))
    value = models.DecimalField(_("closing value"), max_digits=16, decimal_places=2)

    class Meta:
        verbose_name = _("closing balance")
        ordering = ["period", "location", "product", "lot", "owner"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "product", "location", "lot", "owner"], name="one_balance_per_period_place"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period}: {self.product_id}@{self.location_id} {self.lot} {self.owner} = {self.quantity}"


class PeriodPlaceBalance(models.Model):
    """A closed month's snapshot summed per product × location: the quantities of its PeriodBalance rows
    (lots and owners) added up, stored by the close. A day's 进销存 table and its ledger check start
    from the closing of every place (~90,000 rows on the one-year benchmark) instead of adding up the
    ~200,000 lot rows again each run."""

    pk = models.CompositePrimaryKey("period", "product", "location")
    period = models.ForeignKey(ClosedPeriod, on_delete=models.PROTECT, related_name="place_balances", db_index=False)
    product = models.ForeignKey("inventory.Product", on_delete=models.DO_NOTHING, related_name="+",
                                db_constraint=False, db_index=False)
    location = models.ForeignKey("inventory.Location", on_delete=models.DO_NOTHING, related_name="+",
                                 db_constraint=False, db_index=False)
    quantity = models.IntegerField(_("closing quantity"))

    class Meta:
        verbose_name = _("closing balance per place")
        ordering = ["period", "location", "product"]

    def __str__(self) -> str:
        return f"{self.period}: {self.product_id}@{self.location_id} = {self.quantity}"


class PeriodFlow(models.Model):
    """What moved in a closed month at one product × location: the month's 进销存 columns from
    received through processed (StockFlowRow's, without opening and closing), for every place with a
    flow in the month. Written by the close from the statement of its 月报's table; with the month's
    closing snapshot it lets a longer period's table add up its closed months instead of reading their
    movements again (inventory.selectors.reconciliation.flow_sums_sql). Final with the month: nothing
    dated in a closed month can be written any more."""

    pk = models.CompositePrimaryKey("period", "product", "location")
    period = models.ForeignKey(ClosedPeriod, on_delete=models.PROTECT, related_name="flows", db_index=False)
    product = models.ForeignKey("inventory.Product", on_delete=models.DO_NOTHING, related_name="+",
                                db_constraint=False, db_index=False)
    location = models.ForeignKey("inventory.Location", on_delete=models.DO_NOTHING, related_name="+",
                                 db_constraint=False, db_index=False)
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

    class Meta:
        verbose_name = _("closed month's flow")
        ordering = ["period", "location", "product"]

    def __str__(self) -> str:
        return f"{self.period}: {self.product_id}@{self.location_id}"
